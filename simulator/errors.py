"""Errors that carry what a user needs to act on them.

`CimError` holds a 61968-100 reply code, so whichever layer detects a problem, the transport
can answer with a FaultMessage or a Reply carrying that code instead of a traceback.
`ScenarioError` names the file and the dotted key, so the CLI can print one line.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class of every error this package raises on purpose."""


class ScenarioError(SimulatorError):
    """A scenario file or an override is wrong; `str()` is the one-line CLI message."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        # All fields in args: simpy re-raises a process's exception as type(e)(*e.args).
        super().__init__(source, key, message)

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        return f"{where}: {self.message}"


class CimError(SimulatorError):
    """A request cannot be served; `code` is the 61968-100 reply code (e.g. "1.8")."""

    def __init__(self, code: str, reason: str, details: str | None = None) -> None:
        self.code = code
        self.reason = reason
        self.details = details
        super().__init__(code, reason, details)  # all fields, so the error can be rebuilt from args

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"
