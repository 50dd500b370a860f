"""asyncio integration: awaiting JS promises and running ``async def`` host functions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

_background_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def await_promise(promise: Any) -> Awaitable[Any]:
    """Waits for a JSPromise in the default executor, so the event loop keeps running."""
    loop = asyncio.get_running_loop()
    return loop.run_in_executor(None, promise.result)


def _loop_for_host_functions() -> asyncio.AbstractEventLoop:
    # `async def` host functions need an event loop; JS calls them from
    # whichever thread waits on the context, so they run on a private loop
    # in a daemon thread.
    global _background_loop
    with _lock:
        if _background_loop is None or _background_loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="polyracer-asyncio", daemon=True).start()
            _background_loop = loop
        return _background_loop


def async_host_function(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., None]:
    """Adapts an ``async def`` function to the native completer protocol."""

    def start(completer: Any, *args: Any) -> None:
        future = asyncio.run_coroutine_threadsafe(fn(*args), _loop_for_host_functions())

        def done(f: Any) -> None:
            error = f.exception()
            if error is None:
                completer.resolve(f.result())
            else:
                completer.reject(error)

        future.add_done_callback(done)

    return start
