"""Python ⇄ JsValue helpers for the tests (the Swift wrapper has its own)."""

from __future__ import annotations

import datetime
import math
from typing import Any

from polyracer_swift import JsMapEntry, JsProperty, JsValue


class _Undefined:
    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()


def js(x: Any) -> JsValue:
    """A Python value as a JsValue (dicts keep their order)."""
    if x is UNDEFINED:
        return JsValue.UNDEFINED()
    if x is None:
        return JsValue.NULL()
    if isinstance(x, bool):
        return JsValue.BOOL(x)
    if isinstance(x, int):
        return JsValue.INTEGER(x) if abs(x) < 2**63 else JsValue.BIGINT(str(x))
    if isinstance(x, float):
        return JsValue.NUMBER(x)
    if isinstance(x, str):
        return JsValue.STRING(x)
    if isinstance(x, bytes):
        return JsValue.BYTES(x)
    if isinstance(x, datetime.datetime):
        return JsValue.DATE(x.timestamp() * 1000)
    if isinstance(x, (list, tuple)):
        return JsValue.ARRAY([js(i) for i in x])
    if isinstance(x, dict):
        return JsValue.OBJECT([JsProperty(key=k, value=js(v)) for k, v in x.items()])
    if isinstance(x, set):
        return JsValue.SET([js(i) for i in x])
    if _is_jsvalue(x):
        return x
    raise TypeError(f"no JsValue for {x!r}")


def _is_jsvalue(x: Any) -> bool:
    return type(x).__qualname__.startswith("JsValue.")


def py(v: JsValue) -> Any:
    """A JsValue as plain Python (handles stay JsValue variants)."""
    if v.is_undefined():
        return UNDEFINED
    if v.is_null():
        return None
    if v.is_bool() or v.is_integer() or v.is_number() or v.is_string() or v.is_bytes():
        return v[0]
    if v.is_bigint():
        return int(v[0])
    if v.is_date():
        return datetime.datetime.fromtimestamp(v[0] / 1000, datetime.timezone.utc)
    if v.is_array():
        return [py(i) for i in v[0]]
    if v.is_object():
        return {p.key: py(p.value) for p in v[0]}
    if v.is_map():
        return [(py(e.key), py(e.value)) for e in v[0]]
    if v.is_set():
        return [py(i) for i in v[0]]
    return v


def map_value(pairs: list[tuple[Any, Any]]) -> JsValue:
    return JsValue.MAP([JsMapEntry(key=js(k), value=js(val)) for k, val in pairs])


# ------------------------------------------------------------ conformance encoding


def encode(spec: Any) -> JsValue:
    """The conformance encoding (conformance/README.md) → JsValue."""
    if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)).startswith("$"):
        tag, x = next(iter(spec.items()))
        if tag == "$undefined":
            return JsValue.UNDEFINED()
        if tag == "$float":
            return JsValue.NUMBER({"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}[x])
        if tag == "$bigint":
            return JsValue.BIGINT(x)
        if tag == "$date":
            return JsValue.DATE(float(x))
        if tag == "$bytes":
            return JsValue.BYTES(bytes(x))
        if tag == "$map":
            return JsValue.MAP([JsMapEntry(key=encode(k), value=encode(v)) for k, v in x])
        if tag == "$set":
            return JsValue.SET([encode(i) for i in x])
        raise ValueError(f"cannot encode {tag} as an argument")
    if isinstance(spec, dict):
        return JsValue.OBJECT([JsProperty(key=k, value=encode(v)) for k, v in spec.items()])
    if isinstance(spec, list):
        return JsValue.ARRAY([encode(i) for i in spec])
    return js(spec)


HANDLE_VARIANTS = {
    "function": "is_function",
    "promise": "is_promise",
    "symbol": "is_symbol",
    "object": "is_object_handle",
    "array": "is_array_handle",
}


def matches(got: JsValue, spec: Any) -> bool:
    """Whether `got` is exactly the value the conformance encoding describes."""
    if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)).startswith("$"):
        tag, x = next(iter(spec.items()))
        if tag == "$undefined":
            return got.is_undefined()
        if tag == "$float":
            if not got.is_number():
                return False
            n = got[0]
            if x == "NaN":
                return math.isnan(n)
            want = {"Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}[x]
            return n == want and math.copysign(1, n) == math.copysign(1, want)
        if tag == "$bigint":
            return got.is_bigint() and int(got[0]) == int(x)
        if tag == "$date":
            return got.is_date() and got[0] == x
        if tag == "$bytes":
            return got.is_bytes() and got[0] == bytes(x)
        if tag == "$map":
            return (
                got.is_map()
                and len(got[0]) == len(x)
                and all(matches(e.key, k) and matches(e.value, v) for e, (k, v) in zip(got[0], x, strict=True))
            )
        if tag == "$set":
            return got.is_set() and len(got[0]) == len(x) and all(map(matches, got[0], x))
        if tag == "$error":
            return got.is_error() and (got.name, got.message) == (x["name"], x["message"])
        if tag == "$handle":
            return getattr(got, HANDLE_VARIANTS[x])()
        raise ValueError(tag)
    if spec is None:
        return got.is_null()
    if isinstance(spec, bool):
        return got.is_bool() and got[0] is spec
    if isinstance(spec, int):
        return got.is_integer() and got[0] == spec
    if isinstance(spec, float):
        return got.is_number() and got[0] == spec
    if isinstance(spec, str):
        return got.is_string() and got[0] == spec
    if isinstance(spec, list):
        return got.is_array() and len(got[0]) == len(spec) and all(map(matches, got[0], spec))
    if isinstance(spec, dict):
        return (
            got.is_object()
            and [p.key for p in got[0]] == list(spec)
            and all(matches(p.value, spec[p.key]) for p in got[0])
        )
    raise ValueError(spec)
