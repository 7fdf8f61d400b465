"""User-facing errors: each is reported by the CLI as one line on stderr with a non-zero exit."""

from __future__ import annotations


class Video3DError(Exception):
    """Something the user can fix (input, output, options); the message is one line."""

    exit_code = 1


class InputError(Video3DError):
    """The input file is missing, unreadable, not a video, empty, or holds nothing to work on."""

    exit_code = 2


class DeviceError(Video3DError, ValueError):
    """The device asked for is not there (e.g. --device cuda where PyTorch sees no CUDA GPU): bad input."""

    exit_code = 2


class OutputError(Video3DError):
    """An output cannot be written (folder not writable) or exists already without --force."""

    exit_code = 3


class DetectorError(Video3DError):
    """The 2D detector could not be loaded (missing weights, failed download, missing backend)."""

    exit_code = 4
