"""The Simulate pane: run the session's project and watch it live.

Run / Pause (Resume) / Stop, the run duration (the project's ``run.duration``, edited through the
workbench), how many cells of each population to show, a progress bar and a sim-time/wall-time
readout, and three streaming figures (voltage traces, spike raster, population rates). The
simulation runs in the session's ``Runner`` thread; a periodic callback of this session drains
what it produced into the figures, so the server's event loop never waits for the simulation.
"""


import panel as pn

from ..bokeh_updates import served_document
from ..editors.fields import BoundField, parse_number
from .live_plots import LivePlots
from .paced_refresh import PacedRefresh
from .runner import MAX_TRACES, Runner, TracePlan, simulated_populations

REFRESH_MS = 50
DEFAULT_SHOWN = 5


def default_counts(n_populations):
    """Cells to show per population before the user chooses: ``DEFAULT_SHOWN`` traces shared out in order,
    and at least one of every population, so a layered network shows each of its layers."""
    share, extra = divmod(DEFAULT_SHOWN, max(n_populations, 1))
    return [max(1, share + (k < extra)) for k in range(n_populations)]


def _populations(document):
    """[(name, cells)] of the document's simulated populations (spike sources have no voltage)."""
    return [(name, entry["n"]) for name, entry in document["circuit"]["populations"].items() if "cell" in entry]


class CellCount:
    """How many cells of one population to show, with its inline error."""

    def __init__(self, population, size, count):
        self.population, self.size, self.count = population, size, count
        self.limit = min(size, MAX_TRACES)
        self.input = pn.widgets.TextInput(label=f"{population}: cells to show (of {size})", value=str(count), width=200,
                                          css_classes=["bf-record-count"])
        self.error = pn.pane.Markdown("", visible=False, css_classes=["bf-record-error"], styles={"color": "#b00020"},
                                      margin=(0, 10))
        self.input.param.watch(self._entered, "value")

    def _entered(self, event):
        try:
            self.count = parse_number(event.new, integer=True, minimum=0, maximum=self.limit)
        except ValueError as err:
            self.error.param.update(object=f"⚠ {err}", visible=True)
            return
        self.error.param.update(object="", visible=False)

    @property
    def valid(self):
        return not self.error.visible

    def view(self):
        return pn.Column(self.input, self.error, margin=0)


class SimulatePane:
    """The Simulate tab of one session. ``runner.state`` and ``raster_spike_count()`` are read by tests."""

    def __init__(self, workbench):
        self.workbench = workbench
        self.runner = Runner()
        self.updates = 0
        self.duration = BoundField(workbench, "Duration (ms)", read=lambda doc: doc["run"]["duration"],
                                   write=lambda doc, value: doc["run"].__setitem__("duration", value),
                                   parse=lambda text: parse_number(text, exclusive_minimum=0), css_class="bf-duration")
        self.counts = {}
        self.count_box = pn.Column(margin=0)
        self.run_button = pn.widgets.Button(label="Run", color="primary", width=90, css_classes=["bf-run"])
        self.pause_button = pn.widgets.Button(label="Pause", width=90, disabled=True, css_classes=["bf-pause"])
        self.stop_button = pn.widgets.Button(label="Stop", color="danger", width=90, disabled=True,
                                             css_classes=["bf-stop"])
        self.run_button.on_click(self._run)
        self.pause_button.on_click(self._pause)
        self.stop_button.on_click(self._stop)
        self.progress = pn.indicators.Progress(value=0, max=100, bar_color="primary", sizing_mode="stretch_width",
                                               css_classes=["bf-progress"])
        self.status = pn.pane.Markdown("", css_classes=["bf-sim-status"], margin=(0, 10))
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["bf-sim-error"])
        self._shown_state = None
        workbench.param.watch(self._document_changed, "revision")
        self._document_changed()
        self.plots = self._empty_plots()
        self.trace_pane = pn.pane.Bokeh(self.plots.traces, sizing_mode="stretch_width", css_classes=["bf-traces"])
        self.raster_pane = pn.pane.Bokeh(self.plots.raster, sizing_mode="stretch_width", css_classes=["bf-raster"])
        self.rate_pane = pn.pane.Bokeh(self.plots.rates, sizing_mode="stretch_width", css_classes=["bf-rates"])
        doc = served_document()
        self.pacer = PacedRefresh(self._refresh, REFRESH_MS, served=doc is not None)
        if doc is not None:
            doc.on_session_destroyed(lambda context: self.runner.stop())

    # ------------------------------------------------------------------ reading
    def raster_spike_count(self):
        """Spikes the raster holds for the current (or last) run: drawn, or arriving with the next refresh."""
        run = self.runner.run
        return run.data.spike_count if run is not None else 0

    # ------------------------------------------------------------------ document
    def _document_changed(self, *events):
        self.duration.refresh()
        populations = _populations(self.workbench.document)
        if [(c.population, c.size) for c in self.counts.values()] != populations:
            old = self.counts
            self.counts = {}
            defaults = default_counts(len(populations))
            for k, (name, size) in enumerate(populations):
                count = old[name].count if name in old else defaults[k]
                self.counts[name] = CellCount(name, size, min(count, size, MAX_TRACES))
            self.count_box.objects = [count.view() for count in self.counts.values()]
        self._show()

    # ------------------------------------------------------------------ actions
    def _run(self, event=None):
        if self.duration.error.visible or not all(count.valid for count in self.counts.values()):
            self._fail("fix the fields marked ⚠ before running")
            return
        self.error.visible = False
        self._shown_state = None
        build = self.workbench.project().build()
        plan = self._plan(build)
        run = self.runner.start(build, build.run.duration, plan)
        self.plots = LivePlots(run.duration, plan.labels, simulated_populations(build))
        self.trace_pane.object, self.raster_pane.object, self.rate_pane.object = (
            self.plots.traces, self.plots.raster, self.plots.rates)
        self.pacer.start()
        self._show()

    def _pause(self, event=None):
        if self.runner.state == "paused":
            self.runner.resume()
        else:
            self.runner.pause()
        self._show()

    def _stop(self, event=None):
        self.runner.stop()
        self.stop_button.disabled = True
        self.pause_button.disabled = True

    # ------------------------------------------------------------------ live refresh
    def _refresh(self):
        """Periodic: stream what the run produced since the last refresh; stop refreshing once it has ended."""
        run = self.runner.run
        if run is None or self.pacer.page_busy():
            return
        ended = run.done
        with pn.io.hold():
            if self.plots.push(run.data.drain()):
                self.updates += 1
            self._show()
            self.pacer.count_batch()
        self.pacer.updated(ended)

    def _show(self):
        run = self.runner.run
        state = self.runner.state
        if run is None:
            document = self.workbench.document
            self.status.object = (f"Not run yet: {document['run']['duration']:g} ms at dt = {document['run']['dt']:g} ms")
            return
        data = run.data
        wall = run.wall_s
        speed = f", {data.time / 1000 / wall:.3g} × real time" if wall > 0 and data.time > 0 else ""
        hidden = f" ({run.plan.hidden} more traces not shown)" if run.plan.hidden else ""
        self.status.object = (f"{state}: sim t = {data.time:.1f} ms / {run.duration:g} ms, wall {wall:.1f} s{speed}"
                              f"{hidden}")
        self.progress.value = int(100 * data.fraction_done)
        if state != self._shown_state:
            self._shown_state = state
            active = state in ("running", "paused")
            self.pause_button.param.update(label="Resume" if state == "paused" else "Pause", disabled=not active)
            self.stop_button.disabled = not active
            if state == "failed":
                self._fail(run.error)

    def _fail(self, message):
        self.error.param.update(object=message, visible=True)

    def _plan(self, build):
        return TracePlan(build, {name: count.count for name, count in self.counts.items()})

    def _empty_plots(self):
        """Figures to show before the first run: the traces a run would show, no data yet."""
        build = self.workbench.project().build()
        return LivePlots(build.run.duration, self._plan(build).labels, simulated_populations(build))

    def view(self):
        controls = pn.Column(
            self.duration.view(), pn.pane.Markdown("**Voltage traces**", margin=(5, 10, 0, 10)), self.count_box,
            pn.Row(self.run_button, self.pause_button, self.stop_button), self.progress, self.status, self.error,
            self.pacer.feedback, width=330,
        )
        plots = pn.Column(self.trace_pane, self.raster_pane, self.rate_pane, sizing_mode="stretch_width")
        return pn.Row(controls, plots, sizing_mode="stretch_width")
