#!/usr/bin/env python3
"""Fails when an ELF file needs a newer glibc than a manylinux policy allows.

    ci/check-glibc.py MAX_VERSION FILE...      (e.g. 2.34)

Reads the versioned symbols each file imports (`readelf --dyn-syms -W`,
which reads any architecture's ELF, so the aarch64 build is checked on an
x86_64 runner too) and prints the newest GLIBC_x.y each needs. V8, the core
and every extension module go to users as one file per platform: a symbol
from a newer glibc than the wheel's manylinux tag (or the gem's and npm
package's documented minimum) would fail to load on the systems the tag
promises.
"""

from __future__ import annotations

import re
import subprocess
import sys

VERSIONED = re.compile(r"@GLIBC_(\d+(?:\.\d+)+)")


def parse(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    limit = parse(sys.argv[1])
    failed = False
    for path in sys.argv[2:]:
        out = subprocess.run(["readelf", "--dyn-syms", "-W", path], check=True, capture_output=True, text=True).stdout
        needs: dict[tuple[int, ...], set[str]] = {}
        for line in out.splitlines():
            fields = line.split()
            # Only imports (UND): a library's own version definitions are not needs.
            if len(fields) < 8 or fields[6] != "UND":
                continue
            m = VERSIONED.search(fields[7])
            if m:
                needs.setdefault(parse(m.group(1)), set()).add(fields[7].split("@")[0])
        if not needs:
            print(f"{path}: no versioned glibc symbols (readelf found none): not a dynamically linked glibc ELF?")
            failed = True
            continue
        newest = max(needs)
        shown = ".".join(map(str, newest))
        if newest > limit:
            too_new = sorted(s for v, syms in needs.items() if v > limit for s in syms)
            print(f"{path}: needs GLIBC_{shown} > {sys.argv[1]}: {', '.join(too_new[:12])}")
            failed = True
        else:
            print(f"{path}: newest glibc symbol GLIBC_{shown} (limit {sys.argv[1]})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
