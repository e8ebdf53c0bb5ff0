"""Live-view responsiveness of the workbench: how often the Simulate pane's figures update while
a 10⁴-neuron network runs with 100 voltage traces shown (the bar is 10 updates/s).

The network is COBAHH scaled to 8000 + 2000 cells (connection probability scaled so every cell
keeps its 64 + 16 inputs). Both ends are measured over a window of the run that starts once the
first chunk is in (the network is built and the kernels compiled):

- server: the pane without a browser, its refresh called every 50 ms as the session's periodic
  callback would, each refresh's changes serialised into the PATCH-DOC message the server would
  send. Counts refreshes that carried new data, and the server time one refresh costs.
- browser: the workbench served in this process and opened in Chromium, which asks for 100 traces
  and clicks Run. Counts the updates the page confirmed applying (the pane's flow control waits for
  each), the BokehJS ``streaming`` or ``change`` signals of the trace source (one multi-line glyph,
  sent whole, beyond ten traces) and ``change`` signals of the raster
  images' source, and animation frames. Headless Chromium here draws on the CPU only.

    .venv/bin/python -m benchmarks.workbench_live [--cells 10000] [--traces 100] [--window 8]
"""

import argparse
import socket
import tempfile
import time
from pathlib import Path

from app.state import PROJECTS_DIR
from brainfuse_core.project import Project, load_project

BAR = 10.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

COUNTERS_JS = """ids => {
  const doc = window.Bokeh.documents[0];
  const counts = {traces: 0, raster: 0, frames: 0};
  const traces = doc.get_model_by_id(ids[0]);
  traces.streaming.connect(() => { counts.traces += 1; });
  traces.change.connect(() => { counts.traces += 1; });
  doc.get_model_by_id(ids[1]).change.connect(() => { counts.raster += 1; });
  const frame = () => { counts.frames += 1; requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  window.__bf_live = counts;
}"""
SOURCES_JS = "ids => ids.every(id => window.Bokeh.documents[0].get_model_by_id(id) !== null)"


def scaled_cobahh(cells, duration):
    """COBAHH with ``cells`` neurons (4:1 E:I) and the same expected number of inputs per cell."""
    data = load_project(PROJECTS_DIR / "cobahh.json").to_dict()
    populations = data["circuit"]["populations"]
    scale = cells / sum(pop["n"] for pop in populations.values())
    for pop in populations.values():
        pop["n"] = round(pop["n"] * scale)
    for projection in data["circuit"]["projections"]:
        projection["connect"]["p"] /= scale
    data["recordings"] = []
    data["run"]["duration"] = duration
    return Project(data).to_dict()


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def first_chunk_in(pane):
    return pane.runner.run is not None and pane.runner.run.data.steps_done > 0


def simulation_rows(run, steps, elapsed):
    return [("simulation: chunks", steps / run.chunk_steps / elapsed, None),
            ("simulation: ms simulated", steps * run.dt / elapsed, None)]


def measure_server(document, traces, window):
    """Refreshes per second with new data, and ms per refresh, without a browser."""
    from bokeh.document import Document
    from bokeh.protocol import Protocol

    from app.state import Workbench
    from app.views.simulate import REFRESH_MS, SimulatePane

    pane = SimulatePane(Workbench(document))
    next(iter(pane.counts.values())).input.value = str(traces)
    pane._run()
    run = pane.runner.run
    events = []
    doc = Document()
    for fig in (pane.plots.traces, pane.plots.raster, pane.plots.rates):
        doc.add_root(fig)
    doc.on_change(events.append)
    protocol = Protocol()
    wait_until(lambda: first_chunk_in(pane), 300, "the first chunk")
    started, updates, steps = time.perf_counter(), pane.updates, run.data.steps_done
    busy, sent_bytes = 0.0, 0
    while not run.done and time.perf_counter() - started < window:
        tick = time.perf_counter()
        pane._refresh()
        if events:
            message = protocol.create("PATCH-DOC", events)
            sent_bytes += len(message.content) + sum(len(buffer.data) for buffer in message.buffers)
            events.clear()
        busy += time.perf_counter() - tick
        time.sleep(max(0.0, REFRESH_MS / 1000 - (time.perf_counter() - tick)))
    elapsed = time.perf_counter() - started
    updates, steps = pane.updates - updates, run.data.steps_done - steps
    run.stop()
    run.join(60)
    rows = [("server: refreshes with new data", updates / elapsed, BAR),
            ("server: ms per refresh (drain+stream+serialise)", 1000 * busy / max(1, updates), None),
            ("server: kB sent per s", sent_bytes / 1024 / elapsed, None)]
    return rows + simulation_rows(run, steps, elapsed), run


def measure_browser(document, traces, window):
    """Updates per second the page applied, with the workbench served and opened in Chromium."""
    from playwright.sync_api import sync_playwright

    from app.server import serve
    from app.shell import live_sessions

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cobahh_scaled.json"
        Project(document).save(path)
        port = free_port()
        server = serve(project=path, port=port, threaded=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                page.goto(f"http://localhost:{port}/", wait_until="networkidle", timeout=120_000)
                page.locator(".bf-tabs").first.wait_for(timeout=120_000)
                pane = live_sessions()[-1].panes["Simulate"]
                page.locator(".bk-tab", has_text="Simulate").first.click()
                count = page.locator(".bf-record-count input").first
                count.fill(str(traces))
                count.press("Enter")
                wait_until(lambda: next(iter(pane.counts.values())).count == traces, 20, "the trace count")
                page.locator(".bf-run button").first.click()
                wait_until(lambda: first_chunk_in(pane), 300, "the first chunk")
                run = pane.runner.run
                ids = [pane.plots.trace_source.id, pane.plots.raster_source.id]
                wait_until(lambda: page.evaluate(SOURCES_JS, ids), 60, "the run's figures in the page")
                page.evaluate(COUNTERS_JS, ids)
                started, seen, steps = time.perf_counter(), pane.pacer.feedback.seen, run.data.steps_done
                wait_until(lambda: run.done or time.perf_counter() - started > window, window + 60, "the window")
                elapsed = time.perf_counter() - started
                seen, steps = pane.pacer.feedback.seen - seen, run.data.steps_done - steps
                counts = page.evaluate("() => window.__bf_live")
                run.stop()
                run.join(60)
                browser.close()
        finally:
            server.stop()
    rows = [("browser: updates the page applied", seen / elapsed, BAR),
            ("browser: voltage-trace data updates", counts["traces"] / elapsed, None),
            ("browser: raster data updates", counts["raster"] / elapsed, None),
            ("browser: animation frames", counts["frames"] / elapsed, None)]
    return rows + simulation_rows(run, steps, elapsed), run


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--traces", type=int, default=100)
    parser.add_argument("--window", type=float, default=8.0, help="seconds of the run to measure, per end")
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms (runs are stopped after the window)")
    parser.add_argument("--no-browser", action="store_true", help="measure the server end only")
    args = parser.parse_args(argv)
    document = scaled_cobahh(args.cells, args.duration)
    rows, run = measure_server(document, args.traces, args.window)
    if not args.no_browser:
        browser_rows, _ = measure_browser(document, args.traces, args.window)
        rows += browser_rows
    print(f"{args.cells} cells, {len(run.plan)} voltage traces, chunks of {run.chunk_steps} steps of {run.dt} ms, "
          f"{args.window:g} s windows")
    print(f"{'what':<50}{'per s':>10}{'bar':>6}")
    for what, rate, bar in rows:
        print(f"{what:<50}{rate:>10.1f}{'' if bar is None else f'{bar:g}':>6}")


if __name__ == "__main__":
    main()
