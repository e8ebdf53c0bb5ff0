"""The workbench page: a project sidebar (open, save, save as, examples, dirty marker, undo/redo)
and one tab per pane. Each browser session gets its own ``Workbench`` and its own panes."""

import weakref
from pathlib import Path

import panel as pn
import param

from .editors.cell_editor import CellEditor
from .editors.channel_editor import ChannelEditor
from .editors.circuit_editor import CircuitEditor
from .state import Workbench, example_projects
from .views.deploy import DeployPane
from .views.simulate import SimulatePane
from .views.train import TrainPane

PANES = (("Channels", ChannelEditor), ("Cell", CellEditor), ("Circuit", CircuitEditor), ("Simulate", SimulatePane),
         ("Train", TrainPane), ("Deploy", DeployPane))


class ProjectSidebar(param.Parameterized):
    """Open, save and save-as of the session's project file, the examples, and the status line."""

    def __init__(self, workbench, **params):
        super().__init__(**params)
        self.workbench = workbench
        examples = example_projects()
        self.example = pn.widgets.Select(label="Example projects", options=["—"] + list(examples), value="—",
                                         css_classes=["bf-examples"])
        self.example.param.watch(self._open_example, "value")
        self.open_path = pn.widgets.TextInput(label="Open file", placeholder="path/to/project.json", css_classes=["bf-open-path"])
        self.open_button = pn.widgets.Button(label="Open", button_type="default", css_classes=["bf-open"])
        self.open_button.on_click(lambda event: self._open(self.open_path.value))
        self.upload = pn.widgets.FileInput(accept=".json", css_classes=["bf-upload"])
        self.upload.param.watch(self._uploaded, "value")
        self.save_button = pn.widgets.Button(label="Save", button_type="primary", css_classes=["bf-save"])
        self.save_button.on_click(lambda event: self.workbench.save())
        self.save_path = pn.widgets.TextInput(label="Save as", placeholder="path/to/new.json", css_classes=["bf-save-path"])
        self.save_as_button = pn.widgets.Button(label="Save as", css_classes=["bf-save-as"])
        self.save_as_button.on_click(lambda event: self.workbench.save(self.save_path.value.strip() or None))
        self.undo_button = pn.widgets.Button(label="Undo", css_classes=["bf-undo"], width=80)
        self.undo_button.on_click(lambda event: self.workbench.undo())
        self.redo_button = pn.widgets.Button(label="Redo", css_classes=["bf-redo"], width=80)
        self.redo_button.on_click(lambda event: self.workbench.redo())
        self.title = pn.pane.Markdown(css_classes=["bf-project-title"], margin=(0, 10))
        self.status = pn.pane.Alert(visible=False, css_classes=["bf-status"])
        self.open_problems = pn.pane.Alert(alert_type="danger", visible=False, css_classes=["bf-open-errors"])
        self.rejected = pn.widgets.CodeEditor(language="json", readonly=True, visible=False, height=200, sizing_mode="stretch_width")
        workbench.param.watch(self._refresh, ["revision", "dirty", "path", "error", "message", "open_errors"])
        self._refresh()

    def _open_example(self, event):
        if event.new != "—":
            self._open(example_projects()[event.new])

    def _open(self, path):
        path = str(path).strip()
        if not path:
            self.workbench.error = "open: type the path of a project file (.json)"
            return
        self.workbench.open(Path(path).expanduser())

    def _uploaded(self, event):
        if event.new:
            self.workbench.open_text(event.new.decode("utf-8", errors="replace"), self.upload.filename or "uploaded.json")

    def _refresh(self, *events):
        wb = self.workbench
        marker = " ●" if wb.dirty else ""
        where = wb.path or "not saved to a file yet"
        self.title.object = f"### {wb.title}{marker}\n<small>{where}</small>"
        self.undo_button.disabled = not wb.can_undo
        self.redo_button.disabled = not wb.can_redo
        if wb.error:
            self.status.param.update(object=wb.error, alert_type="danger", visible=True)
        elif wb.message:
            self.status.param.update(object=wb.message, alert_type="success", visible=True)
        else:
            self.status.visible = False
        self.open_problems.param.update(object="\n".join(f"- {e}" for e in wb.open_errors) or "", visible=bool(wb.open_errors))
        self.rejected.param.update(value=wb.rejected_text, visible=bool(wb.open_errors))

    def view(self):
        return pn.Column(
            self.title, self.status,
            pn.Row(self.undo_button, self.redo_button),
            self.save_button, self.save_path, self.save_as_button,
            pn.layout.Divider(),
            self.example, self.open_path, self.open_button,
            pn.pane.Markdown("or upload a project file:", margin=(0, 10)), self.upload,
            self.open_problems, self.rejected,
            sizing_mode="stretch_width",
        )


_SESSIONS = []


def live_sessions():
    """The pages of this server process that are still alive, oldest first (for tests and diagnostics)."""
    _SESSIONS[:] = [ref for ref in _SESSIONS if ref() is not None]
    return [ref() for ref in _SESSIONS]


def create_app(project=None):
    """A new workbench page with its own session state, optionally opening ``project`` (a path)."""
    workbench = Workbench(path=project) if project else Workbench()
    sidebar = ProjectSidebar(workbench)
    panes = {name: cls(workbench) for name, cls in PANES}
    tabs = pn.Tabs(*[(name, pane.view()) for name, pane in panes.items()], dynamic=False, css_classes=["bf-tabs"],
                   sizing_mode="stretch_both")
    template = pn.template.FastListTemplate(
        title="BrainFuse workbench", sidebar=[sidebar.view()], main=[tabs], sidebar_width=340,
        accent="#3b6ea8", header_background="#24426b",
    )
    template.workbench = workbench
    template.panes = panes
    _SESSIONS.append(weakref.ref(template))
    return template
