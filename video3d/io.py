"""Atomic outputs: write to a temporary name beside the target, rename on success, so a crash, Ctrl-C or
SIGTERM never leaves a half-written file, and never overwrite an existing file without ``force``.

The temporary file is created exclusively (``mkstemp``: a fresh unpredictable name, ``O_EXCL``, so a link
planted in the output folder is never written through), given the umask's permissions through its own file
descriptor (``O_NOFOLLOW``: never through a link), then renamed over the target (a link at the target is
replaced, not followed). Folders are created only when a file is written into them, so a run that fails
early leaves no empty output folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError


def check_output(path: str | Path, force: bool = False) -> Path:
    """Fail early (before any long work) if ``path`` exists without force, is a folder, or cannot be created."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder, not a file")
    if (path.exists() or path.is_symlink()) and not force:
        raise OutputError(f"{path} exists; pass --force to overwrite it")
    check_writable_dir(path.parent)
    return path


def check_writable_dir(folder: str | Path) -> Path:
    """Fail early if ``folder`` is not a folder, or could not be created and written in. Creates nothing: the
    check writes (and removes) a probe file in the nearest folder that exists."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: mkdir would fail
            raise OutputError(f"cannot create output folder {folder}: {existing} is a broken link")
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot create output folder {folder}: {existing} is a file, not a folder"
                          if existing != folder else f"{folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".video3d-write-test.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write in {existing}: {exc.strerror or exc}") from None
    return folder


def make_dirs(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None


def umask_mode(mode: int = 0o666) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


class AtomicPath:
    """``with AtomicPath(p) as a: write(a.tmp)``: p appears, complete, only if the block succeeds."""

    def __init__(self, path: str | Path, force: bool = False):
        self.path = Path(path)
        self.force = force
        self.tmp: Path | None = None  # set on entering: .<name>.<random>.tmp beside the target

    def __enter__(self) -> "AtomicPath":
        check_output(self.path, self.force)
        make_dirs(self.path.parent)
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise OutputError(f"cannot write in {self.path.parent}: {exc.strerror or exc}") from None
        os.close(fd)
        self.tmp = Path(name)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.tmp is None:
            return
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
            return
        if (self.path.exists() or self.path.is_symlink()) and not self.force:
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"{self.path} appeared while writing; pass --force to overwrite it")
        try:
            fd = os.open(self.tmp, os.O_RDONLY | os.O_NOFOLLOW)  # the file we made, never a link put in its place
            try:
                os.fchmod(fd, umask_mode())  # mkstemp made it 0600; outputs get the umask's permissions
            finally:
                os.close(fd)
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
