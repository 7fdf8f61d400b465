"""Interruption for every caller, the CLI, ``batch``'s workers and library users alike.

``handle_signals`` makes SIGTERM and SIGHUP end a run as Ctrl-C does: ``Terminated`` is raised where the program
is, so every ``with`` block removes its temporary files. ``check_signals`` raises it again for a signal whose
exception was swallowed; ``progress.stage`` calls it for every frame and step, with or without a reporter.
"""

from __future__ import annotations

import signal


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where the program is so that it unwinds as for Ctrl-C: every ``with`` block
    removes its temporary files, child processes are stopped, exit handlers run; exit status 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


_pending: list[int] = []


def _terminate(signum, frame) -> None:
    _pending.append(signum)
    raise Terminated(signum)


def handle_signals() -> None:
    """SIGTERM and SIGHUP end the run like SIGINT does (Python's default for them is to die on the spot,
    leaving temporary files and folders behind). Call it from the main thread."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)


def pending_signal() -> int | None:
    """The first SIGTERM or SIGHUP received since ``handle_signals``, if any."""
    return _pending[0] if _pending else None


def check_signals() -> None:
    """Raise Terminated again for a signal whose exception was swallowed: a handler that raises while Python
    runs a callback whose exceptions are only printed (e.g. importlib's module-lock weakref callback) loses
    it."""
    if _pending:
        raise Terminated(_pending[0])
