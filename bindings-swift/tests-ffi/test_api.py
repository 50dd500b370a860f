"""Every exported function of the uniffi layer, through uniffi's generated
Python bindings for the same library the Swift package links."""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import os
import threading
import time
from pathlib import Path

import polyracer_swift as pr
import pytest
from jsv import UNDEFINED, js, map_value, py
from polyracer_swift import (
    CompileOptions,
    Context,
    ContextOptions,
    EvalOptions,
    HandleKind,
    HostCause,
    HostFunctionError,
    JsValue,
    ModuleOptions,
    PolyRacerError,
    Snapshot,
)


@pytest.fixture
def ctx():
    c = Context()
    yield c
    c.dispose()


class Fn:
    """A host function from a Python callable taking (context, args)."""

    def __init__(self, f):
        self.f = f

    def call(self, context, args):
        return self.f(context, args)


class AsyncFn:
    def __init__(self, f):
        self.f = f

    def call(self, context, args, completer):
        self.f(context, args, completer)


class Resolver:
    def __init__(self, modules, log=None):
        self.modules = modules
        self.log = log if log is not None else []

    def resolve(self, specifier, referrer):
        self.log.append((specifier, referrer))
        name = pr.resolve_specifier(specifier, referrer)
        if name not in self.modules:
            raise HostFunctionError.Thrown("Error", f"no module {name}", None)
        return self.modules[name]


class Cause(HostCause):
    def __init__(self, text):
        self.text = text

    def describe(self):
        return self.text


# ------------------------------------------------------------ values


def test_primitive_values(ctx):
    assert ctx.eval("1 + 1") == JsValue.INTEGER(2)
    assert ctx.eval("1 + 1").is_integer()
    assert ctx.eval("1.5").is_number() and ctx.eval("1.5")[0] == 1.5
    assert ctx.eval("2 ** 53").is_number()
    assert math.isnan(ctx.eval("NaN")[0])
    assert ctx.eval("'héllo ✓'") == JsValue.STRING("héllo ✓")
    assert ctx.eval("true") == JsValue.BOOL(True)
    assert ctx.eval("null").is_null()
    assert ctx.eval("undefined").is_undefined()
    assert ctx.eval("2n ** 100n") == JsValue.BIGINT(str(2**100))
    assert ctx.eval("-(2n ** 70n)") == JsValue.BIGINT(str(-(2**70)))
    assert ctx.eval("new Date(86400000)") == JsValue.DATE(86400000.0)
    assert ctx.eval("new Uint8Array([1, 2, 255])") == JsValue.BYTES(b"\x01\x02\xff")
    # An invalid Date has no host value: a Conversion error, as in every binding.
    with pytest.raises(PolyRacerError.Conversion, match="invalid Date"):
        ctx.eval("new Date(NaN)")


def test_containers_keep_order(ctx):
    v = ctx.eval("({b: 1, a: [1, 'x', null], c: {d: new Map([[1, 'one'], ['k', [true]]])}, s: new Set([3, 1])})")
    assert v.is_object()
    assert [p.key for p in v[0]] == ["b", "a", "c", "s"]
    assert py(v) == {"b": 1, "a": [1, "x", None], "c": {"d": [(1, "one"), ("k", [True])]}, "s": [3, 1]}


def test_error_object_as_value(ctx):
    v = ctx.eval("new RangeError('far')")
    assert v.is_error()
    assert (v.name, v.message) == ("RangeError", "far")
    assert "RangeError: far" in v.stack


def test_handles_come_back_for_functions_promises_symbols(ctx):
    assert ctx.eval("(a) => a").is_function()
    assert ctx.eval("new Promise(() => {})").is_promise()
    sym = ctx.eval("Symbol('tag')")
    assert sym.is_symbol()
    assert sym[0].kind() == HandleKind.SYMBOL
    assert sym[0].to_js_string() == "tag"
    assert ctx.eval("new Proxy({}, {})").is_object_handle()


@pytest.mark.parametrize(
    "value,js_type",
    [
        (JsValue.UNDEFINED(), "undefined"),
        (JsValue.NULL(), "object"),
        (JsValue.BOOL(False), "boolean"),
        (JsValue.INTEGER(-7), "number"),
        (JsValue.INTEGER(2**60), "bigint"),
        (JsValue.NUMBER(0.25), "number"),
        (JsValue.BIGINT("123456789012345678901234567890"), "bigint"),
        (JsValue.STRING("s"), "string"),
        (JsValue.DATE(1e12), "Date"),
        (JsValue.BYTES(b"\x00\x01"), "Uint8Array"),
        (js([1, "two", [3]]), "Array"),
        (js({"z": 1, "a": {"b": None}}), "Object"),
        (map_value([(1, "one"), ("k", True)]), "Map"),
        (JsValue.SET([JsValue.INTEGER(1), JsValue.STRING("1")]), "Set"),
        (JsValue.ERROR("TypeError", "bad", ""), "TypeError"),
    ],
)
def test_values_round_trip_host_to_js_to_host(ctx, value, js_type):
    kind = ctx.call("(x) => x === null ? 'object' : typeof x === 'object' ? x.constructor.name : typeof x", [value])
    assert kind == JsValue.STRING(js_type)
    back = ctx.call("(x) => x", [value])
    if value == JsValue.INTEGER(2**60):
        assert back == JsValue.BIGINT(str(2**60))
    else:
        assert back == value


def test_object_key_order_reaches_js(ctx):
    assert ctx.call("(o) => Object.keys(o).join()", [js({"z": 1, "a": 2, "m": 3})]) == JsValue.STRING("z,a,m")


def test_bad_bigint_digits_are_a_conversion_error(ctx):
    with pytest.raises(PolyRacerError.Conversion):
        ctx.call("(x) => x", [JsValue.BIGINT("12abc")])


def test_cyclic_value_is_a_conversion_error_naming_the_path(ctx):
    with pytest.raises(PolyRacerError.Conversion) as info:
        ctx.eval("const o = {a: {}}; o.a.b = o; o")
    assert "cyclic" in str(info.value)
    assert "$.a.b" in str(info.value)


def test_equality_compares_handles_by_handle_entry(ctx):
    ctx.eval("globalThis.f = () => 1")
    f = ctx.eval("f")
    assert f == JsValue.FUNCTION(f[0])
    # Each result is its own handle-table entry; JS identity needs JS.
    again = ctx.eval("f")
    assert f != again
    assert ctx.call("Object.is", [f, again]) == JsValue.BOOL(True)
    assert JsValue.INTEGER(1) == JsValue.NUMBER(1.0)
    assert JsValue.STRING("a") != JsValue.BYTES(b"a")


# ------------------------------------------------------------ eval, call, globals


def test_eval_filename_shows_in_stack(ctx):
    with pytest.raises(PolyRacerError.Js) as info:
        ctx.eval("\n\nthrow new Error('where')", EvalOptions(filename="app.js"))
    ex = info.value.exception
    assert "app.js:3" in ex.stack
    assert (ex.filename, ex.line) == ("app.js", 3)


def test_exceptions_carry_their_stack_frames_as_data(ctx):
    src = "function inner() { throw new TypeError('bad') }\nfunction outer() { inner() }\nouter()"
    with pytest.raises(PolyRacerError.Js) as info:
        ctx.eval(src, EvalOptions(filename="app.js"))
    frames = info.value.exception.frames
    assert [f.function for f in frames] == ["inner", "outer", None]
    assert frames[0] == pr.JsStackFrame(function="inner", file="app.js", line=1, column=26)


def test_call_global_path_expression_and_handle(ctx):
    assert ctx.call("Math.max", [js(3), js(9), js(4)]) == JsValue.INTEGER(9)
    assert ctx.call("(a, b) => a + b", [js("x"), js(1)]) == JsValue.STRING("x1")
    f = ctx.eval("(n) => n * 2")[0]
    assert ctx.call_function(f, [js(21)]) == JsValue.INTEGER(42)
    assert f.call([js(5)]) == JsValue.INTEGER(10)


def test_call_awaits_promise_results(ctx):
    assert ctx.call("async (x) => x + 1", [js(1)], EvalOptions(await_promise=True)) == JsValue.INTEGER(2)


def test_set_global(ctx):
    ctx.set_global("config", js({"debug": True, "level": 3}))
    assert ctx.eval("config.level + (config.debug ? 1 : 0)") == JsValue.INTEGER(4)


def test_eval_as_handle(ctx):
    v = ctx.eval("({a: 1})", EvalOptions(as_handle=True))
    assert v.is_object_handle()
    assert ctx.eval("[1, 2]", EvalOptions(as_handle=True)).is_array_handle()


def test_calls_from_many_threads_are_serialised(ctx):
    ctx.eval("globalThis.n = 0")
    errors = []

    def work():
        try:
            for _ in range(200):
                ctx.eval("n++")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ctx.eval("n") == JsValue.INTEGER(800)


# ------------------------------------------------------------ host functions


def test_expose_receives_args_and_returns(ctx):
    seen = []

    def add(_context, args):
        seen.append([py(a) for a in args])
        return js(sum(py(a) for a in args))

    ctx.expose("add", Fn(add))
    assert ctx.eval("add(1, 2, 3)") == JsValue.INTEGER(6)
    assert seen == [[1, 2, 3]]


def test_expose_dotted_path_and_bad_name(ctx):
    ctx.expose("app.util.twice", Fn(lambda _c, args: js(py(args[0]) * 2)))
    assert ctx.eval("app.util.twice(4)") == JsValue.INTEGER(8)
    with pytest.raises(PolyRacerError.InvalidArgument):
        ctx.expose("not a name", Fn(lambda _c, _a: js(None)))


def test_host_functions_run_on_the_calling_thread(ctx):
    threads = []
    ctx.expose("where", Fn(lambda _c, _a: threads.append(threading.get_ident()) or js(None)))
    ctx.eval("where()")
    result = []
    t = threading.Thread(target=lambda: result.append(ctx.eval("where(); 1")))
    t.start()
    t.join()
    assert threads == [threading.get_ident(), t.ident]


def test_nested_js_host_js_to_depth(ctx):
    def down(context, args):
        n = py(args[0])
        if n == 0:
            return js("bottom")
        return context.eval(f"down({n - 1}) + '<{n}'")

    ctx.expose("down", Fn(down))
    assert ctx.eval("down(20)") == JsValue.STRING("bottom" + "".join(f"<{i}" for i in range(1, 21)))


def test_host_error_is_catchable_in_js_with_its_name(ctx):
    def bad(_c, _a):
        raise HostFunctionError.Thrown("TypeError", "wrong type", None)

    ctx.expose("bad", Fn(bad))
    got = ctx.eval("try { bad() } catch (e) { [e instanceof TypeError, e.message] }")
    assert py(got) == [True, "wrong type"]


def test_uncaught_host_error_comes_back_with_its_cause(ctx):
    cause = Cause("the original")

    def bad(_c, _a):
        raise HostFunctionError.Thrown("RangeError", "out", cause)

    ctx.expose("bad", Fn(bad))
    with pytest.raises(PolyRacerError.Js) as info:
        ctx.eval("function run() { return bad() }\nrun()")
    ex = info.value.exception
    assert (ex.name, ex.message) == ("RangeError", "out")
    assert ex.cause is cause
    assert ex.cause.describe() == "the original"


def test_unexpected_python_exception_still_reaches_js(ctx):
    def boom(_c, _a):
        raise ValueError("kaput")

    ctx.expose("boom", Fn(boom))
    msg = ctx.eval("try { boom() } catch (e) { e.message }")
    assert "kaput" in py(msg)


def test_error_from_nested_call_propagates_through_host(ctx):
    def relay(context, _a):
        try:
            return context.eval("throw new SyntaxError('inner')")
        except PolyRacerError.Js as e:
            raise HostFunctionError.Thrown(e.exception.name, e.exception.message, None) from e

    ctx.expose("relay", Fn(relay))
    with pytest.raises(PolyRacerError.Js) as info:
        ctx.eval("relay()")
    assert (info.value.exception.name, info.value.exception.message) == ("SyntaxError", "inner")


def test_expose_async_resolves_and_rejects_from_other_threads(ctx):
    def later(_c, args, completer):
        n = py(args[0])

        def settle():
            time.sleep(0.02)
            if n < 0:
                completer.reject(HostFunctionError.Thrown("RangeError", "negative", None))
            else:
                completer.resolve(js(n * 10))

        threading.Thread(target=settle).start()

    ctx.expose_async("later", AsyncFn(later))
    assert ctx.eval("later(4)", EvalOptions(await_promise=True)) == JsValue.INTEGER(40)
    got = ctx.eval("later(-1).catch((e) => e.name + ':' + e.message)", EvalOptions(await_promise=True))
    assert got == JsValue.STRING("RangeError:negative")


def test_async_host_function_dropping_completer_rejects(ctx):
    ctx.expose_async("forget", AsyncFn(lambda _c, _a, _completer: None))
    with pytest.raises(PolyRacerError.Js) as info:
        ctx.eval("forget()", EvalOptions(await_promise=True))
    assert "without settling" in info.value.exception.message


# ------------------------------------------------------------ errors and limits


def test_syntax_error_is_parse_error_with_position(ctx):
    with pytest.raises(PolyRacerError.Parse) as info:
        ctx.eval("let x = ;", EvalOptions(filename="bad.js"))
    ex = info.value.exception
    assert ex.name == "SyntaxError"
    assert (ex.filename, ex.line, ex.column) == ("bad.js", 1, 9)


def test_js_error_name_message_stack(ctx):
    with pytest.raises(PolyRacerError.Js) as info:
        ctx.eval("function f() { null.x }\nf()", EvalOptions(filename="t.js"))
    ex = info.value.exception
    assert ex.name == "TypeError"
    assert "reading 'x'" in ex.message
    assert "at f (t.js:1:" in ex.stack
    assert ex.value.is_error()


def test_non_error_throw(ctx):
    with pytest.raises(PolyRacerError.Js) as info:
        ctx.eval("throw {code: 42}")
    ex = info.value.exception
    assert ex.name == ""
    assert py(ex.value) == {"code": 42}
    with pytest.raises(PolyRacerError.Js) as info:
        ctx.eval("throw 'plain'")
    assert info.value.exception.message == "plain"


def test_infinite_loop_times_out_and_context_survives():
    c = Context(ContextOptions(timeout=0.2))
    try:
        start = time.monotonic()
        with pytest.raises(PolyRacerError.Timeout):
            c.eval("while (true) {}")
        assert time.monotonic() - start < 3
        assert c.eval("'alive'") == JsValue.STRING("alive")
        with pytest.raises(PolyRacerError.Timeout):
            c.eval("for (;;) {}", EvalOptions(timeout=0.05))
    finally:
        c.dispose()


def test_per_call_timeout(ctx):
    with pytest.raises(PolyRacerError.Timeout):
        ctx.call("() => { while (true) {} }", [], EvalOptions(timeout=0.1))


def test_negative_timeout_is_invalid_argument(ctx):
    with pytest.raises(PolyRacerError.InvalidArgument):
        ctx.eval("1", EvalOptions(timeout=-1.0))
    with pytest.raises(PolyRacerError.InvalidArgument):
        Context(ContextOptions(timeout=math.nan))


def test_terminate_from_another_thread(ctx):
    # terminate() stops only the JS running at that moment (it is not
    # remembered for the next call), so one call made before the eval starts
    # would be lost on a loaded machine: keep calling it until the eval has
    # returned. The eval's own 30 s bound turns a regression into a Timeout
    # failure instead of a hang.
    done = threading.Event()

    def keep_terminating():
        while not done.wait(0.01):
            ctx.terminate()

    t = threading.Thread(target=keep_terminating)
    t.start()
    try:
        with pytest.raises(PolyRacerError.Terminated):
            ctx.eval("while (true) {}", EvalOptions(timeout=30.0))
    finally:
        done.set()
        t.join()
    assert ctx.eval("1") == JsValue.INTEGER(1)


def test_memory_bomb_is_out_of_memory_and_process_survives():
    c = Context(ContextOptions(memory_limit=32 * 1024 * 1024))
    try:
        with pytest.raises(PolyRacerError.OutOfMemory):
            c.eval("const a = []; while (true) a.push(new Array(1e5).fill(0))")
        assert c.eval("[1, 2].length") == JsValue.INTEGER(2)
    finally:
        c.dispose()


def test_use_after_dispose():
    c = Context()
    h = c.eval("({a: 1})", EvalOptions(as_handle=True))[0]
    s = c.compile("1")
    c.dispose()
    c.dispose()  # idempotent
    assert c.disposed()
    with pytest.raises(PolyRacerError.Disposed):
        c.eval("1")
    with pytest.raises(PolyRacerError.Disposed):
        h.get(js("a"))
    with pytest.raises(PolyRacerError.Disposed):
        s.run()


def test_handle_from_another_context_is_refused(ctx):
    other = Context()
    try:
        f = other.eval("() => 1")[0]
        with pytest.raises(PolyRacerError.InvalidArgument):
            ctx.call_function(f, [])
    finally:
        other.dispose()


def test_configure_after_start_names_the_flags(ctx):
    with pytest.raises(PolyRacerError.InvalidArgument) as info:
        pr.configure(["--no-opt"])
    assert "--no-opt" in str(info.value)


# ------------------------------------------------------------ async


def test_eval_async_with_asyncio(ctx):
    async def main():
        timer = ctx.eval_async("new Promise((r) => setTimeout(() => r('tick'), 20))")
        other = asyncio.sleep(0.001, "other")
        return await asyncio.gather(timer, other)

    got, other = asyncio.run(main())
    assert got == JsValue.STRING("tick")
    assert other == "other"


def test_eval_async_runs_host_functions_and_raises_errors(ctx):
    ctx.expose("double", Fn(lambda _c, args: js(py(args[0]) * 2)))

    async def main():
        ok = await ctx.eval_async("(async () => double(await Promise.resolve(21)))()")
        with pytest.raises(PolyRacerError.Js) as info:
            await ctx.eval_async("Promise.reject(new TypeError('async no'))")
        return ok, info.value.exception

    ok, ex = asyncio.run(main())
    assert ok == JsValue.INTEGER(42)
    assert (ex.name, ex.message) == ("TypeError", "async no")


def test_call_async_and_await_async(ctx):
    async def main():
        a = await ctx.call_async("async (x) => x + '!'", [js("hey")])
        p = ctx.eval("new Promise((r) => setTimeout(() => r(5), 10))")[0]
        b = await p.await_async()
        return a, b

    assert asyncio.run(main()) == (JsValue.STRING("hey!"), JsValue.INTEGER(5))


def test_async_host_function_awaits_io_then_calls_into_its_context_twice(ctx):
    ctx.eval("globalThis.hits = 0")

    def fetch_later(context, args, completer):
        x = py(args[0])

        def io():
            time.sleep(0.02)  # host I/O; the sandbox promise is pending
            a = py(context.eval("++hits"))
            b = py(context.eval("++hits"))
            completer.resolve(js(x * 10 + a + b))

        threading.Thread(target=io).start()

    ctx.expose_async("fetchLater", AsyncFn(fetch_later))

    async def main():
        return await ctx.eval_async("(async () => (await fetchLater(4)) + hits)()")

    assert asyncio.run(main()) == JsValue.INTEGER(40 + 1 + 2 + 2)


def test_a_hundred_concurrent_awaits_without_threads(ctx):
    async def main():
        before = len(os.listdir("/proc/self/task"))
        tasks = [
            asyncio.ensure_future(ctx.eval_async(f"new Promise((r) => setTimeout(() => r({i}), {100 - i}))"))
            for i in range(100)
        ]
        await asyncio.sleep(0.01)
        assert len(os.listdir("/proc/self/task")) <= before + 1  # the driver, once
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [JsValue.INTEGER(i) for i in range(100)]


def test_a_timer_fires_while_the_host_sleeps(ctx):
    fired = threading.Event()
    ctx.expose("report", Fn(lambda _c, _a: fired.set() or js(None)))
    ctx.eval("setTimeout(() => report(), 20)")
    time.sleep(0.05)  # no call, no await: the driver thread runs it
    assert fired.wait(5)


def test_cancelling_an_await_leaves_the_context_usable(ctx):
    async def main():
        task = asyncio.ensure_future(ctx.eval_async("new Promise((r) => { globalThis.later = r })"))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        ctx.eval("later(1)")
        return await ctx.eval_async("Promise.resolve(7)")

    assert asyncio.run(main()) == JsValue.INTEGER(7)


def test_disposing_rejects_pending_awaits(ctx):
    async def main():
        task = asyncio.ensure_future(ctx.eval_async("new Promise((r) => setTimeout(r, 10000))"))
        await asyncio.sleep(0.02)
        ctx.dispose()
        with pytest.raises(PolyRacerError.Disposed):
            await task

    asyncio.run(main())


def test_eval_async_timeout(ctx):
    async def main():
        await ctx.eval_async("new Promise(() => { while (true) {} })", EvalOptions(timeout=0.1))

    with pytest.raises(PolyRacerError.Timeout):
        asyncio.run(main())


def test_promise_handle_state_and_blocking_await(ctx):
    p = ctx.eval("new Promise((r) => setTimeout(() => r('done'), 10))")[0]
    assert p.promise_state() == "pending"
    assert p.await_promise(2.0) == JsValue.STRING("done")
    assert p.promise_state() == "fulfilled"


def test_run_event_loop(ctx):
    ctx.eval("globalThis.fired = false; setTimeout(() => { fired = true }, 10)")
    ctx.run_event_loop(2.0)
    assert ctx.eval("fired") == JsValue.BOOL(True)


# ------------------------------------------------------------ handles


def test_object_handle_operations(ctx):
    o = ctx.eval("({a: 1, greet(n) { return 'hi ' + n + this.a }})", EvalOptions(as_handle=True))[0]
    assert o.kind() == HandleKind.OBJECT
    assert o.get(js("a")) == JsValue.INTEGER(1)
    o.set(js("b"), js([1, 2]))
    assert o.keys() == ["a", "greet", "b"]
    assert o.call_method("greet", [js("x")]) == JsValue.STRING("hi x1")
    assert o.delete(js("a"))
    assert o.keys() == ["greet", "b"]
    assert py(o.to_value())["b"] == [1, 2]
    assert o.same_handle(o)


def test_array_handle_and_constructor(ctx):
    arr = ctx.eval("[10, 20, 30]", EvalOptions(as_handle=True))[0]
    assert arr.kind() == HandleKind.ARRAY
    assert arr.length() == 3
    assert arr.get(js(1)) == JsValue.INTEGER(20)
    arr.set(js(3), js(40))
    assert arr.length() == 4
    cls = ctx.eval("(class Point { constructor(x) { this.x = x } })")[0]
    p = cls.construct([js(7)])
    assert p.is_object_handle()
    assert p[0].get(js("x")) == JsValue.INTEGER(7)


def test_handle_passed_back_into_js_is_the_same_object(ctx):
    o = ctx.eval("globalThis.keep = {}; keep", EvalOptions(as_handle=True))
    assert ctx.call("(x) => x === keep", [o]) == JsValue.BOOL(True)


def test_length_of_non_array_is_invalid_argument(ctx):
    o = ctx.eval("({})", EvalOptions(as_handle=True))[0]
    with pytest.raises(PolyRacerError.InvalidArgument):
        o.length()


# ------------------------------------------------------------ engine, heap


def test_engine_info():
    assert pr.v8_version().count(".") == 3
    assert isinstance(pr.cached_data_version_tag(), int)
    assert pr.resolve_specifier("./b.js", "lib/a.js") == "lib/b.js"


def test_heap_stats_and_gc():
    c = Context(ContextOptions(memory_limit=64 * 1024 * 1024))
    try:
        s = c.heap_stats()
        assert 0 < s.used_heap_size <= s.total_heap_size
        assert s.heap_size_limit <= 80 * 1024 * 1024
        c.eval("globalThis.big = new Array(1e6).fill(1)")
        grown = c.heap_stats().used_heap_size
        assert grown > s.used_heap_size + 4 * 1024 * 1024
        c.eval("big = null")
        c.low_memory_notification()
        assert c.heap_stats().used_heap_size < grown
    finally:
        c.dispose()


def test_write_heap_snapshot(ctx, tmp_path: Path):
    path = tmp_path / "h.heapsnapshot"
    ctx.write_heap_snapshot(str(path))
    assert "snapshot" in json.loads(path.read_text())


# ------------------------------------------------------------ scripts and code cache


def test_compile_run_many_times(ctx):
    ctx.eval("globalThis.count = 0")
    s = ctx.compile("++count", CompileOptions(filename="inc.js"))
    assert [s.run(), s.run()] == [JsValue.INTEGER(1), JsValue.INTEGER(2)]
    assert s.cached_data() is None
    s.dispose()
    with pytest.raises(PolyRacerError.Disposed):
        s.run()


def test_code_cache_produce_consume_and_reject():
    src = "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) } fib(15)"
    a = Context()
    b = Context()
    try:
        made = a.compile(src, CompileOptions(produce_cache=True))
        cache = made.cached_data()
        assert cache and len(cache) > 16
        used = b.compile(src, CompileOptions(cached_data=cache))
        assert not used.cache_rejected()
        assert used.run() == JsValue.INTEGER(610)
        broken = bytearray(cache)
        broken[len(broken) // 2] ^= 0xFF
        rejected = b.compile(src, CompileOptions(cached_data=bytes(broken)))
        assert rejected.cache_rejected()
        assert rejected.run() == JsValue.INTEGER(610)
        other = b.compile("fib(10) + 0 ", CompileOptions(cached_data=cache))
        assert other.cache_rejected()
    finally:
        a.dispose()
        b.dispose()


def test_compile_syntax_error(ctx):
    with pytest.raises(PolyRacerError.Parse):
        ctx.compile("}{")


# ------------------------------------------------------------ snapshots


def test_snapshot_create_dump_load_warmup():
    snap = Snapshot.create("globalThis.answer = 42; function greet(n) { return 'hi ' + n }")
    data = snap.dump()
    loaded = Snapshot.load(data)
    warm = loaded.warmup("greet('x')")
    for s in (snap, loaded, warm):
        c = Context(ContextOptions(snapshot=s))
        try:
            assert c.eval("greet(answer)") == JsValue.STRING("hi 42")
        finally:
            c.dispose()


def test_snapshot_source_is_stopped_at_its_timeout():
    start = time.monotonic()
    with pytest.raises(PolyRacerError.Timeout):
        Snapshot.create("while (true) {}", 0.2)
    assert time.monotonic() - start < 5


def test_bad_snapshots_are_refused():
    with pytest.raises(PolyRacerError.InvalidArgument):
        Snapshot.load(b"not a snapshot")
    data = bytearray(Snapshot.create("1").dump())
    data[-10] ^= 0xFF
    with pytest.raises(PolyRacerError.InvalidArgument):
        Snapshot.load(bytes(data))
    with pytest.raises(PolyRacerError.Js):
        Snapshot.create("throw new Error('no')")


# ------------------------------------------------------------ modules


def test_eval_module_with_resolver(ctx):
    log = []
    modules = {
        "lib/math.js": "export const twice = (x) => x * 2; export default 'm'",
        "lib/util.js": "import { twice } from './math.js'; import { one } from './one.js';"
        "export const four = twice(2 * one)",
        "lib/one.js": "export const one = 1",
    }
    m = ctx.eval_module(
        "import { four } from './lib/util.js'; import name from './lib/math.js';\n"
        "export const result = four + 1; export const who = name; export const url = import.meta.url",
        "main.js",
        Resolver(modules, log),
    )
    ns = py(m.namespace)
    assert (ns["result"], ns["who"], ns["url"]) == (5, "m", "main.js")
    assert m.handle.get(js("result")) == JsValue.INTEGER(5)
    assert ("./lib/util.js", "main.js") in log
    assert ("./one.js", "lib/util.js") in log


def test_module_top_level_await_and_dynamic_import(ctx):
    modules = {"dep.js": "export const v = 'dynamic'"}
    m = ctx.eval_module(
        "const d = await import('./dep.js'); export const got = d.v;"
        "export const later = await new Promise((r) => setTimeout(() => r('waited'), 5))",
        "root.js",
        Resolver(modules),
    )
    assert py(m.namespace) == {"got": "dynamic", "later": "waited"}


def test_module_resolver_errors_and_syntax_errors(ctx):
    with pytest.raises(PolyRacerError.Js) as info:
        ctx.eval_module("import './missing.js'", "a.js", Resolver({}))
    assert "no module missing.js" in info.value.exception.message
    with pytest.raises(PolyRacerError.Parse) as info:
        ctx.eval_module("import './broken.js'", "b.js", Resolver({"broken.js": "export const = 1"}))
    assert info.value.exception.name == "SyntaxError"


def test_module_resolver_raising_any_exception_is_a_js_error(ctx):
    class Broken:
        def resolve(self, specifier, referrer):
            raise KeyError(specifier)

    with pytest.raises(PolyRacerError.Js) as info:
        ctx.eval_module("import './x.js'", "m.js", Broken())
    assert "x.js" in info.value.exception.message


def test_module_code_cache(ctx):
    src = "export const x = [1, 2, 3].map((n) => n * 3)"
    first = ctx.eval_module(src, "c1.js", Resolver({}), ModuleOptions(produce_cache=True))
    assert first.cached_data
    other = Context()
    try:
        second = other.eval_module(src, "c1.js", Resolver({}), ModuleOptions(cached_data=first.cached_data))
        assert not second.cache_rejected
        assert py(second.namespace) == {"x": [3, 6, 9]}
    finally:
        other.dispose()


# ------------------------------------------------------------ misc


def test_date_round_trip_through_python_datetime(ctx):
    when = datetime.datetime(2024, 2, 29, 12, 0, tzinfo=datetime.timezone.utc)
    assert ctx.call("(d) => d.toISOString()", [js(when)]) == JsValue.STRING("2024-02-29T12:00:00.000Z")


def test_undefined_helper_round_trip(ctx):
    assert py(ctx.call("(x) => x", [js(UNDEFINED)])) is UNDEFINED
