#!/usr/bin/env bash
# The CLI's release artifacts, built by cargo-dist (its [workspace.metadata.dist]
# in Cargo.toml; `dist` 0.34.0, which ci/setup.sh --release installs), the same
# here (ci/release-check.sh) and in the release workflow:
#   ci/package-cli.sh local TARGET OUT_DIR
#       the archive for TARGET (polyracer-cli-TARGET.tar.xz / .zip) and
#       its checksum; run on a runner of that target.
#   ci/package-cli.sh global OUT_DIR
#       the shell and PowerShell installers, the source archive and the
#       combined checksum file.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
mode=$1
case "$mode" in
  local) target=$2; out=$3; args=(--artifacts=local --target "$target") ;;
  global) out=$2; args=(--artifacts=global) ;;
  *) echo "usage: ci/package-cli.sh local TARGET OUT_DIR | global OUT_DIR" >&2; exit 2 ;;
esac
out=$(mkdir -p "$out" && cd "$out" && pwd)
# dist writes into target/distrib (CARGO_TARGET_DIR honoured) and prints
# a JSON manifest naming every file it made: copy exactly those.
manifest=$(mktemp)
trap 'rm -f "$manifest"' EXIT
dist build "${args[@]}" --output-format=json >"$manifest"
"$PYTHON" - "$manifest" "$out" <<'PY'
import json, shutil, sys
manifest = json.load(open(sys.argv[1]))
paths = [a["path"] for a in manifest.get("artifacts", {}).values() if a.get("path")]
if not paths:
    sys.exit("dist build listed no artifacts")
for p in paths:
    shutil.copy(p, sys.argv[2])
    print(f"{sys.argv[2]}/{p.rsplit('/', 1)[-1]}")
PY
