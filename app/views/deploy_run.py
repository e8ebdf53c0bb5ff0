"""Deploying off the event loop, for the Deploy pane.

A ``DeployJob`` runs ``brainfuse_core.chip.deploy.deploy`` on one project in a worker thread. The
chip pipeline reports each stage as it enters it (quantize, float run, chip reference run, Lava run,
mapping, power) with the share of the whole deployment done by then; the job keeps the stages
finished, the one running and that share until the pane reads them. A failure of the whole deployment (a model the chip cannot run,
bad settings) ends the job with a one-line ``error``; a crash or a timeout of the Lava process
does not: the deployment finishes without its Lava run and says why in ``Deployment.lava_error``.
Nothing here imports Panel, so all of it can be tested without a server or a browser.
"""

import logging
import threading
import time

from brainfuse_core import BrainFuseError
from brainfuse_core.chip.deploy import deploy

log = logging.getLogger(__name__)


class DeployJob:
    """Deploys ``project`` (a core Project) with ``settings`` (keyword arguments of ``deploy``) in a worker thread.

    ``state``: "running", then "finished" (``deployment`` set) or "failed" (``error`` set); ``progress()``:
    (stages finished, the stage running or "", share of the whole deployment done)."""

    def __init__(self, project, settings):
        self.project = project
        self.settings = dict(settings)
        self.state = "running"
        self.error = ""
        self.deployment = None
        self._finished, self._stage, self._fraction = [], "", 0.0
        self._lock = threading.Lock()
        self._started = self._ended = None
        self._thread = threading.Thread(target=self._work, name="brainfuse-deploy", daemon=True)

    def start(self):
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def join(self, timeout=None):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self):
        return self.state in ("finished", "failed")

    @property
    def wall_s(self):
        if self._started is None:
            return 0.0
        return (self._ended or time.perf_counter()) - self._started

    def progress(self):
        with self._lock:
            return list(self._finished), self._stage, self._fraction

    def _progress(self, stage, fraction):
        # The pipeline reports a stage as it begins it, so the one before has finished.
        with self._lock:
            if self._stage:
                self._finished.append(self._stage)
            self._stage = "" if fraction >= 1.0 else str(stage)
            self._fraction = min(1.0, max(0.0, float(fraction)))

    def _work(self):
        try:
            deployment = deploy(self.project, progress=self._progress, **self.settings)
        except BrainFuseError as err:
            self._end("failed", _one_line(err))
        except Exception as err:  # noqa: BLE001 - shown to the user as one line; the traceback goes to the log
            log.exception("deployment failed")
            self._end("failed", _one_line(f"{type(err).__name__}: {err}"))
        else:
            self.deployment = deployment
            self._end("finished")

    def _end(self, state, error=""):
        self._ended = time.perf_counter()
        self.error = error
        self.state = state


def _one_line(message):
    return " ".join(str(message).split())
