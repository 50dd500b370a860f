#!/usr/bin/env bash
# The peers' own test suites against our compatibility layers (issue 11):
#   ci/compat-suites.sh [PATH_TO_PYMINIRACER] [PATH_TO_MINI_RACER]
# Python: PyMiniRacer's tests/ run against `polyracer.compat.py_mini_racer`
# through the one-line shim in bindings-python/compat-suite (a
# `py_mini_racer` package re-exporting the layer). Without a path, the suite
# comes from the PyPI sdist of mini-racer 0.14.1, which carries tests/ but
# not its fixtures: add.wasm is written here (a module exporting
# addTwo(a, b)) and babel.js is babel-core 5.8.38's browser build from npm
# (the same global `babel` API as the fixture). Prints per-file counts;
# fails if any test fails that bindings-python/compat-suite/internals.txt
# does not list as checking PyMiniRacer's internals.
# Ruby: mini_racer's suite lives only in its repository (rubyjs/mini_racer),
# so it runs only when its path is given: its test/*_test.rb files and
# test_object_identity_fix.rb, each in its own process, against
# `polyracer/mini_racer` through a lib/mini_racer.rb shim (see
# bindings-ruby/compat-suite). Pass `-` as the first argument to skip the
# Python suite.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
pmr=${1:-}
mr=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run_mini_racer_suite() {
  step "mini_racer's suite against polyracer/mini_racer"
  bash "$POLYRACER_ROOT/ci/setup.sh" --mini-racer-suite
  install -m 0755 "$(python3 ci/cargo-artifact.py polyracer-ruby cdylib)" bindings-ruby/lib/polyracer/polyracer.so
  local run="$work/mini_racer"
  mkdir -p "$run/lib" "$work/mini_racer-out"
  cp -r "$mr/test" "$run/test"
  # The one line a user changes, plus where polyracer is (the suite's own
  # subprocesses add only ../lib to the load path).
  printf '$LOAD_PATH.unshift %s\nrequire "polyracer/mini_racer"\n' \
    "\"$POLYRACER_ROOT/bindings-ruby/lib\"" >"$run/lib/mini_racer.rb"
  : >"$run/Gemfile"
  local f name
  for f in "$run"/test/*_test.rb "$run"/test/test_object_identity_fix.rb; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    # From the suite's folder, as its Rakefile runs it; RUBYLIB and the
    # empty Gemfile make `bundle exec ruby test/test_forking.rb` find the
    # shim. Each file is bounded (a hang fails it, the others still run).
    (cd "$run" && RUBYLIB="$run/lib" BUNDLE_GEMFILE="$run/Gemfile" \
      timeout --kill-after=30 600 ruby -Itest -Ilib "test/$name" -v) >"$work/mini_racer-out/$name.out" 2>&1 || true
  done
  python3 ci/compat-report.py --minitest "$work/mini_racer-out" bindings-ruby/compat-suite/internals.txt
}

if [ "$pmr" = "-" ]; then
  [ -n "$mr" ] || { echo "compat-suites: nothing to run" >&2; exit 2; }
  run_mini_racer_suite
  exit 0
fi
suite="$POLYRACER_ROOT/bindings-python/compat-suite"

step "PyMiniRacer's suite against polyracer.compat.py_mini_racer"
bash "$POLYRACER_ROOT/ci/python-env.sh"
wheel=$(ls "$POLYRACER_ROOT"/target/wheels-ci/polyracer-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  "$POLYRACER_ROOT/.venv/bin/maturin" build --release --quiet -m bindings-python/Cargo.toml -o "$POLYRACER_ROOT/target/wheels-ci"
  wheel=$(ls "$POLYRACER_ROOT"/target/wheels-ci/polyracer-*.whl | head -1)
fi
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$wheel" -r bindings-python/requirements-test.txt
if [ -z "$pmr" ]; then
  "$work/venv/bin/pip" download --quiet --no-deps --no-binary :all: mini-racer==0.14.1 -d "$work/sdist"
  tar xzf "$work"/sdist/mini_racer-0.14.1.tar.gz -C "$work/sdist"
  pmr="$work/sdist/mini_racer-0.14.1"
fi
mkdir -p "$work/run"
cp -r "$pmr/tests" "$work/run/tests"
cp "$suite/gc_check.py" "$work/run/tests/gc_check.py"
if [ ! -f "$work/run/tests/add.wasm" ]; then
  # (module (func (export "addTwo") (param i32 i32) (result i32)
  #   local.get 0 local.get 1 i32.add))
  printf '\x00asm\x01\x00\x00\x00\x01\x07\x01\x60\x02\x7f\x7f\x01\x7f\x03\x02\x01\x00\x07\x0a\x01\x06addTwo\x00\x00\x0a\x09\x01\x07\x00\x20\x00\x20\x01\x6a\x0b' \
    >"$work/run/tests/add.wasm"
fi
if [ ! -f "$work/run/tests/fixtures/babel.js" ]; then
  mkdir -p "$work/run/tests/fixtures" "$work/npm"
  (cd "$work/npm" && npm_config_cache="$work/npm/cache" npm pack --silent babel-core@5.8.38 >/dev/null &&
    tar xzf babel-core-5.8.38.tgz package/browser.min.js)
  cp "$work/npm/package/browser.min.js" "$work/run/tests/fixtures/babel.js"
fi
# From the run folder with `python -m`, so `tests.gc_check` imports; the
# shim first on the path. Per-test limit 120 s; the whole run is bounded
# too (a sync call that never returns cannot be timed out from inside).
(cd "$work/run" && PYTHONPATH="$suite" timeout --kill-after=30 900 "$work/venv/bin/python" -m pytest -q \
  -p no:cacheprovider --timeout 120 --junitxml="$work/results.xml" tests) || true
python3 ci/compat-report.py "$work/results.xml" "$suite/internals.txt"
if [ -n "$mr" ]; then
  run_mini_racer_suite
fi
