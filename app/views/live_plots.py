"""The streaming figures of one run (membrane voltage traces, spike raster, population rates), and
the page-side helper that confirms updates and tells whether the browser's WebGL is hardware.

Each figure is fed by ``ColumnDataSource.stream``, so a refresh sends only the new points to the
browser; rollover bounds what a long run keeps. A new run gets new figures (the number of traces
and populations may differ), which also clears the old run.

Backends: BokehJS draws every WebGL glyph into its own layer and copies that layer onto the
figure's canvas on every frame. The raster is one WebGL scatter (tens of thousands of points; one
glyph for all populations keeps it to one copy per frame). Traces (one line each) and rates draw
on the plain canvas, where many lines cost less than one layer copy per line. Where the browser's
WebGL is emulated in software (headless or GPU-less machines), that copy stalls the page for
hundreds of ms, so there the raster draws on the canvas too.
"""

import numpy as np
import param
from bokeh.models import ColumnDataSource, FixedTicker, LinearColorMapper, Range1d, Span
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from panel.custom import JSComponent

from .runner import MAX_TRACE_POINTS

RASTER_ROLLOVER = 200_000
RATE_ROLLOVER = 10_000
LEGEND_TRACES = 10
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def _figure(title, y_label, duration, height, backend="canvas", y_range=None):
    fig = figure(title=title, x_axis_label="t (ms)", y_axis_label=y_label, x_range=Range1d(0, duration),
                 height=height, sizing_mode="stretch_width", output_backend=backend, tools=TOOLS)
    if y_range is not None:
        fig.y_range = y_range
    fig.toolbar.logo = None
    return fig


def _columns(names):
    """Empty float columns: streamed NumPy arrays are then appended as arrays and sent in binary."""
    return {name: np.empty(0) for name in names}


def _colour(k):
    return Category10_10[k % len(Category10_10)]


def _legend_outside(fig):
    """Move the figure's legend to the right of the plot, so it never hides data."""
    if fig.legend:
        legend = fig.legend[0]
        legend.click_policy = "hide"
        legend.label_text_font_size = "8pt"
        legend.spacing = 0
        fig.center.remove(legend)
        fig.add_layout(legend, "right")


class LivePlots:
    """Figures for a run of ``duration`` ms showing traces named ``labels`` and the spikes and rates of
    ``populations`` [(name, cells)], stacked in the raster in that order."""

    def __init__(self, duration, labels, populations, raster_backend="webgl"):
        self.labels, self.populations = list(labels), list(populations)
        self.streamed_spikes = 0
        self.traces = _figure("Membrane voltage", "V (mV)", duration, 260)
        self.trace_source = ColumnDataSource(_columns(["t"] + [f"v{k}" for k in range(len(self.labels))]),
                                             name="bf-trace-source")
        for k, label in enumerate(self.labels):
            extra = {"legend_label": label} if len(self.labels) <= LEGEND_TRACES else {}
            self.traces.line("t", f"v{k}", source=self.trace_source, color=_colour(k), line_width=1.2, **extra)
        self.raster = self._raster(duration, raster_backend)
        self.rates = _figure("Population rate", "rate (Hz)", duration, 200)
        self.rate_source = ColumnDataSource(_columns(["t"] + [f"r{k}" for k in range(len(self.populations))]),
                                            name="bf-rate-source")
        for k, (name, _) in enumerate(self.populations):
            self.rates.line("t", f"r{k}", source=self.rate_source, color=_colour(k), line_width=1.5, legend_label=name)
        _legend_outside(self.traces)
        _legend_outside(self.rates)

    def _raster(self, duration, backend):
        """One scatter for every population, coloured by population; the y axis names each band of rows."""
        total = sum(n for _, n in self.populations)
        fig = _figure("Spike raster", "cell (stacked by population)", duration, 320, backend=backend,
                      y_range=Range1d(-0.5, max(total, 1) - 0.5))
        self.raster_source = ColumnDataSource(_columns(["t", "y", "p"]), name="bf-raster-source")
        colours = [_colour(k) for k in range(max(1, len(self.populations)))]
        mapper = LinearColorMapper(palette=colours, low=-0.5, high=len(colours) - 0.5)
        fig.scatter("t", "y", source=self.raster_source, marker="square", size=2, line_color=None,
                    fill_color={"field": "p", "transform": mapper})
        middles, offset = {}, 0
        for name, n in self.populations:
            middles[offset + (n - 1) / 2] = name
            if offset:
                fig.add_layout(Span(location=offset - 0.5, dimension="width", line_color="#999999", line_dash="dashed"))
            offset += n
        fig.yaxis.ticker = FixedTicker(ticks=list(middles))
        fig.yaxis.major_label_overrides = dict(middles)
        return fig

    def push(self, update):
        """Stream an Update's new points into the figures; returns whether anything was new."""
        if update.empty:
            return False
        if len(update.trace_t) and self.labels:
            columns = {"t": update.trace_t, **{f"v{k}": row for k, row in enumerate(update.trace_v)}}
            self.trace_source.stream(columns, rollover=MAX_TRACE_POINTS + 4)
        index = {name: k for k, (name, _) in enumerate(self.populations)}
        spikes = [(times, rows, np.full(len(times), index[name])) for name, (times, rows) in update.spikes.items() if len(times)]
        if spikes:
            times, rows, populations = (np.concatenate(part) for part in zip(*spikes))
            self.raster_source.stream({"t": times, "y": rows.astype(float), "p": populations}, rollover=RASTER_ROLLOVER)
            self.streamed_spikes += len(times)
        if len(update.rate_t):
            columns = {"t": update.rate_t, **{f"r{k}": row for k, row in enumerate(update.rates)}}
            self.rate_source.stream(columns, rollover=RATE_ROLLOVER)
        return True


class PageFeedback(JSComponent):
    """What the page tells the server about itself: every update also sets ``sent`` and the page echoes
    it into ``seen`` once it has applied that update (flow control: a slow browser gets fewer, larger
    updates instead of an ever longer queue); ``software_webgl`` says whether the browser's WebGL is
    emulated on the CPU."""

    sent = param.Integer(default=0)
    seen = param.Integer(default=0)
    software_webgl = param.Boolean(default=False)

    _esm = """
    function softwareWebgl() {
      const gl = document.createElement("canvas").getContext("webgl")
      if (!gl) return true
      const info = gl.getExtension("WEBGL_debug_renderer_info")
      const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER))
      return /swiftshader|llvmpipe|softpipe|software/i.test(renderer)
    }

    export function render({ model }) {
      model.software_webgl = softwareWebgl()
      model.on("sent", () => { model.seen = model.sent })
      return document.createElement("span")
    }
    """
