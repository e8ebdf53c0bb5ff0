"""The Cell builder's schematic: the cell's cylinders to scale on a Bokeh canvas, and the gestures on it.

Each cylinder is its true outline (width = diameter, µm on both axes), coloured by region, with
a thin centre line so that a 1 µm dendrite next to a 20 µm soma can still be seen and grabbed.
The canvas reports a drag as ``on_drag((x0, y0), (x1, y1))`` and a tap as ``on_tap(x, y)`` in µm;
it has no pan tool, so a drag anywhere is the builder's gesture. While the mouse is down the page
itself draws a line from the drag's start (no round trip to the server).
"""

import panel as pn
from bokeh.events import PanEnd, PanStart, Tap
from bokeh.models import ColumnDataSource, CustomJS, HoverTool, Range1d
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from ..bokeh_updates import when_safe
from . import cell_builder_geometry as geometry

FRAME_WIDTH, FRAME_HEIGHT, BORDER = 560, 400, 10  # px asked for; the page may draw the frame smaller
REGION_COLOURS = {"soma": "#8c510a", "dend": "#1b7837", "basal": "#35978f", "apical": "#2166ac", "axon": "#c51b7d"}
LABEL_LIMIT = 40  # sections: beyond this many, names and end marks would hide the cell

GHOST_START = "ghost.data = {x0: [cb_obj.x], y0: [cb_obj.y], x1: [cb_obj.x], y1: [cb_obj.y]}"
GHOST_MOVE = "const d = ghost.data; if (d.x0.length) ghost.data = {x0: d.x0, y0: d.y0, x1: [cb_obj.x], y1: [cb_obj.y]}"
GHOST_END = "ghost.data = {x0: [], y0: [], x1: [], y1: []}"


def region_colour(region, known):
    """A fixed colour for the usual regions, and one from a cycle (by first appearance) for others."""
    if region in REGION_COLOURS:
        return REGION_COLOURS[region]
    others = [r for r in known if r not in REGION_COLOURS]
    return Category10_10[others.index(region) % 10] if region in others else "#777777"


class CellCanvas:
    def __init__(self, on_drag, on_tap):
        self.on_drag, self.on_tap = on_drag, on_tap
        self.drawn, self.ranges = {}, (-50.0, 50.0, -50.0, 50.0)
        self.frame = [FRAME_WIDTH, FRAME_HEIGHT]  # px, as the page last reported drawing it
        self._start = self._shown = None
        self.figure = figure(frame_width=FRAME_WIDTH, frame_height=FRAME_HEIGHT, min_border=BORDER, toolbar_location=None,
                             tools="", x_range=Range1d(-50, 50), y_range=Range1d(-50, 50), css_classes=["bf-cell-canvas"],
                             x_axis_label="x (µm)", y_axis_label="y (µm)", outline_line_color="#bbbbbb")
        self.bodies = ColumnDataSource({"xs": [], "ys": [], "colour": [], "name": [], "region": [], "length": [],
                                        "diameter": [], "nseg": []})
        self.lines = ColumnDataSource({"xs": [], "ys": [], "colour": []})
        self.ends = ColumnDataSource({"x": [], "y": [], "colour": []})
        self.selected = ColumnDataSource({"xs": [], "ys": []})
        self.labels = ColumnDataSource({"x": [], "y": [], "text": []})
        self.ghost = ColumnDataSource({"x0": [], "y0": [], "x1": [], "y1": []})
        self.figure.multi_line("xs", "ys", source=self.selected, line_color="#ffb000", line_width=9, line_alpha=0.8)
        bodies = self.figure.patches("xs", "ys", source=self.bodies, fill_color="colour", line_color="colour",
                                     fill_alpha=0.55, nonselection_fill_alpha=0.55)
        self.figure.multi_line("xs", "ys", source=self.lines, line_color="colour", line_width=2.5)
        self.figure.scatter("x", "y", source=self.ends, size=7, fill_color="white", line_color="colour", line_width=2)
        self.figure.text("x", "y", text="text", source=self.labels, text_font_size="10px", text_color="#333333",
                         x_offset=4, y_offset=-4)
        self.figure.segment("x0", "y0", "x1", "y1", source=self.ghost, line_color="#444444", line_width=2, line_dash="dashed")
        self.figure.add_tools(HoverTool(renderers=[bodies], tooltips=[("section", "@name"), ("region", "@region"),
                                                                      ("L", "@length µm"), ("diam", "@diameter µm"),
                                                                      ("nseg", "@nseg")]))
        self.figure.js_on_event("panstart", CustomJS(args={"ghost": self.ghost}, code=GHOST_START))
        self.figure.js_on_event("pan", CustomJS(args={"ghost": self.ghost}, code=GHOST_MOVE))
        self.figure.js_on_event("panend", CustomJS(args={"ghost": self.ghost}, code=GHOST_END))
        self.figure.on_event(PanStart, self._pan_start)
        self.figure.on_event(PanEnd, self._pan_end)
        self.figure.on_event(Tap, lambda event: self.on_tap(event.x, event.y))
        self.figure.on_change("inner_width", lambda attr, old, new: self._resized(0, new))
        self.figure.on_change("inner_height", lambda attr, old, new: self._resized(1, new))

    # ------------------------------------------------------------------ drawing
    def draw(self, morphology, angles, selected=None):
        """Show ``morphology`` (the document's sections) with section ``selected`` highlighted."""
        self._shown = (morphology, angles, selected)
        self.drawn = geometry.layout(morphology, angles)
        self.ranges = geometry.fit_aspect(geometry.bounds(self.drawn, morphology), *self.frame)
        names = [name for name in morphology if name in self.drawn]
        known = list(dict.fromkeys(morphology[n].get("region", "soma") for n in names))
        colours = [region_colour(morphology[n].get("region", "soma"), known) for n in names]
        outlines = [geometry.outline(self.drawn[n], morphology[n]["diameter"]) for n in names]
        bodies = {"xs": [o[0] for o in outlines], "ys": [o[1] for o in outlines], "colour": colours, "name": names,
                  "region": [morphology[n].get("region", "soma") for n in names],
                  "length": [morphology[n]["length"] for n in names], "diameter": [morphology[n]["diameter"] for n in names],
                  "nseg": [morphology[n].get("nseg", 1) for n in names]}
        lines = {"xs": [self.drawn[n].xs for n in names], "ys": [self.drawn[n].ys for n in names], "colour": colours}
        shown = names if len(names) <= LABEL_LIMIT else []
        ends = {"x": [self.drawn[n].xs[-1] for n in shown], "y": [self.drawn[n].ys[-1] for n in shown],
                "colour": [c for n, c in zip(names, colours) if n in shown]}
        labels = {"x": [self.drawn[n].at(0.5)[0] for n in shown], "y": [self.drawn[n].at(0.5)[1] for n in shown],
                  "text": shown}
        chosen = {"xs": [self.drawn[selected].xs], "ys": [self.drawn[selected].ys]} if selected in self.drawn else {"xs": [], "ys": []}
        self._pending = (bodies, lines, ends, labels, chosen)
        when_safe(self.figure, self._push)

    def _push(self):
        """Send what ``draw`` last asked for (updates queued in a burst end with the latest)."""
        x0, x1, y0, y1 = self.ranges
        self.figure.x_range.update(start=x0, end=x1)
        self.figure.y_range.update(start=y0, end=y1)
        for source, new in zip((self.bodies, self.lines, self.ends, self.labels, self.selected), self._pending):
            if {key: list(value) for key, value in source.data.items()} != new:
                source.data = new

    def scale(self):
        """µm per screen pixel (the same across and up)."""
        x0, x1, _, _ = self.ranges
        return (x1 - x0) / self.frame[0]

    def _resized(self, axis, pixels):
        """The page drew the frame at another size: fit the ranges to it again, so µm stay square."""
        if pixels and pixels != self.frame[axis]:
            self.frame[axis] = pixels
            if self._shown is not None:
                self.draw(*self._shown)

    # ------------------------------------------------------------------ gestures
    def _pan_start(self, event):
        self._start = (event.x, event.y)

    def _pan_end(self, event):
        start, self._start = self._start, None
        if start is not None:
            self.on_drag(start, (event.x, event.y))

    def view(self):
        return pn.pane.Bokeh(self.figure)
