"""The Deploy pane: deploy the session's project to a neuromorphic chip profile with one click.

Pick a chip profile (or paste a user-defined one as JSON, checked as it is typed), the weight bit
width, the substeps per chip step, the run's duration and whether to run the deployment in Lava
too; press Deploy. ``brainfuse_core.chip.deploy`` runs in the session's ``DeployJob`` thread and a
periodic callback of this session moves one progress bar per stage. Then the pane shows the power
readout (typical watts, the low–high range, joules per inference, the breakdown and every
constant's source), the core map (utilisation per core, coloured by population, violations in
red), the agreement of the chip with the float model (spike-time and rate errors, Lava bit-exact),
and float-vs-chip traces and spike rasters side by side. A deployment that fails (a model the chip
cannot run) is explained in the pane; a Lava run that crashed or timed out is reported beside the
results of the NumPy chip reference, which stand. The pane stays usable either way.
"""


import panel as pn

from brainfuse_core.chip.deploy import STAGES

from ..bokeh_updates import served_document, when_safe
from ..editors.fields import parse_number
from . import deploy_results as results
from .deploy_plots import Comparison, CoreMap, PowerChart
from .deploy_run import DeployJob
from .paced_refresh import PacedRefresh

REFRESH_MS = 200
USER_DEFINED = "user-defined (JSON)"
DEFAULT_TIMEOUT_S = 120


class NumberField:
    """A text input for one setting with its inline error; ``value`` is the last valid number (None when empty
    and ``optional``); ``valid`` is False while the text does not parse."""

    def __init__(self, key, label, value, optional=False, placeholder="", **bounds):
        self.bounds, self.optional = bounds, optional
        self.value, self.valid = value, True
        self.input = pn.widgets.TextInput(label=label, value="" if value is None else str(value), width=140,
                                          placeholder=placeholder, css_classes=[f"bf-deploy-{key}"])
        self.error = pn.pane.Markdown("", visible=False, css_classes=["bf-field-error"], styles={"color": "#b00020"},
                                      margin=(0, 10), width=150)
        self.input.param.watch(self._entered, "value")

    def _entered(self, event):
        try:
            self.value = None if self.optional and not event.new.strip() else parse_number(event.new, **self.bounds)
        except ValueError as err:
            self.valid = False
            self.error.param.update(object=f"⚠ {err}", visible=True)
            return
        self.valid = True
        self.error.param.update(object="", visible=False)

    def view(self):
        return pn.Column(self.input, self.error, margin=0)


class StageBar:
    """One stage of the deployment: its name, a progress bar (full when done, moving while it runs) and its time."""

    def __init__(self, stage):
        self.stage = stage
        self.label = pn.pane.HTML(results.stage_label(stage), width=150, height=20, margin=(2, 5, 2, 10),
                                  styles={"font-size": "0.9em", "white-space": "nowrap"})
        self.bar = pn.indicators.Progress(value=0, max=100, width=140, height=14, margin=(6, 5, 2, 5),
                                          css_classes=["bf-deploy-stage"])

    def set(self, state, seconds=None):
        """``state``: "pending", "running", "done", "off" (not part of this deployment) or "failed"."""
        self.bar.param.update(value=-1 if state == "running" else 100 if state in ("done", "failed") else 0,
                              active=state == "running", bar_color="danger" if state == "failed" else "success")
        note = {"off": " (off)", "failed": " (failed)"}.get(state, "")
        if state == "done" and seconds is not None:
            note = f" ({seconds:.1f} s)"
        self.label.object = results.stage_label(self.stage) + note

    def view(self):
        return pn.Row(self.label, self.bar, margin=0)


class DeployPane:
    """The Deploy tab of one session. ``job`` is the current (or last) DeployJob; read by tests."""

    def __init__(self, workbench):
        self.workbench = workbench
        self.job = None
        self.deployment = None
        self._deployed_revision = None
        names = results.profile_names()
        self.chip = pn.widgets.Select(label="Chip profile", options=names + [USER_DEFINED], value=names[0], width=300,
                                      css_classes=["bf-deploy-chip"])
        self.chip_note = pn.pane.Markdown(results.profile_description(names[0]), width=300, margin=(0, 10),
                                          styles={"font-size": "0.85em"}, css_classes=["bf-deploy-chip-note"])
        self.profile_text = pn.widgets.TextAreaInput(label="User-defined profile (JSON; \"base\" + the fields to change)",
                                                     value=results.profile_template(), height=200, width=300, visible=False,
                                                     css_classes=["bf-deploy-profile"])
        self.profile_error = pn.pane.Markdown("", visible=False, css_classes=["bf-field-error"],
                                              styles={"color": "#b00020"}, margin=(0, 10), width=300)
        self.chip.param.watch(lambda event: self._check_profile(), "value")
        self.profile_text.param.watch(lambda event: self._check_profile(), "value")
        self.weight_bits = pn.widgets.IntSlider(label="Weight bits", start=2, end=8, value=8, width=300,
                                                css_classes=["bf-deploy-weight-bits"])
        self.fields = {
            "substeps": NumberField("substeps", "Substeps per chip step", 4, integer=True, minimum=1, maximum=64),
            "duration": NumberField("duration", "Duration (ms)", None, optional=True, placeholder="the project's",
                                    exclusive_minimum=0),
            "timeout": NumberField("timeout", "Lava timeout (s)", DEFAULT_TIMEOUT_S, exclusive_minimum=0),
        }
        installed = results.lava_installed()
        self.use_lava = pn.widgets.Checkbox(label="Run in Lava too (bit-exact check)", value=installed,
                                            css_classes=["bf-deploy-lava"])
        self.lava_note = pn.pane.Markdown("" if installed else results.LAVA_MISSING, visible=not installed, width=300,
                                          margin=(0, 10), styles={"font-size": "0.85em"})
        self.deploy_button = pn.widgets.Button(label="Deploy", color="primary", width=120,
                                               css_classes=["bf-deploy-button"])
        self.deploy_button.on_click(self._deploy)
        self.overall = pn.indicators.Progress(value=0, max=100, width=300, css_classes=["bf-deploy-progress"])
        self.stage_bars = {stage: StageBar(stage) for stage in STAGES}
        self.stage_box = pn.Column(*[bar.view() for bar in self.stage_bars.values()], margin=0,
                                   css_classes=["bf-deploy-stages"])
        self.status = pn.pane.Markdown("Not deployed yet.", css_classes=["bf-deploy-status"], margin=(0, 10), width=300)
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["bf-deploy-error"], width=300)
        self.lava_error = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["bf-deploy-lava-error"],
                                        sizing_mode="stretch_width")

        self.power = pn.pane.HTML("", css_classes=["bf-deploy-power"], sizing_mode="stretch_width")
        self.sources = pn.pane.Markdown("", css_classes=["bf-deploy-sources"], sizing_mode="stretch_width",
                                        styles={"font-size": "0.8em"})
        self.mapping = pn.pane.Markdown("", css_classes=["bf-deploy-mapping"], sizing_mode="stretch_width")
        self.agreement = pn.pane.Markdown("", css_classes=["bf-deploy-agreement"], sizing_mode="stretch_width")
        self.probe = pn.widgets.Select(label="Probed trace", options=[], width=250, css_classes=["bf-deploy-probe"])
        self.probe.param.watch(self._probe_changed, "value")
        self.core_map, self.breakdown, self.comparison = CoreMap(), PowerChart(), Comparison()
        self.core_pane = pn.pane.Bokeh(self.core_map.figure, sizing_mode="stretch_width", css_classes=["bf-deploy-coremap"])
        comparison = self.comparison
        self.results = pn.Column(
            self.lava_error,
            pn.Row(pn.Column(self.power, self.sources, sizing_mode="stretch_width"),
                   pn.pane.Bokeh(self.breakdown.figure, sizing_mode="stretch_width", css_classes=["bf-deploy-breakdown"]),
                   sizing_mode="stretch_width"),
            pn.Row(self.core_pane, pn.Column(self.mapping, width=420), sizing_mode="stretch_width"),
            self.agreement, self.probe,
            pn.Row(pn.pane.Bokeh(comparison.trace_float, sizing_mode="stretch_width"),
                   pn.pane.Bokeh(comparison.trace_chip, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            pn.Row(pn.pane.Bokeh(comparison.raster_float, sizing_mode="stretch_width"),
                   pn.pane.Bokeh(comparison.raster_chip, sizing_mode="stretch_width"), sizing_mode="stretch_width",
                   css_classes=["bf-deploy-rasters"]),
            visible=False, sizing_mode="stretch_width", css_classes=["bf-deploy-results"])
        self.placeholder = pn.pane.Markdown(results.INTRODUCTION, sizing_mode="stretch_width")
        self.pacer = PacedRefresh(self.refresh, REFRESH_MS, served=served_document() is not None)
        workbench.param.watch(lambda event: self._show_status(), "revision")

    # ------------------------------------------------------------------ settings
    def _check_profile(self):
        """The chosen chip: a built-in profile's name, or the user-defined ChipProfile parsed from its JSON (None,
        with the reason beside the text, when that does not parse)."""
        user = self.chip.value == USER_DEFINED
        self.profile_text.visible = user
        chip = self.chip.value
        if user:
            try:
                chip = results.parse_profile(self.profile_text.value)
            except ValueError as err:
                self.profile_error.param.update(object=f"⚠ {err}", visible=True)
                self.chip_note.object = ""
                return None
        self.profile_error.param.update(object="", visible=False)
        self.chip_note.object = results.profile_description(chip)
        return chip

    def settings(self):
        """The keyword arguments of ``deploy`` the pane's settings give; raises ValueError naming what to fix."""
        bad = [field.input.label for field in self.fields.values() if not field.valid]
        if bad:
            raise ValueError(f"fix the fields marked ⚠ first ({', '.join(bad)})")
        chip = self._check_profile()
        if chip is None:
            raise ValueError(f"the user-defined chip profile is refused: {self.profile_error.object[2:]}")
        values = {key: field.value for key, field in self.fields.items()}
        return dict(chip=chip, weight_bits=int(self.weight_bits.value), substeps=int(values["substeps"]),
                    duration=values["duration"], use_lava=bool(self.use_lava.value), timeout=float(values["timeout"]))

    # ------------------------------------------------------------------ actions
    def _deploy(self, event=None):
        if self.job is not None and not self.job.done:
            return
        try:
            settings = self.settings()
        except ValueError as err:
            self._fail(str(err))
            return
        self.error.visible = False
        self._deployed_revision = self.workbench.revision
        self.job = DeployJob(self.workbench.project(), settings).start()
        self.deploy_button.disabled = True
        self._show_progress()
        self.pacer.start()

    # ------------------------------------------------------------------ refresh
    def refresh(self):
        """Periodic: move the stage bars; once the job has ended show its results (or its error) and stop refreshing."""
        job = self.job
        if job is None or self.pacer.page_busy():
            return
        ended = job.done
        with pn.io.hold():
            self._show_progress()
            if ended:
                self._show_outcome(job)
            self.pacer.count_batch()
        self.pacer.updated(ended)

    def _show_progress(self):
        job = self.job
        finished, running, fraction = job.progress()
        deployment = job.deployment
        timings = deployment.timings if deployment is not None else {}
        lava_failed = deployment is not None and deployment.lava_error is not None
        for stage, bar in self.stage_bars.items():
            if stage == results.LAVA_STAGE and lava_failed:
                bar.set("failed")
            elif stage in finished:
                bar.set("done", timings.get(stage))
            elif stage == running:
                bar.set("failed" if job.state == "failed" else "running")
            elif stage == results.LAVA_STAGE and not job.settings["use_lava"]:
                bar.set("off")
            else:
                bar.set("pending")
        self.overall.value = int(round(100 * fraction))
        self._show_status()

    def _show_status(self):
        job = self.job
        if job is None:
            return
        if not job.done:
            running = job.progress()[1]
            text = f"running{': ' + running if running else ''}, wall {job.wall_s:.1f} s"
        else:
            text = f"{job.state} in {job.wall_s:.1f} s"
            if job.state == "finished" and self.workbench.revision != self._deployed_revision:
                text += " (the project has been edited since: press Deploy to deploy the edited project)"
        self.status.object = text

    def _show_outcome(self, job):
        self.deploy_button.disabled = False
        if job.state == "failed":
            # An earlier deployment's results beside this error would read as this one's.
            self.deployment = None
            self.results.visible, self.placeholder.visible = False, True
            self._fail(f"Deployment failed: {job.error}")
            return
        self.deployment = deployment = job.deployment
        self.power.object = results.power_html(deployment.power)
        self.sources.object = results.sources_markdown(deployment.power)
        self.breakdown.show(results.breakdown(deployment.power))
        self.core_map.show(results.core_rows(deployment.mapping))
        self.mapping.object = results.mapping_markdown(deployment.mapping)
        self.agreement.object = results.agreement_markdown(deployment)
        lava_error = results.lava_error(deployment)
        self.lava_error.param.update(object=lava_error, visible=bool(lava_error))
        probes = results.probe_names(deployment)
        if self.probe.options == probes and self.probe.value in probes:
            self._show_comparison()
        else:
            self.probe.param.update(options=probes, value=probes[0] if probes else None)
        self.results.visible = True
        self.placeholder.visible = False

    def _probe_changed(self, event):
        if self.deployment is not None:
            when_safe(self.comparison.trace_float, self._show_comparison)

    def _show_comparison(self):
        self.comparison.show(*results.comparison_data(self.deployment, self.probe.value))

    def _fail(self, message):
        self.error.param.update(object=message, visible=True)

    def view(self):
        fields = self.fields
        controls = pn.Column(
            pn.pane.Markdown("### Deploy to a chip", margin=(0, 10)), self.chip, self.chip_note, self.profile_text,
            self.profile_error, self.weight_bits, pn.Row(fields["substeps"].view(), fields["duration"].view(), margin=0),
            self.use_lava, self.lava_note, fields["timeout"].view(), self.deploy_button, self.overall, self.stage_box,
            self.status, self.error, self.pacer.feedback, width=330,
        )
        return pn.Row(controls, pn.Column(self.placeholder, self.results, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
