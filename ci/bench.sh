#!/usr/bin/env bash
# Benchmarks (release builds), each side by side with its peers in one run:
# the core round trips and interleaved latency, code cache and snapshot
# start-up on a real 9 MB bundle, then Python (vs STPyV8, PyMiniRacer,
# quickjs, v8-python) and Node (vs isolated-vm and node:vm), whose first
# table is the interleaved latency: each call timed alone with 0–1000 µs of
# host work between calls, p50 / p99. Then async (bench_async.*: await
# round trips, p50 / p99, and 1,000 concurrent awaits) in Python (vs
# PyMiniRacer), Node (vs isolated-vm and node:vm) and Ruby; and Node's
# Python's and Ruby's moving-data tables (bench_data.*: records, numbers
# and strings from 10 KB to 10 MB, and bytes to 64 MB, each way, beside
# the same peers and ExecJS for Ruby), and Ruby's rows against Python's
# (ci/bench-ruby-bar.py: a polyracer worker in each, taking turns in bursts
# of calls).
#   ci/bench.sh            everything
#   ci/bench.sh latency    only the interleaved-latency tables
#   ci/bench.sh async      only the async tables
#   ci/bench.sh data       only the moving-data tables
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$POLYRACER_ROOT/ci/setup.sh"
cd "$POLYRACER_ROOT"
only=${1:-}
# Whether the tables of this kind run: all of them, or the one asked for.
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

if [ -z "$only" ]; then
  cargo bench -p polyracer --bench core
  cargo bench -p polyracer --bench bundle
fi

step "Python: release wheel and the peers in .venv-bench"
python3 -m venv "$POLYRACER_ROOT/.venv-bench"
bench_py="$POLYRACER_ROOT/.venv-bench/bin/python"
"$bench_py" -m pip install --quiet -r bindings-python/requirements-bench.txt
bash "$POLYRACER_ROOT/ci/python-env.sh"
# The release wheel (ci/package-python.sh), as users install it.
rm -rf "$POLYRACER_ROOT/target/wheels-bench"
wheel=$(bash "$POLYRACER_ROOT/ci/package-python.sh" "$POLYRACER_ROOT/target/wheels-bench")
"$bench_py" -m pip install --quiet --force-reinstall --no-deps "$wheel"
if want latency; then
  (cd bindings-python/bench && "$bench_py" bench.py ${only:+--latency-only})
fi
if want async; then
  (cd bindings-python/bench && "$bench_py" bench_async.py)
fi
if want data; then
  (cd bindings-python/bench && "$bench_py" bench_data.py)
fi

step "Node: release addon, isolated-vm built from source"
bash "$POLYRACER_ROOT/ci/node-build.sh"
(
  cd bindings-node/bench
  npm ci --ignore-scripts --no-audit --no-fund
  # npm 11 runs no dependency install scripts unless approved: build
  # isolated-vm's native module explicitly, with the pinned node-gyp.
  # Against the running node's own headers (include/node beside its bin/),
  # so node-gyp does not download them (these machines reach registries
  # only).
  nodedir=$(dirname "$(dirname "$(command -v node)")")
  gyp_args=()
  [ -f "$nodedir/include/node/node_api.h" ] && gyp_args=(--nodedir="$nodedir")
  (cd node_modules/isolated-vm && ../.bin/node-gyp rebuild "${gyp_args[@]}" >/dev/null)
  if want latency; then
    LATENCY_ONLY=${only:+1} node bench.js
  fi
  if want async; then
    node bench_async.js
  fi
  if want data; then
    node bench_data.js
  fi
)

if want async || want data; then
  step "Ruby: release extension, async and moving data (beside ExecJS)"
  # ExecJS is the Ruby peer (Debian's package; no gem registry here).
  if ! ruby -e 'require "execjs"' 2>/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ruby-execjs >/dev/null || true
  fi
  install -m 0755 "$(python3 ci/cargo-artifact.py polyracer-ruby cdylib --quiet)" bindings-ruby/lib/polyracer/polyracer.so
  if want async; then
    (cd bindings-ruby && ruby -Ilib bench/bench_async.rb)
  fi
  if want data; then
    (cd bindings-ruby && ruby -Ilib bench/bench_data.rb)
    # The Ruby target is the Python binding's figure: a worker of each
    # holds the row and the two take turns in short bursts of calls.
    python3 ci/bench-ruby-bar.py --python "$bench_py"
  fi
fi
