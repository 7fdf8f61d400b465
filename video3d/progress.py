"""Progress reporting for long stages: the library calls ``stage`` and ``advance``; the CLI shows a
rich progress bar (frames/s and ETA); library users get nothing unless they pass a reporter."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Protocol


class Progress(Protocol):
    def start(self, stage: str, total: int | None) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def stop(self) -> None: ...


class NullProgress:
    def start(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def stop(self) -> None:
        pass


@contextmanager
def stage(progress: Progress | None, name: str, total: int | None) -> Iterator[Progress]:
    p = progress or NullProgress()
    p.start(name, total)
    try:
        yield p
    finally:
        p.stop()
