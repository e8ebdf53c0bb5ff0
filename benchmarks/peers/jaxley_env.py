"""Jaxley's own virtual environment, created on first use, and calls into it.

Jaxley needs JAX, whose pinned numpy differs from the project's environment, so it lives in
``.venv-jaxley`` (Python 3.11, CPU wheels) and runs only across a process boundary: the
benchmark functions in ``benchmarks.peers.jaxley_peer`` are called through
``benchmarks.peers.isolate`` with that environment's interpreter, arguments and results as JSON.
The environment is not part of CI; a benchmark that needs it installs it (about 1-2 minutes).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

from .isolate import REPO_ROOT, run_isolated

VENV = REPO_ROOT / ".venv-jaxley"
PYTHON = VENV / "bin" / "python"
# The versions measured; jaxley 0.14 is the series the benchmarks are written against.
PINS = ("jax==0.10.2", "jaxlib==0.10.2", "jaxley==0.14.0", "numpy==2.4.6")
BASE_PYTHON = "python3.11"


def _installed() -> bool:
    if not PYTHON.exists():
        return False
    check = subprocess.run([str(PYTHON), "-c", "import jaxley, jax"], capture_output=True)
    return check.returncode == 0


def ensure() -> str:
    """The environment's interpreter, installing the environment first when it is missing."""
    if _installed():
        return str(PYTHON)
    base = shutil.which(BASE_PYTHON)
    if base is None:
        raise RuntimeError(f"Jaxley's environment needs {BASE_PYTHON} on PATH to create {VENV}")
    print(f"Installing Jaxley into {VENV} ({', '.join(PINS)}) ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", *PINS], check=True)
    print(f"Jaxley installed in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return str(PYTHON)


def run(function: str, kwargs: dict, timeout: float | None = None):
    """``benchmarks.peers.jaxley_peer:<function>(**kwargs)`` in a fresh process of Jaxley's environment,
    on the CPU."""
    return run_isolated(f"benchmarks.peers.jaxley_peer:{function}", kwargs, python=ensure(), timeout=timeout,
                        env={"JAX_PLATFORMS": "cpu"})
