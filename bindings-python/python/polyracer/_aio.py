"""asyncio integration without executor threads.

A call runs on the calling thread; a pending promise result becomes an
asyncio future that the native layer settles (``done(ok, value)``) from
whichever thread runs the JS that settles it. The context's task scheduler
queues ``run_pending_tasks`` on the asyncio loop the context was last used
from, so timers and ``async def`` host functions run on that loop, also
while it is otherwise idle.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

_background_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _done_callback(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any]) -> Callable[[bool, Any], None]:
    def apply(ok: bool, value: Any) -> None:
        if fut.done():  # cancelled meanwhile
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def done(ok: bool, value: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            apply(ok, value)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(apply, ok, value)

    return done


async def settle(start: Callable[[Callable[[bool, Any], None]], Any]) -> Any:
    """Awaits a native pending call: ``start(done)`` returns its ``PendingCall``."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    pending = start(_done_callback(loop, fut))
    try:
        return await fut
    except asyncio.CancelledError:
        pending.cancel()
        raise


def await_promise(promise: Any) -> Awaitable[Any]:
    """``await promise``: settles on the running loop, no thread involved."""
    return settle(lambda done: promise._future(done))


def bind_loop(ctx: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Makes ``loop`` the context's host loop: due work runs there."""
    if ctx.__dict__.get("_loop") is loop:
        return
    ctx.__dict__["_loop"] = loop
    ref = weakref.ref(ctx)

    def run() -> None:
        c = ref()
        if c is not None and not c.disposed:
            # Errors in timer callbacks have no caller; they are dropped
            # inside the engine. A disposed or terminated context just stops.
            try:
                c.run_pending_tasks()
            except Exception:  # noqa: BLE001 - nothing to report them to
                pass

    def schedule() -> bool:
        if loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # closed meanwhile
            return False
        return True

    ctx._set_task_scheduler(schedule)


def host_loop(ctx: Any) -> asyncio.AbstractEventLoop:
    """The loop ``async def`` host functions run on: the context's own, while
    it runs, else a private loop in a daemon thread."""
    loop = ctx.__dict__.get("_loop")
    if loop is not None and loop.is_running():
        return loop
    global _background_loop
    with _lock:
        if _background_loop is None or _background_loop.is_closed():
            bg = asyncio.new_event_loop()
            threading.Thread(target=bg.run_forever, name="polyracer-asyncio", daemon=True).start()
            _background_loop = bg
        return _background_loop


def async_host_function(ctx: Any, fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., None]:
    """Adapts an ``async def`` function to the native completer protocol."""
    ref = weakref.ref(ctx)

    def start(completer: Any, *args: Any) -> None:
        c = ref()
        if c is None:
            completer.reject(RuntimeError("the context is gone"))
            return
        future = asyncio.run_coroutine_threadsafe(fn(*args), host_loop(c))

        def done(f: Any) -> None:
            if f.cancelled():
                completer.reject(asyncio.CancelledError("the host coroutine was cancelled"))
                return
            error = f.exception()
            if error is None:
                completer.resolve(f.result())
            else:
                completer.reject(error)

        future.add_done_callback(done)

    return start
