"""The PyMiniRacer compatibility layer behaves like PyMiniRacer's documented API."""

from __future__ import annotations

import asyncio

import polyracer
import pytest
from polyracer.compat.py_mini_racer import (
    JSArray,
    JSArrayIndexError,
    JSEvalException,
    JSFunction,
    JSKeyError,
    JSMappedObject,
    JSOOMException,
    JSParseException,
    JSPromise,
    JSPromiseError,
    JSTimeoutException,
    JSUndefined,
    JSValueError,
    MiniRacer,
    StrictMiniRacer,
    mini_racer,
)


def test_eval_execute_call() -> None:
    ctx = MiniRacer()
    assert ctx.eval("1 + 1") == 2
    assert ctx.eval("var x = {a: 1}; x.a") == 1
    assert ctx.eval("undefined") is JSUndefined
    assert ctx.execute("({k: [1, 'two']})") == {"k": [1, "two"]}
    assert ctx.call("(a, b) => ({sum: a + b})", 2, 3) == {"sum": 5}
    assert polyracer.V8_VERSION.startswith(ctx.v8_version + "-") or ctx.v8_version == polyracer.V8_VERSION
    assert ctx.heap_stats()["used_heap_size"] > 0
    ctx.low_memory_notification()
    ctx.close()


def test_exceptions_keep_pyminiracer_names() -> None:
    with mini_racer() as ctx:
        with pytest.raises(JSParseException):
            ctx.eval("let = ;")
        with pytest.raises(JSEvalException) as info:
            ctx.eval("throw new Error('boom')")
        assert "boom" in str(info.value)
        with pytest.raises(JSTimeoutException):
            ctx.eval("while (true) {}", timeout=50)
        with pytest.raises(JSTimeoutException):
            ctx.eval("while (true) {}", timeout_sec=0.05)
        # Also polyracer's own classes.
        with pytest.raises(polyracer.TimeoutError):
            ctx.eval("for (;;) {}", timeout=20)


def test_memory_limits() -> None:
    ctx = MiniRacer()
    ctx.set_hard_memory_limit(32 << 20)
    ctx.set_soft_memory_limit(1 << 20)
    with pytest.raises(JSOOMException):
        ctx.eval("const a = []; while (true) a.push(new Array(1e5).fill(1))")
    assert ctx.was_hard_memory_limit_reached()
    ctx.eval("globalThis.keep = new Array(5e5).fill(1)")
    assert ctx.was_soft_memory_limit_reached()
    with pytest.raises(JSValueError):
        ctx.set_hard_memory_limit(64 << 20)
    ctx.close()


def test_functions_promises_and_wrapped_python() -> None:
    with mini_racer() as ctx:
        f = ctx.eval("(a) => a * 2")
        assert isinstance(f, JSFunction) and f(21) == 42
        p = ctx.eval("new Promise((r) => setTimeout(() => r('done'), 10))")
        assert isinstance(p, JSPromise) and p.get(timeout=1) == "done"
        with pytest.raises(JSPromiseError):
            ctx.eval("Promise.reject(new Error('no'))").get()

        async def fetch(x: int) -> int:
            await asyncio.sleep(0.01)
            return x + 1

        async def use() -> int:
            async with ctx.wrap_py_function(fetch) as js_fetch:
                return await ctx.eval("(f) => f(41)")(js_fetch)

        assert asyncio.run(use()) == 42

        # As in PyMiniRacer 0.14, eval_cancelable does not await the result.
        async def cancelable() -> int:
            return await (await ctx.eval_cancelable("Promise.resolve(3)"))

        assert asyncio.run(cancelable()) == 3
        assert "snapshot" in ctx.heap_snapshot()


def test_class_hierarchy_matches_pyminiracer() -> None:
    assert issubclass(JSTimeoutException, TimeoutError)
    assert issubclass(JSKeyError, KeyError) and issubclass(JSKeyError, JSEvalException)
    assert issubclass(JSArrayIndexError, IndexError)
    assert issubclass(JSValueError, ValueError) and issubclass(JSValueError, JSEvalException)
    assert not issubclass(JSPromiseError, JSEvalException)


def test_strict_is_miniracer_and_objects_are_live() -> None:
    # PyMiniRacer 0.14 made StrictMiniRacer an alias of MiniRacer.
    assert StrictMiniRacer is MiniRacer
    with MiniRacer() as ctx:
        obj = ctx.eval("globalThis.o = {a: [1, 2]}; o")
        assert isinstance(obj, JSMappedObject) and list(obj) == ["a"]
        assert list(obj["a"]) == [1, 2]
        obj["b"] = 3
        assert ctx.eval("o.b") == 3
        arr = obj["a"]
        assert isinstance(arr, JSArray)
        arr.append(obj)
        assert ctx.eval("o.a[2] === o")
        view = ctx.eval("globalThis.u = new Uint8Array([1, 2]); u")
        assert isinstance(view, memoryview)
        view[0] = 9
        assert ctx.eval("u[0]") == 9
