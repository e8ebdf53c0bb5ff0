"""Bokeh figures of the channel editor: gate curves with draggable handles, the I–V curve, the
voltage-clamp family and the single-cell preview. Each figure keeps its ColumnDataSources so
that an edit only replaces their data; handles are dragged with Bokeh's PointDrawTool, which
sends the new positions to the server once, when the mouse is released."""

from bokeh.models import ColumnDataSource, HoverTool, PointDrawTool, Range1d
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from .channel_curves import CAI_RANGE, V_RANGE

WIDTH, HEIGHT = 250, 210
SUMMARY_WIDTH = 270
COLORS = {"inf": "#3b6ea8", "tau": "#2e8b57", "alpha": "#3b6ea8", "beta": "#c0392b"}
AXIS_LABELS = {"v": "V (mV)", "cai": "[Ca]i (mM)"}


def curve_figure(title, axis, y_label, css_class, y_range=None):
    """An empty figure over the gate's variable (mV, or mM on a log axis for [Ca]i)."""
    log = axis == "cai"
    fig = figure(title=title, width=WIDTH, height=HEIGHT, x_axis_label=AXIS_LABELS[axis], y_axis_label=y_label,
                 x_range=Range1d(*(CAI_RANGE if log else V_RANGE)), x_axis_type="log" if log else "linear",
                 tools="reset,save", toolbar_location="above", css_classes=[css_class])
    if y_range is not None:
        fig.y_range = Range1d(*y_range)
    _style(fig)
    return fig


def add_line(fig, color, legend=None):
    source = ColumnDataSource({"x": [], "y": []})
    kwargs = {"legend_label": legend} if legend else {}
    fig.line("x", "y", source=source, line_width=2, color=color, **kwargs)
    return source


def add_handles(fig, color):
    """A renderer of draggable handles on ``fig``; returns its source (columns x, y, name)."""
    source = ColumnDataSource({"x": [], "y": [], "name": []})
    renderer = fig.scatter("x", "y", source=source, size=11, fill_color="white", line_color=color, line_width=2.5)
    tools = [tool for tool in fig.tools if isinstance(tool, PointDrawTool)]
    if tools:
        tools[0].renderers = [*tools[0].renderers, renderer]
    else:
        tool = PointDrawTool(renderers=[renderer], add=False, description="Drag a handle")
        fig.add_tools(tool, HoverTool(renderers=[renderer], tooltips=[("handle", "@name"), ("at", "(@x{0.[000]}, @y{0.[0000]})")]))
        fig.toolbar.active_drag = tool
        fig.toolbar.active_tap = tool
    return source


def iv_figure():
    fig = figure(title="Steady-state and peak I–V", width=SUMMARY_WIDTH, height=HEIGHT, x_axis_label="V (mV)",
                 y_axis_label="I (mA/cm²)", x_range=Range1d(*V_RANGE), tools="reset,save", toolbar_location="above",
                 css_classes=["bf-channel-iv"])
    _style(fig)
    steady = ColumnDataSource({"x": [], "y": []})
    peak = ColumnDataSource({"x": [], "y": []})
    fig.line("x", "y", source=steady, line_width=2, color="#24426b", legend_label="steady state i∞")
    fig.scatter("x", "y", source=peak, size=6, color="#c0392b", legend_label="peak (clamp)")
    compact_legend(fig)
    return fig, steady, peak


def clamp_figure(n_levels):
    fig = figure(title="Voltage clamp family", width=SUMMARY_WIDTH, height=HEIGHT, x_axis_label="t (ms)", y_axis_label="I (mA/cm²)",
                 tools="reset,save", toolbar_location="above", css_classes=["bf-channel-clamp"])
    _style(fig)
    step = max(1, (len(Viridis256) - 40) // max(1, n_levels - 1))
    source = ColumnDataSource({"xs": [], "ys": [], "color": [], "level": []})
    fig.multi_line("xs", "ys", source=source, line_color="color", line_width=1.5)
    fig.add_tools(HoverTool(tooltips=[("step to", "@level mV")]))
    colors = [Viridis256[k * step] for k in range(n_levels)]
    return fig, source, colors


def preview_figure():
    fig = figure(title="Single-cell preview", width=SUMMARY_WIDTH, height=HEIGHT, x_axis_label="t (ms)", y_axis_label="V (mV)",
                 tools="reset,save", toolbar_location="above", css_classes=["bf-channel-preview"])
    _style(fig)
    source = ColumnDataSource({"x": [], "y": []})
    fig.line("x", "y", source=source, line_width=1.5, color="#24426b")
    return fig, source


def compact_legend(fig):
    fig.legend.location = "top_left"
    fig.legend.label_text_font_size = "8pt"
    fig.legend.padding = 2
    fig.legend.spacing = 0
    fig.legend.glyph_height = 12
    fig.legend.background_fill_alpha = 0.6


def _style(fig):
    fig.title.text_font_size = "10pt"
    fig.axis.axis_label_text_font_size = "9pt"
    fig.axis.axis_label_text_font_style = "normal"
    fig.toolbar.logo = None
