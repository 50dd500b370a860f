# Sourced by every ci/ script: the project root, cargo on PATH, and the local
# V8 mirror when this machine has one (otherwise the v8 crate downloads its
# prebuilt library as it does for every user with internet access).
POLYRACER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export POLYRACER_ROOT
if [ -f "$POLYRACER_ROOT/../shared/v8/env.sh" ]; then
  # shellcheck disable=SC1091
  . "$POLYRACER_ROOT/../shared/v8/env.sh"
fi
[ -d "$HOME/.cargo/bin" ] && PATH="$HOME/.cargo/bin:$PATH"
export PATH
# Windows runners (release.yml) have `python`, not `python3`.
PYTHON=$(command -v python3 || command -v python || echo python3)
export PYTHON
# The project's tool venv (ci/python-env.sh); Windows venvs keep their
# programs in Scripts/.
case "$(uname -s)" in
  MINGW* | MSYS* | CYGWIN*) VENV_BIN="$POLYRACER_ROOT/.venv/Scripts" ;;
  *) VENV_BIN="$POLYRACER_ROOT/.venv/bin" ;;
esac
export VENV_BIN
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
step() { printf '\n==> %s\n' "$*"; }
