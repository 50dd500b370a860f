#!/usr/bin/env bash
# The Python wheel, the same here (ci/test-python.sh, ci/release-check.sh)
# and in the release workflow: one abi3 wheel (CPython >= 3.11) per
# platform, built by maturin in release mode from the locked dependencies.
#   ci/package-python.sh OUT_DIR
# On Linux the wheel is tagged manylinux_2_34 (POLYRACER_MANYLINUX to
# change it): V8 calls gettid(), which glibc has had only since 2.30, so it
# cannot link in the manylinux_2_28 image, and 2_34 is the next policy with
# an image (the release builds in quay.io/pypa/manylinux_2_34_*). maturin
# refuses to tag a wheel whose symbols need a newer glibc than its tag, and
# ci/release-check.sh checks the tag with auditwheel and ci/check-glibc.py.
# Prints the wheel's path.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
out=$(mkdir -p "$1" && cd "$1" && pwd)
bash "$POLYRACER_ROOT/ci/python-env.sh" >&2
args=(build --release --locked --quiet -m bindings-python/Cargo.toml -o "$out")
[ "$(uname -s)" = Linux ] && args+=(--compatibility "${POLYRACER_MANYLINUX:-manylinux_2_34}")
"$VENV_BIN/maturin" "${args[@]}" >&2
wheel=$(ls -t "$out"/polyracer-*.whl | head -1)
[ -n "$wheel" ] || { echo "maturin wrote no wheel into $out" >&2; exit 1; }
echo "$wheel"
