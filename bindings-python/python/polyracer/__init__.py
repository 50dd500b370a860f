"""polyracer: sandboxed V8 JavaScript contexts.

>>> import polyracer
>>> with polyracer.Context() as ctx:
...     ctx.eval("1 + 1")
2
"""

from __future__ import annotations

import asyncio
import collections.abc
import inspect
from collections.abc import Callable
from typing import Any

from . import _polyracer
from ._polyracer import JSArray, JSFunction, JSObject, JSPromise, JSSymbol, Script, Snapshot, configure
from ._types import (
    ConversionError,
    DisposedError,
    Error,
    InvalidArgumentError,
    JSError,
    OutOfMemoryError,
    ParseError,
    StackFrame,
    TerminatedError,
    TimeoutError,
    Undefined,
    undefined,
)

__all__ = [
    "CACHED_DATA_VERSION_TAG",
    "V8_VERSION",
    "Context",
    "ConversionError",
    "DisposedError",
    "Error",
    "InvalidArgumentError",
    "JSArray",
    "JSError",
    "JSFunction",
    "JSObject",
    "JSPromise",
    "JSSymbol",
    "OutOfMemoryError",
    "ParseError",
    "Script",
    "Snapshot",
    "StackFrame",
    "TerminatedError",
    "TimeoutError",
    "Undefined",
    "configure",
    "undefined",
]

V8_VERSION: str = _polyracer.V8_VERSION

collections.abc.MutableMapping.register(JSObject)
collections.abc.MutableSequence.register(JSArray)


def __getattr__(name: str) -> Any:
    # Computed on first use: reading it starts the engine, after which
    # `configure()` can no longer set V8 flags.
    if name == "CACHED_DATA_VERSION_TAG":
        return _polyracer.cached_data_version_tag()
    raise AttributeError(f"module 'polyracer' has no attribute {name!r}")


class Context(_polyracer.Context):
    """A JavaScript context: its own V8 isolate and heap; calls run on the calling thread.

    ``timeout`` (seconds) applies to every call unless a call gives its own;
    ``memory_limit`` is the heap limit in bytes; ``snapshot`` starts the
    context from a :class:`Snapshot`. Use it as a context manager or call
    :meth:`dispose`.
    """

    def expose(self, name: str, function: Callable[..., Any]) -> None:
        """Makes ``function`` callable from JS as ``name`` (dotted paths create objects).

        Plain callables run on the thread that is waiting on the context, with
        the GIL. ``async def`` functions give JS a promise.
        """
        if inspect.iscoroutinefunction(function):
            from ._aio import async_host_function

            self._expose(name, async_host_function(function), is_async=True)
        else:
            self._expose(name, function)

    async def eval_async(
        self, code: str, *, filename: str | None = None, timeout: float | None = None
    ) -> Any:
        """Evaluates without blocking the event loop, awaiting a promise result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, lambda: self.eval(code, filename=filename, timeout=timeout, await_promise=True)
        )

    async def call_async(self, target: str | JSFunction, *args: Any, timeout: float | None = None) -> Any:
        """Calls without blocking the event loop, awaiting a promise result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, lambda: self.call(target, *args, timeout=timeout, await_promise=True)
        )

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()
