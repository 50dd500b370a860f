#!/usr/bin/env python3
"""Builds a package and prints where cargo put its library or binary.

    ci/cargo-artifact.py [--debug] <package> cdylib|bin [cargo args...]

Asks cargo (its JSON messages) instead of assuming `./target/<profile>`, so
`CARGO_TARGET_DIR`, `--target` and `build.target-dir` are honoured. Builds
in release mode unless `--debug`. Diagnostics go to stderr as cargo renders
them.
"""

from __future__ import annotations

import json
import subprocess
import sys


def same_package(package_id: str, package: str) -> bool:
    # `path+file:///dir#name@1.0` (or `…/name#1.0` when the folder is named
    # like the package), or the older `name 1.0 (path+file:///dir)`.
    return (
        f"#{package}@" in package_id
        or package_id.startswith(package + " ")
        or package_id.split("#")[0].rstrip("/").endswith("/" + package)
    )


def main() -> int:
    args = sys.argv[1:]
    debug = args[:1] == ["--debug"]
    if debug:
        args = args[1:]
    package, kind, extra = args[0], args[1], args[2:]
    cmd = ["cargo", "build", "-p", package, "--message-format=json-render-diagnostics", *extra]
    if not debug:
        cmd.insert(2, "--release")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    found = None
    for line in proc.stdout:
        msg = json.loads(line)
        if msg.get("reason") != "compiler-artifact" or kind not in msg.get("target", {}).get("kind", []):
            continue
        if not same_package(msg.get("package_id", ""), package):
            continue
        if kind == "bin":
            found = msg.get("executable") or found
        else:
            libs = [f for f in msg["filenames"] if f.endswith((".so", ".dylib", ".dll"))]
            found = libs[0] if libs else found
    if proc.wait() != 0:
        return proc.returncode
    if not found:
        print(f"cargo built no {kind} for {package}", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
