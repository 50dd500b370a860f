"""Runs the language-neutral cases in ../../conformance/cases through the uniffi layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsv import encode, matches
from polyracer_swift import Context, ContextOptions, EvalOptions, PolyRacerError

CASES_DIR = Path(__file__).resolve().parents[2] / "conformance" / "cases"
CASES = [case for f in sorted(CASES_DIR.glob("*.json")) for case in json.loads(f.read_text())]

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


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    timeout = case.get("timeout_ms")
    ctx = Context(ContextOptions(timeout=timeout / 1000 if timeout else None, memory_limit=case.get("memory_limit")))
    try:
        if "setup" in case:
            ctx.eval(case["setup"])
        opts = EvalOptions(await_promise=case.get("await", False))

        def run() -> Any:
            if "call" in case:
                return ctx.call(case["call"], [encode(a) for a in case["args"]], opts)
            return ctx.eval(case["source"], opts)

        expect = case["expect"]
        if "error" in expect:
            with pytest.raises(ERROR_KINDS[expect["error"]]) as info:
                run()
            err = info.value
            if "name" in expect:
                assert err.exception.name == expect["name"]
            if "message" in expect:
                assert err.exception.message == expect["message"]
            if "message_contains" in expect:
                assert expect["message_contains"] in str(err)
        else:
            got = run()
            assert matches(got, expect["value"]), (got, expect["value"])
    finally:
        ctx.dispose()


def test_all_cases_found() -> None:
    assert len(CASES) >= 70
