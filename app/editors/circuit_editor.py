"""The Circuit pane: populations as nodes and projections as arrows on a canvas, with a side panel.

The canvas is a Bokeh figure redrawn from the document after every change. Nodes are dragged with
Bokeh's point-draw tool; on release the new spot is written to ``layout.populations``. In connect
mode the same drag means "connect": the dragged node snaps back and a projection goes from it to
the node it was dropped on. A tap selects a node or an arrow for the side panel, whose fields each
make one validated edit and show bad input beside the field.
"""

import math

import panel as pn
from bokeh.events import Tap
from bokeh.models import ColumnDataSource, PointDrawTool, Range1d
from bokeh.plotting import figure

from ..bokeh_updates import when_safe
from . import circuit_graph as graph_model
from .circuit_presets import COBAHH, DEFAULT_SCALE, PRESETS, SCALES, apply_preset, make_preset
from .fields import BoundField, parse_number

FRAME_WIDTH, FRAME_HEIGHT, BORDER = 690, 460, 10  # px; the frame's aspect matches graph_model.view_ranges
NODE_COLOURS = {"cell": "#9ecae1", "poisson": "#fdd0a2", "spike_times": "#c7e9c0"}
EXCITATORY_COLOUR, INHIBITORY_COLOUR = "#d62728", "#1f77b4"
NOTHING = ""
LEGEND = (f'<span style="color:{NODE_COLOURS["cell"]}">●</span> cell population &nbsp; '
          f'<span style="color:{NODE_COLOURS["poisson"]}">●</span> spike source &nbsp; '
          f'<span style="color:{EXCITATORY_COLOUR}">➔</span> excitatory (E<sub>rev</sub> ≥ −20 mV) &nbsp; '
          f'<span style="color:{INHIBITORY_COLOUR}">➔</span> inhibitory')
HINTS = {False: "Drag a population to move it; tap a population or an arrow to edit it.",
         True: "Connect mode: drag from one population and drop it on another to add a projection."}


def node_text(name, data):
    if data["kind"] == "cell":
        return f"{name}\n{data['size']} × {data['cell']}"
    if data["kind"] == "poisson":
        return f"{name}\n{data['size']} × {data['poisson']['rate_hz']:g} Hz"
    return f"{name}\n{data['size']} trains"


def assign(container, key):
    """A writer for BoundField: store a value under ``key`` of ``container(doc)``; None removes the key."""
    def write(doc, value):
        if value is None:
            container(doc).pop(key, None)
        else:
            container(doc)[key] = value
    return write


def optional_number(**bounds):
    """A parser for a field that may be left empty (meaning: the core's default)."""
    return lambda text: None if not str(text).strip() else parse_number(text, **bounds)


class CircuitCanvas:
    """The Bokeh figure. Reports a dragged node to ``on_drop(name, x, y)`` and a tap to ``on_tap(x, y)``."""

    def __init__(self, on_drop, on_tap):
        self.on_drop, self.on_tap = on_drop, on_tap
        self.graph, self.paths, self.selection, self.ranges = None, {}, None, (0, 12, 0, 8)
        self._pushing, self._grabbed = False, None
        self.figure = figure(frame_width=FRAME_WIDTH, frame_height=FRAME_HEIGHT, min_border=BORDER, toolbar_location=None,
                             tools="", x_range=Range1d(0, 12), y_range=Range1d(0, 8), outline_line_color="#bbbbbb",
                             css_classes=["bf-circuit-canvas"])
        self.figure.axis.visible = False
        self.figure.grid.visible = False
        self.edges = ColumnDataSource({"xs": [], "ys": [], "colour": [], "width": []})
        self.heads = ColumnDataSource({"x": [], "y": [], "angle": [], "colour": []})
        self.ring = ColumnDataSource({"x": [], "y": [], "radius": []})
        self.nodes = ColumnDataSource({"x": [], "y": [], "radius": [], "colour": [], "name": [], "text": []})
        self.figure.multi_line("xs", "ys", line_color="colour", line_width="width", source=self.edges)
        self.figure.scatter("x", "y", marker="triangle", size=13, angle="angle", fill_color="colour", line_color="colour",
                            source=self.heads)
        self.figure.circle("x", "y", radius="radius", fill_alpha=0, line_color="#222222", line_width=3, source=self.ring)
        # Selection belongs to the side panel, so Bokeh's own selection must not dim the other nodes.
        circles = self.figure.circle("x", "y", radius="radius", fill_color="colour", line_color="#444444", source=self.nodes,
                                     nonselection_fill_alpha=1.0, nonselection_line_alpha=1.0, selection_fill_alpha=1.0)
        self.figure.text("x", "y", text="text", source=self.nodes, text_align="center", text_baseline="middle",
                         text_font_size="10px", text_color="#1a1a1a", nonselection_text_alpha=1.0)
        self.tool = PointDrawTool(renderers=[circles], add=False, drag=True)
        self.figure.add_tools(self.tool)
        self.figure.toolbar.active_drag = self.tool
        self.figure.toolbar.active_tap = self.tool
        self.nodes.on_change("data", self._nodes_changed)
        self.nodes.selected.on_change("indices", self._selection_changed)
        self.figure.on_event(Tap, lambda event: self.on_tap(event.x, event.y))

    def draw(self, graph, selection):
        """Show ``graph`` with ``selection`` (("population", name), ("projection", index) or None) highlighted."""
        self.graph, self.paths, self.selection = graph, graph_model.edge_paths(graph), selection
        self.ranges = graph_model.view_ranges(graph)
        when_safe(self.figure, self._push)

    def _push(self):
        """Send what ``draw`` last asked for (so updates queued in a burst end with the latest)."""
        graph, selection = self.graph, self.selection
        nodes = list(graph.nodes(data=True))
        data = {
            "x": [d["pos"][0] for _, d in nodes], "y": [d["pos"][1] for _, d in nodes],
            "radius": [graph_model.node_radius(d["size"]) for _, d in nodes],
            "colour": [NODE_COLOURS[d["kind"]] for _, d in nodes],
            "name": [name for name, _ in nodes], "text": [node_text(name, d) for name, d in nodes],
        }
        edges = {"xs": [], "ys": [], "colour": [], "width": []}
        heads = {"x": [], "y": [], "angle": [], "colour": []}
        for pre, post, index, d in graph.edges(keys=True, data=True):
            xs, ys = self.paths[index]
            colour = EXCITATORY_COLOUR if d["excitatory"] else INHIBITORY_COLOUR
            edges["xs"].append(xs), edges["ys"].append(ys), edges["colour"].append(colour)
            edges["width"].append(4.5 if selection == ("projection", index) else 2.0)
            x, y, angle = graph_model.arrow_head(xs, ys)
            heads["x"].append(x), heads["y"].append(y), heads["angle"].append(angle), heads["colour"].append(colour)
        ring = {"x": [], "y": [], "radius": []}
        if selection and selection[0] == "population" and selection[1] in graph:
            d = graph.nodes[selection[1]]
            ring = {"x": [d["pos"][0]], "y": [d["pos"][1]], "radius": [graph_model.node_radius(d["size"]) + 0.08]}
        x0, x1, y0, y1 = self.ranges
        self._pushing = True
        try:
            self.figure.x_range.update(start=x0, end=x1)
            self.figure.y_range.update(start=y0, end=y1)
            for source, new in ((self.edges, edges), (self.heads, heads), (self.ring, ring), (self.nodes, data)):
                # Resending what the page already shows would cancel a drag the user has started.
                if {key: list(value) for key, value in source.data.items()} != new:
                    source.data = new
            self.nodes.selected.indices = []
        finally:
            self._pushing = False

    def screen_point(self, x, y):
        """Where canvas point (x, y) is drawn, in px from the figure's top-left corner (for tests and tools)."""
        x0, x1, y0, y1 = self.ranges
        # The browser reports the frame's drawn size, which a narrow page may shrink below the one asked for.
        width, height = self.figure.inner_width or FRAME_WIDTH, self.figure.inner_height or FRAME_HEIGHT
        return BORDER + (x - x0) / (x1 - x0) * width, BORDER + (y1 - y) / (y1 - y0) * height

    def _nodes_changed(self, attr, old, new):
        if self._pushing or self.graph is None:
            return
        names = list(new.get("name", []))
        if names != list(self.graph.nodes) or len(new["x"]) != len(names):
            # Stale (drawn before the latest update arrived) or cut short by the tool's Backspace key:
            # the document decides what is drawn.
            self.draw(self.graph, self.selection)
            return
        moved = {name: (float(x), float(y)) for name, x, y in zip(names, new["x"], new["y"])
                 if math.dist((float(x), float(y)), self.graph.nodes[name]["pos"]) > 1e-9}
        if not moved:
            return
        # A node the tool still held selected from a tap moves along with the dragged one; the dragged one
        # is the last the tool selected (the other snaps back when the document is drawn again).
        name = self._grabbed if self._grabbed in moved else next(iter(moved))
        self.on_drop(name, *moved[name])

    def _selection_changed(self, attr, old, new):
        names = self.nodes.data["name"]
        if new and not self._pushing and new[-1] < len(names):
            self._grabbed = names[new[-1]]

    def view(self):
        return pn.pane.Bokeh(self.figure)


class CircuitEditor:
    def __init__(self, workbench):
        self.workbench = workbench
        self.selection = None
        self._syncing = False
        self._views = {}
        self.canvas = CircuitCanvas(self._dropped, self._tapped)
        self._build_toolbar()
        self._build_population_form()
        self._build_projection_form()
        workbench.param.watch(lambda event: self.refresh(), "revision")
        self.refresh()

    # ------------------------------------------------------------------ widgets
    def _build_toolbar(self):
        self.add_population_button = pn.widgets.Button(label="Add population", css_classes=["bf-add-population"])
        self.add_population_button.on_click(lambda event: self._add("P", graph_model.add_population))
        self.add_source_button = pn.widgets.Button(label="Add source", css_classes=["bf-add-source"])
        self.add_source_button.on_click(lambda event: self._add("S", graph_model.add_source))
        self.connect_mode = pn.widgets.Toggle(label="Connect", css_classes=["bf-connect-mode"])
        self.connect_mode.param.watch(self._mode_changed, "value")
        self.delete_button = pn.widgets.Button(label="Delete selected", color="danger", css_classes=["bf-delete-selected"])
        self.delete_button.on_click(lambda event: self._delete())
        self.preset = pn.widgets.Select(label="Preset", options=list(PRESETS), css_classes=["bf-preset"], width=200)
        self.preset.param.watch(self._preset_chosen, "value")
        self.preset_scale = pn.widgets.Select(label="Size", options=list(SCALES[COBAHH]), value=DEFAULT_SCALE[COBAHH],
                                              css_classes=["bf-preset-scale"], width=200)
        self.preset_button = pn.widgets.Button(label="Replace circuit by preset", css_classes=["bf-apply-preset"], align="end")
        self.preset_button.on_click(lambda event: self._apply_preset())
        self.hint = pn.pane.Markdown(HINTS[False], css_classes=["bf-circuit-hint"], margin=(0, 10))
        self.notice = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["bf-circuit-error"])

    def _build_population_form(self):
        self.selector = pn.widgets.Select(label="Selected", options={"—": NOTHING}, css_classes=["bf-circuit-selection"],
                                          width=300)
        self.selector.param.watch(self._selector_changed, "value")
        self.name_input = pn.widgets.TextInput(label="Label (name)", css_classes=["bf-pop-name"], width=200)
        self.name_input.param.watch(self._rename, "value")
        self.name_error = self._error_pane()
        self.kind_select = pn.widgets.Select(label="Kind", options={graph_model.KINDS["cell"]: "cell",
                                                                   graph_model.KINDS["poisson"]: "poisson"},
                                             css_classes=["bf-pop-kind"], width=200)
        self.kind_select.param.watch(lambda event: self._choose(event, graph_model.set_kind, "kind"), "value")
        self.cell_select = pn.widgets.Select(label="Cell model", options=[], css_classes=["bf-pop-cell"], width=200)
        self.cell_select.param.watch(lambda event: self._choose(event, self._set_cell, "cell model"), "value")
        self.choice_error = self._error_pane()
        population = self._population_entry
        self.count = self._field("Count n", "bf-pop-n", lambda doc: graph_model.size_of(population(doc)),
                                 lambda doc, n: graph_model.set_count(doc, self._population(), n),
                                 lambda text: parse_number(text, integer=True, minimum=1))
        self.threshold = self._field("Spike threshold (mV)", "bf-pop-threshold",
                                     lambda doc: population(doc).get("threshold", graph_model.DEFAULT_THRESHOLD),
                                     assign(population, "threshold"), parse_number)
        self.rate = self._field("Rate (Hz)", "bf-pop-rate", lambda doc: population(doc)["poisson"]["rate_hz"],
                                assign(lambda doc: population(doc)["poisson"], "rate_hz"),
                                lambda text: parse_number(text, minimum=0))
        self.drive_on = pn.widgets.Checkbox(label="Current step drive on every cell", css_classes=["bf-drive-on"])
        self.drive_on.param.watch(self._drive_toggled, "value")
        self.drive_fields = [
            self._field(label, css, self._drive_reader(key), self._drive_writer(key), parser)
            for key, label, css, parser in (
                ("amp", "Step amplitude (nA)", "bf-drive-amp", parse_number),
                ("delay", "Step delay (ms)", "bf-drive-delay", lambda text: parse_number(text, minimum=0)),
                ("dur", "Step duration (ms)", "bf-drive-dur", lambda text: parse_number(text, minimum=0)),
            )
        ]
        self.population_form = pn.Column(
            pn.Row(self.name_input), self.name_error, self.kind_select, self.cell_select, self.choice_error,
            *[self._views[field] for field in (self.count, self.threshold, self.rate)], self.drive_on,
            *[self._views[field] for field in self.drive_fields], css_classes=["bf-population-form"], visible=False,
        )

    def _build_projection_form(self):
        projection = self._projection_entry
        self.rule_select = pn.widgets.Select(label="Connection rule", options=list(graph_model.RULES),
                                             css_classes=["bf-edge-rule"], width=200)
        self.rule_select.param.watch(lambda event: self._choose(event, graph_model.set_rule, "rule", edge=True), "value")
        self.allow_self = pn.widgets.Checkbox(label="Allow a cell to connect to itself", css_classes=["bf-edge-allow-self"])
        self.allow_self.param.watch(self._allow_self_changed, "value")
        self.synapse_select = pn.widgets.Select(label="Synapse", options={"exp (single exponential)": "exp",
                                                                          "exp2 (rise and decay)": "exp2"},
                                                css_classes=["bf-edge-synapse"], width=200)
        self.synapse_select.param.watch(lambda event: self._choose(event, graph_model.set_synapse_kind, "synapse", edge=True),
                                        "value")
        self.edge_error = self._error_pane()

        def nested(group, key, label, css, parser):
            return self._field(label, css, lambda doc: projection(doc)[group][key],
                               assign(lambda doc: projection(doc)[group], key), parser)

        def top(key, label, css, parser):
            return self._field(label, css, lambda doc: projection(doc).get(key), assign(projection, key), parser)

        self.p = nested("connect", "p", "Probability p", "bf-edge-p", lambda text: parse_number(text, minimum=0, maximum=1))
        self.k = nested("connect", "k", "In-degree k", "bf-edge-k", lambda text: parse_number(text, integer=True, minimum=0))
        self.tau = nested("synapse", "tau", "tau (ms)", "bf-edge-tau", lambda text: parse_number(text, exclusive_minimum=0))
        self.tau_rise = nested("synapse", "tau_rise", "tau rise (ms)", "bf-edge-tau-rise",
                               lambda text: parse_number(text, exclusive_minimum=0))
        self.tau_decay = nested("synapse", "tau_decay", "tau decay (ms)", "bf-edge-tau-decay",
                                lambda text: parse_number(text, exclusive_minimum=0))
        self.e_rev = nested("synapse", "e_rev", "Reversal E_rev (mV)", "bf-edge-erev", parse_number)
        self.weight = top("weight", "Weight (µS)", "bf-edge-weight", lambda text: parse_number(text, minimum=0))
        self.delay = top("delay", "Delay (ms)", "bf-edge-delay", optional_number(minimum=0))
        self.delay.input.placeholder = "one time step"
        self.seed = top("seed", "Seed", "bf-edge-seed", optional_number(integer=True, minimum=0))
        self.projection_title = pn.pane.Markdown("", css_classes=["bf-projection-title"])
        self.projection_form = pn.Column(
            self.projection_title, self.rule_select, self._views[self.p], self._views[self.k], self.allow_self,
            self.synapse_select, self.edge_error,
            *[self._views[f] for f in (self.tau, self.tau_rise, self.tau_decay, self.e_rev, self.weight, self.delay, self.seed)],
            css_classes=["bf-projection-form"], visible=False,
        )

    def _field(self, label, css, read, write, parse):
        field = BoundField(self.workbench, label, read, write, parse, css)
        self._views[field] = field.view()
        return field

    @staticmethod
    def _error_pane():
        return pn.pane.Markdown("", visible=False, css_classes=["bf-field-error"], styles={"color": "#b00020"},
                                margin=(0, 10))

    # ------------------------------------------------------------------ selection
    def _population(self):
        return self.selection[1] if self.selection and self.selection[0] == "population" else None

    def _projection(self):
        return self.selection[1] if self.selection and self.selection[0] == "projection" else None

    def _population_entry(self, doc):
        return doc["circuit"]["populations"][self._population()]

    def _projection_entry(self, doc):
        index = self._projection()
        if index is None:
            raise KeyError("no projection selected")
        return doc["circuit"]["projections"][index]

    def select(self, selection):
        """Show ``selection`` (("population", name), ("projection", index) or None) in the side panel."""
        self.selection = selection
        self.refresh()

    def _selector_changed(self, event):
        if self._syncing:
            return
        kind, _, key = event.new.partition(":")
        self.select(None if not kind else (kind, int(key) if kind == "projection" else key))

    def _tapped(self, x, y):
        node = graph_model.node_at(self.canvas.graph, x, y)
        if node is not None:
            self.select(("population", node))
            return
        edge = graph_model.edge_at(self.canvas.paths, x, y)
        self.select(None if edge is None else ("projection", edge))

    # ------------------------------------------------------------------ canvas actions
    def _edit(self, change, label):
        """One workbench edit from the canvas or the toolbar; a refusal is explained below the canvas."""
        accepted = self.workbench.edit(change, label)
        self._notify(None if accepted else self.workbench.error)
        return accepted

    def _notify(self, message):
        self.notice.param.update(object=message or "", visible=bool(message))

    def _dropped(self, name, x, y):
        if not self.connect_mode.value:
            revision = self.workbench.revision
            self._edit(lambda doc: graph_model.move_population(doc, name, x, y), f"move {name}")
            if self.workbench.revision == revision:
                # Refused, or rounded to where it was: the canvas must show the document's spot again.
                self.refresh()
            return
        target = graph_model.node_at(self.canvas.graph, x, y)
        if target is None:
            self.refresh()
            self._notify("Drop the dragged population onto another population (or onto itself) to connect them.")
            return
        created = {}
        label = f"connect {name} → {target}"
        if self._edit(lambda doc: created.setdefault("index", graph_model.connect(doc, name, target)), label):
            self.select(("projection", created["index"]))
        else:
            self.refresh()

    def _add(self, prefix, add):
        name = graph_model.fresh_name(self.workbench.document, prefix)
        if self._edit(lambda doc: add(doc, name), f"add {name}"):
            self.select(("population", name))

    def _delete(self):
        if self._population() is not None:
            name = self._population()
            self._edit(lambda doc: graph_model.delete_population(doc, name), f"delete {name}")
        elif self._projection() is not None:
            index = self._projection()
            self.selection = None
            self._edit(lambda doc: graph_model.delete_projection(doc, index), f"delete projection {index}")
        else:
            self._notify("Select a population or a projection to delete.")

    def _preset_chosen(self, event):
        self.preset_scale.param.update(options=list(SCALES[event.new]), value=DEFAULT_SCALE[event.new])

    def _apply_preset(self):
        name = self.preset.value
        preset = make_preset(name, self.preset_scale.value)
        self.selection = None
        self._edit(lambda doc: apply_preset(doc, preset), f"preset {name}")

    def _mode_changed(self, event):
        self.hint.object = HINTS[event.new]
        self.connect_mode.color = "primary" if event.new else "default"

    # ------------------------------------------------------------------ side-panel actions
    def _rename(self, event):
        old = self._population()
        if self._syncing or old is None or event.new.strip() == old:
            return
        new = event.new.strip()
        # Selected under its new name before the edit, so the redraw the edit causes finds it.
        self.selection = ("population", new)
        if not self._side_edit(lambda doc: graph_model.rename_population(doc, old, new), f"rename {old}", self.name_error):
            self.selection = ("population", old)

    def _choose(self, event, change, label, edge=False):
        """A choice from a list (kind, cell model, rule, synapse) for the selected population or projection."""
        if self._syncing:
            return
        key = self._projection() if edge else self._population()
        if key is None:
            return
        self._side_edit(lambda doc: change(doc, key, event.new), f"set {label}", self.edge_error if edge else self.choice_error)

    @staticmethod
    def _set_cell(doc, name, cell):
        entry = doc["circuit"]["populations"][name]
        if "cell" not in entry:
            raise ValueError("only a cell population has a cell model")
        entry["cell"] = cell

    def _allow_self_changed(self, event):
        index = self._projection()
        if self._syncing or index is None:
            return
        write = assign(lambda doc: doc["circuit"]["projections"][index]["connect"], "allow_self")
        self._side_edit(lambda doc: write(doc, event.new), "set allow_self", self.edge_error)

    def _drive_toggled(self, event):
        name = self._population()
        if self._syncing or name is None:
            return
        change = graph_model.set_drive if event.new else graph_model.remove_drive
        self._side_edit(lambda doc: change(doc, name), "set drive", self.choice_error)

    def _drive_reader(self, key):
        def read(doc):
            index = graph_model.drive_index(doc, self._population())
            return None if index is None else doc["stimuli"][index].get(key)
        return read

    def _drive_writer(self, key):
        return lambda doc, value: graph_model.set_drive(doc, self._population(), **{key: value})

    def _side_edit(self, change, label, error_pane):
        """One workbench edit from the side panel; a refusal is explained in ``error_pane``, beside the control."""
        accepted = self.workbench.edit(change, label)
        if not accepted:
            error_pane.param.update(object=f"⚠ {self.workbench.error.split(': ', 1)[-1]}", visible=True)
        return accepted

    # ------------------------------------------------------------------ redraw
    def refresh(self):
        """Redraw the canvas and the side panel from the document."""
        doc = self.workbench.document
        populations, projections = doc["circuit"]["populations"], doc["circuit"].get("projections", [])
        if self._population() is not None and self._population() not in populations:
            self.selection = None
        if self._projection() is not None and self._projection() >= len(projections):
            self.selection = None
        self.canvas.draw(graph_model.build_graph(doc), self.selection)
        self._notify(None)
        self._syncing = True
        try:
            options = {"—": NOTHING}
            options.update({f"population {name}": f"population:{name}" for name in populations})
            options.update({f"projection {graph_model.edge_label(doc, k)}": f"projection:{k}" for k in range(len(projections))})
            selected = NOTHING if self.selection is None else f"{self.selection[0]}:{self.selection[1]}"
            self.selector.param.update(options=options, value=selected)
            # Every field shows the document's value for the new selection (or nothing) and drops old errors.
            for field in self._views:
                field.refresh()
            self._refresh_population(doc)
            self._refresh_projection(doc)
        finally:
            self._syncing = False

    def _refresh_population(self, doc):
        name = self._population()
        self.population_form.visible = name is not None
        for pane in (self.name_error, self.choice_error):
            pane.visible = False
        if name is None:
            return
        entry = doc["circuit"]["populations"][name]
        kind = graph_model.kind_of(entry)
        drive = graph_model.drive_index(doc, name)
        self.name_input.value = name
        self.kind_select.param.update(options={graph_model.KINDS[k]: k for k in ("cell", "poisson", kind)}, value=kind)
        self.cell_select.param.update(options=list(doc["cells"]), value=entry.get("cell"), visible=kind == "cell")
        self.drive_on.param.update(value=drive is not None, visible=kind == "cell")
        self.count.input.disabled = kind == "spike_times"
        density = drive is not None and doc["stimuli"][drive].get("density", False)
        self.drive_fields[0].input.label = "Step amplitude (µA/cm²)" if density else "Step amplitude (nA)"
        self._views[self.threshold].visible = kind == "cell"
        self._views[self.rate].visible = kind == "poisson"
        for field in self.drive_fields:
            self._views[field].visible = drive is not None

    def _refresh_projection(self, doc):
        index = self._projection()
        self.projection_form.visible = index is not None
        self.edge_error.visible = False
        if index is None:
            return
        projection = doc["circuit"]["projections"][index]
        rule, synapse = projection["connect"]["rule"], projection["synapse"]["kind"]
        colour = "excitatory" if graph_model.is_excitatory(projection) else "inhibitory"
        self.projection_title.object = f"**Projection {graph_model.edge_label(doc, index)}** ({colour})"
        rules = list(graph_model.RULES) + ([rule] if rule not in graph_model.RULES else [])
        self.rule_select.param.update(options=rules, value=rule, disabled=rule not in graph_model.RULES)
        self.allow_self.param.update(value=projection["connect"].get("allow_self", False), visible=rule not in ("explicit", "one_to_one"))
        self.synapse_select.value = synapse
        shown = {self.p: rule == "fixed_probability", self.k: rule == "fixed_indegree", self.tau: synapse == "exp",
                 self.tau_rise: synapse == "exp2", self.tau_decay: synapse == "exp2"}
        for field, visible in shown.items():
            self._views[field].visible = visible

    # ------------------------------------------------------------------ layout
    def view(self):
        toolbar = pn.Row(self.add_population_button, self.add_source_button, self.connect_mode, self.delete_button)
        presets = pn.Row(self.preset, self.preset_scale, self.preset_button)
        # Messages go below the canvas so that they never move it under the user's pointer.
        left = pn.Column(toolbar, self.canvas.view(), pn.pane.HTML(LEGEND, margin=(0, 10)), self.hint, self.notice, presets)
        right = pn.Column(self.selector, self.population_form, self.projection_form, width=340)
        return pn.Row(left, right, css_classes=["bf-circuit-editor"])
