"""The PyMiniRacer API on top of polyracer.

Switch with one line::

    from polyracer.compat.py_mini_racer import MiniRacer   # was: from py_mini_racer import MiniRacer

Written from PyMiniRacer's public documentation. Differences:

- ``timeout`` arguments are milliseconds and ``timeout_sec`` seconds, as in
  PyMiniRacer; ``max_memory`` and the hard memory limit become the V8 heap
  limit, fixed when the underlying context is created (at the first call):
  setting a hard limit later raises ``JSValueError``. The soft limit is
  checked after each call (``was_soft_memory_limit_reached``).
- Exceptions keep PyMiniRacer's names and are also polyracer's (for
  example ``JSTimeoutException`` is a ``polyracer.TimeoutError``).
- Objects come back as PyMiniRacer's live proxies (``JSMappedObject``,
  ``JSArray``, ``JSFunction``, ``JSPromise``, ``JSSymbol``), each holding a
  polyracer handle; ArrayBuffers and typed arrays as writable memoryviews of
  the JS memory.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import tempfile
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import polyracer

from ._pmr_objects import (
    CancelableJSFunction,
    JSArray,
    JSFunction,
    JSMappedObject,
    JSObject,
    JSPromise,
    JSSymbol,
    wrap,
)

__all__ = [
    "DEFAULT_V8_FLAGS",
    "CancelableJSFunction",
    "JSArray",
    "JSArrayIndexError",
    "JSMappedObject",
    "LibNotFoundError",
    "StrictMiniRacer",
    "init_mini_racer",
    "JSEvalException",
    "JSFunction",
    "JSKeyError",
    "JSOOMException",
    "JSObject",
    "JSParseException",
    "JSPromise",
    "JSPromiseError",
    "JSSymbol",
    "JSTimeoutException",
    "JSUndefined",
    "JSUndefinedType",
    "JSValueError",
    "LibAlreadyInitializedError",
    "MiniRacer",
    "MiniRacerBaseException",
    "mini_racer",
]

JSUndefinedType = polyracer.Undefined
JSUndefined = polyracer.undefined
DEFAULT_V8_FLAGS: tuple[str, ...] = ("--single-threaded",)


class MiniRacerBaseException(Exception):  # noqa: N818 - PyMiniRacer's name
    """Base of PyMiniRacer's exceptions."""


class JSEvalException(MiniRacerBaseException, polyracer.JSError):
    """JavaScript threw."""


class JSParseException(JSEvalException, polyracer.ParseError):
    """The source failed to compile."""


class JSTimeoutException(JSEvalException, polyracer.TimeoutError):
    """The call timed out."""


class JSOOMException(JSEvalException, polyracer.OutOfMemoryError):
    """The memory limit was reached."""


class JSTerminatedException(JSEvalException, polyracer.TerminatedError):
    """Execution was terminated."""


class JSPromiseError(MiniRacerBaseException):
    """A promise was rejected; ``reason`` is the rejection's text."""

    def __init__(self, reason: Any) -> None:
        super().__init__(f"JavaScript rejected promise with reason: {reason}\n")
        self.reason = reason


class _PythonFunctionError(Exception):
    """A wrapped Python function failed: JS gets a plain ``Error`` with the traceback."""


# The JS class of the error JS sees (the binding names it after this class).
_PythonFunctionError.__name__ = "Error"


class JSValueError(JSEvalException, ValueError):
    """A value could not be used."""


class JSKeyError(JSEvalException, KeyError):
    """A key is missing."""


class JSArrayIndexError(MiniRacerBaseException, IndexError):
    """An array index is out of range."""


class LibAlreadyInitializedError(MiniRacerBaseException):
    """V8 flags were given after V8 started."""


class LibNotFoundError(MiniRacerBaseException):
    """Kept for imports; polyracer's engine is built in and is always found."""


def init_mini_racer(*, flags: Iterable[str] = DEFAULT_V8_FLAGS, ignore_duplicate_init: bool = False) -> None:
    """Sets V8 flags before first use (``--single-threaded`` selects polyracer's single-threaded engine)."""
    flags = list(flags)
    single = "--single-threaded" in flags
    rest = [f for f in flags if f != "--single-threaded"]
    try:
        polyracer.configure(*rest, single_threaded=single)
    except polyracer.InvalidArgumentError as e:
        if not ignore_duplicate_init:
            raise LibAlreadyInitializedError(str(e)) from e


def _message(error: polyracer.Error) -> str:
    """PyMiniRacer's text for ``error``: V8's shell report for exceptions."""
    if isinstance(error, polyracer.TimeoutError):
        return "JavaScript was terminated by timeout"
    if isinstance(error, polyracer.OutOfMemoryError):
        return "JavaScript memory limit reached"
    if isinstance(error, polyracer.TerminatedError):
        return "JavaScript was terminated"
    return getattr(error, "report", None) or str(error)


def _translate(error: polyracer.Error) -> MiniRacerBaseException:
    mapping: list[tuple[type[polyracer.Error], type[MiniRacerBaseException]]] = [
        (polyracer.ParseError, JSParseException),
        (polyracer.TimeoutError, JSTimeoutException),
        (polyracer.OutOfMemoryError, JSOOMException),
        (polyracer.TerminatedError, JSTerminatedException),
        (polyracer.JSError, JSEvalException),
    ]
    for src, dst in mapping:
        if isinstance(error, src):
            new = dst(_message(error))
            for attr in ("name", "message", "stack", "value", "filename", "line", "column"):
                if hasattr(error, attr):
                    setattr(new, attr, getattr(error, attr))
            return new
    if isinstance(error, polyracer.InvalidArgumentError) and "already initialised" in str(error):
        return LibAlreadyInitializedError(str(error))
    return JSValueError(str(error))


def _timeout(timeout: float | None, timeout_sec: float | None) -> float | None:
    if timeout_sec is not None:
        return timeout_sec
    if timeout is not None:
        return timeout / 1000.0
    return None


class MiniRacer:
    """A JavaScript context with PyMiniRacer's interface."""

    json_impl = json

    def __init__(self) -> None:
        self._ctx: polyracer.Context | None = None
        self._hard_limit: int | None = None
        self._soft_limit: int | None = None
        self._soft_reached = False
        self._hard_reached = False

    # -- lifecycle
    def _context(self, max_memory: int | None = None) -> polyracer.Context:
        if self._ctx is None:
            limit = max_memory or self._hard_limit
            self._ctx = polyracer.Context(memory_limit=limit)
        return self._ctx

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.dispose()

    def __enter__(self) -> MiniRacer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        ctx = getattr(self, "_ctx", None)
        if ctx is not None:
            ctx.dispose()

    # -- evaluation
    def _guard(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except polyracer.OutOfMemoryError as e:
            self._hard_reached = True
            # The heap passed any lower soft limit on its way to the hard one
            # (and is collected by now, so the check below cannot see it).
            if self._soft_limit is not None and self._soft_limit <= (self._hard_limit or self._soft_limit):
                self._soft_reached = True
            raise _translate(e) from e
        except polyracer.Error as e:
            raise _translate(e) from e
        finally:
            self._check_soft_limit()

    def _check_soft_limit(self) -> None:
        if self._soft_limit is not None and self._ctx is not None and not self._ctx.disposed:
            if self._ctx.heap_stats()["used_heap_size"] > self._soft_limit:
                self._soft_reached = True

    def eval(
        self,
        code: str,
        timeout: float | None = None,
        timeout_sec: float | None = None,
        max_memory: int | None = None,
    ) -> Any:
        """Evaluates ``code``; ``timeout`` in milliseconds, ``timeout_sec`` in seconds."""
        ctx = self._context(max_memory)
        # PyMiniRacer gives ArrayBuffers and typed arrays as writable
        # memoryviews of the JS memory.
        # PyMiniRacer names every script <anonymous> in messages and stacks,
        # and returns objects as live proxies and byte buffers as views.
        result = self._guard(
            lambda: ctx.eval(
                code,
                filename="<anonymous>",
                timeout=_timeout(timeout, timeout_sec),
                as_handle=True,
                share_buffers=True,
            )
        )
        return wrap(self, result)

    def execute(
        self,
        expr: str,
        timeout: float | None = None,
        timeout_sec: float | None = None,
        max_memory: int | None = None,
    ) -> Any:
        """Evaluates ``expr`` and returns its JSON round trip."""
        wrapped = f"JSON.stringify(({expr}))"
        result = MiniRacer.eval(
            self, wrapped, timeout=timeout, timeout_sec=timeout_sec, max_memory=max_memory
        )
        return None if result is JSUndefined else self.json_impl.loads(result)

    def call(
        self,
        expr: str,
        *args: Any,
        encoder: type[json.JSONEncoder] | None = None,
        timeout: float | None = None,
        timeout_sec: float | None = None,
        max_memory: int | None = None,
    ) -> Any:
        """Calls the function ``expr`` with JSON-encoded ``args``; returns the JSON result."""
        js_args = self.json_impl.dumps(list(args), separators=(",", ":"), cls=encoder)
        return self.execute(
            f"({expr}).apply(this, {js_args})",
            timeout=timeout,
            timeout_sec=timeout_sec,
            max_memory=max_memory,
        )

    async def eval_cancelable(self, code: str) -> Any:
        """``eval`` on a worker thread: cancelling the awaiting task stops the JS.

        As in PyMiniRacer, the result is not awaited (a promise comes back
        as a ``JSPromise``), and runaway code never blocks the event loop.
        """
        ctx = self._context()
        call = asyncio.ensure_future(asyncio.to_thread(MiniRacer.eval, self, code))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            ctx.terminate()
            # The worker returns once the JS stops; its error is the cancel's.
            await asyncio.gather(call, return_exceptions=True)
            raise

    def heap_snapshot(self) -> Any:
        """The V8 heap snapshot, parsed from its JSON."""
        fd, path = tempfile.mkstemp(suffix=".heapsnapshot")
        os.close(fd)
        try:
            self._context().write_heap_snapshot(path)
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        finally:
            os.unlink(path)

    @asynccontextmanager
    async def wrap_py_function(self, func: Callable[..., Any]) -> AsyncIterator[JSFunction]:
        """Yields a JSFunction that calls the ``async def`` function ``func`` (JS gets a promise)."""
        ctx = self._context()
        name = f"__polyracer_wrapped_{id(func):x}"

        async def call(*args: Any) -> Any:
            try:
                result = func(*args)
                return await result if inspect.isawaitable(result) else result
            except Exception:
                raise _PythonFunctionError(
                    "Error running Python function:\n" + traceback.format_exc()
                ) from None

        ctx.expose(name, call)
        try:
            yield wrap(self, ctx.eval(name))
        finally:
            ctx.eval(f"delete globalThis[{json.dumps(name)}]")

    # -- memory
    def set_hard_memory_limit(self, limit: int) -> None:
        if self._ctx is not None:
            raise JSValueError(
                "polyracer fixes the heap limit when the context starts: set it before the first call"
            )
        self._hard_limit = limit

    def set_soft_memory_limit(self, limit: int) -> None:
        self._soft_limit = limit

    def was_hard_memory_limit_reached(self) -> bool:
        return self._hard_reached

    def was_soft_memory_limit_reached(self) -> bool:
        return self._soft_reached

    def low_memory_notification(self) -> None:
        self._context().low_memory_notification()

    def heap_stats(self) -> dict[str, int]:
        return self._context().heap_stats()

    @property
    def v8_version(self) -> str:
        """The V8 version (a property, as in PyMiniRacer), without the embedder's suffix."""
        return polyracer.V8_VERSION.split("-", 1)[0]


# PyMiniRacer 0.14 made StrictMiniRacer an alias of MiniRacer.
StrictMiniRacer = MiniRacer


@contextmanager
def mini_racer() -> Iterator[MiniRacer]:
    """A MiniRacer that is closed on exit."""
    mr = MiniRacer()
    try:
        yield mr
    finally:
        mr.close()
