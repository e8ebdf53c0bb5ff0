"""Run a benchmark function in a fresh Python interpreter.

Peer simulators keep global state that leaks between runs in one process:
NEURON can't delete mechanism types or fully reset its event queue, and Brian2's
device (runtime vs. cpp_standalone) is a process-wide setting.  Import-time and
compile caches in a long-lived process would also flatter whichever
measurement runs second.  Each measurement therefore gets its own process;
arguments and results cross the boundary as JSON.

Usage::

    from benchmarks.peers.isolate import run_isolated
    res = run_isolated("benchmarks.peers.cobahh:benchmark",
                       {"simulator": "neuron", "seed": 0})

The child entry point is ``python -m benchmarks.peers.isolate SPEC KWARGS OUT``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[2]


def _func_spec(func: str | Callable) -> str:
    if callable(func):
        module = func.__module__
        if module == "__main__":
            # Under ``python -m pkg.mod`` functions report '__main__', which
            # the child can't import; the module spec has the real name.
            spec = getattr(sys.modules["__main__"], "__spec__", None)
            if spec is None:
                raise ValueError("run the caller with 'python -m' or pass "
                                 "'package.module:function'")
            module = spec.name
        return f"{module}:{func.__qualname__}"
    if ":" not in func:
        raise ValueError(f"expected 'package.module:function', got {func!r}")
    return func


def _to_jsonable(obj: Any) -> Any:
    # numpy is imported lazily so this module stays usable without it.
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def run_isolated(
    func: str | Callable,
    kwargs: dict | None = None,
    *,
    timeout: float | None = None,
    env: dict | None = None,
    python: str | None = None,
    quiet: bool = True,
) -> Any:
    """Call ``func(**kwargs)`` in a new interpreter and return its result.

    ``func`` is ``"package.module:function"`` (or a module-level function,
    which is converted to that form).  Its return value must be JSON
    serialisable; numpy arrays and scalars are converted to lists/floats, so
    callers get plain lists back.  ``env`` entries are added to the current
    environment (use it to pin e.g. ``OMP_NUM_THREADS``).  The child's
    stdout/stderr are captured and only shown if it fails, unless
    ``quiet=False``.
    """
    spec = _func_spec(func)
    child_env = dict(os.environ)
    # The repo root must be importable in the child regardless of its cwd.
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH")) if p
    )
    child_env.update({k: str(v) for k, v in (env or {}).items()})
    with tempfile.TemporaryDirectory(prefix="bf_isolated_") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            python or sys.executable,
            "-m",
            "benchmarks.peers.isolate",
            spec,
            json.dumps(kwargs or {}),
            str(out),
        ]
        proc = subprocess.run(
            cmd,
            cwd=REPO_ROOT,
            env=child_env,
            timeout=timeout,
            capture_output=quiet,
            text=True,
        )
        if proc.returncode != 0 or not out.exists():
            tail = ((proc.stdout or "") + (proc.stderr or ""))[-4000:]
            raise RuntimeError(
                f"isolated call {spec} failed (exit {proc.returncode}):\n{tail}"
            )
        return json.loads(out.read_text())


def _child_main(argv: list[str]) -> None:
    spec, kwargs_json, out = argv
    module_name, func_name = spec.split(":")
    func = importlib.import_module(module_name)
    for part in func_name.split("."):
        func = getattr(func, part)
    result = func(**json.loads(kwargs_json))
    # Write to a temp name then rename, so a crash never leaves a half file
    # that the parent would mistake for a result.
    tmp = out + ".part"
    with open(tmp, "w") as fh:
        json.dump(result, fh, default=_to_jsonable)
    os.replace(tmp, out)


if __name__ == "__main__":
    _child_main(sys.argv[1:])
