"""The Deploy pane's figures: the core map, the power breakdown, and float-vs-chip traces and rasters.

The figures are made once per pane and refilled (their sources' ``data`` replaced) after each
deployment, from the pane's periodic callback, so the worker thread never changes a Bokeh model.
Each function takes plain data (lists, dicts, arrays); the pane turns a ``Deployment`` into it.
"""

import numpy as np
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, Range1d, Span
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from .deploy_results import watts_text

TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
VIOLATION = "#d62728"
FLOAT_COLOUR, CHIP_COLOUR = "#1f77b4", "#ff7f0e"
# A raster of more spikes than this shows an even subsample of them: the browser draws every glyph.
MAX_RASTER_SPIKES = 20_000
MAX_TRACES = 8
UNITS = (("W", 1.0), ("mW", 1e-3), ("µW", 1e-6), ("nW", 1e-9))


def _figure(title, x_label, y_label, height=240, **kwargs):
    fig = figure(title=title, x_axis_label=x_label, y_axis_label=y_label, height=height, sizing_mode="stretch_width",
                 tools=TOOLS, **kwargs)
    fig.toolbar.logo = None
    return fig


def population_colours(names):
    return {name: Category10_10[k % len(Category10_10)] for k, name in enumerate(names)}


class CoreMap:
    """One bar per core: its utilisation (the most used of its limits, 1 = full), coloured by the population on
    it; a core breaking a limit is drawn in red with its reason in the tooltip. ``rows``: dicts with
    "core", "chip", "population", "utilisation", "detail" (text) and "violation" (text, empty if none)."""

    def __init__(self):
        self.source = ColumnDataSource({key: [] for key in ("core", "chip", "population", "utilisation", "shown", "colour",
                                                            "line", "detail", "violation")}, name="bf-deploy-cores")
        self.figure = _figure("Core map: utilisation per core", "core", "utilisation (1 = full)", height=260,
                              x_range=Range1d(-0.7, 0.7), y_range=Range1d(0, 1.1))
        self.figure.vbar(x="core", top="shown", width=0.85, fill_color="colour", line_color="line", line_width=2,
                         source=self.source, legend_field="population")
        self.figure.add_layout(Span(location=1, dimension="width", line_color="#555555", line_dash="dashed"))
        self.figure.add_tools(HoverTool(tooltips=[("core", "@core (chip @chip)"), ("population", "@population"),
                                                  ("utilisation", "@utilisation{0.0%}"), ("", "@detail"),
                                                  ("violation", "@violation")]))
        self.figure.xaxis.ticker.min_interval = 1
        self.figure.add_layout(self.figure.legend[0], "right")

    def show(self, rows):
        colours = population_colours(dict.fromkeys(row["population"] for row in rows))
        utilisation = [float(row["utilisation"]) for row in rows]
        bad = [bool(row["violation"]) for row in rows]
        self.source.data = {
            "core": [int(row["core"]) for row in rows], "chip": [int(row["chip"]) for row in rows],
            "population": [str(row["population"]) for row in rows], "utilisation": utilisation,
            # A bar over the top of the axis is still seen as full; the tooltip keeps the true value.
            "shown": [min(u, 1.08) for u in utilisation],
            "colour": [VIOLATION if b else colours[row["population"]] for row, b in zip(rows, bad)],
            "line": [VIOLATION if b else "white" for b in bad],
            "detail": [str(row.get("detail", "")) for row in rows], "violation": [str(row["violation"] or "") for row in rows],
        }
        self.figure.x_range.start, self.figure.x_range.end = -0.7, max(1, len(rows)) - 0.3


class PowerChart:
    """The typical power's breakdown (W per component) as horizontal bars."""

    def __init__(self):
        self.source = ColumnDataSource({"part": [], "watts": [], "text": []}, name="bf-deploy-power-breakdown")
        self.figure = _figure("Power breakdown (typical)", "W", "", height=220, x_range=Range1d(0, 1),
                              y_range=FactorRange())
        self.figure.hbar(y="part", right="watts", height=0.7, color="#3b6ea8", source=self.source)
        self.figure.text(x="watts", y="part", text="text", source=self.source, text_font_size="9pt", x_offset=4,
                         text_baseline="middle")

    def show(self, breakdown):
        """Draw ``breakdown`` {component: W}, the axis in the unit of its largest part."""
        parts = sorted(breakdown.items(), key=lambda item: item[1])
        top = max([float(w) for _, w in parts] + [1e-12])
        unit, scale = next(((u, s) for u, s in UNITS if top >= s), UNITS[-1])
        self.figure.y_range.factors = [name for name, _ in parts]
        self.source.data = {"part": [name for name, _ in parts], "watts": [float(w) / scale for _, w in parts],
                            "text": [watts_text(w) for _, w in parts]}
        self.figure.x_range.end = top / scale * 1.4
        self.figure.xaxis.axis_label = unit


class Comparison:
    """Float run (left) and chip run (right) side by side on shared axes: probed traces above, spike rasters below."""

    def __init__(self):
        self.trace_float = _figure("Float model: probed traces", "time (ms)", "value", height=230)
        self.trace_chip = _figure("Chip (fixed point): probed traces", "time (ms)", "value", height=230,
                                  x_range=self.trace_float.x_range, y_range=self.trace_float.y_range)
        self.raster_float = _figure("Float model: spikes", "time (ms)", "cell", height=230,
                                    x_range=self.trace_float.x_range)
        self.raster_chip = _figure("Chip: spikes", "time (ms)", "cell", height=230, x_range=self.trace_float.x_range,
                                   y_range=self.raster_float.y_range)
        self.trace_sources = {}
        for side, fig, colour in (("float", self.trace_float, FLOAT_COLOUR), ("chip", self.trace_chip, CHIP_COLOUR)):
            source = ColumnDataSource({"t": [], "v": [], "label": []}, name=f"bf-deploy-traces-{side}")
            fig.multi_line(xs="t", ys="v", source=source, color=colour, line_width=1.2)
            fig.add_tools(HoverTool(tooltips=[("trace", "@label")]))
            self.trace_sources[side] = source
        self.raster_sources = {}
        for side, fig in (("float", self.raster_float), ("chip", self.raster_chip)):
            source = ColumnDataSource({"t": [], "cell": [], "colour": []}, name=f"bf-deploy-raster-{side}")
            fig.scatter("t", "cell", source=source, marker="dash", angle=np.pi / 2, size=5, color="colour")
            self.raster_sources[side] = source

    def show(self, traces, spikes, sizes, value_label="value"):
        """``traces[side]``: (t ms, {label: values}) with values in ``value_label``; ``spikes[side]``: {population:
        (times ms, cells)}; ``sizes``: {population: cells} (the rasters' rows, one block per population)."""
        for fig in (self.trace_float, self.trace_chip):
            fig.yaxis.axis_label = value_label
        for side, (t, values) in traces.items():
            labels = list(values)[:MAX_TRACES]
            self.trace_sources[side].data = {"t": [np.asarray(t, dtype=float)] * len(labels),
                                             "v": [np.asarray(values[k], dtype=float) for k in labels], "label": labels}
        offsets = dict(zip(sizes, np.cumsum([0] + list(sizes.values()))))
        colours = population_colours(sizes)
        for side, by_population in spikes.items():
            times, rows, colour = [], [], []
            for name, (t, cells) in by_population.items():
                times.append(np.asarray(t, dtype=float))
                rows.append(np.asarray(cells, dtype=float) + offsets.get(name, 0))
                colour += [colours.get(name, "#333333")] * len(t)
            t = np.concatenate(times) if times else np.empty(0)
            cells = np.concatenate(rows) if rows else np.empty(0)
            keep = _thin(len(t))
            self.raster_sources[side].data = {"t": t[keep], "cell": cells[keep], "colour": list(np.asarray(colour)[keep])}
        self.raster_float.y_range.start, self.raster_float.y_range.end = -0.5, max(1, sum(sizes.values())) - 0.5
        rows = ", ".join(f"{name} {offsets[name]}–{offsets[name] + n - 1}" for name, n in sizes.items())
        for fig in (self.raster_float, self.raster_chip):
            fig.yaxis.axis_label = f"cell ({rows})"
        side = {"float": "float model", "chip": "chip"}
        for name, fig in (("float", self.raster_float), ("chip", self.raster_chip)):
            count = sum(len(t) for t, _ in spikes.get(name, {}).values())
            shown = min(count, MAX_RASTER_SPIKES)
            fig.title.text = f"{side[name].capitalize()}: {count} spikes" + (f" ({shown} drawn)" if shown < count else "")


def _thin(count):
    if count <= MAX_RASTER_SPIKES:
        return slice(None)
    return np.linspace(0, count - 1, MAX_RASTER_SPIKES).astype(int)

