"""The Cell builder: grow, re-attach and select cylinders on the schematic; edit the selected one,
its channel densities (per section, per region or everywhere) and import SWC files.

Gestures on the canvas (µm): in "Add cylinder" mode a drag that starts on a cylinder (near an end
it snaps to that end, elsewhere ``parent_x`` is where it started) adds a child whose length is the
drag's length; in "Re-attach" mode the grabbed cylinder (with everything below it) is hung where
it is dropped on another cylinder. A tap selects. Each gesture or field is one validated
``workbench.edit`` (one undo step); a refusal is shown beside the control, the document unchanged.
"""

import math

import panel as pn

from brainfuse_core.errors import BrainFuseError

from . import cell_builder_document as cells
from . import cell_builder_geometry as geometry
from .cell_builder_canvas import CellCanvas
from .fields import BoundField, parse_number

ADD, REATTACH = "Add cylinder", "Re-attach"
HINTS = {ADD: "Drag from a cylinder (its end, or any point along it) to where the new cylinder should end; "
              "tap a cylinder to select it.",
         REATTACH: "Drag a cylinder and drop it on another cylinder: it hangs there, with its branches."}
GRAB_PX = 12   # how near (px) a gesture must start to a cylinder to grab it
SNAP_PX = 15   # how near (px) to a cylinder's end a drag snaps to that end
MIN_DRAG_PX = 8
EVERYWHERE = "all"
REGIONS = ("soma", "basal", "apical", "axon", "dend")  # suggested; any name is a region


def _optional(**bounds):
    return lambda text: None if not str(text).strip() else parse_number(text, **bounds)


def _region_name(text):
    text = str(text).strip()
    if not text or any(ch.isspace() or ch in ".," for ch in text):
        raise ValueError(f"a region is a name without spaces, dots or commas, e.g. basal; got {text!r}")
    return text


def _error_pane():
    return pn.pane.Markdown("", visible=False, css_classes=["bf-field-error"], styles={"color": "#b00020"}, margin=(0, 10))


class CellBuilder:
    def __init__(self, workbench, current_cell):
        self.workbench, self.current_cell = workbench, current_cell
        self.angles = {}  # (cell, section) → direction (rad) the user dragged it out in; the view's memory, not the model's
        self.selected = None
        self.canvas = CellCanvas(self._dragged, self._tapped)
        self.mode = pn.widgets.RadioButtonGroup(options=[ADD, REATTACH], value=ADD, css_classes=["bf-drag-mode"])
        self.mode.param.watch(lambda event: setattr(self.hint, "object", HINTS[event.new]), "value")
        self.hint = pn.pane.Markdown(HINTS[ADD], css_classes=["bf-cell-hint"], margin=(0, 10))
        self.notice = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["bf-builder-error"])
        self.new_diameter = pn.widgets.TextInput(label="New cylinders: diameter (µm)", value="2", width=190,
                                                 css_classes=["bf-new-diameter"])
        self.new_region = pn.widgets.AutocompleteInput(label="region", placeholder="inherit", width=140, restrict=False,
                                                       options=list(REGIONS), min_characters=0, css_classes=["bf-new-region"])
        self._build_section_form()
        self._build_densities()
        self._build_swc()

    # ------------------------------------------------------------------ widgets
    def _build_section_form(self):
        self.section_title = pn.pane.Markdown("", css_classes=["bf-section-title"], margin=(0, 10))

        def field(key, label, css, parse, optional=False):
            def read(doc):
                return doc["cells"][self.current_cell()]["morphology"][self.selected].get(key)

            def write(doc, value):
                if self.selected is None:
                    raise ValueError("select a cylinder first")
                cells.set_section_value(doc, self.current_cell(), self.selected, key, value)

            return BoundField(self.workbench, label, read, write, parse, css, width=120,
                              placeholder="the cell's" if optional else "")

        self.section_fields = [
            field("length", "length (µm)", "bf-sec-length", lambda t: parse_number(t, exclusive_minimum=0)),
            field("diameter", "diameter (µm)", "bf-sec-diameter", lambda t: parse_number(t, exclusive_minimum=0)),
            field("nseg", "segments", "bf-sec-nseg", lambda t: parse_number(t, integer=True, minimum=1)),
            field("ra", "Ra (Ω·cm)", "bf-sec-ra", _optional(exclusive_minimum=0), optional=True),
            field("cm", "cm (µF/cm²)", "bf-sec-cm", _optional(exclusive_minimum=0), optional=True),
            field("region", "region", "bf-sec-region", _region_name),
        ]
        self.delete_button = pn.widgets.Button(label="Delete cylinder (and its branches)", color="danger",
                                               css_classes=["bf-delete-cylinder"])
        self.delete_button.on_click(lambda event: self._delete())
        self.section_form = pn.Column(self.section_title, pn.FlexBox(*[f.view() for f in self.section_fields]),
                                      self.delete_button, visible=False, css_classes=["bf-section-form"])

    def _build_densities(self):
        self.density_list = pn.pane.Markdown("", css_classes=["bf-density-list"], margin=(0, 10))
        self.density_channel = pn.widgets.Select(label="Channel", width=150, css_classes=["bf-density-channel"])
        self.density_where = pn.widgets.Select(label="On", width=190, css_classes=["bf-density-where"])
        self.density_gbar = pn.widgets.TextInput(label="gbar (S/cm²)", placeholder="the channel's", width=120,
                                                 css_classes=["bf-density-gbar"])
        self.set_density_button = pn.widgets.Button(label="Set density", color="primary", align="end",
                                                    css_classes=["bf-set-density"])
        self.set_density_button.on_click(lambda event: self._set_density())
        self.remove_density_button = pn.widgets.Button(label="Remove", align="end", css_classes=["bf-remove-density"])
        self.remove_density_button.on_click(lambda event: self._remove_density())
        self.density_error = _error_pane()

    def _build_swc(self):
        self.swc_upload = pn.widgets.FileInput(accept=".swc", css_classes=["bf-swc-upload"])
        self.swc_path = pn.widgets.TextInput(label="or a path", placeholder="path/to/cell.swc", width=220,
                                             css_classes=["bf-swc-path"])
        self.swc_name = pn.widgets.TextInput(label="New cell name", placeholder="e.g. pyramidal", width=150,
                                             css_classes=["bf-swc-name"])
        self.swc_segment = pn.widgets.TextInput(label="max segment (µm)", placeholder="one per section", width=130,
                                                css_classes=["bf-swc-segment"])
        self.swc_button = pn.widgets.Button(label="Import SWC", align="end", css_classes=["bf-swc-import"])
        self.swc_button.on_click(lambda event: self._import_swc())
        self.swc_error = _error_pane()

    # ------------------------------------------------------------------ drawing
    def refresh(self):
        """Redraw from the document (after any edit, undo, or a change of cell)."""
        doc = self.workbench.document
        cell = self.current_cell()
        morphology = doc["cells"][cell]["morphology"]
        if self.selected not in morphology:
            self.selected = None
        self.canvas.draw(morphology, self.angles_of(cell), self.selected)
        suggested = list(dict.fromkeys([*REGIONS, *cells.regions(morphology)]))
        if self.new_region.options != suggested:
            self.new_region.options = suggested
        for f in self.section_fields:
            f.refresh()
        self.section_form.visible = self.selected is not None
        if self.selected is not None:
            entry = morphology[self.selected]
            parent = f", on {entry['parent']}({entry.get('parent_x', 1.0):g})" if "parent" in entry else " (the root)"
            traced = (f"<br>traced through {len(entry['points'])} points; a new length or diameter makes it a plain cylinder"
                      if "points" in entry else "")
            self.section_title.object = f"**Selected: {self.selected}**{parent}{traced}"
        self._refresh_densities(doc, cell, morphology)

    def angles_of(self, cell):
        """{section: direction (rad)} of the cylinders of ``cell`` the user dragged out."""
        return {section: angle for (owner, section), angle in self.angles.items() if owner == cell}

    def _refresh_densities(self, doc, cell, morphology):
        channels = cells.channel_names(doc)
        if self.density_channel.options != channels:
            value = self.density_channel.value
            self.density_channel.param.update(options=channels, value=value if value in channels else channels[0])
        places = {}
        if self.selected is not None:
            region = morphology[self.selected].get("region", "soma")
            places[f"this section ({self.selected})"] = self.selected
            if region != self.selected:  # a where naming both a section and a region means the section alone
                places[f"its region ({region})"] = region
        places["everywhere (all)"] = EVERYWHERE
        for region in cells.regions(morphology):
            if region not in places.values():
                places[f"region {region}"] = region
        if self.density_where.options != places:
            value = self.density_where.value
            # Options and value in one update: a value set apart from its new options may show blank in the page.
            self.density_where.param.update(options=places,
                                            value=value if value in places.values() else next(iter(places.values())))
        if self.selected is None:
            rows = [f"| {i['channel']} | {i.get('gbar', 'own')} | {cells.where_text(i.get('where', EVERYWHERE))} |"
                    for i in doc["cells"][cell].get("insert", [])]
            title = "**Densities of this cell**"
            header = "| channel | gbar (S/cm²) | on |"
        else:
            rows = [f"| {channel} | {gbar:g} | {where} |" for channel, gbar, where in cells.density_sources(doc, cell, self.selected)]
            title = f"**Densities in {self.selected}** (as the core resolves them)"
            header = "| channel | gbar (S/cm²) | from |"
        table = "\n".join([header, "|---|---|---|", *rows]) if rows else "no channels: a passive membrane without leak"
        self.density_list.object = f"{title}\n\n{table}"

    # ------------------------------------------------------------------ gestures
    def _notify(self, message):
        self.notice.param.update(object=message or "", visible=bool(message))

    def _edit(self, change, label):
        accepted = self.workbench.edit(change, label)
        self._notify(None if accepted else self.workbench.error)
        return accepted

    def _grabbed(self, x, y, drawn=None):
        """(section, fraction) of the cylinder under (x, y) µm, or None."""
        drawn = self.canvas.drawn if drawn is None else drawn
        hit = geometry.nearest(drawn, x, y)
        if hit is None:
            return None
        name, fraction, distance = hit
        morphology = self.workbench.document["cells"][self.current_cell()]["morphology"]
        if distance > max(GRAB_PX * self.canvas.scale(), morphology[name]["diameter"] / 2):
            return None
        return name, self._snap(drawn[name], fraction)

    def _snap(self, drawn, fraction):
        near = SNAP_PX * self.canvas.scale()
        end = 1.0 if fraction >= 0.5 else 0.0  # the nearer end: on a short cylinder both may be near
        if abs(end - fraction) * drawn.length <= near:
            return end
        return round(fraction, 3)

    def _tapped(self, x, y):
        grabbed = self._grabbed(x, y)
        self.select(None if grabbed is None else grabbed[0])

    def select(self, section):
        self.selected = section
        self._notify(None)
        self.refresh()

    def _dragged(self, start, end):
        grabbed = self._grabbed(*start)
        if grabbed is None:
            self._notify("Start the drag on a cylinder (its end or any point along it).")
            return
        if self.mode.value == ADD:
            self.grow(*grabbed, end)
        else:
            self.reattach(grabbed[0], end)

    def grow(self, parent, parent_x, end):
        """Add a cylinder from ``parent``(``parent_x``) to ``end`` (x, y µm)."""
        cell = self.current_cell()
        start = self.canvas.drawn[parent].at(parent_x)
        length = math.dist(start, end)
        if length < MIN_DRAG_PX * self.canvas.scale():
            self._notify("Drag further: the new cylinder's length is the length of the drag.")
            return
        try:
            diameter = parse_number(self.new_diameter.value, exclusive_minimum=0)
        except ValueError as err:
            self._notify(f"New cylinders' diameter (µm): {err}")
            return
        try:
            region = _region_name(self.new_region.value) if self.new_region.value.strip() else None
        except ValueError as err:
            self._notify(f"New cylinders' region: {err}")
            return
        morphology = self.workbench.document["cells"][cell]["morphology"]
        name = cells.fresh_section_name(morphology, cells.child_region(morphology, parent, region))
        # Known before the edit: the edit redraws, and the new cylinder must point where it was dragged.
        self.angles[(cell, name)] = math.atan2(end[1] - start[1], end[0] - start[0])
        self.selected = name
        change = lambda doc: cells.add_section(doc, cell, parent, parent_x, round(length, 1), name=name, region=region,
                                               diameter=diameter)
        if not self._edit(change, f"add cylinder {name} on {parent}({parent_x:g})"):
            del self.angles[(cell, name)]
            self.select(None)

    def reattach(self, section, end):
        """Hang ``section`` where ``end`` (x, y µm) lies on another cylinder."""
        cell = self.current_cell()
        morphology = self.workbench.document["cells"][cell]["morphology"]
        if "parent" not in morphology[section]:
            self._notify(f"{section} is the root of the cell; grab one of its branches to re-attach it.")
            return
        below = set(cells.descendants(morphology, section))
        others = {name: d for name, d in self.canvas.drawn.items() if name not in below}
        target = self._grabbed(*end, drawn=others)
        if target is None:
            self._notify(f"Drop {section} onto another cylinder (not onto itself or its own branches).")
            self.refresh()
            return
        parent, parent_x = target
        self.angles.pop((cell, section), None)
        if self._edit(lambda doc: cells.reattach(doc, cell, section, parent, parent_x),
                      f"re-attach {section} to {parent}({parent_x:g})"):
            self.select(section)

    def _delete(self):
        cell, section = self.current_cell(), self.selected
        if section is not None:
            self._edit(lambda doc: cells.delete_section(doc, cell, section), f"delete {section}")

    # ------------------------------------------------------------------ densities
    def _set_density(self):
        cell, channel, where = self.current_cell(), self.density_channel.value, self.density_where.value
        try:
            gbar = _optional(minimum=0)(self.density_gbar.value)
        except ValueError as err:
            self._density_failed(f"gbar: {err}")
            return
        label = f"set {channel} on {where}"
        if self.workbench.edit(lambda doc: cells.set_density(doc, cell, channel, where, gbar), label):
            self.density_error.visible = False
        else:
            self._density_failed(self.workbench.error)

    def _remove_density(self):
        cell, channel, where = self.current_cell(), self.density_channel.value, self.density_where.value
        if self.workbench.edit(lambda doc: cells.remove_density(doc, cell, channel, where), f"remove {channel} from {where}"):
            self.density_error.visible = False
        else:
            self._density_failed(self.workbench.error)

    def _density_failed(self, message):
        self.density_error.param.update(object=f"⚠ {message}", visible=True)

    # ------------------------------------------------------------------ SWC
    def _import_swc(self):
        """Read the uploaded file (or the path) through the core's load_swc into a new cell; returns its name."""
        name = self.swc_name.value.strip()
        try:
            cells.check_cell_name(self.workbench.document, name)
            segment = _optional(exclusive_minimum=0)(self.swc_segment.value)
            if self.swc_upload.value:
                morphology = cells.read_swc_bytes(self.swc_upload.value, self.swc_upload.filename or "upload.swc", segment)
            elif self.swc_path.value.strip():
                morphology = cells.read_swc(self.swc_path.value.strip(), segment)
            else:
                raise ValueError("choose an SWC file to upload or type its path")
        except OSError as err:
            self._swc_failed(f"{err.filename or self.swc_path.value}: {err.strerror or err}")
            return None
        except (BrainFuseError, ValueError) as err:
            self._swc_failed(" ".join(str(err).split()))
            return None
        if not self.workbench.edit(lambda doc: cells.add_swc_cell(doc, name, morphology), f"import SWC as {name}"):
            self._swc_failed(self.workbench.error)
            return None
        self.swc_error.visible = False
        return name

    def _swc_failed(self, message):
        self.swc_error.param.update(object=f"⚠ {message}", visible=True)

    # ------------------------------------------------------------------ layout
    def canvas_view(self):
        drag_row = pn.Row(self.mode, self.new_diameter, self.new_region)
        return pn.Column(drag_row, self.canvas.view(), self.hint, self.notice)

    def side_view(self):
        densities = pn.Column(self.density_list, pn.Row(self.density_channel, self.density_where),
                              pn.Row(self.density_gbar, self.set_density_button, self.remove_density_button),
                              self.density_error)
        swc = pn.Card(pn.Row(self.swc_upload), pn.Row(self.swc_path, self.swc_segment),
                      pn.Row(self.swc_name, self.swc_button), self.swc_error, title="Import an SWC file",
                      collapsed=False, sizing_mode="stretch_width")
        return pn.Column(self.section_form, densities, swc, width=460)

