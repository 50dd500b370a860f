from __future__ import annotations

from collections.abc import Iterator

import polyracer
import pytest


@pytest.fixture
def ctx() -> Iterator[polyracer.Context]:
    with polyracer.Context() as c:
        yield c
