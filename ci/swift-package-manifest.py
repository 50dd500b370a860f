#!/usr/bin/env python3
"""Points the root Package.swift at a released XCFramework, or checks it.

    ci/swift-package-manifest.py write VERSION CHECKSUM   (release workflow)
    ci/swift-package-manifest.py check                     (ci/release-check.sh)

`write` sets the `releasedFFI` line: SwiftPM then downloads
PolyRacerFFI.xcframework.zip from the vVERSION GitHub release and checks it
against CHECKSUM (`swift package compute-checksum`, ci/swift-xcframework.sh).
`check` fails unless that line is either unset (a checkout before its first
release: the local XCFramework) or a version equal to the workspace's with
a 64-hex checksum, and unless the manifest's source path and the binary
target's name are the ones bindings-swift uses.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "Package.swift"
LINE = re.compile(r'^let releasedFFI = \(version: "([^"]*)", checksum: "([^"]*)"\)$', re.M)


def main() -> int:
    text = MANIFEST.read_text()
    m = LINE.search(text)
    if not m:
        print("Package.swift: no `let releasedFFI = (version: ..., checksum: ...)` line", file=sys.stderr)
        return 1
    if sys.argv[1:2] == ["write"] and len(sys.argv) == 4:
        version, checksum = sys.argv[2].removeprefix("v"), sys.argv[3]
        if not re.fullmatch(r"[0-9a-f]{64}", checksum):
            print(f"not a SwiftPM checksum: {checksum!r}", file=sys.stderr)
            return 1
        MANIFEST.write_text(LINE.sub(f'let releasedFFI = (version: "{version}", checksum: "{checksum}")', text))
        print(f"Package.swift: PolyRacerFFI {version} ({checksum})")
        return 0
    if sys.argv[1:] != ["check"]:
        print(__doc__, file=sys.stderr)
        return 2
    version, checksum = m.group(1), m.group(2)
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    errors = []
    if (version, checksum) != ("", ""):
        if not re.fullmatch(r"[0-9a-f]{64}", checksum):
            errors.append(f"checksum {checksum!r} is not 64 hex digits")
        if version != workspace:
            errors.append(f"points at {version}, the workspace is {workspace}")
    if 'path: "bindings-swift/Sources/PolyRacer"' not in text or not (ROOT / "bindings-swift/Sources/PolyRacer").is_dir():
        errors.append("the PolyRacer target's path is not bindings-swift/Sources/PolyRacer")
    if 'name: "PolyRacerFFI"' not in text or "module PolyRacerFFI" not in (
        ROOT / "bindings-swift/Sources/PolyRacerFFI/module.modulemap"
    ).read_text():
        errors.append("the binary target is not the PolyRacerFFI module bindings-swift builds")
    for e in errors:
        print(f"Package.swift: {e}", file=sys.stderr)
    if not errors:
        state = f"released {version}" if version else "unreleased (local XCFramework)"
        print(f"Package.swift: {state}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
