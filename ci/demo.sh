#!/usr/bin/env bash
# The main job: builds polyracer and runs JS through the CLI and every binding
# (ci/demo-<binding>.sh).
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$POLYRACER_ROOT/ci/setup.sh"
cd "$POLYRACER_ROOT"

step "building the polyracer CLI"
bin=$(python3 ci/cargo-artifact.py --debug polyracer-cli bin)

step "polyracer eval"
"$bin" eval '[1, 2, 3].map((x) => x * 2)'
"$bin" eval 'new Intl.NumberFormat("de-DE", {style: "currency", currency: "EUR"}).format(1234.5)'
"$bin" eval 'Promise.resolve({answer: 42n, when: new Date(0)})'

step "polyracer run docs/examples/cli/demo.js"
"$bin" run docs/examples/cli/demo.js

step "limits: a runaway loop is stopped after 200 ms"
set +e
"$bin" --timeout 200 eval 'while (true) {}'
echo "(exit code $?: timeout)"
"$bin" --memory-limit 32M eval 'const a = []; while (true) a.push(new Array(1e5).fill(0))'
echo "(exit code $?: out of memory, and the process is fine)"
set -e
for binding in python ruby node swift; do
  bash "$POLYRACER_ROOT/ci/demo-$binding.sh"
done
step "demo complete"
