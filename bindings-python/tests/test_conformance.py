"""Runs the language-neutral cases in ../../conformance/cases through the Python binding."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any

import polyracer
import pytest

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"
CASES = [case for f in sorted((CONFORMANCE / "cases").glob("*.json")) for case in json.loads(f.read_text())]
# The one pinned count every runner checks (conformance/README.md).
PINNED_COUNT = json.loads((CONFORMANCE / "count.json").read_text())["count"]

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

HANDLES = {
    "function": polyracer.JSFunction,
    "promise": polyracer.JSPromise,
    "symbol": polyracer.JSSymbol,
    "object": polyracer.JSObject,
    "array": polyracer.JSArray,
}


def tag_of(spec: Any) -> str | None:
    if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)).startswith("$"):
        return next(iter(spec))
    return None


def decode(v: Any) -> Any:
    """Encoding → the Python value to pass as an argument."""
    if isinstance(v, list):
        return [decode(x) for x in v]
    tag = tag_of(v)
    if tag:
        x = v[tag]
        if tag == "$undefined":
            return polyracer.undefined
        if tag == "$float":
            return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}[x]
        if tag == "$bigint":
            return int(x)
        if tag == "$date":
            return datetime.datetime.fromtimestamp(x / 1000, datetime.UTC)
        if tag == "$bytes":
            return bytes(x)
        if tag == "$map":
            return {decode(k): decode(val) for k, val in x}
        if tag == "$set":
            return {decode(e) for e in x}
        raise ValueError(f"cannot decode {tag} as an argument")
    if isinstance(v, dict):
        return {k: decode(x) for k, x in v.items()}
    return v


def same(got: Any, spec: Any) -> bool:
    """Whether `got` is exactly the value the encoding describes: same types
    (an int is not a float), same order for arrays, object keys and maps."""
    tag = tag_of(spec)
    if tag:
        x = spec[tag]
        if tag == "$undefined":
            return got is polyracer.undefined
        if tag == "$float":
            if not isinstance(got, float):
                return False
            if x == "NaN":
                return math.isnan(got)
            want = decode(spec)
            return got == want and math.copysign(1, got) == math.copysign(1, want)
        if tag == "$bigint":
            return isinstance(got, int) and not isinstance(got, bool) and got == int(x)
        if tag == "$date":
            return isinstance(got, datetime.datetime) and got == decode(spec)
        if tag == "$bytes":
            return isinstance(got, bytes) and got == bytes(x)
        if tag == "$map":
            return (
                isinstance(got, dict)
                and len(got) == len(x)
                and all(same(k, ks) and same(v, vs) for (k, v), (ks, vs) in zip(got.items(), x, strict=True))
            )
        if tag == "$set":
            # A Python set has no order: same size, and every expected member present.
            return (
                isinstance(got, (set, frozenset))
                and len(got) == len(x)
                and all(any(same(g, s) for g in got) for s in x)
            )
        if tag == "$error":
            return isinstance(got, polyracer.JSError) and (got.name, got.message) == (x["name"], x["message"])
        if tag == "$handle":
            return isinstance(got, HANDLES[x])
        raise ValueError(tag)
    if spec is None:
        return got is None
    if isinstance(spec, bool):
        return got is spec
    if isinstance(spec, int):
        return isinstance(got, int) and not isinstance(got, bool) and got == spec
    if isinstance(spec, float):
        return isinstance(got, float) and got == spec
    if isinstance(spec, str):
        return isinstance(got, str) and got == spec
    if isinstance(spec, list):
        return isinstance(got, list) and len(got) == len(spec) and all(map(same, got, spec))
    if isinstance(spec, dict):
        return isinstance(got, dict) and list(got) == list(spec) and all(same(got[k], spec[k]) for k in spec)
    raise ValueError(spec)


def check_error(err: BaseException, expect: dict[str, Any]) -> None:
    assert "error" in expect, f"expected the value {expect['value']!r}, got {err!r}"
    # The exact class: a subclass (say ParseError for JSError) is another kind.
    assert type(err) is ERROR_KINDS[expect["error"]], f"expected {expect['error']}, got {err!r}"
    if "name" in expect:
        assert err.name == expect["name"]  # type: ignore[attr-defined]
    if "message" in expect:
        assert err.message == expect["message"]  # type: ignore[attr-defined]
    if "message_contains" in expect:
        assert expect["message_contains"] in str(err), str(err)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    expect = case["expect"]
    timeout = case.get("timeout_ms")
    try:
        ctx = polyracer.Context(
            timeout=timeout / 1000 if timeout is not None else None, memory_limit=case.get("memory_limit")
        )
    except polyracer.Error as err:
        # A context that cannot be created is the case's outcome.
        check_error(err, expect)
        return
    with ctx:
        if "setup" in case:
            ctx.eval(case["setup"])
        wait = case.get("await", False)
        try:
            if "call" in case:
                got = ctx.call(case["call"], *[decode(a) for a in case["args"]], await_promise=wait)
            else:
                got = ctx.eval(case["source"], await_promise=wait)
        except polyracer.Error as err:
            check_error(err, expect)
            return
        assert "error" not in expect, f"expected {expect['error']}, got the value {got!r}"
        assert same(got, expect["value"]), (got, expect["value"])


def test_all_cases_found() -> None:
    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names), "case names are test ids: they must be unique"
    assert len(CASES) == PINNED_COUNT, (
        f"conformance/cases holds {len(CASES)} cases; count.json says {PINNED_COUNT}"
    )
