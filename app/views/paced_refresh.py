"""Periodic refreshes of a pane while its worker runs, paced by the page (Simulate, Train, Deploy).

Each refresh sends one batch of updates and counts it on ``feedback`` (a ``PageFeedback`` the pane
places in its layout); the page echoes the count once it has applied the batch. With ``IN_FLIGHT``
batches unconfirmed a refresh waits, so a slow browser gets fewer, larger updates instead of a
growing queue; a confirmation missing for ``ACK_TIMEOUT_S`` counts as lost, so the views can be
delayed but never frozen. Unserved (tests, benchmarks) nothing waits.
"""

import time

import panel as pn

from .live_plots import PageFeedback

# Two batches in flight keep the page busy while a confirmation travels back, without a queue.
IN_FLIGHT = 2
ACK_TIMEOUT_S = 2.0


class PacedRefresh:
    """Calls ``refresh`` every ``period_ms`` ms from ``start()`` until ``updated(ended=True)`` or ``stop()``."""

    def __init__(self, refresh, period_ms, served):
        self.feedback = PageFeedback(width=0, height=0, margin=0)
        self.served = served
        self._refresh, self._period_ms = refresh, period_ms
        self._sent_at = 0.0
        self._callback = None

    def start(self):
        if self._callback is None:
            self._callback = pn.io.PeriodicCallback(callback=self._refresh, period=self._period_ms, log=False)
            self._callback.start()

    def stop(self):
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def page_busy(self):
        """Whether a served page is still applying earlier batches."""
        waiting = self.feedback.sent - self.feedback.seen >= IN_FLIGHT
        return self.served and waiting and time.monotonic() - self._sent_at < ACK_TIMEOUT_S

    def count_batch(self):
        """Inside the batch's ``pn.io.hold()``: the page confirms it with the rest."""
        self.feedback.sent += 1

    def updated(self, ended):
        """After a batch went out; ``ended``: the worker is done, so refreshing stops."""
        self._sent_at = time.monotonic()
        if ended:
            self.stop()
