"""Runs the language-neutral cases in ../../conformance/cases through the uniffi layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsv import encode, matches
from polyracer_swift import Context, ContextOptions, EvalOptions, PolyRacerError

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"
CASES = [case for f in sorted((CONFORMANCE / "cases").glob("*.json")) for case in json.loads(f.read_text())]
# The one pinned count every runner checks (conformance/README.md).
PINNED_COUNT = json.loads((CONFORMANCE / "count.json").read_text())["count"]

ERROR_KINDS = {
    "ParseError": PolyRacerError.Parse,
    "JSError": PolyRacerError.Js,
    "Timeout": PolyRacerError.Timeout,
    "Terminated": PolyRacerError.Terminated,
    "OutOfMemory": PolyRacerError.OutOfMemory,
    "Conversion": PolyRacerError.Conversion,
    "Disposed": PolyRacerError.Disposed,
    "InvalidArgument": PolyRacerError.InvalidArgument,
}


def check_error(err: PolyRacerError, expect: dict[str, Any]) -> None:
    assert "error" in expect, f"expected the value {expect['value']!r}, got {err!r}"
    assert type(err) is ERROR_KINDS[expect["error"]], f"expected {expect['error']}, got {err!r}"
    if "name" in expect:
        assert err.exception.name == expect["name"]
    if "message" in expect:
        assert err.exception.message == expect["message"]
    if "message_contains" in expect:
        assert expect["message_contains"] in str(err), str(err)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    expect = case["expect"]
    timeout = case.get("timeout_ms")
    try:
        ctx = Context(
            ContextOptions(
                timeout=timeout / 1000 if timeout is not None else None, memory_limit=case.get("memory_limit")
            )
        )
    except PolyRacerError as err:
        # A context that cannot be created is the case's outcome.
        check_error(err, expect)
        return
    try:
        if "setup" in case:
            ctx.eval(case["setup"])
        opts = EvalOptions(await_promise=case.get("await", False))
        try:
            if "call" in case:
                got = ctx.call(case["call"], [encode(a) for a in case["args"]], opts)
            else:
                got = ctx.eval(case["source"], opts)
        except PolyRacerError as err:
            check_error(err, expect)
            return
        assert "error" not in expect, f"expected {expect['error']}, got the value {got!r}"
        assert matches(got, expect["value"]), (got, expect["value"])
    finally:
        ctx.dispose()


def test_all_cases_found() -> None:
    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names), "case names are test ids: they must be unique"
    assert len(CASES) == PINNED_COUNT, f"conformance/cases holds {len(CASES)} cases; count.json says {PINNED_COUNT}"
