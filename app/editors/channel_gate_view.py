"""One gate in the channel editor: its x∞ and τ plots (and α, β for rate kinetics) with draggable
handles, a "tabulate" action, and number fields for its exponent and curve parameters.

The view holds no model state of its own: ``update`` redraws it from the gate's definition in
the document, and every change goes through ``workbench.edit`` (one edit per drag release).
"""

import math

import panel as pn

from .channel_curves import CAI_RANGE, TABULATION_POINTS, V_RANGE
from .channel_document import channel_from, set_curve, set_curve_parameter, set_gate, set_gate_power
from .channel_plots import COLORS, add_handles, add_line, compact_legend, curve_figure
from .curve_handles import check_parameter, curve_handles, drag_curve, moved_handles, tabulate_gate
from .fields import BoundField, parse_number

SYMBOLS = {"inf": "{}∞", "tau": "τ{}", "alpha": "α{}", "beta": "β{}"}
VOLTAGE_PARAMETERS = {"midpoint", "scale", "slope", "mid_rise", "scale_rise", "mid_fall", "scale_fall"}
VALUE_UNITS = {"inf": "", "tau": "ms", "alpha": "1/ms", "beta": "1/ms"}
TABULATE_NOTE = (f"Tabulating samples x∞ and τ at {len(TABULATION_POINTS)} points from {V_RANGE[0]:g} to {V_RANGE[1]:g} mV "
                 "(monotone cubic between them, flat outside): for the library channels x∞ stays within about 0.03 and τ "
                 "within about 10 % of its peak. Then drag any point up or down.")


def gate_signature(name, data, axis):
    """What decides the gate's layout (figures, handles, fields); values may change under it."""
    kinds = []
    for role in ("inf", "tau", "alpha", "beta"):
        curve = data.get(role)
        if curve is not None:
            extra = tuple(sorted(curve.get("parameters", {}))) if curve["kind"] == "expression" else len(curve.get("points", ()))
            kinds.append((role, curve["kind"], extra))
    return name, axis, tuple(kinds)


def parameter_units(kind, role, parameter, axis):
    if parameter in VOLTAGE_PARAMETERS:
        return "mM" if axis == "cai" and parameter == "midpoint" else "mV"
    if parameter == "kd":
        return "mM"
    if parameter in ("rate", "base", "amplitude", "value"):
        return VALUE_UNITS[role]
    return ""


class GateView:
    """The plots and fields of gate ``name`` of channel ``channel`` (a name)."""

    def __init__(self, workbench, channel, name, data, axis, definition):
        self.workbench, self.channel, self.name, self.axis = workbench, channel, name, axis
        self.definition = definition
        self.signature = gate_signature(name, data, axis)
        self.data = data
        self.form = "alpha_beta" if "alpha" in data else "inf_tau"
        self.handles, self.yscale = {}, {}
        self.lines, self.handle_sources = {}, {}
        self._syncing = False
        self.figures = [self._figure("inf"), self._figure("tau")]
        if self.form == "alpha_beta":
            self.figures.append(self._figure("alpha", "beta"))
        self.tabulate = pn.widgets.Button(label=f"Tabulate {name}∞, τ{name}", css_classes=[f"bf-tabulate-{name}"],
                                          color="light", width=160, disabled=not self._can_tabulate(data))
        self.tabulate.on_click(self._tabulate)
        self.fields = [self._power_field()] + [field for role in ("inf", "tau", "alpha", "beta") if role in data
                                               for field in self._parameter_fields(role, data[role])]

    # ------------------------------------------------------------------ building
    def _figure(self, *roles):
        symbols = ", ".join(SYMBOLS[role].format(self.name) for role in roles)
        units = VALUE_UNITS[roles[0]]
        y_label = f"{symbols} ({units})" if units else f"{symbols} (open fraction)"
        title = {"inf": f"Steady state {symbols}", "tau": f"Time constant {symbols}"}.get(roles[0], f"Rates {symbols}")
        fig = curve_figure(title, self.axis, y_label, f"bf-curve-{roles[0]}-{self.name}",
                           y_range=(-0.05, 1.05) if roles[0] == "inf" else None)
        for role in roles:
            self.lines[role] = add_line(fig, COLORS[role], legend=SYMBOLS[role].format(self.name) if len(roles) > 1 else None)
            draggable = role in self.data and self.data[role]["kind"] != "expression"
            if draggable:
                source = add_handles(fig, COLORS[role])
                source.on_change("data", lambda attr, old, new, role=role: self._moved(role, new))
                self.handle_sources[role] = source
        if len(roles) > 1:
            compact_legend(fig)
        return pn.pane.Bokeh(fig)

    def _power_field(self):
        def read(doc):
            return self.definition(doc)["gates"][self.name]["power"]

        def write(doc, value):
            set_gate_power(doc, self.channel, self.name, value)

        return BoundField(self.workbench, f"{self.name} exponent", read, write,
                          lambda text: parse_number(text, integer=True, minimum=1), f"bf-power-{self.name}", width=90)

    def _parameter_fields(self, role, curve):
        kind = curve["kind"]
        if kind == "tabulated":
            return []
        names = list(curve.get("parameters", {})) if kind == "expression" else [k for k in curve if k not in ("kind", "variable")]
        return [self._parameter_field(role, kind, name) for name in names]

    def _parameter_field(self, role, kind, parameter):
        units = parameter_units(kind, role, parameter, self.axis)
        label = f"{SYMBOLS[role].format(self.name)} {parameter}" + (f" ({units})" if units else "")

        def read(doc):
            curve = self.definition(doc)["gates"][self.name][role]
            return curve["parameters"][parameter] if kind == "expression" else curve[parameter]

        def write(doc, value):
            set_curve_parameter(doc, self.channel, self.name, role, parameter, value)

        def parse(text):
            value = parse_number(text)
            problem = check_parameter(kind, role, parameter, value)
            if problem:
                raise ValueError(problem)
            return value

        return BoundField(self.workbench, label, read, write, parse, f"bf-param-{self.name}-{role}-{parameter}", width=130)

    def _can_tabulate(self, data):
        return self.axis == "v" and not (self.form == "inf_tau" and data["inf"]["kind"] == data["tau"]["kind"] == "tabulated")

    # ------------------------------------------------------------------ drawing
    def update(self, data, curves, rate_factor):
        """Redraw from the gate's definition ``data`` and its sampled ``curves`` (channel_curves.gate_curves)."""
        self.data = data
        self.yscale = {"inf": 1.0, "tau": 1.0 / rate_factor, "alpha": rate_factor, "beta": rate_factor}
        for role, source in self.lines.items():
            source.data = {"x": curves["x"], "y": curves[role]}
        self._draw_handles()
        self.tabulate.disabled = not self._can_tabulate(data)
        for field in self.fields:
            field.refresh()

    def _draw_handles(self):
        anchor = math.sqrt(CAI_RANGE[0] * CAI_RANGE[1]) if self.axis == "cai" else sum(V_RANGE) / 2
        self._syncing = True
        try:
            for role, source in self.handle_sources.items():
                handles = curve_handles(self.data[role], role, self.yscale[role], anchor)
                self.handles[role] = handles
                source.data = {"x": [h.x for h in handles], "y": [h.y for h in handles], "name": [h.name for h in handles]}
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ editing
    def _moved(self, role, new):
        """The handle data of ``role`` changed in the browser (a drag was released)."""
        if self._syncing:
            return
        moves = moved_handles(self.handles.get(role, []), new.get("x", []), new.get("y", []))
        revision = self.workbench.revision
        if moves:
            curve = drag_curve(self.data[role], role, moves, self.yscale[role])
            label = f"drag {self.channel}.{self.name} {SYMBOLS[role].format(self.name)}"
            self.workbench.edit(lambda doc: set_curve(doc, self.channel, self.name, role, curve), label)
        if self.workbench.revision == revision:
            # Nothing was stored (no change, a refused edit, or a deleted point): put the handles back.
            self._draw_handles()

    def _tabulate(self, event):
        def change(doc):
            set_gate(doc, self.channel, self.name, tabulate_gate(channel_from(doc, self.channel), self.name, TABULATION_POINTS))

        self.workbench.edit(change, f"tabulate {self.channel}.{self.name}")

    def view(self):
        header = pn.pane.Markdown(f"**Gate {self.name}** — {'α/β rates' if self.form == 'alpha_beta' else 'x∞/τ'} kinetics",
                                  margin=(5, 10, 0, 10))
        # Tabulation samples voltage; [Ca]i-gated kinetics are edited through their numbers instead.
        tabulate = pn.Row(self.tabulate, pn.pane.Markdown(TABULATE_NOTE, styles={"font-size": "11px", "color": "#555"},
                                                          width=520, margin=(0, 10)), visible=self.axis == "v")
        fields = pn.FlexBox(*[field.view() for field in self.fields], gap="0 4px")
        return pn.Column(header, pn.Row(*self.figures), tabulate, fields, css_classes=[f"bf-gate-{self.name}"],
                         sizing_mode="stretch_width")
