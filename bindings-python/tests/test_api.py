from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polyracer
import pytest

# A bound for evals that only terminate() or Ctrl-C should stop: a regression
# then fails as a TimeoutError instead of hanging the suite.
BOUND = 30.0


@contextlib.contextmanager
def terminating(ctx: polyracer.Context) -> Iterator[None]:
    """Calls ctx.terminate() every 10 ms from another thread until the block ends.

    terminate() stops only the JS running at that moment (it is not remembered
    for the next call), so one call made before the eval starts would be lost
    on a loaded machine; repeating it cannot miss.
    """
    done = threading.Event()

    def keep_terminating() -> None:
        while not done.wait(0.01):
            ctx.terminate()

    t = threading.Thread(target=keep_terminating)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()


def test_version_and_tag() -> None:
    assert polyracer.V8_VERSION.startswith("14.")
    assert isinstance(polyracer.CACHED_DATA_VERSION_TAG, int) and polyracer.CACHED_DATA_VERSION_TAG > 0


def test_configure_after_start_is_an_error() -> None:
    with polyracer.Context() as ctx:
        ctx.eval("1")
    with pytest.raises(polyracer.InvalidArgumentError, match="--expose-gc"):
        polyracer.configure("--expose-gc")


def test_values_js_to_python(ctx: polyracer.Context) -> None:
    assert ctx.eval("1 + 1") == 2 and isinstance(ctx.eval("1 + 1"), int)
    assert ctx.eval("0.5") == 0.5
    assert ctx.eval("2 ** 53") == 2**53 and isinstance(ctx.eval("2 ** 53"), float)
    assert ctx.eval("2n ** 100n") == 2**100
    assert ctx.eval("null") is None
    assert ctx.eval("undefined") is polyracer.undefined
    assert not polyracer.undefined
    assert ctx.eval("'héllo'") == "héllo"
    assert ctx.eval("new Date(86400000)") == datetime.datetime(1970, 1, 2, tzinfo=datetime.UTC)
    assert ctx.eval("new Uint8Array([1, 2])") == b"\x01\x02"
    assert ctx.eval("({b: 1, a: [true, null]})") == {"b": 1, "a": [True, None]}
    assert ctx.eval("new Map([[1, 'x']])") == {1: "x"}
    assert ctx.eval("new Set([1, 2])") == {1, 2}
    err = ctx.eval("new TypeError('t')")
    assert isinstance(err, polyracer.JSError) and err.name == "TypeError"


def test_values_python_to_js(ctx: polyracer.Context) -> None:
    typeof = ctx.eval("(x) => typeof x")
    assert typeof(1) == "number"
    assert typeof(2**60) == "bigint"
    assert typeof(polyracer.undefined) == "undefined"
    assert ctx.call("(x) => x === null", None) is True
    assert ctx.call("(b) => b instanceof Uint8Array && b.length", bytearray(b"abc")) == 3
    assert ctx.call("(b) => b.length", memoryview(b"abcd")) == 4
    assert ctx.call("(t) => Array.isArray(t) && t.length", (1, 2)) == 2
    assert ctx.call("(s) => s instanceof Set && s.size", frozenset({1, 2, 3})) == 3
    naive = datetime.datetime(2020, 1, 1)
    assert ctx.call("(d) => d.toISOString()", naive) == "2020-01-01T00:00:00.000Z"
    assert ctx.call("(x) => x", {"k": [1, 2.5, "s"]}) == {"k": [1, 2.5, "s"]}


def test_bad_values_are_conversion_errors(ctx: polyracer.Context) -> None:
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(polyracer.ConversionError, match="cyclic"):
        ctx.call("(x) => x", cyclic)
    with pytest.raises(polyracer.ConversionError, match="cannot convert a Python object to JavaScript"):
        ctx.call("(x) => x", object())
    with pytest.raises(TypeError, match="cannot convert"):  # ConversionError is a TypeError
        ctx.call("(x) => x", object())
    with pytest.raises(polyracer.ConversionError, match="cyclic"):
        ctx.eval("const o = {}; o.o = o; o")
    deep: object = None
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(polyracer.ConversionError, match="deeper"):
        ctx.call("(x) => 1", deep)


def test_errors(ctx: polyracer.Context) -> None:
    with pytest.raises(polyracer.ParseError) as parse:
        ctx.eval("let x = ;", filename="bad.js")
    assert parse.value.line == 1 and parse.value.filename == "bad.js"
    with pytest.raises(polyracer.JSError) as js:
        ctx.eval("function f() { throw new RangeError('r') }\nf()", filename="app.js")
    assert (js.value.name, js.value.message) == ("RangeError", "r")
    assert "app.js:1" in js.value.stack
    with pytest.raises(polyracer.JSError) as thrown:
        ctx.eval("throw {code: 7}")
    assert thrown.value.value == {"code": 7}
    assert issubclass(polyracer.TimeoutError, builtins.TimeoutError)
    assert issubclass(polyracer.OutOfMemoryError, MemoryError)
    assert issubclass(polyracer.ParseError, polyracer.Error)


def test_timeout_terminate_and_memory_limit() -> None:
    with polyracer.Context(timeout=0.1) as ctx:
        with pytest.raises(builtins.TimeoutError) as timed_out:
            ctx.eval("while (true) {}")
        assert type(timed_out.value) is polyracer.TimeoutError
        assert ctx.eval("'alive'") == "alive"
        with pytest.raises(polyracer.TimeoutError):
            ctx.eval("for (;;) {}", timeout=0.02)
    with polyracer.Context() as ctx:
        with terminating(ctx), pytest.raises(polyracer.TerminatedError):
            ctx.eval("while (true) {}", timeout=BOUND)
        assert ctx.eval("'alive'") == "alive"
    with polyracer.Context(memory_limit=32 << 20) as ctx:
        with pytest.raises(MemoryError) as oom:
            ctx.eval("const a = []; while (true) a.push(new Array(1e5).fill(1))")
        assert type(oom.value) is polyracer.OutOfMemoryError
        assert ctx.eval("1") == 1


def test_expose_and_exception_cause(ctx: polyracer.Context) -> None:
    ctx.expose("add", lambda a, b: a + b)
    ctx.expose("ns.upper", str.upper)
    assert ctx.eval("add(2, 3) + ns.upper('x')") == "5X"

    class Boom(Exception):
        pass

    def boom() -> None:
        raise Boom("py says no")

    ctx.expose("boom", boom)
    assert ctx.eval("try { boom() } catch (e) { e.name + ':' + e.message }") == "Boom:py says no"
    with pytest.raises(polyracer.JSError) as info:
        ctx.eval("boom()")
    assert isinstance(info.value.__cause__, Boom)

    # Nested Python -> JS -> Python -> JS.
    def down(n: int) -> int:
        return 0 if n == 0 else ctx.call("step", n - 1) + 1

    ctx.expose("down", down)
    ctx.eval("function step(n) { return down(n) }")
    assert ctx.call("step", 120) == 120


def test_callbacks_run_on_the_calling_thread(ctx: polyracer.Context) -> None:
    seen: list[int] = []
    ctx.expose("whoami", lambda: seen.append(threading.get_ident()))
    threads = [threading.Thread(target=ctx.eval, args=("whoami()",)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(t.ident for t in threads)


def test_gil_is_released_while_js_runs(ctx: polyracer.Context) -> None:
    ticks = 0
    stop = False

    def count() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    ctx.eval("const end = Date.now() + 200; while (Date.now() < end) {}")
    stop = True
    t.join()
    assert ticks > 20


def test_async(ctx: polyracer.Context) -> None:
    async def later(x: int) -> int:
        await asyncio.sleep(0.01)
        return x * 2

    ctx.expose("later", later)
    assert ctx.eval("later(21)", await_promise=True) == 42

    async def main() -> tuple[object, object, object]:
        a = await ctx.eval_async("new Promise((r) => setTimeout(() => r('a'), 10))")
        b = await ctx.call_async("(x) => Promise.resolve(x + 1)", 1)
        p = ctx.eval("new Promise((r) => setTimeout(() => r('p'), 5))")
        c = await p
        return a, b, c

    assert asyncio.run(main()) == ("a", 2, "p")
    promise = ctx.eval("Promise.reject(new Error('nope'))")
    with pytest.raises(polyracer.JSError, match="nope"):
        promise.result(timeout=1)


def test_handles(ctx: polyracer.Context) -> None:
    f = ctx.eval("(a, b) => a * b")
    assert isinstance(f, polyracer.JSFunction) and f(6, 7) == 42
    obj = ctx.eval("new Proxy({a: 1}, {})")
    assert isinstance(obj, polyracer.JSObject)
    obj["b"] = 2
    assert obj["a"] == 1 and "b" in obj and len(obj) == 2 and list(obj) == ["a", "b"]
    del obj["a"]
    assert {k: obj[k] for k in obj} == {"b": 2}
    with pytest.raises(KeyError, match="missing"):
        obj["missing"]
    sym = ctx.eval("Symbol('tag')")
    assert isinstance(sym, polyracer.JSSymbol) and sym.description == "tag"
    assert ctx.call("(o) => o.b", obj) == 2


def test_compile_and_code_cache(ctx: polyracer.Context) -> None:
    src = "globalThis.n = (globalThis.n || 0) + 1"
    script = ctx.compile(src, filename="count.js", produce_cache=True)
    assert script.run() == 1 and script.run() == 2
    cache = script.cached_data
    assert isinstance(cache, bytes) and cache
    with polyracer.Context() as other:
        again = other.compile(src, cached_data=cache)
        assert not again.cache_rejected and again.run() == 1
        bad = other.compile(src, cached_data=b"garbage", produce_cache=True)
        assert bad.cache_rejected and bad.cached_data
    script.dispose()
    with pytest.raises(polyracer.DisposedError):
        script.run()


def test_snapshot() -> None:
    snap = polyracer.Snapshot.create("var base = 40; function add(a, b) { return a + b }")
    data = snap.dump()
    loaded = polyracer.Snapshot.load(data)
    with polyracer.Context(snapshot=loaded) as ctx:
        assert ctx.call("add", 2, ctx.eval("base")) == 42
    warm = snap.warmup("add(1, 2)")
    with polyracer.Context(snapshot=warm) as ctx:
        assert ctx.eval("add(base, 1)") == 41
    with pytest.raises(polyracer.InvalidArgumentError, match="snapshot"):
        polyracer.Snapshot.load(data[:-10])


def test_modules(ctx: polyracer.Context) -> None:
    files = {"/app/lib.mjs": "export const twice = (x) => x * 2;"}

    def resolver(specifier: str, referrer: str) -> str:
        name = "/app/" + specifier.removeprefix("./")
        return files[name]

    ns = ctx.eval_module(
        "import {twice} from './lib.mjs'; export const v = twice(21); export const url = import.meta.url;",
        filename="/app/main.mjs",
        resolver=resolver,
    )
    assert isinstance(ns, polyracer.JSObject)
    assert ns["v"] == 42 and ns["url"] == "/app/main.mjs"
    with pytest.raises(polyracer.JSError, match="missing"):
        ctx.eval_module("import './missing.mjs'", filename="/app/x.mjs", resolver=resolver)


def test_heap_stats_snapshot_file(ctx: polyracer.Context, tmp_path: Path) -> None:
    stats = ctx.heap_stats()
    assert stats["used_heap_size"] > 0 and stats["heap_size_limit"] > 0
    ctx.low_memory_notification()
    path = tmp_path / "h.heapsnapshot"
    ctx.write_heap_snapshot(str(path))
    assert path.read_text().startswith('{"snapshot"')


def test_dispose_and_threads() -> None:
    ctx = polyracer.Context()
    ctx.eval("globalThis.count = 0")

    def work() -> None:
        for _ in range(100):
            ctx.eval("count++")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ctx.eval("count") == 800
    f = ctx.eval("() => 1")
    ctx.dispose()
    ctx.dispose()
    assert ctx.disposed
    with pytest.raises(polyracer.DisposedError):
        ctx.eval("1")
    with pytest.raises(polyracer.DisposedError):
        f()


def test_ctrl_c_interrupts_a_long_eval(ctx: polyracer.Context) -> None:
    # Python only installs its SIGINT handler when SIGINT is not ignored at
    # start-up; a background job without job control starts with it ignored,
    # and then Ctrl-C never reaches Python. Install the handler an interactive
    # session has, for this test only.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    # A real SIGINT to this process, as Ctrl-C sends, from another thread.
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            ctx.eval("while (true) {}", timeout=BOUND)
        assert time.monotonic() - started < 5
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert ctx.eval("'usable after Ctrl-C'") == "usable after Ctrl-C"


def test_as_handle_returns_live_objects_and_arrays(ctx: polyracer.Context) -> None:
    obj = ctx.eval("globalThis.o = {a: 1}; o", as_handle=True)
    assert isinstance(obj, polyracer.JSObject)
    obj["b"] = 2
    assert ctx.eval("o.b") == 2
    arr = ctx.eval("globalThis.xs = [1, 2, 3]; xs", as_handle=True)
    assert isinstance(arr, polyracer.JSArray) and len(arr) == 3 and arr[-1] == 3
    arr[0] = 10
    arr.insert(1, 5)
    del arr[-1]
    assert ctx.eval("xs") == [10, 5, 2]
    assert arr.to_py() == [10, 5, 2]
    with pytest.raises(IndexError, match="JSArray index out of range"):
        arr[10]
    made = ctx.call("() => [1]", as_handle=True)
    assert isinstance(made, polyracer.JSArray)


def test_js_errors_carry_their_stack_frames_as_data(ctx: polyracer.Context) -> None:
    src = "function inner() { throw new TypeError('bad') }\nfunction outer() { inner() }\nouter()"
    with pytest.raises(polyracer.JSError) as e:
        ctx.eval(src, filename="app.js")
    frames = e.value.frames
    assert [f.function for f in frames] == ["inner", "outer", None]
    assert frames[0] == polyracer.StackFrame("inner", "app.js", 1, 26)
    assert (frames[1].line, frames[2].line) == (2, 3)
    with pytest.raises(polyracer.ParseError) as p:
        ctx.eval("let x = ;", filename="bad.js")
    assert p.value.frames == [polyracer.StackFrame(None, "bad.js", 1, 9)]


def test_large_values_cross_whole_both_ways(ctx: polyracer.Context) -> None:
    records = [
        {
            "id": i,
            "name": f"item {i}" if i % 7 else f"caf\u00e9 \U0001f30d {i}",
            "tags": ["a", "b"],
            "score": i * 1.5,
        }
        for i in range(3000)
    ]
    value = {
        "records": records,
        "numbers": [i * 1.25 for i in range(5000)],
        "map": {1: [1, None]},
        "set": {"s"},
    }
    same = ctx.eval("(x) => x")
    assert same(value) == value
    # Built in JS and copied out: equal to JSON's round trip there.
    ctx.eval(
        "globalThis.made = Array.from({ length: 4000 }, (_, i) => ({ k: i, s: 'v' + i, n: [i, i / 2] }))"
    )
    import json

    assert ctx.eval("made") == json.loads(ctx.eval("JSON.stringify(made)"))
    # Keys are one str object per distinct key.
    made = ctx.eval("made")
    assert next(iter(made[0])) is next(iter(made[1]))
    # Bytes, once each way; a lone surrogate from JS becomes U+FFFD.
    data = bytes(range(256)) * 4096
    assert same(data) == data
    assert ctx.eval("['a\\uD800b']") == ["a\ufffdb"]


def test_a_python_error_while_building_is_raised_as_itself(ctx: polyracer.Context) -> None:
    # A Map key Python cannot hash stops the build with a ConversionError.
    with pytest.raises(polyracer.ConversionError, match="Map key"):
        ctx.eval("new Map([[[1, 2], 'list as key']])")
    assert ctx.eval("1 + 1") == 2


def test_getters_that_call_back_throw_or_loop_while_a_value_is_copied(ctx: polyracer.Context) -> None:
    ctx.expose("host", lambda x: x * 2)
    # A function beside the getter makes core walk the value (not V8's
    # serializer): the getter runs with the result half-built.
    v = ctx.eval("({ get g() { return host(21) }, f() {}, list: [{ get h() { return host(1) } }] })")
    assert v["g"] == 42 and v["list"] == [{"h": 2}]
    # A getter that throws raises its own exception, with its stack.
    with pytest.raises(polyracer.JSError, match="no") as err:
        ctx.eval("({ get g() { throw new Error('no') }, f() {} })")
    assert "at get g" in err.value.stack
    with pytest.raises(polyracer.TimeoutError):
        ctx.eval("({ get g() { for (;;) {} }, f() {} })", timeout=0.2)
    assert ctx.eval("1 + 1") == 2


def test_a_result_the_fast_path_gives_up_on_partway_comes_out_whole(ctx: polyracer.Context) -> None:
    # Plain data is decoded in one pass; an Error, an object seen twice or
    # a sparse array met partway makes the sink start over with the walk:
    # nothing built before may remain, and key strings are given anew.
    got = ctx.eval(
        "const s = { n: 1 }; "
        "[{ a: 'x'.repeat(20), k: 1 }, 'long string number 1', new Uint8Array([1, 2]), s, s]"
    )
    assert got == [{"a": "x" * 20, "k": 1}, "long string number 1", b"\x01\x02", {"n": 1}, {"n": 1}]
    a, b, e = ctx.eval("[{ a: 1, b: 'two' }, { b: 'four', a: 3 }, new RangeError('r')]")
    assert (a, b) == ({"a": 1, "b": "two"}, {"b": "four", "a": 3})
    assert list(b) == ["b", "a"]
    assert isinstance(e, polyracer.JSError) and e.name == "RangeError"
    sparse = ctx.eval("[['aaaaaaaaaaaaaaaaaaaa', 'b'], (() => { const a = [1]; a[5000] = 2; return a })()]")
    assert sparse[0] == ["aaaaaaaaaaaaaaaaaaaa", "b"]
    assert len(sparse[1]) == 5001 and (sparse[1][0], sparse[1][5000]) == (1, 2)
    keyed = ctx.eval("({ k1: 1, k2: [1, 2], k3: new Map([[1, 'x']]), e: new Error('z'), k4: { k2: 'a' } })")
    assert list(keyed) == ["k1", "k2", "k3", "e", "k4"]
    assert (keyed["k1"], keyed["k2"], keyed["k3"], keyed["k4"]) == (1, [1, 2], {1: "x"}, {"k2": "a"})


def test_large_bytes_cross_whole_both_ways(ctx: polyracer.Context) -> None:
    # From 32 MiB up, bytes are copied into memory first advised for huge
    # pages and prefaulted (and, going in, maybe a buffer V8 freed before):
    # every byte must still land where it was. The pattern's period, 251,
    # does not divide 4096, so a misplaced page would not match.
    n = (33 << 20) + 4099
    expect = (bytes(range(251)) * (n // 251 + 1))[:n]
    fill = "(n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = i % 251; return b }"
    out = ctx.call(fill, n)
    assert type(out) is bytes and out == expect
    check = "return x.length === n && x.every((v, i) => v === e[i])"
    same = ctx.eval(f"(x, n) => {{ const e = ({fill})(n); {check} }}")
    for _ in range(3):
        assert same(expect, n) is True
        assert same(bytearray(expect), n) is True


def test_shared_buffers_are_writable_views_of_the_sandbox_memory(ctx: polyracer.Context) -> None:
    ctx.eval("globalThis.buf = new Uint8Array(1 << 20).fill(7)")
    # The default is a copy.
    assert isinstance(ctx.eval("buf"), bytes)
    view = ctx.eval("buf", share_buffers=True)
    assert isinstance(view, memoryview) and not view.readonly
    assert (view.nbytes, view.format, view[0]) == (1 << 20, "B", 7)
    # Writes show through, both ways.
    view[1] = 42
    assert ctx.eval("buf[1]") == 42
    ctx.eval("buf[2] = 9")
    assert view[2] == 9
    # Views, nested values and call results share too; a slice of a view
    # is still the same memory.
    sub, rest = ctx.call(
        "(n) => [buf.subarray(n, n + 4), { dv: new DataView(buf.buffer, 1, 2) }]", 1, share_buffers=True
    )
    assert bytes(sub) == bytes([42, 9, 7, 7]) and bytes(rest["dv"]) == bytes([42, 9])
    sub[3] = 5
    assert ctx.eval("buf[4]") == 5
    # A resizable buffer is copied (JS could shrink it under the view).
    assert ctx.eval("new ArrayBuffer(2, { maxByteLength: 8 })", share_buffers=True) == b"\0\0"
    # The memory outlives JS's reference and the context.
    tail = view[-4:]
    ctx.eval("buf = null")
    ctx.dispose()
    del view
    assert bytes(tail) == bytes([7, 7, 7, 7])
    tail[0] = 1
    assert tail[0] == 1
