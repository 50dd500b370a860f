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


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Context(_polyracer.Context):
    """A JavaScript context: its own V8 isolate and heap; calls run on the calling thread.

    ``timeout`` (seconds) applies to every call unless a call gives its own;
    ``memory_limit`` is the heap limit in bytes; ``snapshot`` starts the
    context from a :class:`Snapshot`. Use it as a context manager or call
    :meth:`dispose`.
    """

    def expose(self, name: str, function: Callable[..., Any]) -> None:
        """Makes ``function`` callable from JS as ``name`` (dotted paths create objects).

        Plain callables run on the thread that runs the JS calling them (the
        caller, or the asyncio loop running the context's timers), with the
        GIL. ``async def`` functions give JS a promise; they run on the
        asyncio loop the context is used from (the running loop when exposed,
        or the last one that awaited on it), else on a private loop thread.
        """
        if inspect.iscoroutinefunction(function):
            from ._aio import async_host_function, bind_loop

            loop = _running_loop()
            if loop is not None:
                bind_loop(self, loop)
            self._expose(name, async_host_function(self, function), is_async=True)
        else:
            self._expose(name, function)

    async def eval_async(
        self, code: str, *, filename: str | None = None, timeout: float | None = None
    ) -> Any:
        """Evaluates on this thread and awaits a promise result without blocking the loop.

        No thread waits meanwhile and the context is free for other calls;
        timers and async host functions run on this loop. Cancelling the
        awaiting task withdraws the await; the context stays usable.
        """
        from ._aio import bind_loop, settle

        bind_loop(self, asyncio.get_running_loop())
        return await settle(lambda done: self._eval_future(code, done, filename=filename, timeout=timeout))

    async def call_async(self, target: str | JSFunction, *args: Any, timeout: float | None = None) -> Any:
        """Calls on this thread and awaits a promise result without blocking the loop."""
        from ._aio import bind_loop, settle

        bind_loop(self, asyncio.get_running_loop())
        return await settle(lambda done: self._call_future(target, args, done, timeout=timeout))

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()
