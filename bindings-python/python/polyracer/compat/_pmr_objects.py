"""PyMiniRacer's live object model on polyracer handles.

PyMiniRacer returns every JS object as a proxy that reads and writes the JS
object itself (``JSMappedObject``, ``JSArray``, ``JSFunction``, ...). Here
each proxy holds a polyracer handle; every access is one call into the
context through a small JS helper, whose result comes back as a handle
again when it is an object (``as_handle``), so nesting stays live.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Generator, Iterator, MutableMapping, MutableSequence
from typing import TYPE_CHECKING, Any

import polyracer

if TYPE_CHECKING:
    from .py_mini_racer import MiniRacer

# JS helpers, made once per context (see ``_helpers``).
_HELPERS = {
    "get": "(o, k) => o[k]",
    "set": "(o, k, v) => { o[k] = v }",
    "has": "(o, k) => k in o",
    "delete": "(o, k) => { const had = k in o; delete o[k]; return had }",
    # PyMiniRacer lists enumerable keys along the prototype chain.
    "keys": "(o) => { const out = []; for (const k in o) out.push(k); return out }",
    "length": "(a) => a.length",
    "splice": "(a, i, n, ...v) => { a.splice(i, n, ...v) }",
    "push": "(a, v) => { a.push(v) }",
    # The builtin itself: it adds no frame of its own to stacks.
    "apply": "Reflect.apply",
}

_INDEX = re.compile(r"(?:0|[1-9][0-9]*)\Z")


def _helpers(mr: MiniRacer) -> dict[str, polyracer.JSFunction]:
    made = mr.__dict__.get("_pmr_helpers")
    if made is None:
        ctx = mr._context()
        made = {name: ctx.eval(src) for name, src in _HELPERS.items()}
        mr.__dict__["_pmr_helpers"] = made
    return made


def unwrap(value: Any) -> Any:
    """A value with every proxy inside replaced by its polyracer handle."""
    if isinstance(value, JSObject):
        return value._handle
    if isinstance(value, list | tuple):
        return [unwrap(v) for v in value]
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    return value


def wrap(mr: MiniRacer, value: Any) -> Any:
    """A polyracer result as PyMiniRacer gives it: handles become proxies."""
    if isinstance(value, polyracer.JSArray):
        return JSArray(mr, value)
    if isinstance(value, polyracer.JSFunction):
        return JSFunction(mr, value)
    if isinstance(value, polyracer.JSPromise):
        return JSPromise(mr, value)
    if isinstance(value, polyracer.JSSymbol):
        return JSSymbol(mr, value)
    if isinstance(value, polyracer.JSObject):
        return JSMappedObject(mr, value)
    return value


def _key(k: str) -> Any:
    """A JS key as PyMiniRacer reports it: array indices as ints."""
    return int(k) if _INDEX.match(k) and int(k) < 2**32 - 1 else k


class JSObject:
    """A JS object held in its context (PyMiniRacer's ``JSObject``)."""

    def __init__(self, mr: MiniRacer, handle: Any) -> None:
        self._mr = mr
        self._handle = handle

    def __hash__(self) -> int:
        return hash(self._handle)

    def _call(self, helper: str, *args: Any, copy: bool = False) -> Any:
        """Runs a helper on this object; an object result is a proxy, or a
        copy with ``copy``."""
        fn = _helpers(self._mr)[helper]
        ctx = self._mr._context()
        result = self._mr._guard(
            lambda: ctx.call(
                fn, self._handle, *(unwrap(a) for a in args), as_handle=not copy, share_buffers=True
            )
        )
        return wrap(self._mr, result)


class JSMappedObject(JSObject, MutableMapping[Any, Any]):
    """A JS object as a mutable mapping of its enumerable properties."""

    __hash__ = JSObject.__hash__

    def __getitem__(self, key: Any) -> Any:
        if not self._call("has", key):
            raise KeyError(key)
        return self._call("get", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._call("set", key, value)

    def __delitem__(self, key: Any) -> None:
        if not self._call("delete", key):
            raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def _keys(self) -> list[Any]:
        return [_key(k) for k in self._call("keys", copy=True)]


class JSArray(JSObject, MutableSequence[Any]):
    """A JS array as a mutable sequence."""

    __hash__ = JSObject.__hash__

    def __len__(self) -> int:
        return int(self._call("length"))

    def _index(self, index: Any) -> int:
        if not isinstance(index, int):
            raise TypeError("JSArray indices must be integers")
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError("JSArray index out of range")
        return i

    def __getitem__(self, index: Any) -> Any:
        return self._call("get", self._index(index))

    def __setitem__(self, index: Any, value: Any) -> None:
        if not isinstance(index, int):
            raise TypeError("JSArray indices must be integers")
        self._call("set", index, value)

    def __delitem__(self, index: Any) -> None:
        from .py_mini_racer import JSArrayIndexError

        try:
            i = self._index(index)
        except IndexError:
            raise JSArrayIndexError("JSArray deletion out of range") from None
        self._call("splice", i, 1)

    def insert(self, index: int, value: Any) -> None:
        self._call("splice", index, 0, value)

    def append(self, value: Any) -> None:
        self._call("push", value)

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self._call("get", i)


class JSFunction(JSMappedObject):
    """A JS function: call it with ``this=`` and ``timeout_sec=``."""

    __hash__ = JSObject.__hash__

    def __call__(self, *args: Any, this: Any = None, timeout_sec: float | None = None) -> Any:
        target = polyracer.undefined if this is None else this
        return self._call_apply(target, list(args), timeout_sec)

    def _call_apply(self, this: Any, args: list[Any], timeout: float | None) -> Any:
        fn = _helpers(self._mr)["apply"]
        ctx = self._mr._context()
        result = self._mr._guard(
            lambda: ctx.call(
                fn,
                self._handle,
                unwrap(this),
                unwrap(args),
                timeout=timeout,
                as_handle=True,
                share_buffers=True,
            )
        )
        return wrap(self._mr, result)

    def cancelable(self) -> CancelableJSFunction:
        """The same function as a coroutine: cancelling its task stops the JS."""
        return CancelableJSFunction(self._mr, self._handle)


class CancelableJSFunction(JSMappedObject):
    """A JS function called from a worker thread; cancel the task to stop it."""

    __hash__ = JSObject.__hash__

    async def __call__(self, *args: Any, this: Any = None) -> Any:
        fn = JSFunction(self._mr, self._handle)
        call = asyncio.ensure_future(asyncio.to_thread(fn, *args, this=this))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            self._mr._context().terminate()
            await asyncio.gather(call, return_exceptions=True)
            raise


class JSSymbol(JSMappedObject):
    """A JS symbol."""

    __hash__ = JSObject.__hash__

    def _keys(self) -> list[Any]:
        return []


class JSPromise(JSObject):
    """A JS promise: ``get(timeout=)`` blocks, ``await`` it in async code."""

    def get(self, *, timeout: float | None = None) -> Any:
        try:
            return wrap(self._mr, self._handle.result(timeout))
        except polyracer.JSError as e:
            raise _rejected(e) from e
        except polyracer.Error as e:
            from .py_mini_racer import _translate

            raise _translate(e) from e

    def __await__(self) -> Generator[Any, None, Any]:
        return self._settled().__await__()

    async def _settled(self) -> Any:
        try:
            return wrap(self._mr, await self._handle)
        except polyracer.JSError as e:
            raise _rejected(e) from e


def _rejected(e: polyracer.JSError) -> Exception:
    """PyMiniRacer's error for a rejection: an Error's stack, else the reason's text."""
    from .py_mini_racer import JSPromiseError

    return JSPromiseError(e.stack if e.name else str(e.value))
