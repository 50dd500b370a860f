"""Stands in for PyMiniRacer's check of its own C++ object table."""

from typing import Any


def assert_no_v8_objects(mr: Any) -> None:
    del mr


async def async_assert_no_v8_objects(mr: Any) -> None:
    del mr
