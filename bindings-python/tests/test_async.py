"""The async design: awaits hold nothing, timers fire on the host's loop, no executor threads."""

from __future__ import annotations

import asyncio
import threading
import time

import polyracer
import pytest


def test_an_async_host_function_awaits_io_then_calls_into_its_context_twice(ctx: polyracer.Context) -> None:
    ctx.eval("globalThis.hits = 0")

    async def fetch_later(x: int) -> int:
        await asyncio.sleep(0.02)  # host I/O; the sandbox promise is pending
        a = ctx.eval("++hits")
        b = ctx.eval("++hits")
        return x * 10 + a + b

    async def main() -> object:
        ctx.expose("fetchLater", fetch_later)
        return await ctx.eval_async("(async () => (await fetchLater(4)) + hits)()")

    assert asyncio.run(main()) == 40 + 1 + 2 + 2


def test_a_hundred_concurrent_awaits_without_threads(ctx: polyracer.Context) -> None:
    async def main() -> list[object]:
        before = threading.active_count()
        tasks = [
            asyncio.ensure_future(ctx.eval_async(f"new Promise((r) => setTimeout(() => r({i}), {100 - i}))"))
            for i in range(100)
        ]
        await asyncio.sleep(0)
        # No executor thread per await (asyncio's default executor included).
        assert threading.active_count() == before
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == list(range(100))


def test_other_calls_run_while_a_promise_is_pending(ctx: polyracer.Context) -> None:
    async def main() -> object:
        waiting = asyncio.ensure_future(ctx.eval_async("new Promise((r) => { globalThis.release = r })"))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        # The pending await holds nothing: sync and async calls go through.
        assert ctx.eval("1 + 1") == 2
        assert await ctx.call_async("(x) => Promise.resolve(x * 3)", 5) == 15
        ctx.eval("release('done')")
        return await waiting

    assert asyncio.run(main()) == "done"


def test_a_timer_fires_while_the_host_sleeps_and_runs_on_its_loop(ctx: polyracer.Context) -> None:
    seen: list[tuple[str, int]] = []

    async def main() -> None:
        loop_thread = threading.get_ident()
        ctx.expose("report", lambda tag: seen.append((tag, threading.get_ident())))
        # Bind the context to this loop (any await on it does).
        assert await ctx.eval_async("setTimeout(() => report('tick'), 30); 'armed'") == "armed"
        await asyncio.sleep(0.3)  # the host is idle: no call, no await
        assert seen == [("tick", loop_thread)]

    asyncio.run(main())


def test_a_timer_fires_while_a_sync_host_sleeps(ctx: polyracer.Context) -> None:
    fired = threading.Event()
    ctx.expose("report", lambda: fired.set())
    ctx.eval("setTimeout(() => report(), 20)")
    time.sleep(0.05)
    assert fired.wait(5)


def test_cancelling_an_await_leaves_the_context_usable(ctx: polyracer.Context) -> None:
    async def main() -> object:
        task = asyncio.ensure_future(ctx.eval_async("new Promise((r) => { globalThis.later = r })"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        ctx.eval("later(1)")  # settling the abandoned promise is harmless
        with pytest.raises(polyracer.TimeoutError):
            await ctx.eval_async("new Promise((r) => setTimeout(r, 10000))", timeout=0.05)
        return await ctx.eval_async("Promise.resolve(7)")

    assert asyncio.run(main()) == 7
    assert ctx.eval("2 + 2") == 4


def test_disposing_rejects_pending_awaits(ctx: polyracer.Context) -> None:
    async def main() -> None:
        task = asyncio.ensure_future(ctx.eval_async("new Promise((r) => setTimeout(r, 10000))"))
        await asyncio.sleep(0.01)
        ctx.dispose()
        with pytest.raises(polyracer.DisposedError):
            await task

    asyncio.run(main())


def test_awaiting_a_js_promise_and_js_errors(ctx: polyracer.Context) -> None:
    async def main() -> object:
        p = ctx.eval("new Promise((r) => setTimeout(() => r('p'), 5))")
        assert isinstance(p, polyracer.JSPromise)
        got = await p
        with pytest.raises(polyracer.JSError) as info:
            await ctx.eval_async("Promise.reject(new TypeError('no'))")
        assert info.value.name == "TypeError"
        return got

    assert asyncio.run(main()) == "p"


def test_a_blocking_await_lets_other_threads_call(ctx: polyracer.Context) -> None:
    result: list[object] = []
    t = threading.Thread(
        target=lambda: result.append(
            ctx.eval("new Promise((r) => { globalThis.go = r })", await_promise=True, timeout=10)
        )
    )
    t.start()
    deadline = time.monotonic() + 5
    while ctx.eval("typeof go") != "function":
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert ctx.eval("40 + 2") == 42
    ctx.eval("go('went')")
    t.join(5)
    assert result == ["went"]
