#!/usr/bin/env python3
"""Checks that the release configuration agrees with itself.

    ci/check-release-config.py [--tag vX.Y.Z]

Targets: the platforms claimed in each place must be the same set:
  - [workspace.metadata.dist] targets (Cargo.toml): the CLI;
  - napi.targets and the bindings-node/npm/<platform> folders: npm;
  - every job matrix in .github/workflows/release.yml (cli, python, node,
    ruby, v8-less macOS/Windows legs) and, for Linux, v8.yml's matrix;
  - the README's platform table.
Ruby's native gems may leave out Windows (no Windows Ruby is claimed), and
the Swift XCFramework is macOS-only; each list says so below.
Versions: the workspace version, the npm packages (main and every
platform), the Ruby gem and the Python package (maturin takes the Cargo
version) must be equal, and equal the tag's version with --tag.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAPI_PLATFORM = {
    "x86_64-unknown-linux-gnu": "linux-x64-gnu",
    "aarch64-unknown-linux-gnu": "linux-arm64-gnu",
    "x86_64-apple-darwin": "darwin-x64",
    "aarch64-apple-darwin": "darwin-arm64",
    "x86_64-pc-windows-msvc": "win32-x64-msvc",
}
TRIPLE = re.compile(r"\b(?:x86_64|aarch64)-[a-z0-9_]+-[a-z0-9_]+(?:-[a-z0-9_]+)?\b")


def workflow_jobs(path: Path) -> dict[str, set[str]]:
    """Targets per job in a workflow: every `target:` in the job's matrix."""
    jobs: dict[str, set[str]] = {}
    job = None
    in_jobs = False
    for line in path.read_text().splitlines():
        if line.startswith("jobs:"):
            in_jobs = True
            continue
        if in_jobs:
            m = re.match(r"^  ([A-Za-z0-9_-]+):\s*$", line)
            if m:
                job = m.group(1)
                jobs[job] = set()
                continue
            if job:
                for t in re.findall(r"\btarget:\s*([A-Za-z0-9_-]+)", line):
                    jobs[job].add(t)
    return jobs


def readme_targets() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Platforms", 1)[1].split("\n## ", 1)[0]
    found = set()
    for line in section.splitlines():
        if line.startswith("|") and "prebuilt" in line:
            found.update(TRIPLE.findall(line))
    return found


def main() -> int:
    args = sys.argv[1:]
    tag = args[1] if args[:1] == ["--tag"] and len(args) > 1 else None
    errors: list[str] = []
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    dist = set(cargo["workspace"]["metadata"]["dist"]["targets"])
    node_pkg = json.loads((ROOT / "bindings-node/package.json").read_text())
    napi = set(node_pkg["napi"]["targets"])
    folders = {p.name for p in (ROOT / "bindings-node/npm").iterdir() if p.is_dir()}

    def same(name: str, got: set[str], want: set[str]) -> None:
        if got != want:
            errors.append(f"{name}: {sorted(got)} != the CLI's dist targets {sorted(want)}")

    same("napi.targets", napi, dist)
    same("bindings-node/npm folders", folders, {NAPI_PLATFORM.get(t, t) for t in dist})
    release = workflow_jobs(ROOT / ".github/workflows/release.yml")
    for job, wanted in {
        "cli": dist,
        "python": dist,
        "node": dist,
        # No Ruby is claimed on Windows.
        "ruby-ext": {t for t in dist if "windows" not in t},
        "ruby-gem": {t for t in dist if "windows" not in t},
    }.items():
        if job not in release:
            errors.append(f"release.yml has no `{job}` job")
        else:
            same(f"release.yml `{job}` matrix", release[job], wanted)
    linux = {t for t in dist if "-linux-" in t}
    v8 = workflow_jobs(ROOT / ".github/workflows/v8.yml")
    same("v8.yml `build` matrix (Linux: the only targets with our own V8)", v8.get("build", set()), linux)
    same("README platform table (rows that say prebuilt)", readme_targets(), dist)
    for bad in ("musl", "-ios"):
        for name, targets in (("dist", dist), ("napi", napi), ("README", readme_targets())):
            if any(bad in t for t in targets):
                errors.append(f"{name} claims a {bad} target, which does not build")

    versions = {
        "workspace (Cargo.toml; crates, Python wheel, Swift)": cargo["workspace"]["package"]["version"],
        "bindings-node/package.json": node_pkg["version"],
    }
    for p in sorted((ROOT / "bindings-node/npm").glob("*/package.json")):
        versions[str(p.relative_to(ROOT))] = json.loads(p.read_text())["version"]
    rb = re.search(r'VERSION = "([^"]+)"', (ROOT / "bindings-ruby/lib/polyracer/version.rb").read_text())
    versions["bindings-ruby/lib/polyracer/version.rb"] = rb.group(1) if rb else "?"
    core_dep = cargo["workspace"]["dependencies"]["polyracer"].get("version")
    versions["[workspace.dependencies] polyracer (what the source gem's crate needs)"] = core_dep or "?"
    want = tag.removeprefix("v") if tag else versions["workspace (Cargo.toml; crates, Python wheel, Swift)"]
    for name, v in versions.items():
        if v != want:
            errors.append(f"version: {name} is {v}, expected {want}" + (f" (tag {tag})" if tag else ""))

    for e in errors:
        print(f"release config: {e}", file=sys.stderr)
    if not errors:
        print(f"release config: {len(dist)} targets agree everywhere; every package is version {want}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
