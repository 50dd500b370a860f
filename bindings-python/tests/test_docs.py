import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "python" / "quickstart.py"


def test_quickstart(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert capsys.readouterr().out.splitlines() == [
        "[2, 4, 6]",
        "hello, polyracer",
        "42",
        "TypeError - Cannot read properties of null (reading 'x')",
        "timed out, still usable: yes",
        "awaited",
    ]


ASYNC_EXAMPLE = EXAMPLE.parent / "async_example.py"


def test_async_example(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(ASYNC_EXAMPLE), run_name="__main__")
    assert capsys.readouterr().out.splitlines() == ["A2!"]
    page = (EXAMPLE.parents[2] / "async.md").read_text()
    assert ASYNC_EXAMPLE.read_text() in page, "docs/async.md shows the tested example"


SHARED_EXAMPLE = EXAMPLE.parent / "shared_buffers.py"


def test_shared_buffers_example(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(SHARED_EXAMPLE), run_name="__main__")
    assert capsys.readouterr().out.splitlines() == ["255", "67108864 255"]
    page = (EXAMPLE.parents[2] / "python.md").read_text()
    assert SHARED_EXAMPLE.read_text() in page, "docs/python.md shows the tested example"
