"""Run the cell being built: a current step at the soma, simulated by the core in a worker thread,
drawn live as a voltage-coloured shape plot, a space–time image along a path and soma/tip traces.

A periodic callback of the session draws what the run has produced so far, so the page stays
live while the core works. Units: nA, ms, mV.
"""

import panel as pn

from brainfuse_core.errors import BrainFuseError

from ..bokeh_updates import served_document
from ..views.shape_plot import ShapePlot
from . import cell_builder_geometry as geometry
from .cell_builder_run import CellRun, Step
from .fields import parse_number

REFRESH_MS = 100


class CellRunPanel:
    """Run controls and live views for the builder's cell. ``run`` is the latest CellRun (read by tests)."""

    def __init__(self, workbench, builder):
        self.workbench, self.builder = workbench, builder
        self.run = None
        self.updates = 0
        self._callback = None
        self.inputs = {
            "amp": pn.widgets.TextInput(label="Step (nA)", value="1", width=90, css_classes=["bf-step-amp"]),
            "delay": pn.widgets.TextInput(label="from (ms)", value="1", width=90, css_classes=["bf-step-delay"]),
            "dur": pn.widgets.TextInput(label="for (ms)", value="2", width=90, css_classes=["bf-step-dur"]),
            "tstop": pn.widgets.TextInput(label="Run (ms)", value="20", width=90, css_classes=["bf-step-tstop"]),
        }
        self.tip = pn.widgets.Select(label="Path to tip", width=160, css_classes=["bf-path-tip"])
        self.run_button = pn.widgets.Button(label="Run cell", color="primary", align="end", css_classes=["bf-run-cell"])
        self.run_button.on_click(lambda event: self.start())
        self.stop_button = pn.widgets.Button(label="Stop", align="end", disabled=True, css_classes=["bf-stop-cell"])
        self.stop_button.on_click(lambda event: self.stop())
        self.status = pn.pane.Markdown("Not run yet.", css_classes=["bf-cell-run-status"], margin=(0, 10))
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["bf-cell-run-error"])
        self.plot = ShapePlot()
        self.replay = pn.widgets.FloatSlider(label="Replay t (ms)", start=0, end=1, step=0.025, value=0, width=420,
                                             disabled=True, css_classes=["bf-replay"])
        self.replay.param.watch(self._replayed, "value")
        document = served_document()
        if document is not None:
            document.on_session_destroyed(lambda context: self.stop())

    def refresh(self):
        """Offer the tips of the current cell as path ends (the farthest first chosen)."""
        morphology = self.workbench.document["cells"][self.builder.current_cell()]["morphology"]
        tips = geometry.tips(morphology)
        if self.tip.options != tips:
            old = self.tip.value
            self.tip.options = tips
            self.tip.value = old if old in tips else max(tips, key=lambda t: _path_length(morphology, t))

    def step(self):
        """The Step the fields describe; ValueError names the bad field."""
        bounds = {"amp": {}, "delay": dict(minimum=0), "dur": dict(minimum=0), "tstop": dict(exclusive_minimum=0)}
        values = {}
        for key, widget in self.inputs.items():
            try:
                values[key] = parse_number(widget.value, **bounds[key])
            except ValueError as err:
                raise ValueError(f"{widget.label}: {err}") from None
        return Step(**values)

    def start(self):
        self.stop()
        cell = self.builder.current_cell()
        try:
            step = self.step()
            run = CellRun(self.workbench.document, cell, self.tip.value, step)
        except (BrainFuseError, ValueError, KeyError) as err:
            self.error.param.update(object=f"cannot run: {err}", visible=True)
            return None
        self.error.visible = False
        self.replay.disabled = True
        morphology = self.workbench.document["cells"][cell]["morphology"]
        drawn = geometry.layout(morphology, self.builder.angles_of(cell))
        pieces = geometry.segment_pieces(drawn, morphology, run.cell.layout)
        root = next(name for name, section in morphology.items() if "parent" not in section)
        box = geometry.bounds(drawn, morphology, margin=0.05, minimum=50.0)
        self.plot.set_cell(pieces, box, drawn[root].at(0.5), drawn[run.tip].at(1.0), step.tstop)
        self.run = run.start()
        self.stop_button.disabled = False
        if self._callback is None and served_document() is not None:
            self._callback = pn.io.PeriodicCallback(callback=self._refresh, period=REFRESH_MS, log=False)
            self._callback.start()
        return run

    def stop(self):
        if self.run is not None and not self.run.done:
            self.run.stop()

    def _refresh(self):
        run = self.run
        if run is None:
            return
        ended = run.done
        with pn.io.hold():
            self.plot.show(run)
            self.updates += 1
            self.status.object = f"{run.state}: t = {run.time:.2f} ms of {run.step.tstop:g} ms"
            if run.state == "failed":
                self.error.param.update(object=run.error, visible=True)
        if ended:
            self.stop_button.disabled = True
            self.replay.param.update(start=0.0, end=float(run.t[run.filled - 1]), step=run.every * run.dt,
                                     value=float(run.t[run.filled - 1]), disabled=False)
            if self._callback is not None:
                self._callback.stop()
                self._callback = None

    def _replayed(self, event):
        """Colour the shape plot as it was at the chosen time of the finished run."""
        run = self.run
        if run is None or not run.done or self.replay.disabled:
            return
        column = int(round(event.new / (run.every * run.dt)))
        self.plot.show_sample(run, min(max(column, 0), run.filled - 1))

    def view(self):
        controls = pn.Row(*self.inputs.values(), self.tip, self.run_button, self.stop_button)
        plots = pn.Row(pn.Column(pn.pane.Bokeh(self.plot.shape), self.replay),
                       pn.Column(pn.pane.Bokeh(self.plot.spacetime), pn.pane.Bokeh(self.plot.traces)))
        return pn.Column(controls, self.status, self.error, plots, sizing_mode="stretch_width")


def _path_length(morphology, tip):
    return sum(morphology[name]["length"] for name in geometry.path_to(morphology, tip))
