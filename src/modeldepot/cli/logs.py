"""Where the depot's log lines go. Library code only asks for its package's logger
(`logging.getLogger("modeldepot.receive")`...); the command line alone decides what is written:
the `modeldepot` loggers to standard error, at the level `-v`/`-vv` or `DEPOT_LOG_LEVEL` asks
(WARNING unless told; `depot serve` raises it to INFO, so its console shows what it does).
Each line is one line: a control character in a message (a file name, a finding, a reason:
text from outside) is written escaped, so nothing logged can forge a line of its own."""

from __future__ import annotations

import logging
import re
import sys

import click

__all__ = ["FORMAT", "chosen_level", "configure"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_CHOSEN = "modeldepot.log_level"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


class _OneLine(logging.Formatter):
    """`FORMAT`, with control characters escaped (a traceback still follows on its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", super().formatMessage(record))


class _Stderr(logging.Handler):
    """Writes each line to the standard error of the moment (a test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure(level: str, chosen: bool = False) -> None:
    """Send the `modeldepot` loggers to standard error from `level` up (one handler, however
    often called); `chosen` records that the user asked for this level."""
    logger = logging.getLogger("modeldepot")
    for handler in [h for h in logger.handlers if isinstance(h, _Stderr)]:
        logger.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(_OneLine(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[_CHOSEN] = level if chosen else None


def chosen_level() -> str | None:
    """The level the user asked for (`-v`, `DEPOT_LOG_LEVEL`), if any."""
    context = click.get_current_context(silent=True)
    return context.meta.get(_CHOSEN) if context is not None else None
