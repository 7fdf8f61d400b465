"""Progress reporting for long stages: the library calls ``stage`` and ``advance``; the CLI shows a
rich progress bar (frames/s and ETA); library users get nothing unless they pass a reporter. Every
``advance`` first checks for a swallowed SIGTERM or SIGHUP (``signals.check_signals``), reporter or not."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Protocol

from .signals import check_signals


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


class _Checked:
    """A reporter whose ``advance`` raises a pending signal first (see ``signals.check_signals``)."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def start(self, stage: str, total: int | None) -> None:
        self.progress.start(stage, total)

    def advance(self, n: int = 1) -> None:
        check_signals()
        self.progress.advance(n)

    def stop(self) -> None:
        self.progress.stop()


@contextmanager
def stage(progress: Progress | None, name: str, total: int | None) -> Iterator[Progress]:
    p = _Checked(progress or NullProgress())
    p.start(name, total)
    try:
        yield p
    finally:
        p.stop()
