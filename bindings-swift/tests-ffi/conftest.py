"""Loads uniffi's generated Python bindings for the Swift binding's library.

`ci/test-swift.sh` builds `libpolyracer_swift.so`, generates the Python module
next to a copy of it and points POLYRACER_SWIFT_FFI_DIR there. Run by hand,
this file does the same into target/uniffi-python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _prepare() -> Path:
    given = os.environ.get("POLYRACER_SWIFT_FFI_DIR")
    if given:
        return Path(given)
    out = ROOT / "target" / "uniffi-python"
    lib = ROOT / "target" / "debug" / "libpolyracer_swift.so"
    subprocess.run(["bash", "-c", ". ci/env.sh && cargo build -q -p polyracer-swift"], cwd=ROOT, check=True)
    subprocess.run(["bash", str(ROOT / "bindings-swift" / "generate.sh"), "python", str(lib), str(out)], check=True)
    return out


sys.path.insert(0, str(_prepare()))
