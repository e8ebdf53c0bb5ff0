#!/usr/bin/env bash
# Idempotent set-up of .venv-lava: Intel's Lava (lava-nc 0.10.0) in its own Python 3.10.13
# environment, because lava-nc does not import on the project's Python 3.11. The chip backend
# (brainfuse_core/chip/lava_backend.py) runs Lava there as a subprocess; the main process never
# imports it. Python 3.10.13 comes from pyenv (`pyenv prefix 3.10.13`).
# Fast when already done: a stamp holds the hash of this script.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV=.venv-lava
stamp=$ENV/.brainfuse-lava-setup
want="$(sha256sum .ci/lava_env.sh | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$ENV/bin/python" ]; then
  exit 0
fi
PY310=""
if command -v pyenv >/dev/null && prefix="$(pyenv prefix 3.10.13 2>/dev/null)" && [ -x "$prefix/bin/python3.10" ]; then
  PY310="$prefix/bin/python3.10"
elif PYENV_VERSION=3.10.13 python3.10 -c 'import sys; assert sys.version_info[:3] == (3, 10, 13)' 2>/dev/null; then
  PY310="$(PYENV_VERSION=3.10.13 python3.10 -c 'import sys; print(sys.executable)')"
fi
if [ -z "$PY310" ]; then
  echo "note: Python 3.10.13 is missing (pyenv install 3.10.13); the Lava chip backend stays unavailable" >&2
  exit 0
fi
if [ ! -x "$ENV/bin/python" ]; then
  "$PY310" -m venv "$ENV"
fi
"$ENV/bin/python" -m pip install -q --upgrade pip
"$ENV/bin/python" -m pip install -q "lava-nc==0.10.0"
"$ENV/bin/python" -c "import lava.magma.core.run_configs, lava.proc.dense.process"
echo "$want" > "$stamp"
