"""Exception classes and the ``undefined`` sentinel, shared by the native module."""

from __future__ import annotations

import builtins
from typing import Any, Final, NamedTuple


class Undefined:
    """JavaScript's ``undefined`` (``None`` is ``null``). A singleton: use ``polyracer.undefined``."""

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "undefined"


undefined: Final = Undefined()


class Error(Exception):
    """Base class of every polyracer error."""


class StackFrame(NamedTuple):
    """One frame of a JS stack (``JSError.frames`` and ``ParseError.frames``,
    innermost first)."""

    function: str | None
    """The function's name; ``None`` for top-level code and anonymous functions."""
    file: str | None
    line: int
    column: int


class ParseError(Error):
    """The source failed to compile (a ``SyntaxError``)."""

    name: str
    message: str
    stack: str
    frames: list[StackFrame]
    filename: str | None
    line: int | None
    column: int | None
    report: str


class JSError(Error):
    """JavaScript threw and nothing caught it.

    ``name`` and ``message`` are the error's, ``stack`` the JS stack (and
    ``frames`` the same as data), and ``value`` the thrown value itself
    (converted); ``report`` is the report V8's shell prints (the source
    line with a ``^`` under the error, then the stack). If a Python function
    exposed to JS raised it, the original exception is ``__cause__``.
    """

    name: str
    message: str
    stack: str
    frames: list[StackFrame]
    value: Any
    filename: str | None
    line: int | None
    column: int | None
    report: str

    def __str__(self) -> str:
        stack = getattr(self, "stack", "")
        return stack or super().__str__()


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 - the builtin is a base too
    """The call ran past its timeout and was terminated; the context is still usable."""


class TerminatedError(Error):
    """Execution was stopped by ``Context.terminate()``."""


class OutOfMemoryError(Error, MemoryError):
    """The context reached its memory limit; the process and the context survive."""


class ConversionError(Error, TypeError):
    """A value could not be converted between Python and JavaScript."""


class DisposedError(Error):
    """The context (or script, or handle) was disposed, or belongs to the parent of a fork."""


class InvalidArgumentError(Error, ValueError):
    """An argument was invalid (a bad flag, path, handle kind, ...)."""
