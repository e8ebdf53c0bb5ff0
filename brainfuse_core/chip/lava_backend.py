"""Running a deployment in Lava, behind a process boundary.

Lava (lava-nc 0.10.0) does not import on the project's Python 3.11, so it lives in its own
environment, ``.venv-lava`` (Python 3.10.13, made by ``.ci/lava_env.sh``, which ``.ci/setup.sh``
calls). ``run_lava(artifact)`` writes the artifact to a folder, runs ``lava_runner.py`` there
with that environment's Python under a timeout, and reads spikes, probed states, activity counts
and saturations back as a ``ChipResult``. The main process never imports Lava. A missing
environment, a crash or a timeout of the Lava process raises ``LavaBackendError`` naming the fix.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import BrainFuseError
from .artifact import Artifact
from .result import ChipResult

REPOSITORY = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().with_name("lava_runner.py")
SETUP_HINT = "run `bash .ci/setup.sh` in the repository (it makes .venv-lava with lava-nc 0.10.0 on Python 3.10.13)"


class LavaBackendError(BrainFuseError, RuntimeError):
    """The Lava environment is missing, or the Lava process crashed or ran out of time."""


def lava_python():
    """The Lava environment's Python: ``$BRAINFUSE_LAVA_PYTHON`` or the repository's ``.venv-lava/bin/python``."""
    return Path(os.environ.get("BRAINFUSE_LAVA_PYTHON", REPOSITORY / ".venv-lava" / "bin" / "python"))


def lava_available():
    return lava_python().is_file()


def run_lava(artifact, mode="fixed", timeout=300.0, folder=None, python=None):
    """Run ``artifact`` (an ``Artifact`` or the folder of a saved one) in Lava and return a ``ChipResult``.

    ``mode``: "fixed" (the integer process model with Lava's bit-accurate Dense; equals
    ``reference.simulate`` bit for bit) or "float" (float64 models). ``timeout`` (s) bounds the whole
    Lava process, start-up included (about a second on 2 cores). ``folder`` keeps the artifact and the
    raw outputs there (a temporary folder otherwise); ``python`` overrides the Lava environment's Python."""
    if mode not in ("fixed", "float"):
        raise ValueError(f"mode must be 'fixed' or 'float', got {mode!r}")
    python = Path(python) if python is not None else lava_python()
    if not python.is_file():
        raise LavaBackendError(f"no Lava environment: {python} does not exist; {SETUP_HINT}")
    with tempfile.TemporaryDirectory(prefix="brainfuse-lava-") as scratch:
        root = Path(folder) if folder is not None else Path(scratch)
        if isinstance(artifact, Artifact):
            artifact.save(root / "artifact")
            artifact_dir = root / "artifact"
        else:
            artifact_dir = Path(artifact)
            artifact = Artifact.load(artifact_dir)
        out = root / f"lava-{mode}"
        started = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        _run([str(python), str(RUNNER), str(artifact_dir), str(out), "--mode", mode], timeout, out / "lava.log")
        seconds = time.perf_counter() - started
        return _read(artifact.manifest, out, mode, seconds)


def _run(command, timeout, log):
    # Lava starts worker processes of its own: the runner gets a session of its own so that a timeout or a
    # failure ends them all, and writes to a file rather than a pipe, whose end the workers would hold open.
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_session(process.pid)
            process.wait()
            raise LavaBackendError(f"the Lava process ran past its timeout of {timeout:g} s and was stopped; "
                                   "give run_lava a longer timeout= or deploy a shorter run or a smaller model") from None
    _end_session(process.pid)
    if process.returncode != 0:
        tail = "\n".join(Path(log).read_text(errors="replace").strip().splitlines()[-12:])
        how = f"was killed by signal {-process.returncode}" if process.returncode < 0 else f"exited with code {process.returncode}"
        raise LavaBackendError(f"the Lava process {how}; its last output:\n{tail}\n"
                               f"If Lava itself is broken or missing, {SETUP_HINT}")


def _end_session(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read(manifest, out, mode, seconds):
    try:
        with np.load(out / "result.npz") as data:
            arrays = dict(data)
        summary = json.loads((out / "result.json").read_text())
    except (OSError, ValueError) as err:
        raise LavaBackendError(f"the Lava process finished without complete results in {out} ({err}); {SETUP_HINT}") from None
    spikes = [(arrays[f"spike_steps_{i}"], arrays[f"spike_cells_{i}"]) for i in range(len(manifest["populations"]))]
    probes = [arrays[f"probe_{p}"] for p in range(len(manifest["probes"]))]
    result = ChipResult(manifest, spikes, probes, summary["counts"], summary["saturated"], backend=f"lava-{mode}",
                        seconds=seconds, fixed=mode == "fixed")
    result.timings = summary["timings"]
    return result
