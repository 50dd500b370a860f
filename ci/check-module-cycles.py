#!/usr/bin/env python3
"""Fails if the modules of a Rust crate's src/ import each other in a cycle.

    ci/check-module-cycles.py bindings-node/src

A module's dependencies are the sibling modules it names as `crate::name`
(in paths or `use` lists). The crate root (lib.rs) may use everything.
"""

from __future__ import annotations

import pathlib
import re
import sys


def deps(src: pathlib.Path) -> dict[str, set[str]]:
    mods = {p.stem for p in src.glob("*.rs") if p.stem != "lib"}
    graph: dict[str, set[str]] = {}
    for m in mods:
        text = (src / f"{m}.rs").read_text()
        used = set(re.findall(r"crate::(\w+)", text))
        for group in re.findall(r"crate::\{([^}]*)\}", text):
            used |= {w.strip().split("::")[0] for w in group.split(",")}
        graph[m] = (used & mods) - {m}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def main() -> int:
    failed = False
    for arg in sys.argv[1:]:
        found = cycle(deps(pathlib.Path(arg)))
        if found:
            print(f"{arg}: import cycle: {' -> '.join(found)}", file=sys.stderr)
            failed = True
        else:
            print(f"{arg}: no import cycles")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
