"""The Channels pane: pick or create a channel, drag its gate curves, and see the I–V curve, a
voltage-clamp family and a single-cell preview follow every edit.

Everything drawn is recomputed from ``workbench.document`` after each change of its revision
(edits, undo/redo, opening a project). The curves, I–V and clamp family are redrawn within the
edit's own callback and sent to the browser as one message; the single-cell preview runs on the
next tick of the server's event loop, so the new curves reach the browser first.
"""

import numpy as np
import panel as pn
from panel.io import hold

from ..bokeh_updates import served_document
from .channel_curves import LEVELS, HOLD, clamp_family, gate_curves, peak_currents, steady_state_iv
from .channel_document import (add_channel_copy, celsius, channel_choices, channel_from, check_new_name, full_definition,
                               is_full_definition, reversal_of, set_gbar)
from .channel_gate_view import GateView, gate_signature
from .channel_plots import SUMMARY_WIDTH, clamp_figure, iv_figure, preview_figure
from .channel_preview import StepProtocol, preview_membrane, simulate_step
from .fields import BoundField, parse_number

SPIKE_THRESHOLD = -20.0


class ChannelEditor:
    def __init__(self, workbench):
        self.workbench = workbench
        self.document = served_document()
        # How the preview is run after the curves: on the next tick when served, else at once.
        self.defer = self.document.add_next_tick_callback if self.document is not None else lambda function: function()
        self.protocol = StepProtocol()
        self.gate_views = {}
        self._built_for = None
        self._definition = (None, None, None)
        self._preview_token = 0
        self._selecting = False
        self.selected = self._default_channel(workbench.document)

        self.select = pn.widgets.Select(label="Channel", css_classes=["bf-channel-select"], width=240)
        self.select.param.watch(self._picked, "value")
        self.undo = pn.widgets.Button(label="Undo", css_classes=["bf-channel-undo"], width=70, margin=(23, 5, 5, 5))
        self.undo.on_click(lambda event: self.workbench.undo())
        self.redo = pn.widgets.Button(label="Redo", css_classes=["bf-channel-redo"], width=70, margin=(23, 5, 5, 5))
        self.redo.on_click(lambda event: self.workbench.redo())
        self.gbar = BoundField(workbench, "gbar (S/cm²)", lambda doc: self.definition(doc)["gbar"],
                               lambda doc, value: set_gbar(doc, self.selected, value),
                               lambda text: parse_number(text, minimum=0), "bf-channel-gbar", width=120)
        self.new_name = pn.widgets.TextInput(label="New channel (copy of the selected one)", placeholder="my_channel",
                                             css_classes=["bf-new-channel-name"], width=240)
        self.create = pn.widgets.Button(label="Create", css_classes=["bf-new-channel"], width=80, margin=(23, 5, 5, 5))
        self.create.on_click(self._create)
        self.new_error = pn.pane.Markdown("", visible=False, css_classes=["bf-new-channel-error"], styles={"color": "#b00020"})
        self.info = pn.pane.Markdown("", css_classes=["bf-channel-info"], margin=(0, 10))
        self.preview_amp = pn.widgets.TextInput(label="Preview step (µA/cm², 5–45 ms)", value=f"{self.protocol.amp:g}",
                                                css_classes=["bf-preview-amp"], width=200)
        self.preview_amp.param.watch(self._amp_entered, "value")
        self.preview_error = pn.pane.Markdown("", visible=False, css_classes=["bf-preview-amp-error"], styles={"color": "#b00020"})
        self.preview_status = pn.pane.Markdown("", css_classes=["bf-preview-status"], margin=(0, 10))
        self.gates = pn.Column(sizing_mode="stretch_width")
        self.iv_figure, self.iv_steady, self.iv_peak = iv_figure()
        self.clamp_figure, self.clamp_source, self.clamp_colors = clamp_figure(len(LEVELS))
        self.clamp_figure.title.text = f"Clamp {HOLD:g} → {LEVELS[0]:g}…{LEVELS[-1]:+g} mV"
        self.preview_figure, self.preview_source = preview_figure()
        workbench.param.watch(self._revised, "revision")
        self.refresh()

    # ------------------------------------------------------------------ reading
    def definition(self, doc):
        """The selected channel of ``doc`` as a full definition, rebuilt only when the document
        (replaced, never mutated, on every edit) or the selection changed."""
        cached_doc, cached_name, value = self._definition
        if cached_doc is not doc or cached_name != self.selected:
            value = full_definition(doc, self.selected)
            self._definition = (doc, self.selected, value)
        return value

    @staticmethod
    def _default_channel(doc):
        choices = channel_choices(doc)
        with_gates = [name for name, _ in choices if channel_from(doc, name).gates]
        return (with_gates or [choices[0][0]])[0]

    # ------------------------------------------------------------------ drawing
    def refresh(self):
        """Redraw everything from the document (after any change of it or of the selection), sending
        the browser one combined message rather than one per changed plot or field."""
        with hold(self.document):
            self._redraw()

    def _redraw(self):
        doc = self.workbench.document
        self._sync_choices(doc)
        channel = channel_from(doc, self.selected)
        definition = self.definition(doc)
        temperature = celsius(doc)
        factor = float(channel.rate_factor(temperature))
        curves = gate_curves(channel, temperature)
        signatures = [gate_signature(name, data, curves[name]["axis"]) for name, data in definition["gates"].items()]
        if self._built_for != self.selected or signatures != [view.signature for view in self.gate_views.values()]:
            self._build_gates(definition, curves)
        for name, view in self.gate_views.items():
            view.update(definition["gates"][name], curves[name], factor)
        reversal = reversal_of(doc, channel)
        v, current = steady_state_iv(channel, reversal, temperature)
        self.iv_steady.data = {"x": v, "y": current}
        t, family = clamp_family(channel, reversal, temperature)
        peaks = peak_currents(t, family)
        self.iv_peak.data = {"x": list(peaks), "y": list(peaks.values())}
        self.clamp_source.data = {"xs": [t] * len(family), "ys": list(family.values()), "color": self.clamp_colors,
                                  "level": list(family)}
        self.gbar.refresh()
        self.undo.disabled = not self.workbench.can_undo
        self.redo.disabled = not self.workbench.can_redo
        self.info.object = self._describe(doc, channel, reversal, temperature)
        self._schedule_preview()

    def _build_gates(self, definition, curves):
        self.gate_views = {name: GateView(self.workbench, self.selected, name, data, curves[name]["axis"], self.definition)
                           for name, data in definition["gates"].items()}
        self._built_for = self.selected
        views = [view.view() for view in self.gate_views.values()]
        self.gates.objects = views or [pn.pane.Markdown("This channel has no gates (a leak): its current is gbar·(V − E).")]

    def _sync_choices(self, doc):
        choices = channel_choices(doc)
        names = [name for name, _ in choices]
        if self.selected not in names:
            self.selected = self._default_channel(doc)
        options = {f"{name} ({origin})": name for name, origin in choices}
        self._selecting = True
        try:
            if self.select.options != options:
                self.select.options = options
            self.select.value = self.selected
        finally:
            self._selecting = False

    def _describe(self, doc, channel, reversal, temperature):
        entry = doc.get("channels", {}).get(channel.name)
        if entry is None:
            origin = "library channel, not in this project yet: an edit adds it"
        elif not is_full_definition(doc, channel.name):
            origin = f"library entry ({entry['library']}): the first kinetics edit stores its full definition"
        else:
            origin = "defined in this project"
        source = "its own" if channel.reversal is not None else f"{channel.ion} in the cells"
        gates = " · ".join(f"{g.name}{_superscript(g.power)}" for g in channel.gates) or "no gates"
        q10 = f", Q10 {channel.q10:g} from {channel.temperature:g} °C" if channel.q10 != 1.0 else ""
        return (f"**{channel.name}** — {channel.description or 'no description'} ({origin})  \n"
                f"{gates}; E = {reversal:g} mV ({source}); curves at {temperature:g} °C (run.celsius){q10}")

    # ------------------------------------------------------------------ preview
    def _schedule_preview(self):
        # Only the latest request runs: drags faster than the preview skip the stale ones.
        self._preview_token += 1
        token = self._preview_token
        self.defer(lambda: self._run_preview(token))

    def _run_preview(self, token):
        if token != self._preview_token:
            return
        with hold(self.document):
            self._show_preview()

    def _show_preview(self):
        membrane = preview_membrane(self.workbench.document, self.selected)
        try:
            t, v = simulate_step(membrane, self.protocol)
        except ValueError as err:
            self.preview_source.data = {"x": [], "y": []}
            self.preview_status.object = f"⚠ {err}"
            return
        self.preview_source.data = {"x": t, "y": v}
        spikes = int(np.count_nonzero((v[1:] >= SPIKE_THRESHOLD) & (v[:-1] < SPIKE_THRESHOLD)))
        self.preview_figure.title.text = f"Preview: {membrane.cell}, {self.protocol.amp:g} µA/cm² step"
        self.preview_status.object = (f"{spikes} spike{'s' if spikes != 1 else ''} in {self.protocol.tstop:g} ms "
                                      f"(root compartment of {membrane.cell}: {', '.join(membrane.channel_names)})")

    def _amp_entered(self, event):
        try:
            amp = parse_number(event.new)
        except ValueError as err:
            self.preview_error.param.update(object=f"⚠ {err}", visible=True)
            return
        self.preview_error.param.update(object="", visible=False)
        self.protocol = StepProtocol(amp=amp)
        self._schedule_preview()

    # ------------------------------------------------------------------ actions
    def _revised(self, event):
        if not (self.workbench.can_undo or self.workbench.can_redo):
            # Both histories are empty only after a project was opened: start from its own channels.
            self.selected = self._default_channel(self.workbench.document)
        self.refresh()

    def _picked(self, event):
        if self._selecting or event.new is None or event.new == self.selected:
            return
        self.selected = event.new
        self.refresh()

    def _create(self, event):
        name = self.new_name.value.strip()
        problem = check_new_name(self.workbench.document, name)
        if problem is None:
            source, self.selected = self.selected, name
            # Selected before the edit, so that the redraw the edit triggers shows the new channel.
            if self.workbench.edit(lambda doc: add_channel_copy(doc, name, source), f"new channel {name}"):
                self.new_name.value = ""
                self.new_error.param.update(object="", visible=False)
                return
            self.selected = source
            problem = self.workbench.error
        self.new_error.param.update(object=f"⚠ {problem}", visible=True)

    def view(self):
        controls = pn.Row(self.select, self.undo, self.redo, self.gbar.view(), pn.Column(pn.Row(self.new_name, self.create),
                                                                                        self.new_error))
        summary = pn.Column(self.iv_figure, self.clamp_figure, self.preview_figure, self.preview_amp, self.preview_error,
                            self.preview_status, width=SUMMARY_WIDTH + 20)
        return pn.Column(controls, self.info, pn.Row(self.gates, summary), css_classes=["bf-channel-editor"],
                         sizing_mode="stretch_width", scroll=True)


def _superscript(power):
    return "" if power == 1 else str(power).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
