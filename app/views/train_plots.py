"""The Train pane's figures: live loss and accuracy per batch (one line per neuron type, streamed),
and the HH-vs-LIF comparison (test accuracy per neuron type; accuracy per corruption severity when
the job evaluated corrupted test sets); and a fit's figures (loss per evaluation, n∞ true vs fitted).

Each job gets new figures (its neuron types may differ), which also clears the previous job's.
The curves are fed by ``ColumnDataSource.stream`` from the pane's periodic callback, the only place
that touches them while the page is served, so the worker thread never changes a Bokeh model.
"""

import numpy as np
from bokeh.models import ColumnDataSource, FactorRange, Range1d
from bokeh.plotting import figure

from .train_run import NEURON_LABELS

# As in the experiments' saved plots (matplotlib's tab:red and tab:blue).
COLOURS = {"hh": "#d62728", "lif": "#1f77b4"}
FIT_COLOUR = "#2ca02c"
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
ROLLOVER = 100_000


def _figure(title, x_label, y_label, height=230, **kwargs):
    fig = figure(title=title, x_axis_label=x_label, y_axis_label=y_label, height=height, sizing_mode="stretch_width",
                 tools=TOOLS, **kwargs)
    fig.toolbar.logo = None
    return fig


def _line(fig, source, y, neuron):
    line = fig.line("step", y, source=source, color=COLOURS[neuron], line_width=1.5, legend_label=NEURON_LABELS[neuron])
    line.update(selection_glyph=None, nonselection_glyph=None, muted_glyph=None)
    return line


class TrainingPlots:
    """The figures of one job training ``neurons`` (a list of "hh", "lif")."""

    def __init__(self, neurons):
        self.neurons = list(neurons)
        self.loss = _figure("Training loss (per batch)", "batch", "loss (cross-entropy)")
        self.accuracy = _figure("Training accuracy (per batch)", "batch", "accuracy", y_range=Range1d(0, 1.02))
        self.sources = {n: ColumnDataSource({"step": np.empty(0), "loss": np.empty(0), "accuracy": np.empty(0)},
                                            name=f"bf-train-{n}") for n in self.neurons}
        for neuron, source in self.sources.items():
            _line(self.loss, source, "loss", neuron)
            _line(self.accuracy, source, "accuracy", neuron)
        for fig in (self.loss, self.accuracy):
            fig.legend.location = "top_right" if fig is self.loss else "bottom_right"
            fig.legend.click_policy = "hide"
        labels = [NEURON_LABELS[n] for n in self.neurons]
        self.comparison = _figure("HH vs LIF: test accuracy", "neuron type", "accuracy", height=220,
                                  x_range=FactorRange(*labels), y_range=Range1d(0, 1.02))
        self.comparison_source = ColumnDataSource({"neuron": [], "accuracy": [], "colour": [], "text": []},
                                                  name="bf-train-comparison")
        self.comparison.vbar(x="neuron", top="accuracy", width=0.6, color="colour", source=self.comparison_source)
        self.comparison.text(x="neuron", y="accuracy", text="text", source=self.comparison_source,
                             text_align="center", text_baseline="bottom", text_font_size="9pt")
        self.severity = _figure("Accuracy vs corruption severity", "severity (0 = clean; mean over corruptions)", "accuracy",
                                height=220, x_range=Range1d(-0.2, 5.2), y_range=Range1d(0, 1.02))
        self.severity_sources = {n: ColumnDataSource({"severity": [], "accuracy": []}) for n in self.neurons}
        for neuron, source in self.severity_sources.items():
            self.severity.line("severity", "accuracy", source=source, color=COLOURS[neuron], line_width=2,
                               legend_label=NEURON_LABELS[neuron])
            self.severity.scatter("severity", "accuracy", source=source, color=COLOURS[neuron], size=6)
        self.severity.legend.location = "top_right"
        self.severity.visible = False

    def push(self, points):
        """Stream {neuron: [(step, loss, accuracy), ...]}; returns whether anything was new."""
        for neuron, rows in points.items():
            step, loss, accuracy = np.array(rows, dtype=float).T
            self.sources[neuron].stream({"step": step, "loss": loss, "accuracy": accuracy}, rollover=ROLLOVER)
        return bool(points)

    def show_results(self, results):
        """Draw ``results`` {neuron: {"clean": test accuracy, "corrupted": {corruption: {severity: accuracy}}}}:
        a bar per neuron type, and accuracy against severity (mean over corruptions; 0 = clean) when evaluated."""
        shown = [n for n in self.neurons if (results.get(n) or {}).get("clean") is not None]
        accuracies = [float(results[n]["clean"]) for n in shown]
        self.comparison_source.data = {"neuron": [NEURON_LABELS[n] for n in shown], "accuracy": accuracies,
                                       "colour": [COLOURS[n] for n in shown], "text": [f"{a:.3f}" for a in accuracies]}
        evaluated = False
        for neuron in shown:
            corrupted = results[neuron].get("corrupted") or {}
            if not corrupted:
                continue
            evaluated = True
            by_severity = {}
            for severities in corrupted.values():
                for severity, accuracy in severities.items():
                    by_severity.setdefault(int(severity), []).append(float(accuracy))
            ordered = [(0, float(results[neuron]["clean"]))] + [(s, float(np.mean(a))) for s, a in sorted(by_severity.items())]
            self.severity_sources[neuron].data = {"severity": [s for s, _ in ordered], "accuracy": [a for _, a in ordered]}
        self.severity.visible = evaluated

    def points(self, neuron):
        """(steps, losses, accuracies) drawn so far for ``neuron``."""
        data = self.sources[neuron].data
        return np.asarray(data["step"]), np.asarray(data["loss"]), np.asarray(data["accuracy"])


class FitPlots:
    """The figures of a fit: the loss of every evaluation (log scale; it jumps where the fitted horizon
    grows) and the tabulated n∞ control points, true against the latest fitted values."""

    def __init__(self):
        self.loss = _figure("Fit loss per evaluation", "evaluation", "loss (mV²)", y_axis_type="log")
        self.source = ColumnDataSource({"step": np.empty(0), "loss": np.empty(0)}, name="bf-fit-loss")
        line = self.loss.line("step", "loss", source=self.source, color=FIT_COLOUR, line_width=1.5)
        line.update(selection_glyph=None, nonselection_glyph=None, muted_glyph=None)
        self.n_inf = _figure("K⁺ gate n∞ at its control points", "V (mV)", "n∞", y_range=Range1d(0, 1.02))
        self.n_inf_source = ColumnDataSource({"v": [], "true": [], "fitted": []}, name="bf-fit-n-inf")
        self.n_inf.scatter("v", "true", source=self.n_inf_source, color="black", size=8, legend_label="true")
        self.n_inf.line("v", "fitted", source=self.n_inf_source, color=FIT_COLOUR, line_width=2, legend_label="fitted")
        self.n_inf.scatter("v", "fitted", source=self.n_inf_source, color=FIT_COLOUR, size=6)
        self.n_inf.legend.location = "top_left"

    def push(self, points):
        """Stream [(evaluation, loss), ...]; returns whether anything was new."""
        if not points:
            return False
        step, loss = np.array(points, dtype=float).T
        self.source.stream({"step": step, "loss": loss}, rollover=ROLLOVER)
        return True

    def show_n_inf(self, n_inf):
        """Draw (points mV, true, fitted) n∞; None leaves the figure as it is."""
        if n_inf is not None:
            points, true, fitted = n_inf
            self.n_inf_source.data = {"v": list(points), "true": list(true), "fitted": list(fitted)}
