"""Runs the language-neutral cases in ../../conformance/cases through the Python binding."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any

import polyracer
import pytest

CASES_DIR = Path(__file__).resolve().parents[2] / "conformance" / "cases"
CASES = [case for f in sorted(CASES_DIR.glob("*.json")) for case in json.loads(f.read_text())]

ERROR_KINDS = {
    "ParseError": polyracer.ParseError,
    "JSError": polyracer.JSError,
    "Timeout": polyracer.TimeoutError,
    "Terminated": polyracer.TerminatedError,
    "OutOfMemory": polyracer.OutOfMemoryError,
    "Conversion": polyracer.ConversionError,
    "Disposed": polyracer.DisposedError,
    "InvalidArgument": polyracer.InvalidArgumentError,
}


def decode(v: Any) -> Any:
    """Expected-value encoding → the Python value the binding produces."""
    if isinstance(v, list):
        return [decode(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1 and next(iter(v)).startswith("$"):
            tag, x = next(iter(v.items()))
            if tag == "$undefined":
                return polyracer.undefined
            if tag == "$float":
                return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}[x]
            if tag == "$bigint":
                return int(x)
            if tag == "$date":
                return datetime.datetime.fromtimestamp(x / 1000, datetime.timezone.utc)
            if tag == "$bytes":
                return bytes(x)
            if tag == "$map":
                return {decode(k): decode(val) for k, val in x}
            if tag == "$set":
                return {decode(e) for e in x}
            if tag in ("$handle", "$error"):
                return None  # compared by `same` from the spec itself
            raise ValueError(tag)
        return {k: decode(x) for k, x in v.items()}
    return v


def same(got: Any, want: Any, spec: Any) -> bool:
    if isinstance(spec, dict) and len(spec) == 1:
        tag, x = next(iter(spec.items()))
        if tag == "$handle":
            kinds = {
                "function": polyracer.JSFunction,
                "promise": polyracer.JSPromise,
                "symbol": polyracer.JSSymbol,
                "object": polyracer.JSObject,
                "array": polyracer.JSArray,
            }
            return isinstance(got, kinds[x])
        if tag == "$error":
            return isinstance(got, polyracer.JSError) and (got.name, got.message) == (x["name"], x["message"])
        if tag == "$float":
            return isinstance(got, float) and (
                math.isnan(got)
                if x == "NaN"
                else got == want and math.copysign(1, got) == math.copysign(1, want)
            )
    if isinstance(spec, list):
        return isinstance(got, list) and len(got) == len(spec) and all(map(same, got, want, spec))
    if isinstance(spec, dict) and not (len(spec) == 1 and next(iter(spec)).startswith("$")):
        return (
            isinstance(got, dict)
            and list(got) == list(spec)
            and all(same(got[k], want[k], spec[k]) for k in spec)
        )
    if isinstance(spec, float):
        return isinstance(got, float) and got == want
    if isinstance(spec, int) and not isinstance(spec, bool):
        return isinstance(got, int) and not isinstance(got, bool) and got == want
    return type(got) is type(want) and got == want


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    timeout = case.get("timeout_ms")
    with polyracer.Context(
        timeout=timeout / 1000 if timeout else None, memory_limit=case.get("memory_limit")
    ) as ctx:
        if "setup" in case:
            ctx.eval(case["setup"])
        wait = case.get("await", False)

        def run() -> Any:
            if "call" in case:
                return ctx.call(case["call"], *[decode(a) for a in case["args"]], await_promise=wait)
            return ctx.eval(case["source"], await_promise=wait)

        expect = case["expect"]
        if "error" in expect:
            with pytest.raises(ERROR_KINDS[expect["error"]]) as info:
                run()
            err = info.value
            if "name" in expect:
                assert err.name == expect["name"]
            if "message" in expect:
                assert err.message == expect["message"]
            if "message_contains" in expect:
                assert expect["message_contains"] in str(err)
        else:
            got = run()
            assert same(got, decode(expect["value"]), expect["value"]), (got, expect["value"])


def test_all_cases_found() -> None:
    assert len(CASES) >= 70
