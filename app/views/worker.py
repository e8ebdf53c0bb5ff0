"""Long work off the event loop: the life cycle the Train and Deploy panes' jobs share.

A ``WorkerJob`` runs its ``_run()`` in a daemon thread. ``state`` is "running", then "finished",
"stopped" (``_run`` returned "stopped": the user's stop request, ``stop_requested()``, was honoured)
or "failed" (``error``: one line; the traceback goes to the log). ``phase`` says what it is doing.
Nothing here imports Panel, so jobs can be tested without a server or a browser.
"""

import logging
import threading
import time

from brainfuse_core import BrainFuseError

log = logging.getLogger(__name__)


class WorkerJob:
    name = "brainfuse-job"

    def __init__(self):
        self.state, self.phase, self.error = "running", "starting", ""
        self._stop = threading.Event()
        self._started = self._ended = None
        self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)

    def start(self):
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def stop(self):
        """Ask the worker to stop at its next check."""
        self._stop.set()

    def stop_requested(self):
        return self._stop.is_set()

    def join(self, timeout=None):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self):
        return self.state in ("finished", "stopped", "failed")

    @property
    def stopping(self):
        return self._stop.is_set() and not self.done

    @property
    def wall_s(self):
        if self._started is None:
            return 0.0
        return (self._ended or time.perf_counter()) - self._started

    def _run(self):
        """The work; returns "stopped" when a stop request cut it short."""
        raise NotImplementedError

    def _work(self):
        try:
            outcome = self._run()
        except BrainFuseError as err:
            self._end("failed", one_line(err))
        except Exception as err:  # noqa: BLE001 - shown to the user as one line; the traceback goes to the log
            log.exception("%s failed", self.name)
            self._end("failed", one_line(f"{type(err).__name__}: {err}"))
        else:
            self._end("stopped" if outcome == "stopped" else "finished")

    def _end(self, state, error=""):
        self._ended = time.perf_counter()
        self.error, self.phase, self.state = error, "", state


def one_line(message):
    return " ".join(str(message).split())
