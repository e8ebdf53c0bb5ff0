"""A fit's report: the loss curve, before/after traces against the targets per protocol, and a table of
fitted values (with the true values and relative errors when known), as PNG, JSON and Markdown."""

import json
import math
from pathlib import Path


def write_report(fit, result, out, true_values=None, title="Fit"):
    """Write ``loss.png``, ``traces.png``, ``fit.json`` and ``fit.md`` into ``out``; returns their paths.
    "Before" is the best restart's starting point, "after" its fitted values."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = result.table(true_values)
    best = result.restarts[result.best]
    paths = {"loss": plot_loss(result, out / "loss.png"),
             "traces": plot_traces(fit, fit.simulate(best.initial), fit.simulate(result.values), out / "traces.png")}
    summary = {
        "title": title,
        "loss": _number(result.loss),
        "best_restart": result.best,
        "wall_time_s": result.wall_time,
        "settings": {"dt_ms": fit.dt, "celsius": fit.celsius, "method": fit.method,
                     "protocols": [{"name": p.name, "duration_ms": p.duration} for p in fit.protocols]},
        "parameters": rows,
        "max_relative_error": max((r["relative_error"] for r in rows if r["relative_error"] is not None), default=None),
        "restarts": [{"index": r.index, "loss": _number(r.loss), "steps": r.steps, "evaluations": r.evaluations,
                      "stages": [{"horizon_ms": h, "first_evaluation": k} for h, k in r.stages],
                      "stopped_early": r.stopped_early, "wall_time_s": r.wall_time, "error": r.error,
                      "initial": result.parameters.flat(r.initial),
                      "fitted": result.parameters.flat(r.values) if r.values is not None else None}
                     for r in result.restarts],
    }
    paths["json"] = out / "fit.json"
    paths["json"].write_text(json.dumps(summary, indent=2, allow_nan=False))
    paths["markdown"] = out / "fit.md"
    paths["markdown"].write_text(markdown(title, result, rows))
    return paths


def markdown(title, result, rows):
    """The report's text: loss, restarts and the parameter table."""
    known = any(r["true"] is not None for r in rows)
    lines = [f"# {title}", "",
             f"Best loss {result.loss:.6g} (restart {result.best} of {len(result.restarts)}), "
             f"{sum(r.evaluations for r in result.restarts)} loss evaluations in {result.wall_time:.1f} s.", "",
             "| parameter | initial | fitted |" + (" true | relative error |" if known else ""),
             "| --- | --- | --- |" + (" --- | --- |" if known else "")]
    for r in rows:
        line = f"| {r['parameter']} | {r['initial']:.6g} | {r['fitted']:.6g} |"
        if known:
            error = "" if r["relative_error"] is None else f"{100 * r['relative_error']:.3f} %"
            line += f" {'' if r['true'] is None else format(r['true'], '.6g')} | {error} |"
        lines.append(line)
    lines += ["", "| restart | loss | steps | evaluations | stopped early | wall time (s) | error |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in result.restarts:
        lines.append(f"| {r.index} | {r.loss:.6g} | {r.steps} | {r.evaluations} | {r.stopped_early} | {r.wall_time:.1f} | {r.error or ''} |")
    return "\n".join(lines) + "\n"


def plot_loss(result, path):
    """Per restart, the best loss so far within each stage against loss evaluations (log scale; every
    evaluation faint behind it, line-search trials included); dotted lines where the best restart's
    stages begin (their losses cover different horizons)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in result.restarts:
        line, = ax.plot(range(len(r.history)), _best_so_far(r), lw=1.8 if r.index == result.best else 0.9,
                        label=f"restart {r.index}" + (" (best)" if r.index == result.best else ""))
        ax.plot(range(len(r.history)), r.history, lw=0.5, alpha=0.25, color=line.get_color())
    for horizon, first in result.restarts[result.best].stages[1:]:
        ax.axvline(first, color="grey", ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("loss evaluation")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _best_so_far(record):
    starts = [first for _, first in record.stages] + [len(record.history)]
    best = []
    for begin, end in zip(starts, starts[1:]):
        lowest = math.inf
        for value in record.history[begin:end]:
            lowest = min(lowest, value)
            best.append(lowest)
    return best


def plot_traces(fit, before, after, path, max_panels=12):
    """One panel per protocol, target probe and recorded trace (batch × cells; at most ``max_panels``):
    the target, the trace before and after the fit (None when the fit has only spike-feature targets)."""
    panels = []
    for protocol in fit.protocols:
        for key in protocol.traces:
            rows = after[protocol.name].traces[key].reshape(-1, after[protocol.name].traces[key].shape[-1]).shape[0]
            panels += [(protocol, key, row, rows) for row in range(rows)]
    panels = panels[:max_panels]
    if not panels:
        return None
    plt = _pyplot()
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False)
    for ax, (protocol, key, row, count) in zip(axes.flat, panels):
        times = after[protocol.name].times[key].numpy()
        flat = lambda trace: trace.reshape(-1, len(times))[row].numpy()
        ax.plot(times, flat(protocol.traces[key]), color="0.6", lw=0.8, label="target")
        ax.plot(times, flat(before[protocol.name].traces[key]), "--", lw=0.9, label="before")
        ax.plot(times, flat(after[protocol.name].traces[key]), lw=1.0, label="after")
        ax.set_title(f"{protocol.name}{f' [{row}]' if count > 1 else ''}: {key}", fontsize=8)
        ax.set_xlabel("t (ms)", fontsize=8)
        ax.set_ylabel("V (mV)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _number(value):
    """A float for JSON: None for an infinite loss (a restart that never evaluated one)."""
    return value if math.isfinite(value) else None
