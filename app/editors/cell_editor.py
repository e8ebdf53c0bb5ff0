"""The Cell pane: the cell builder (a to-scale schematic to grow, re-attach and select cylinders,
the selected cylinder's properties and densities, SWC import), a run of the cell with live
voltage views, and tables of every section and insertion with the cell's passive properties.

Every change is one validated ``workbench.edit``; a refused change is explained inline and the
controls are redrawn from the document.
"""

import copy

import pandas as pd
import panel as pn

from . import cell_builder_document as cell_docs
from .cell_builder import CellBuilder
from .cell_builder_geometry import section_ends
from .cell_builder_live import CellRunPanel
from .fields import BoundField, parse_number

SECTION_COLUMNS = {"length": "length (µm)", "diameter": "diameter (µm)", "nseg": "nseg", "parent": "parent",
                   "parent_x": "parent x", "region": "region"}
# What a missing key means (the root has no parent: blank rather than NaN in the table).
SECTION_DEFAULTS = {"nseg": 1, "region": "soma", "parent": "", "parent_x": ""}
INSERT_COLUMNS = {"channel": "channel", "where": "where", "gbar": "gbar (S/cm²)"}
SECTION_NUMBERS = {"length": dict(exclusive_minimum=0), "diameter": dict(exclusive_minimum=0),
                   "nseg": dict(integer=True, minimum=1), "parent_x": dict(minimum=0, maximum=1)}


def cell_field(workbench, cell_name, key, label, css, placeholder="", **bounds):
    """A BoundField for ``cells.<cell>.<key>`` (a dotted key reaches into nested objects, e.g. reversals.na)."""
    keys = key.split(".")

    def read(doc):
        value = doc["cells"][cell_name()]
        for part in keys:
            value = value[part]
        return value

    def write(doc, value):
        target = doc["cells"][cell_name()]
        for part in keys[:-1]:
            target = target.setdefault(part, {})
        target[keys[-1]] = value

    return BoundField(workbench, label, read, write, lambda text: parse_number(text, **bounds), css, placeholder=placeholder)


# Where each section starts and ends on the schematic, (x0, y0, x1, y1) µm: the name callers know it by.
section_layout = section_ends


class CellEditor:
    def __init__(self, workbench):
        self.workbench = workbench
        self.cell_select = pn.widgets.Select(label="Cell", css_classes=["bf-cell-select"], width=200)
        self.cell_select.param.watch(lambda event: self.refresh(), "value")
        self.new_name = pn.widgets.TextInput(label="New cell name", placeholder="e.g. pyramidal", width=180,
                                             css_classes=["bf-new-cell-name"])
        self.new_button = pn.widgets.Button(label="Copy as new cell", css_classes=["bf-new-cell"], align="end")
        self.new_button.on_click(self._copy_cell)
        self.new_soma_button = pn.widgets.Button(label="New cell (a soma)", css_classes=["bf-new-soma-cell"], align="end")
        self.new_soma_button.on_click(self._new_soma_cell)
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["bf-cell-error"])

        def current():
            return self.cell_select.value

        self.fields = [
            cell_field(workbench, current, "cm", "cm (µF/cm²)", "bf-cell-cm", "default 1", exclusive_minimum=0),
            cell_field(workbench, current, "ra", "Ra (Ω·cm)", "bf-cell-ra", "default 35.4", exclusive_minimum=0),
            cell_field(workbench, current, "v_init", "v_init (mV)", "bf-cell-vinit", "default -65"),
            cell_field(workbench, current, "reversals.na", "E_Na (mV)", "bf-cell-ena", "default 50"),
            cell_field(workbench, current, "reversals.k", "E_K (mV)", "bf-cell-ek", "default -77"),
            cell_field(workbench, current, "reversals.ca", "E_Ca (mV)", "bf-cell-eca", "default 132.5"),
        ]

        self.sections = pn.widgets.Tabulator(pd.DataFrame(), show_index=True, sizing_mode="stretch_width", height=230,
                                             css_classes=["bf-sections"], selectable=1)
        self.sections.on_edit(self._section_edited)
        self.section_name = pn.widgets.TextInput(label="New section", placeholder="dend", width=140,
                                                 css_classes=["bf-new-section-name"])
        self.add_section_button = pn.widgets.Button(label="Add section on the selected one", align="end",
                                                    css_classes=["bf-add-section"])
        self.add_section_button.on_click(self._add_section)
        self.delete_section_button = pn.widgets.Button(label="Delete selected section", align="end",
                                                       css_classes=["bf-delete-section"])
        self.delete_section_button.on_click(self._delete_section)

        self.inserts = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, sizing_mode="stretch_width", height=200,
                                            css_classes=["bf-insertions"], selectable=1)
        self.inserts.on_edit(self._insert_edited)
        self.channel_choice = pn.widgets.Select(label="Channel", width=160, css_classes=["bf-insert-channel"])
        self.add_insert_button = pn.widgets.Button(label="Insert everywhere", align="end", css_classes=["bf-add-insert"])
        self.add_insert_button.on_click(self._add_insert)
        self.delete_insert_button = pn.widgets.Button(label="Remove selected", align="end", css_classes=["bf-delete-insert"])
        self.delete_insert_button.on_click(self._delete_insert)

        self.builder = CellBuilder(workbench, current)
        self.shape_source = self.builder.canvas.bodies
        self.live = CellRunPanel(workbench, self.builder)

        workbench.param.watch(lambda event: self.refresh(), "revision")
        self.refresh()

    # ------------------------------------------------------------------ drawing
    def refresh(self):
        doc = self.workbench.document
        cells = list(doc["cells"])
        if self.cell_select.options != cells:
            self.cell_select.options = cells
        if self.cell_select.value not in cells:
            self.cell_select.value = cells[0]
            return  # the selection watcher refreshes again
        cell = doc["cells"][self.cell_select.value]
        for field in self.fields:
            field.refresh()
        rows = [{"section": name, **{key: section.get(key, SECTION_DEFAULTS.get(key)) for key in SECTION_COLUMNS}}
                for name, section in cell["morphology"].items()]
        frame = pd.DataFrame(rows).set_index("section") if rows else pd.DataFrame()
        self.sections.value = frame.rename(columns=SECTION_COLUMNS)
        self.inserts.value = pd.DataFrame([{"channel": item["channel"], "where": cell_docs.where_text(item.get("where", "all")),
                                            "gbar": item.get("gbar")} for item in cell.get("insert", [])],
                                          columns=["channel", "where", "gbar"]).rename(columns=INSERT_COLUMNS)
        channels = cell_docs.channel_names(doc)
        if self.channel_choice.options != channels:
            chosen = self.channel_choice.value
            self.channel_choice.param.update(options=channels, value=chosen if chosen in channels else channels[0])
        self.builder.refresh()
        self.live.refresh()

    # ------------------------------------------------------------------ edits
    def _apply(self, change, label):
        ok = self.workbench.edit(change, label)
        if ok:
            self.error.visible = False
        else:
            self.error.param.update(object=self.workbench.error, visible=True)
            self.refresh()
        return ok

    def _refuse(self, message):
        self.error.param.update(object=message, visible=True)
        self.refresh()

    def _new_soma_cell(self, event):
        name = self.new_name.value.strip()
        if self._apply(lambda doc: cell_docs.new_cell(doc, name), f"new cell {name}"):
            self.cell_select.value = name

    def _copy_cell(self, event):
        name = self.new_name.value.strip()
        try:
            cell_docs.check_cell_name(self.workbench.document, name)
        except ValueError as err:
            self._refuse(str(err))
            return
        source = self.cell_select.value
        if self._apply(lambda doc: doc["cells"].__setitem__(name, copy.deepcopy(doc["cells"][source])), f"new cell {name}"):
            self.cell_select.value = name

    def _section_edited(self, event):
        column = {label: key for key, label in SECTION_COLUMNS.items()}.get(event.column)
        section = self.sections.value.index[event.row]
        cell = self.cell_select.value
        if column is None:
            self._refuse("rename a section by adding a new one and deleting the old one")
            return
        text = "" if event.value is None else str(event.value).strip()
        try:
            if column in SECTION_NUMBERS:
                value = None if (column == "parent_x" and not text) else parse_number(text, **SECTION_NUMBERS[column])
            else:
                value = text or None
        except ValueError as err:
            self._refuse(f"{section}.{column}: {err}")
            return

        def change(doc):
            entry = doc["cells"][cell]["morphology"][section]
            if column in ("length", "diameter"):
                cell_docs.as_cylinder(entry)  # a traced section's length and diameter come from its points
            if value is None:
                entry.pop(column, None)
            else:
                entry[column] = value

        self._apply(change, f"set {section}.{column}")

    def _add_section(self, event):
        name = self.section_name.value.strip()
        cell = self.cell_select.value
        morphology = self.workbench.document["cells"][cell]["morphology"]
        if not name or any(ch.isspace() or ch == "." for ch in name):
            self._refuse(f"section names are not empty and contain no spaces or dots; got {name!r}")
            return
        if name in morphology:
            self._refuse(f"this cell has a section named {name!r} already")
            return
        selected = self.sections.selection
        parent = self.sections.value.index[selected[0]] if selected else next(iter(morphology))
        self._apply(lambda doc: doc["cells"][cell]["morphology"].__setitem__(
            name, {"length": 100.0, "diameter": 1.0, "nseg": 5, "parent": parent, "region": "dend"}), f"add section {name}")

    def _delete_section(self, event):
        selected = self.sections.selection
        if not selected:
            self._refuse("select a section row first")
            return
        cell = self.cell_select.value
        section = self.sections.value.index[selected[0]]
        self._apply(lambda doc: doc["cells"][cell]["morphology"].pop(section), f"delete section {section}")

    def _insert_edited(self, event):
        column = {label: key for key, label in INSERT_COLUMNS.items()}[event.column]
        cell = self.cell_select.value
        text = "" if event.value is None else str(event.value).strip()
        try:
            if column == "gbar":
                value = None if not text else parse_number(text, minimum=0)
            elif column == "where":
                parts = [part.strip() for part in text.split(",") if part.strip()]
                value = None if parts in ([], ["all"]) else (parts[0] if len(parts) == 1 else parts)
            else:
                value = text
        except ValueError as err:
            self._refuse(f"insert[{event.row}].{column}: {err}")
            return

        def change(doc):
            entry = doc["cells"][cell]["insert"][event.row]
            if value is None:
                entry.pop(column, None)
            else:
                entry[column] = value

        self._apply(change, f"set insert[{event.row}].{column}")

    def _add_insert(self, event):
        channel = self.channel_choice.value
        cell = self.cell_select.value
        if channel is None:
            self._refuse("pick a channel to insert")
            return
        self._apply(lambda doc: doc["cells"][cell].setdefault("insert", []).append({"channel": channel}), f"insert {channel}")

    def _delete_insert(self, event):
        selected = self.inserts.selection
        if not selected:
            self._refuse("select an insertion row first")
            return
        cell, row = self.cell_select.value, selected[0]
        self._apply(lambda doc: doc["cells"][cell]["insert"].pop(row), "remove insertion")

    def view(self):
        passive = pn.Card(pn.FlexBox(*[field.view() for field in self.fields]), title="Membrane and ions", collapsible=False)
        sections = pn.Card(self.sections, pn.Row(self.section_name, self.add_section_button, self.delete_section_button),
                           title="Sections (cylinders)", collapsible=False, sizing_mode="stretch_width")
        inserts = pn.Card(
            pn.pane.Markdown("Densities: `gbar` empty uses the channel's own; `where` is all, a section, a region "
                             "or a comma-separated list. Later rows win where they overlap."),
            self.inserts, pn.Row(self.channel_choice, self.add_insert_button, self.delete_insert_button),
            title="Channels inserted", collapsible=False, sizing_mode="stretch_width")
        builder = pn.Row(self.builder.canvas_view(), self.builder.side_view())
        run = pn.Card(self.live.view(), title="Run the cell: a current step at the soma", collapsible=False,
                      sizing_mode="stretch_width")
        tables = pn.Row(pn.Column(passive, sections, sizing_mode="stretch_width"), inserts, sizing_mode="stretch_width")
        return pn.Column(
            pn.Row(self.cell_select, self.new_name, self.new_soma_button, self.new_button), self.error,
            builder, run, tables, sizing_mode="stretch_width", css_classes=["bf-cell-editor"],
        )

