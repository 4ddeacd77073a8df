"""Failures whose message is the whole story: what the user gave, or could reach, is wrong.

A bad workbook, a checksum that does not match, a source that is not there: the user fixes
these from the message alone, and a traceback only buries it. Such errors derive from
`ExpectedError`, so the layers above (Prefect's logs, the CLI) can show them as one message
and keep tracebacks for what nobody expected: bugs.
"""

from __future__ import annotations


class ExpectedError(Exception):
    """A failure the message fully explains; callers show it without a traceback."""


class InputError(ExpectedError, ValueError):
    """Something the user gave (a file, a source, a parameter) cannot be used as it is."""


class SourceNotFoundError(InputError, FileNotFoundError):
    """A local source names no file."""


class SourceNotAllowedError(InputError):
    """A source this run may not read (a local path given through the Prefect API)."""
