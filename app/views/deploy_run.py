"""Deploying off the event loop, for the Deploy pane.

A ``DeployJob`` runs ``brainfuse_core.chip.deploy.deploy`` on one project in a worker thread. The
chip pipeline reports each stage as it enters it (quantize, float run, chip reference run, Lava run,
mapping, power) with the share of the whole deployment done by then; the job keeps the stages
finished, the one running and that share until the pane reads them. A failure of the whole deployment (a model the chip cannot run,
bad settings) ends the job with a one-line ``error``; a crash or a timeout of the Lava process
does not: the deployment finishes without its Lava run and says why in ``Deployment.lava_error``.
Nothing here imports Panel, so all of it can be tested without a server or a browser.
"""

import threading

from brainfuse_core.chip.deploy import deploy

from .worker import WorkerJob


class DeployJob(WorkerJob):
    """Deploys ``project`` (a core Project) with ``settings`` (keyword arguments of ``deploy``) in a worker thread.

    ``state``: "running", then "finished" (``deployment`` set) or "failed" (``error`` set); ``progress()``:
    (stages finished, the stage running or "", share of the whole deployment done)."""

    name = "brainfuse-deploy"

    def __init__(self, project, settings):
        self.project = project
        self.settings = dict(settings)
        self.deployment = None
        self._finished, self._stage, self._fraction = [], "", 0.0
        self._lock = threading.Lock()
        super().__init__()

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

    def _run(self):
        self.deployment = deploy(self.project, progress=self._progress, **self.settings)
