"""The Train pane: train a spiking classifier with HH or LIF neurons (or both, for the comparison)
on one of the learning tasks of ``training.experiments``, watch the loss and accuracy per batch,
stop, compare HH with LIF, and save the trained models into the project; or fit the squid axon's
conductances and n∞ curve (``training.fit_squid``, run by ``train_fit.FitJob``) and save its report.

Settings start from the project's "training" section (or the training API's defaults). Each field
is checked as it is typed, then all of them together by the API's ``TrainingSpec`` (a refused value
is explained beside its field and in the pane; nothing starts until it is fixed). Training runs in
the session's ``TrainingJob`` thread; a periodic callback of this session streams its new points
into the figures, so the worker never touches a Bokeh model. Save writes each model where the API
looks for it beside the project file (``model_path``: ``<project>.trained/<neuron>_seed<k>.pt``;
a model already there is moved aside, not overwritten) and records the settings it was trained
with in the document's "training" section through ``Workbench.edit``, so the record is undoable
and goes to disk with the project's Save.
"""

from pathlib import Path

import panel as pn

from brainfuse_core import BrainFuseError
from brainfuse_core.errors import ProjectError
from brainfuse_core.training import experiments
from brainfuse_core.training.fit_report import write_report
from brainfuse_core.training.fit_squid import STEPS_UA_PER_CM2

from ..bokeh_updates import served_document
from ..editors.fields import parse_number
from .paced_refresh import PacedRefresh
from .train_fit import HORIZONS_MS, FitJob
from .train_plots import FitPlots, TrainingPlots
from .train_run import NEURON_LABELS, TrainingJob

REFRESH_MS = 200
FIT_TASK = "squid_fit"
TASKS = {
    "Digits under noise (digits_noise)": "digits_noise",
    "Digits row by row (digits_rows)": "digits_rows",
    "Delayed match-to-sample (delayed_match)": "delayed_match",
    "Temporal XOR (temporal_xor)": "temporal_xor",
    "Fit squid HH: gNa, gK, gL, n∞ (fitting)": FIT_TASK,
}
NEURON_CHOICES = {"HH": ["hh"], "LIF": ["lif"], "HH and LIF": ["hh", "lif"]}
READOUTS = {"spike count": "count", "spike count per time window": "windows", "membrane voltage": "voltage"}
# (training-section field, label, parse bounds): the hyper-parameters the pane offers; the training
# API's own checks (e.g. dt must divide bin_ms) follow when the specification is built.
FIELDS = (
    ("hidden", "Hidden neurons", dict(integer=True, minimum=1, maximum=4096)),
    ("epochs", "Epochs", dict(integer=True, minimum=1, maximum=10_000)),
    ("batch_size", "Batch size", dict(integer=True, minimum=1, maximum=100_000)),
    ("learning_rate", "Learning rate", dict(exclusive_minimum=0, maximum=10)),
    ("bins", "Bins (digits_noise)", dict(integer=True, minimum=1, maximum=10_000)),
    ("bin_ms", "Bin (ms)", dict(exclusive_minimum=0)),
    ("dt", "dt (ms)", dict(exclusive_minimum=0)),
    ("seed", "Seed", dict(integer=True, minimum=0)),
)
FIT_FIELDS = (
    ("fit_steps", "Steps per stage", dict(integer=True, minimum=1, maximum=1000), 40),
    ("fit_restarts", "Restarts", dict(integer=True, minimum=1, maximum=20), 1),
    ("noise_mv", "Noise (mV)", dict(minimum=0), 0.5),
    ("fit_seed", "Seed", dict(integer=True, minimum=0), 0),
)
FIT_DESCRIPTION = (
    "Recover the squid axon's gNa, gK, gL and its K⁺ gate's tabulated n∞ from noisy current-clamp traces "
    f"({len(STEPS_UA_PER_CM2)} current steps of {', '.join(f'{a:g}' for a in STEPS_UA_PER_CM2)} µA/cm²); the fitted "
    f"time horizon grows {' → '.join(f'{h:g}' for h in HORIZONS_MS)} ms → the whole traces.")
# Options of one task's data generator; another task refuses them.
TASK_SPECIFIC = ("data", "quick")


class HyperField:
    """A text input for one setting with its inline error; ``value`` is the last valid number. ``valid`` is
    False while the text does not parse; a whole-spec refusal only shows its reason here until the next Start."""

    def __init__(self, key, label, bounds, value):
        self.key, self.bounds, self.value = key, bounds, value
        self.valid = True
        self.input = pn.widgets.TextInput(label=label, value=_format(value), width=140, css_classes=[f"bf-train-{key}"])
        self.error = pn.pane.Markdown("", visible=False, css_classes=["bf-field-error"], styles={"color": "#b00020"},
                                      margin=(0, 10), width=150)
        self.input.param.watch(self._entered, "value")

    def _entered(self, event):
        try:
            self.value = parse_number(event.new, **self.bounds)
        except ValueError as err:
            self.valid = False
            self.show(str(err))
            return
        self.valid = True
        self.show("")

    def set(self, value):
        self.value = value
        self.input.value = _format(value)
        self.valid = True
        self.show("")

    def show(self, message):
        self.error.param.update(object=f"⚠ {message}" if message else "", visible=bool(message))

    def view(self):
        return pn.Column(self.input, self.error, margin=0)


class TrainPane:
    """The Train tab of one session. ``job`` is the current (or last) TrainingJob or FitJob; read by tests."""

    def __init__(self, workbench):
        self.workbench = workbench
        self.job = None
        self.saved = {}
        self.task = pn.widgets.Select(label="Task", options=TASKS, width=300, css_classes=["bf-train-task"])
        self.neurons = pn.widgets.RadioButtonGroup(options=list(NEURON_CHOICES), value="HH and LIF", color="primary",
                                                   width=300, css_classes=["bf-train-neurons"])
        self.readout = pn.widgets.Select(label="Readout", options=READOUTS, width=300, css_classes=["bf-train-readout"])
        self.fields = {key: HyperField(key, label, bounds, None) for key, label, bounds in FIELDS}
        self.cell_note = pn.pane.Markdown("", css_classes=["bf-train-cell"], margin=(0, 10))
        self.optimizer = pn.widgets.Select(label="Optimizer", options={"L-BFGS": "lbfgs", "Adam": "adam"}, width=300,
                                           css_classes=["bf-fit-optimizer"])
        self.fit_fields = {key: HyperField(key, label, bounds, value) for key, label, bounds, value in FIT_FIELDS}
        self.fit_table = pn.pane.Markdown("", css_classes=["bf-fit-table"], visible=False, margin=(0, 10))
        self.start_button = pn.widgets.Button(label="Start", color="primary", width=90, css_classes=["bf-train-start"])
        self.stop_button = pn.widgets.Button(label="Stop", color="danger", width=90, disabled=True,
                                             css_classes=["bf-train-stop"])
        self.save_button = pn.widgets.Button(label="Save model", width=110, disabled=True, css_classes=["bf-train-save"])
        self.start_button.on_click(self._start)
        self.stop_button.on_click(self._stop)
        self.save_button.on_click(self._save)
        self.progress = pn.indicators.Progress(value=0, max=100, sizing_mode="stretch_width", css_classes=["bf-train-progress"])
        self.status = pn.pane.Markdown("Not trained yet.", css_classes=["bf-train-status"], margin=(0, 10))
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["bf-train-error"])
        self.message = pn.pane.Alert("", alert_type="success", visible=False, css_classes=["bf-train-message"])
        self.plots = TrainingPlots(NEURON_CHOICES[self.neurons.value])
        self.loss_pane = pn.pane.Bokeh(self.plots.loss, sizing_mode="stretch_width", css_classes=["bf-train-loss"])
        self.accuracy_pane = pn.pane.Bokeh(self.plots.accuracy, sizing_mode="stretch_width", css_classes=["bf-train-accuracy"])
        self.comparison_pane = pn.pane.Bokeh(self.plots.comparison, sizing_mode="stretch_width",
                                             css_classes=["bf-train-comparison"])
        self.severity_pane = pn.pane.Bokeh(self.plots.severity, sizing_mode="stretch_width", css_classes=["bf-train-severity"])
        # Visibility is toggled on this row, not on the Bokeh panes: Panel fails to re-render a Bokeh pane
        # whose own ``visible`` changes (it hands Bokeh's stylesheet objects to a parameter of strings).
        self.results_row = pn.Row(self.comparison_pane, self.severity_pane, sizing_mode="stretch_width")
        self._shown_state = None
        self._shown_section = None
        self.learning_box = pn.Column(
            pn.pane.Markdown("**Neurons**", margin=(5, 10, 0, 10)), self.neurons, self.cell_note, self.readout,
            _grid(self.fields.values()), margin=0)
        self.fit_box = pn.Column(
            pn.pane.Markdown(FIT_DESCRIPTION, margin=(0, 10)),
            self.optimizer, _grid(self.fit_fields.values()), margin=0, visible=False)
        self.task.param.watch(self._task_chosen, "value")
        self._document_changed()
        workbench.param.watch(self._document_changed, "revision")
        document = served_document()
        self.pacer = PacedRefresh(self.refresh, REFRESH_MS, served=document is not None)
        if document is not None:
            document.on_session_destroyed(lambda context: self.job is not None and self.job.stop())

    def _task_chosen(self, event=None):
        fitting = self.task.value == FIT_TASK
        self.learning_box.visible, self.fit_box.visible = not fitting, fitting

    # ------------------------------------------------------------------ document
    def _section(self):
        """A copy of the document's "training" section (empty when it has none)."""
        return dict(self.workbench.document.get("training") or {})

    def _document_changed(self, *events):
        """Show the settings of the document's "training" section when it changed (an open, an undo, a save of
        other settings), else keep what the user typed; the API's defaults where the document has none."""
        section = self._section()
        if section == self._shown_section:
            return
        self._shown_section = section
        values = {**experiments.TrainingSpec(task="digits_noise").section(), **section}
        if self.task.value != FIT_TASK:
            self.task.value = values["task"]
        self.readout.value = values["readout"]
        self.neurons.value = next((label for label, neurons in NEURON_CHOICES.items() if neurons == list(values["neurons"])),
                                  "HH and LIF")
        values["seed"] = values["seeds"][0]
        for key, field in self.fields.items():
            field.set(values[key])
        cell = section.get("cell")
        self.cell_note.object = (f"HH neurons: the project's cell **{cell}** (its channels and densities)." if cell else
                                 "HH neurons: squid HH (hh_na, hh_k, leak) at −65 mV.")

    def spec(self):
        """The TrainingSpec of the pane's settings on top of the document's section; raises ValueError naming the problem."""
        bad = [field.input.label for field in self.fields.values() if not field.valid]
        if bad:
            raise ValueError(f"fix the fields marked ⚠ first ({', '.join(bad)})")
        for field in self.fields.values():
            field.show("")
        section = self._section()
        if section.get("task") != self.task.value:
            section = {key: value for key, value in section.items() if key not in TASK_SPECIFIC}
        section.update({key: field.value for key, field in self.fields.items() if key != "seed"})
        section.update(task=self.task.value, readout=self.readout.value, neurons=NEURON_CHOICES[self.neurons.value],
                       seeds=[self.fields["seed"].value])
        try:
            return experiments.TrainingSpec.from_dict(section, self.workbench.document, self.workbench.title)
        except ProjectError as err:
            key = err.path.split(".")[1] if err.path.startswith("training.") else ""
            if key in self.fields:
                self.fields[key].show(str(err).split(": ", 1)[-1])
            raise ValueError(str(err)) from None

    def _check_fit_fields(self):
        """Raise ValueError naming the fit's fields whose text does not parse."""
        bad = [field.input.label for field in self.fit_fields.values() if not field.valid]
        if bad:
            raise ValueError(f"fix the fields marked ⚠ first ({', '.join(bad)})")

    # ------------------------------------------------------------------ actions
    def _start(self, event=None):
        self.message.visible = False
        fitting = self.task.value == FIT_TASK
        try:
            if fitting:
                self._check_fit_fields()
            spec = None if fitting else self.spec()
        except ValueError as err:
            self._fail(str(err))
            return
        self.error.visible = False
        if self.job is not None and not self.job.done:
            self.job.stop()
        self.saved = {}
        if fitting:
            values = {key: field.value for key, field in self.fit_fields.items()}
            self.job = FitJob(self.optimizer.value, values["fit_steps"], values["fit_restarts"], values["noise_mv"],
                              values["fit_seed"]).start()
            self.plots = FitPlots()
            self.loss_pane.object, self.accuracy_pane.object = self.plots.loss, self.plots.n_inf
        else:
            self.job = TrainingJob(spec, self.fields["seed"].value).start()
            self.plots = TrainingPlots(spec.neurons)
            self.loss_pane.object, self.accuracy_pane.object = self.plots.loss, self.plots.accuracy
            self.comparison_pane.object, self.severity_pane.object = self.plots.comparison, self.plots.severity
        self.save_button.label = "Save report" if fitting else "Save model"
        self.results_row.visible = not fitting
        self.fit_table.param.update(object="", visible=fitting)
        self._shown_state = None
        self.pacer.start()
        self._show()

    def _stop(self, event=None):
        if self.job is not None:
            self.job.stop()
        self._show()

    def _save(self, event=None):
        """Write the job's models where the training API looks for them, beside the project file
        (``experiments.model_path``), and record the settings they were trained with in the document's
        "training" section. A model already at that place is moved aside, never overwritten."""
        self.message.visible = False
        job = self.job
        if isinstance(job, FitJob):
            self._save_fit(job)
            return
        if job is None or not job.models:
            self._fail("save: nothing trained yet; press Start first")
            return
        if not job.done:
            self._fail("save: training is still running; press Stop or wait until it finishes")
            return
        if not self.workbench.path:
            self._fail("save: the project has no file yet; use Save as in the sidebar first "
                       "(trained models are stored next to the project file)")
            return
        project = Path(self.workbench.path)
        notes = []
        try:
            for neuron, model in job.models.items():
                if neuron in self.saved:
                    continue
                target = experiments.model_path(project, neuron, job.seed)
                if target.exists():
                    kept = _free_path(target.with_name(f"{target.stem}.previous{target.suffix}"))
                    target.rename(kept)
                    notes.append(f"the earlier {target.name} is kept as {kept.name}")
                self.saved[neuron] = model.save(target)
        except (OSError, BrainFuseError) as err:
            self._fail(f"save: could not write the model: {err}")
            return
        section = job.spec.section()

        def record(document):
            # The section lists every neuron type and seed to train; the saved models are some of them.
            old = document.get("training") or {}
            section["neurons"] = _union(old.get("neurons", []), section["neurons"])
            section["seeds"] = _union(old.get("seeds", []), section["seeds"])
            document["training"] = section

        files = ", ".join(_relative(path, project.parent) for path in self.saved.values())
        if not self.workbench.edit(record, "record the trained model's settings"):
            self._fail(f"save: the models are written ({files}) but the project refused the training settings: "
                       f"{self.workbench.error.split(': ', 1)[-1]}")
            return
        self.error.visible = False
        moved = f" ({'; '.join(notes)})" if notes else ""
        self.message.param.update(object=f"Saved {files}{moved}; the settings they were trained with are in the project's "
                                         "training section (Save the project to keep them).", visible=True)

    def _save_fit(self, job):
        """Write a finished fit's report (loss curve, before/after traces, fitted against true values) beside the project."""
        if job.state != "finished":
            self._fail("save: only a fit that ran to the end has a result to save; press Start and let it finish")
            return
        if not self.workbench.path:
            self._fail("save: the project has no file yet; use Save as in the sidebar first "
                       "(the fit report is stored next to the project file)")
            return
        project = Path(self.workbench.path)
        if "fit" not in self.saved:
            folder = _free_path(project.with_name(f"{project.stem}.fit") / "squid")
            try:
                write_report(job.fit, job.result, folder, job.true, title="Squid axon: gNa, gK, gL and tabulated n∞")
            except (OSError, BrainFuseError) as err:
                self._fail(f"save: could not write the fit report: {err}")
                return
            self.saved["fit"] = folder
        self.error.visible = False
        self.message.param.update(object=f"Saved the fit report in {_relative(self.saved['fit'], project.parent)} "
                                         f"(fit.json, fit.md, loss.png, traces.png).", visible=True)

    # ------------------------------------------------------------------ live refresh
    def refresh(self):
        """Periodic: stream the job's new points; once the job has ended show its results and stop refreshing."""
        job = self.job
        if job is None or self.pacer.page_busy():
            return
        ended = job.done
        with pn.io.hold():
            new = self.plots.push(job.log.drain())
            self._show()
            if isinstance(job, FitJob) and (new or ended):
                self.plots.show_n_inf(job.n_inf())
                self.fit_table.object = _fit_table(job.rows())
            elif ended:
                self.plots.show_results(job.results)
            self.pacer.count_batch()
        self.pacer.updated(ended)

    def _show(self):
        job = self.job
        if job is None:
            return
        self.progress.value = int(100 * job.fraction_done)
        last = None if isinstance(job, FitJob) else job.log.last
        where = ""
        if isinstance(job, FitJob) and job.log.count():
            where = f" evaluation {job.log.count()}: loss {job.log.losses()[-1]:.4g} mV²;"
        if last is not None:
            neuron, epoch, batch, loss, accuracy = last
            where = (f" {NEURON_LABELS[neuron]} epoch {epoch + 1}/{job.spec.epochs}, batch {batch + 1}: "
                     f"loss {loss:.3f}, accuracy {accuracy:.2f};")
        state = "stopping" if job.stopping else job.state
        phase = f" ({job.phase})" if job.phase and not job.done else ""
        self.status.object = f"{state}{phase}:{where} wall {job.wall_s:.1f} s"
        if state != self._shown_state:
            self._shown_state = state
            self.start_button.disabled = state in ("running", "stopping")
            self.stop_button.disabled = state != "running"
            savable = job.state == "finished" if isinstance(job, FitJob) else job.done and job.models
            self.save_button.disabled = not savable
            if state == "failed":
                self._fail(f"training failed: {job.error}")

    def _fail(self, message):
        self.error.param.update(object=message, visible=True)

    def view(self):
        controls = pn.Column(
            pn.pane.Markdown("### Train or fit", margin=(0, 10)), self.task, self.learning_box, self.fit_box,
            pn.Row(self.start_button, self.stop_button, self.save_button), self.progress, self.status, self.error,
            self.message, self.pacer.feedback, width=330,
        )
        plots = pn.Column(pn.Row(self.loss_pane, self.accuracy_pane, sizing_mode="stretch_width"),
                          self.results_row, self.fit_table,
                          sizing_mode="stretch_width")
        return pn.Row(controls, plots, sizing_mode="stretch_width")


def _grid(fields):
    fields = list(fields)
    return pn.Column(*[pn.Row(*[f.view() for f in fields[k:k + 2]], margin=0) for k in range(0, len(fields), 2)], margin=0)


def _fit_table(rows):
    if not rows:
        return ""
    lines = ["| parameter | fitted | true | error |", "| --- | --- | --- | --- |"]
    lines += [f"| {label} | {fitted:.5g} | {true:.5g} | {100 * error:.2f} % |" for label, fitted, true, error in rows]
    return "\n".join(lines)


def _free_path(path):
    """``path``, or ``name-2.pt``, ``name-3.pt``, ... when it is taken."""
    candidate, k = path, 1
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
    return candidate


def _union(first, second):
    return list(first) + [item for item in second if item not in first]


def _relative(path, folder):
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def _format(value):
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)
