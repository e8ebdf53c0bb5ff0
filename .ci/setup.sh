#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: Debian's Chromium (for the browser tests of the workbench)
# and the project's virtual environment (.venv).
# The CPU build of torch is pinned first so that no multi-GB CUDA build is pulled;
# the package itself accepts any torch >= 2.4 so users keep their own CUDA torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Playwright drives Debian's Chromium; Playwright's own browser download does not work offline.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: /usr/bin/chromium is missing; the browser tests need it (sudo apt-get install chromium)" >&2
  fi
fi
# Intel's Lava (chip backend) lives in its own Python 3.10 environment, .venv-lava (idempotent, fast when done).
bash .ci/lava_env.sh
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.brainfuse-setup
want="$(cat pyproject.toml .ci/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
# numpy < 2.4: Brian2 (a reference simulator in the tests) does not import with numpy 2.4.
.venv/bin/python -m pip install -q -e ".[test]" "numpy<2.4"
echo "$want" > "$stamp"
