"""Atomic outputs: write to a temporary name beside the target, rename on success, so a crash or
Ctrl-C never leaves a half-written file, and never overwrite an existing file without ``force``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError


def check_output(path: str | Path, force: bool = False) -> Path:
    """Fail early (before any long work) if ``path`` exists without force or its folder is not writable."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputError(f"{path} exists; pass --force to overwrite it")
    if path.is_dir():
        raise OutputError(f"{path} is a folder, not a file")
    check_writable_dir(path.parent)
    return path


def check_writable_dir(folder: str | Path) -> Path:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
    if not folder.is_dir():
        raise OutputError(f"{folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".video3d-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {exc.strerror or exc}") from None
    return folder


class AtomicPath:
    """``with AtomicPath(p) as a: write(a.tmp)``: p appears, complete, only if the block succeeds."""

    def __init__(self, path: str | Path, force: bool = False):
        self.path = Path(path)
        self.force = force
        self.tmp: Path = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")

    def __enter__(self) -> "AtomicPath":
        check_output(self.path, self.force)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
            return
        if self.path.exists() and not self.force:
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"{self.path} appeared while writing; pass --force to overwrite it")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)
        os.replace(self.tmp, self.path)
