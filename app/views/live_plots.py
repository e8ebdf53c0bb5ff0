"""The streaming figures of one run (membrane voltage traces, spike raster, population rates), and
the page-side helper that confirms updates.

Traces and rates are fed by ``ColumnDataSource.stream``, so a refresh sends only the new points to
the browser; rollover bounds what a long run keeps. The raster is an image of spike counts per
(cell row, time bin) for each population: a scatter of every spike costs the page a repaint that
grows with the run (about 100 ms for 30k points on a CPU-drawn canvas, several times that with
software WebGL), while an image sized to the figure costs the same at any network size. A new run
gets new figures (the number of traces and populations may differ), which also clears the old run.
Everything draws on the plain canvas: many lines cost less there than one WebGL layer copy each.
"""

import math

import numpy as np
import param
from bokeh.models import ColumnDataSource, FixedTicker, LinearColorMapper, Range1d, Span
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from panel.custom import JSComponent

from .runner import MAX_TRACE_POINTS

MAX_RASTER_ROWS = 250
RASTER_TIME_BINS = 1000
MAX_SHADES = 6
RATE_ROLLOVER = 10_000
LEGEND_TRACES = 10
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def _figure(title, y_label, duration, height, y_range=None):
    fig = figure(title=title, x_axis_label="t (ms)", y_axis_label=y_label, x_range=Range1d(0, duration),
                 height=height, sizing_mode="stretch_width", tools=TOOLS)
    if y_range is not None:
        fig.y_range = y_range
    fig.toolbar.logo = None
    return fig


def _columns(names):
    """Empty float columns: streamed NumPy arrays are then appended as arrays and sent in binary."""
    return {name: np.empty(0) for name in names}


def _colour(k):
    return Category10_10[k % len(Category10_10)]


def _line(fig, column, source, colour, width, **legend):
    """A line of ``column`` against t. Without selection tools or a "mute" legend its selection and
    muted variants are never drawn, yet the page would recompute each of them on every update."""
    line = fig.line("t", column, source=source, color=colour, line_width=width, **legend)
    line.update(selection_glyph=None, nonselection_glyph=None, muted_glyph=None)
    return line


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

    def __init__(self, duration, labels, populations):
        self.labels, self.populations = list(labels), list(populations)
        self.traces = _figure("Membrane voltage", "V (mV)", duration, 260)
        self.many_traces = len(self.labels) > LEGEND_TRACES
        if self.many_traces:
            # One glyph for all lines: the page's per-line work on every update is then done once,
            # not once per trace. Its data cannot be streamed, so the kept window is sent whole.
            self.trace_source = ColumnDataSource({"xs": [], "ys": [], "colour": []}, name="bf-trace-source")
            glyph = self.traces.multi_line("xs", "ys", source=self.trace_source, line_color="colour", line_width=1.0)
            glyph.update(selection_glyph=None, nonselection_glyph=None, muted_glyph=None)
            self._trace_t, self._trace_v = np.empty(0), np.empty((len(self.labels), 0))
        else:
            self.trace_source = ColumnDataSource(_columns(["t"] + [f"v{k}" for k in range(len(self.labels))]),
                                                 name="bf-trace-source")
            for k, label in enumerate(self.labels):
                _line(self.traces, f"v{k}", self.trace_source, _colour(k), 1.2, legend_label=label)
        self.raster = self._raster(duration)
        self.rates = _figure("Population rate", "rate (Hz)", duration, 200)
        self.rate_source = ColumnDataSource(_columns(["t"] + [f"r{k}" for k in range(len(self.populations))]),
                                            name="bf-rate-source")
        for k, (name, _) in enumerate(self.populations):
            _line(self.rates, f"r{k}", self.rate_source, _colour(k), 1.5, legend_label=name)
        _legend_outside(self.traces)
        _legend_outside(self.rates)

    def _raster(self, duration):
        """One image per population, stacked in bands from the top in the circuit's order (so a column's
        layers read top-down, L2/3 first); the y axis names each band."""
        total = sum(n for _, n in self.populations)
        fig = _figure("Spike raster", "cell (stacked by population)", duration, 320,
                      y_range=Range1d(max(total, 1) - 0.5, -0.5))
        self.raster_bins = RasterBins(duration, self.populations)
        self.raster_source = ColumnDataSource(self.raster_bins.images(), name="bf-raster-source")
        middles, offset = {}, 0
        for k, (name, n) in enumerate(self.populations):
            per_row = self.raster_bins.cells_per_row(k)
            fig.image(image=f"img{k}", x=0, y=offset - 0.5, dw=duration, dh=n, source=self.raster_source,
                      color_mapper=_count_mapper(_colour(k), per_row))
            middles[offset + (n - 1) / 2] = name
            if offset:
                fig.add_layout(Span(location=offset - 0.5, dimension="width", line_color="#999999", line_dash="dashed"))
            offset += n
        fig.yaxis.ticker = FixedTicker(ticks=list(middles))
        fig.yaxis.major_label_overrides = dict(middles)
        return fig

    def push(self, update):
        """Stream an Update's new traces and rates into the figures and send the raster's changed bands
        whole; returns whether anything was new."""
        if update.empty:
            return False
        if len(update.trace_t) and self.many_traces:
            self._trace_t = np.concatenate([self._trace_t, update.trace_t])[-MAX_TRACE_POINTS:]
            self._trace_v = np.concatenate([self._trace_v, update.trace_v], axis=1)[:, -MAX_TRACE_POINTS:]
            t = self._trace_t.astype(np.float32)
            self.trace_source.data = {"xs": [t] * len(self.labels), "ys": list(self._trace_v.astype(np.float32)),
                                      "colour": [_colour(k) for k in range(len(self.labels))]}
        elif len(update.trace_t) and self.labels:
            columns = {"t": update.trace_t, **{f"v{k}": row for k, row in enumerate(update.trace_v)}}
            self.trace_source.stream(columns, rollover=MAX_TRACE_POINTS + 4)
        changed = self.raster_bins.add(update.spikes)
        if changed:
            self.raster_source.data.update(self.raster_bins.images(changed))
        if len(update.rate_t):
            columns = {"t": update.rate_t, **{f"r{k}": row for k, row in enumerate(update.rates)}}
            self.rate_source.stream(columns, rollover=RATE_ROLLOVER)
        return True

    @property
    def drawn_spikes(self):
        return self.raster_bins.spikes


def _count_mapper(colour, per_row):
    """Spike count per pixel → shade of the population's colour; empty pixels are transparent.

    One spike is already clearly visible; counts up to a row's cells (a synchronous volley) deepen the shade."""
    levels = max(1, min(per_row, MAX_SHADES))
    base = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    shades = [255 - (255 - base) * share for share in np.linspace(0.45, 1.0, levels)] if levels > 1 else [base]
    palette = ["#" + "".join(f"{int(c):02x}" for c in shade) for shade in shades]
    return LinearColorMapper(palette=palette, low=0.5, high=levels + 0.5, low_color=(0, 0, 0, 0), high_color=colour)


class RasterBins:
    """Spike counts per (cell row, time bin) of each population, the raster's images.

    Rows pool neighbouring cells so that all bands together have at most ``MAX_RASTER_ROWS`` rows
    (about one per pixel row of the figure); a band's rows never mix populations. Time is cut into
    ``RASTER_TIME_BINS`` columns over the run. Each refresh resends the images of the bands that
    got spikes: their size is fixed by the figure, not by how many spikes the run has made, which
    keeps a large network's raster as cheap to send and repaint as a small one's."""

    def __init__(self, duration, populations):
        self.duration = duration
        self.populations = list(populations)
        total = sum(n for _, n in self.populations)
        pooled = max(1, math.ceil(total / MAX_RASTER_ROWS))
        self.rows = [max(1, math.ceil(n / pooled)) for _, n in self.populations]
        self.offsets = np.cumsum([0] + [n for _, n in self.populations])[:-1]
        self.counts = [np.zeros((rows, RASTER_TIME_BINS), dtype=np.uint8) for rows in self.rows]
        self.spikes = 0

    def cells_per_row(self, k):
        return math.ceil(self.populations[k][1] / self.rows[k])

    def add(self, spikes):
        """Count ``spikes`` {population: (times ms, raster rows)}; returns the bands that changed."""
        changed = []
        for k, (name, n) in enumerate(self.populations):
            times, cells = spikes.get(name, (np.empty(0), np.empty(0, dtype=int)))
            if not len(times):
                continue
            rows = (cells - self.offsets[k]) * self.rows[k] // n
            columns = np.minimum((times * (RASTER_TIME_BINS / self.duration)).astype(int), RASTER_TIME_BINS - 1)
            pixels = np.bincount(rows * RASTER_TIME_BINS + columns, minlength=self.counts[k].size)
            # Saturate instead of wrapping round: more than 255 spikes in one pixel reads as "full" anyway.
            self.counts[k] = np.minimum(self.counts[k] + pixels.reshape(self.counts[k].shape), 255).astype(np.uint8)
            self.spikes += len(times)
            changed.append(k)
        return changed

    def images(self, bands=None):
        """Source columns holding the images of ``bands`` (all by default)."""
        bands = range(len(self.populations)) if bands is None else bands
        return {f"img{k}": [self.counts[k]] for k in bands}


class PageFeedback(JSComponent):
    """What the page tells the server about itself: every update also sets ``sent`` and the page echoes
    it into ``seen`` once it has applied that update (flow control: a slow browser gets fewer, larger
    updates instead of an ever longer queue)."""

    sent = param.Integer(default=0)
    seen = param.Integer(default=0)

    _esm = """
    export function render({ model }) {
      model.on("sent", () => { model.seen = model.sent })
      return document.createElement("span")
    }
    """
