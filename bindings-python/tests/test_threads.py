"""The execution model from Python: JS runs on the calling thread (with the
GIL released), so callbacks run there, a timeout covers waiting for another
thread's call, and small thread stacks give RangeErrors instead of crashes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import polyracer
import pytest

DEPTH = "(() => { let d = 0; function f() { d++; f() } try { f() } catch (e) { return [d, e.name] } })()"


def on_thread(stack_size: int, fn: Callable[[], Any]) -> Any:
    """Runs `fn` on a new thread with the given stack size; returns or re-raises."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # re-raised on the calling thread
            out["error"] = e

    old = threading.stack_size(stack_size)
    try:
        t = threading.Thread(target=run)
        t.start()
    finally:
        threading.stack_size(old)
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_callbacks_run_on_the_thread_that_made_the_call() -> None:
    with polyracer.Context() as ctx:
        seen: list[int] = []
        ctx.expose("where", lambda: seen.append(threading.get_ident()))
        ctx.eval("where()")
        other = on_thread(1 << 20, lambda: (ctx.eval("where()"), threading.get_ident())[1])
        assert seen == [threading.get_ident(), other]


@pytest.mark.parametrize("kib", [256, 512, 1024])
def test_small_thread_stacks_give_range_errors_not_crashes(kib: int) -> None:
    with polyracer.Context() as ctx:
        main_depth, name = ctx.eval(DEPTH)
        depth, name = on_thread(kib << 10, lambda: ctx.eval(DEPTH))
        assert name == "RangeError"
        assert 100 < depth < main_depth
        # Nesting JS → Python → JS on the small thread ends in an error too.
        ctx.expose("down", lambda n: ctx.call("step", n + 1))
        ctx.eval("globalThis.step = (n) => down(n)")

        def nest() -> None:
            ctx.call("step", 0)

        with pytest.raises((polyracer.JSError, RecursionError)):
            on_thread(kib << 10, nest)
        assert on_thread(kib << 10, lambda: ctx.eval("2 + 2")) == 4


def test_a_timeout_covers_waiting_for_another_threads_call() -> None:
    with polyracer.Context() as ctx:
        started = threading.Event()
        ctx.expose("started", started.set)

        def hold() -> None:
            with pytest.raises(polyracer.TimeoutError):
                ctx.eval("started(); for (;;) {}", timeout=3)

        runner = threading.Thread(target=hold)
        runner.start()
        assert started.wait(10)
        with pytest.raises(polyracer.TimeoutError):
            ctx.eval("1", timeout=0.1)
        runner.join()
        assert ctx.eval("1") == 1
