"""The live views of a cell run: a shape plot coloured by voltage, a space–time image, soma and tip traces.

The shape plot draws the schematic cut into one piece per segment, each coloured by its node's
membrane voltage (colour bar in mV); the space–time image is voltage over distance along a path
(soma → a tip) × time; the traces are the voltage at the soma and at the path's tip. ``show``
takes a ``CellRun`` and draws how far it has got. Units: mV, ms, µm.
"""

import numpy as np
from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper, Range1d
from bokeh.palettes import Turbo256
from bokeh.plotting import figure

from ..editors.cell_builder_geometry import fit_aspect

V_LOW, V_HIGH = -80.0, 40.0  # mV: the colour scale, from below rest to the top of a spike
SHAPE_WIDTH, SHAPE_HEIGHT = 420, 340  # px
SOMA_COLOUR, TIP_COLOUR = "#1f4e9c", "#d62728"


def piece_width(diameter):
    """Line width (px) of a segment: grows with diameter but stays visible and below a soma's bulk."""
    return float(np.clip(1.5 + 1.5 * np.sqrt(diameter), 2.0, 16.0))


class ShapePlot:
    def __init__(self):
        self.mapper = LinearColorMapper(palette=Turbo256, low=V_LOW, high=V_HIGH, nan_color=(0, 0, 0, 0))  # nothing until a run
        self.shape = figure(frame_width=SHAPE_WIDTH, frame_height=SHAPE_HEIGHT, toolbar_location=None, tools="",
                            title="Membrane voltage", x_axis_label="x (µm)", y_axis_label="y (µm)",
                            x_range=Range1d(0, 1), y_range=Range1d(0, 1), css_classes=["bf-shape-plot"])
        self.pieces = ColumnDataSource({"xs": [], "ys": [], "width": [], "v": []})
        self.marks = ColumnDataSource({"x": [], "y": [], "colour": [], "label": []})
        self.shape.multi_line("xs", "ys", source=self.pieces, line_width="width", line_cap="round",
                              line_color={"field": "v", "transform": self.mapper})
        self.shape.scatter("x", "y", source=self.marks, size=11, fill_color="colour", line_color="white", marker="diamond",
                           legend_field="label")
        self.shape.add_layout(ColorBar(color_mapper=self.mapper, title="V (mV)", width=12), "right")
        self.shape.legend.location = "top_left"
        self.spacetime = figure(height=240, width=520, toolbar_location=None, tools="",
                                title="Voltage along the path (soma → tip)", x_axis_label="t (ms)",
                                y_axis_label="distance from soma (µm)", x_range=Range1d(0, 1),
                                y_range=Range1d(0, 1), css_classes=["bf-spacetime"])
        self.image = ColumnDataSource({"image": [np.full((1, 1), np.nan)], "x": [0.0], "y": [0.0], "dw": [1.0], "dh": [1.0]})
        self.spacetime.image("image", x="x", y="y", dw="dw", dh="dh", source=self.image, color_mapper=self.mapper)
        self.spacetime.add_layout(ColorBar(color_mapper=self.mapper, title="V (mV)", width=12), "right")
        self.traces = figure(height=240, width=520, toolbar_location=None, tools="", title="Soma and tip",
                             x_axis_label="t (ms)", y_axis_label="V (mV)", x_range=Range1d(0, 1),
                             css_classes=["bf-cell-traces"])
        self.trace_source = ColumnDataSource({"t": [], "soma": [], "tip": []})
        self.traces.line("t", "soma", source=self.trace_source, color=SOMA_COLOUR, line_width=2, legend_label="soma")
        self.traces.line("t", "tip", source=self.trace_source, color=TIP_COLOUR, line_width=2, legend_label="tip")
        self.traces.legend.location = "top_right"
        self.nodes = []  # the node of each shape-plot piece

    def set_cell(self, pieces, box, soma_xy, tip_xy, tstop):
        """The geometry of a run: ``pieces`` from ``segment_pieces``, the schematic's ``box`` (x0, x1, y0, y1 µm),
        where the soma and the path's tip are, and the run's length (ms)."""
        self.nodes = [node for _, _, node, _ in pieces]
        self.pieces.data = {"xs": [p[0] for p in pieces], "ys": [p[1] for p in pieces],
                            "width": [piece_width(p[3]) for p in pieces], "v": [np.nan] * len(pieces)}
        self.marks.data = {"x": [soma_xy[0], tip_xy[0]], "y": [soma_xy[1], tip_xy[1]], "colour": [SOMA_COLOUR, TIP_COLOUR],
                           "label": ["soma", "tip"]}
        x0, x1, y0, y1 = fit_aspect(box, SHAPE_WIDTH, SHAPE_HEIGHT)
        self.shape.x_range.update(start=x0, end=x1)
        self.shape.y_range.update(start=y0, end=y1)
        self.spacetime.x_range.update(start=0, end=tstop)
        self.traces.x_range.update(start=0, end=tstop)

    def show(self, run):
        """Draw ``run`` (a CellRun) as far as it has got: the shape plot at its latest sample, the path, the traces."""
        self.show_sample(run, run.filled - 1)
        image, (d0, d1) = run.path_image()
        filled = run.filled
        self.image.data = {"image": [image], "x": [0.0], "y": [d0], "dw": [float(run.t[filled - 1]) or run.dt],
                           "dh": [max(d1 - d0, 1e-9)]}
        self.spacetime.y_range.update(start=d0, end=d1)
        self.trace_source.data = {"t": run.t[:filled], "soma": run.node_v[run.soma_node, :filled],
                                  "tip": run.node_v[run.tip_node, :filled]}

    def show_sample(self, run, column):
        """Colour the shape plot by the voltages of sample ``column`` of ``run`` (also to replay a finished run)."""
        self.pieces.data = dict(self.pieces.data, v=list(run.node_v[self.nodes, column]))
        self.shape.title.text = f"Membrane voltage at t = {run.t[column]:.2f} ms"
