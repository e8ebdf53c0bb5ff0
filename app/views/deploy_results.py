"""Reading the chip pipeline for the Deploy pane: chip profiles, and a ``Deployment`` as text and plot data.

Everything the pane shows of a deployment goes through here, so the pane and its figures depend on
the chip pipeline's names in one place only. Nothing here imports Panel.
"""

import html
import json

import numpy as np

from brainfuse_core import BrainFuseError
from brainfuse_core.chip import lava_available, profiles

LAVA_STAGE = "Lava run"
LAVA_MISSING = ("Lava is not installed here (no `.venv-lava`; `bash .ci/setup.sh` makes it): deploy with the NumPy chip "
                "reference only, or install it and reload.")
INTRODUCTION = ("### Deploy\nQuantize the project to fixed point, check the chip version against the float model, map it "
                "onto the chip's cores and estimate its power. Pick a chip profile and press **Deploy**.")
PROFILE_TEMPLATE = {"base": "loihi2", "name": "my_chip", "cores_per_chip": 64, "neurons_per_core": 4096,
                    "static_core_w": [0.0002, 0.0008, 0.002]}


def lava_installed():
    return lava_available()


def stage_label(stage):
    return str(stage)[:1].upper() + str(stage)[1:] if stage else ""


# ---------------------------------------------------------------------- profiles
def profile_names():
    """The names of the chip profiles the pipeline ships, in its order."""
    return list(profiles.PROFILES)


def profile_description(chip):
    """One line on a profile (a name or a ChipProfile)."""
    profile = profiles.get_profile(chip)
    return (f"{profile.description}. Per core: {profile.neurons_per_core:,} neurons, fan-in {profile.fan_in:,}, "
            f"fan-out {profile.fan_out:,}; {profile.cores_per_chip} cores per chip; weights ≤ {profile.max_weight_bits} bits.")


def profile_template():
    """The JSON text a user-defined profile starts from: a built-in profile as its base, some fields overridden."""
    return json.dumps(PROFILE_TEMPLATE, indent=2)


def parse_profile(text):
    """The user-defined ChipProfile of ``text`` (JSON, the chip pipeline's profile format); raises ValueError
    saying what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}") from None
    try:
        return profiles.profile_from_dict(data)
    except (BrainFuseError, TypeError) as err:
        raise ValueError(" ".join(str(err).split())) from None


# ---------------------------------------------------------------------- power
PART_LABELS = {"static": "static (active cores)", "neuron_updates": "neuron updates", "synaptic_ops": "synaptic ops",
               "spike_messages": "spike messages", "mesh_hops": "mesh hops", "chip_crossings": "chip crossings"}
SOURCE_LABELS = {"static_core_w": "static power per active core (W)", "neuron_update_pj": "LIF-equivalent update (pJ)",
                 "synaptic_op_pj": "synaptic op (pJ)", "spike_pj": "spike message (pJ)", "hop_pj": "mesh hop (pJ)",
                 "chip_crossing_pj": "chip crossing (pJ)", "hh_cost_factor": "HH cost factor (LIF updates per substep)"}


def power_html(power):
    """Typical watts in large type, the low–high range and the joules per inference (one run of the deployed duration)."""
    joules = power.joules_per_inference
    return (f'<div class="bf-deploy-watts" style="font-size: 2.6em; font-weight: 600; line-height: 1.1">'
            f"{html.escape(watts_text(power.typical))}</div>"
            f'<div class="bf-deploy-range">typical on {html.escape(power.chip)}; range {html.escape(watts_text(power.low))} – '
            f"{html.escape(watts_text(power.high))} (low – high)</div>"
            f'<div class="bf-deploy-joules"><b>{html.escape(joules_text(joules["typical"]))}</b> per inference of '
            f"{power.duration_ms:g} ms (range {html.escape(joules_text(joules['low']))} – "
            f"{html.escape(joules_text(joules['high']))})</div>")


def breakdown(power):
    """{component: typical W}, in the pipeline's order of parts."""
    return {PART_LABELS.get(part, part): float(watts) for part, watts in power.breakdown["typical"].items()}


def sources_markdown(power):
    """Every constant of the estimate with its low/typical/high values and its source; estimates marked."""
    lines = []
    for key, entry in power.sources.items():
        values = " / ".join(f"{v:.3g}" for v in entry["values"])
        mark = " *(estimate)*" if entry.get("estimate") else ""
        lines.append(f"- **{SOURCE_LABELS.get(key, key)}** {values}{mark}: {entry['source']}")
    return "**Constants (low / typical / high) and their sources**\n\n" + "\n".join(lines)


# ---------------------------------------------------------------------- mapping
def core_rows(mapping):
    """One row per core for the core map: core, chip, population, utilisation (its fullest limit), detail (every
    limit) and violation (why the core breaks a limit; empty if none)."""
    broken = {}
    for violation in mapping.violations:
        broken.setdefault(violation["population"], []).append(violation["message"])
    rows = []
    for core in mapping.per_core:
        used = core["utilisation"]
        first, last = core["first_cell"], core["first_cell"] + core["neurons"] - 1
        cells = f"cell {first}" if first == last else f"cells {first}–{last} ({core['neurons']})"
        detail = (f"{cells}; "
                  + ", ".join(f"{limit} {100 * fraction:.1f} %" for limit, fraction in used.items()))
        over = [f"{limit} at {100 * fraction:.0f} %" for limit, fraction in used.items() if fraction > 1]
        rows.append(dict(core=core["core"], chip=core["chip"], population=core["population"],
                         utilisation=max(used.values()), detail=detail,
                         violation="; ".join(broken.get(core["population"], []) or over)))
    return rows


def mapping_markdown(mapping):
    """Cores and chips used, each population's placement and binding limit, violations and notes."""
    chips = f"{mapping.chips} chip{'s' if mapping.chips != 1 else ''}"
    fits = "fits" if mapping.fits else f"**does not fit**: {len(mapping.violations)} violation(s)"
    lines = [f"**{mapping.cores:,} cores** on **{chips}** of {mapping.profile.name} — {fits}", "",
             "| population | cells | per core | cores | bound by |", "|---|---|---|---|---|"]
    for name, entry in mapping.per_population.items():
        lines.append(f"| {name} | {entry['n']:,} | {entry['neurons_per_core']:,} | {entry['cores']:,} | {entry['binding']} |")
    if mapping.violations:
        lines += ["", "**Violations**", ""] + [f"- ⚠ {v['population']}: {v['message']}" for v in mapping.violations]
    if mapping.notes:
        lines += [""] + [f"- {note}" for note in mapping.notes]
    return "\n".join(lines)


# ---------------------------------------------------------------------- agreement and runs
def agreement_markdown(deployment):
    """The chip's agreement with the float model: spike-time and firing-rate errors, and whether Lava's run was
    bit-exact with the NumPy reference; saturations and the pipeline's notes below."""
    a = deployment.agreement
    if a["bit_exact"] is None:
        exact = "not run" if deployment.lava_error is None else "Lava failed (see the warning)"
    else:
        exact = "✔ yes" if a["bit_exact"] else f"✘ no ({a['bit_exact_detail']})"
    step = deployment.settings["chip_dt_ms"]
    lines = [f"**Chip vs float model** (chip step {step:g} ms; {a['float_spikes']} float, {a['chip_spikes']} chip spikes)", "",
             "| spike-time median error | firing-rate error | Lava bit-exact with the NumPy reference |", "|---|---|---|",
             f"| {_number(a['spike_time_median_error_steps'])} chip steps | {_number(a['firing_rate_error_percent'])} % | {exact} |"]
    saturated = {name: entry["saturated"] for name, entry in deployment.overflow.items() if entry["saturated"]}
    if saturated:
        lines += ["", "Saturated (values clipped over the run): " + ", ".join(f"{k} {v:,}" for k, v in saturated.items())]
    lines += [f"- {note}" for note in deployment.notes]
    return "\n".join(lines)


def lava_error(deployment):
    """Why the Lava run did not happen (a crash, a timeout, no Lava environment), or an empty string."""
    message = deployment.lava_error
    if not message:
        return ""
    return f"**The Lava run failed**; everything shown comes from the NumPy chip reference.\n\n{message}"


def probe_names(deployment):
    """The probes both runs recorded, in the chip run's order."""
    return [name for name in deployment.chip_result.traces if name in deployment.float_result.traces]


def comparison_data(deployment, probe):
    """(traces, spikes, sizes, value label) for ``Comparison.show``: ``probe``'s traces of the float and the chip run
    (one line per recorded cell) and every spike of both."""
    sides = (("float", deployment.float_result), ("chip", deployment.chip_result))
    traces = {}
    for side, result in sides:
        values = np.asarray(result.traces[probe]) if probe else np.empty((0, 0))
        traces[side] = (np.asarray(result.times[probe]) if probe else np.empty(0),
                        {f"{probe} #{k}": row for k, row in enumerate(values)})
    spikes = {side: {name: (record.time, record.cell) for name, record in result.spikes.items()} for side, result in sides}
    sizes = {name: int(record.n_cells) for name, record in deployment.chip_result.spikes.items()}
    gates = {entry["name"]: entry["gate"] for entry in deployment.artifact.manifest["probes"]}
    label = "V (mV)" if gates.get(probe) is None else "gate (open fraction)"
    return traces, spikes, sizes, label


def _number(value):
    return "—" if value is None else f"{float(value):.3g}"


def watts_text(watts):
    """A power with a readable unit (W, mW, µW, nW)."""
    watts = float(watts)
    for unit, scale in (("W", 1.0), ("mW", 1e-3), ("µW", 1e-6)):
        if abs(watts) >= scale:
            return f"{watts / scale:.3g} {unit}"
    return f"{watts / 1e-9:.3g} nW"


def joules_text(joules):
    """An energy with a readable unit (J, mJ, µJ, nJ, pJ)."""
    joules = float(joules)
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9)):
        if abs(joules) >= scale:
            return f"{joules / scale:.3g} {unit}"
    return f"{joules / 1e-12:.3g} pJ"
