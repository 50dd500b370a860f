"""Hostile input and the option values users pick: typed errors, never an
abort, a panic or a hang (the same rules core tests; one case each here)."""

from __future__ import annotations

import math

import polyracer
import pytest
from polyracer.compat import py_mini_racer


@pytest.mark.parametrize("limit", [100_000_000, 200_000_000, 123_456_789, 2e8, 4 << 20])
def test_unaligned_memory_limits_give_working_contexts(limit: float) -> None:
    # 100,000,000 and 200,000,000 used to abort the interpreter (a V8 CHECK).
    with polyracer.Context(memory_limit=limit) as ctx:
        assert ctx.eval("[1, 2, 3].length") == 3


@pytest.mark.parametrize("limit", [0, 1000, -1, 2**41, 2**70, 2.5e8 + 0.5, math.nan, math.inf])
def test_out_of_range_memory_limits_are_invalid_arguments(limit: float) -> None:
    with pytest.raises(
        polyracer.InvalidArgumentError, match=r"memory limit must be a whole number of bytes from 4194304"
    ):
        polyracer.Context(memory_limit=limit)


def test_memory_limit_of_the_wrong_type_is_an_invalid_argument() -> None:
    with pytest.raises(polyracer.InvalidArgumentError, match="not str"):
        polyracer.Context(memory_limit="64M")  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [1e20, -1.0, math.nan, math.inf, 10**400])
def test_absurd_timeouts_are_invalid_arguments_not_panics(timeout: float) -> None:
    # 1e20 used to raise pyo3's PanicException (a BaseException).
    with pytest.raises((polyracer.InvalidArgumentError, OverflowError)) as info:
        polyracer.Context(timeout=timeout)
    if isinstance(info.value, polyracer.InvalidArgumentError):
        assert "timeout must be a number of seconds from 0 to 31536000" in str(info.value)
    with polyracer.Context() as ctx, pytest.raises(polyracer.InvalidArgumentError):
        ctx.eval("1", timeout=1e20)


def test_typed_arrays_count_against_the_memory_limit() -> None:
    with polyracer.Context(memory_limit=64 << 20, timeout=10) as ctx:
        got = ctx.eval(
            "const a = []; try { for (let i = 0; i < 60; i++) a.push(new Uint8Array(64 << 20).fill(1)) }"
            " catch (e) { e.name + ': ' + e.message }"
        )
        assert got == "RangeError: Array buffer allocation failed"
        with pytest.raises(polyracer.ConversionError, match="do not fit in the context's memory limit"):
            ctx.call("(b) => b.length", b"\0" * (80 << 20))
        assert ctx.call("(b) => b.length", b"\1" * (1 << 20)) == 1 << 20
        assert ctx.heap_stats()["external_memory"] >= 0


def test_a_timeout_during_result_conversion_is_a_timeout() -> None:
    with polyracer.Context() as ctx:
        with pytest.raises(polyracer.TimeoutError):
            ctx.eval("({get x() { for (;;) {} }})", timeout=0.1)
        assert ctx.eval("1 + 1") == 2


def test_mini_racer_max_memory_accepts_unaligned_values() -> None:
    ctx = py_mini_racer.MiniRacer()
    assert ctx.eval("1 + 2", max_memory=200_000_000) == 3


@pytest.mark.parametrize(
    ("source", "check"),
    [
        ("setTimeout(() => {}, 1e300); 'scheduled'", lambda v: v == "scheduled"),
        ("function f() { return f() } try { f() } catch (e) { e.name }", lambda v: v == "RangeError"),
        ("'x'.repeat(2 ** 29 - 24).length", lambda v: v == 2**29 - 24),
        ("new Proxy({}, {get() { throw 1 }})", lambda v: isinstance(v, polyracer.JSObject)),
        ("Symbol('s')", lambda v: v is not None),
    ],
)
def test_hostile_js_gives_values_or_typed_errors(source: str, check) -> None:  # type: ignore[no-untyped-def]
    with polyracer.Context(timeout=10) as ctx:
        assert check(ctx.eval(source))
        assert ctx.eval("'still usable'") == "still usable"
