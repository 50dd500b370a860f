"""Hostile input and the option values users pick, through the uniffi layer:
typed errors, never an abort or a hang (core tests the same rules)."""

from __future__ import annotations

import math

import pytest
from jsv import js, py
from polyracer_swift import Context, ContextOptions, EvalOptions, PolyRacerError

RANGE = "memory limit must be a whole number of bytes from 4194304 (4 MiB) to 1099511627776 (1 TiB)"


@pytest.mark.parametrize("limit", [100_000_000, 200_000_000, 123_456_789, 4 << 20])
def test_unaligned_memory_limits_give_working_contexts(limit: int) -> None:
    # 100,000,000 and 200,000,000 used to abort the process (a V8 CHECK).
    c = Context(ContextOptions(memory_limit=limit))
    assert py(c.eval("[1, 2, 3].length", None)) == 3
    c.dispose()


@pytest.mark.parametrize("limit", [0, 1000, 2**41, 2**64 - 1])
def test_out_of_range_memory_limits_are_invalid_arguments(limit: int) -> None:
    with pytest.raises(PolyRacerError.InvalidArgument) as info:
        Context(ContextOptions(memory_limit=limit))
    assert RANGE in str(info.value)


@pytest.mark.parametrize("timeout", [1e20, -1.0, math.nan, math.inf])
def test_absurd_timeouts_are_invalid_arguments(timeout: float) -> None:
    with pytest.raises(PolyRacerError.InvalidArgument) as info:
        Context(ContextOptions(timeout=timeout))
    assert "timeout must be a number of seconds from 0 to 31536000" in str(info.value)
    c = Context()
    with pytest.raises(PolyRacerError.InvalidArgument):
        c.eval("1", EvalOptions(timeout=timeout))
    assert py(c.eval("2", None)) == 2
    c.dispose()


def test_typed_arrays_and_host_bytes_count_against_the_memory_limit() -> None:
    c = Context(ContextOptions(memory_limit=64 << 20, timeout=10.0))
    got = c.eval(
        "const a = []; try { for (let i = 0; i < 60; i++) a.push(new Uint8Array(64 << 20).fill(1)) }"
        " catch (e) { e.name + ': ' + e.message }",
        None,
    )
    assert py(got) == "RangeError: Array buffer allocation failed"
    with pytest.raises(PolyRacerError.Conversion) as info:
        c.call("(b) => b.length", [js(b"\0" * (80 << 20))], None)
    assert "do not fit in the context's memory limit" in str(info.value)
    assert py(c.call("(b) => b.length", [js(b"\1" * (1 << 20))], None)) == 1 << 20
    c.dispose()


def test_a_timeout_during_result_conversion_is_a_timeout() -> None:
    c = Context()
    with pytest.raises(PolyRacerError.Timeout):
        c.eval("({get x() { for (;;) {} }})", EvalOptions(timeout=0.1))
    assert py(c.eval("1 + 1", None)) == 2
    c.dispose()


def test_invalid_dates_are_conversion_errors() -> None:
    c = Context()
    with pytest.raises(PolyRacerError.Conversion) as info:
        c.eval("[new Date(NaN)]", None)
    assert "invalid Date (its time value is NaN) at $[0]" in str(info.value)
    c.dispose()
