"""Channel-editor responsiveness: from a released curve drag to updated curves (bar: 150 ms median).

Server side: a Workbench and its ChannelEditor (no browser). Each drag sets a handle source's
data as Bokeh's PointDrawTool does when the mouse is released; the time runs until that call
returns, by which point the edit is validated and stored and every curve source (gate curves,
I–V, clamp family) holds new data. The single-cell preview, which runs on the next tick in a
served session, is timed on its own.

Browser (skipped with --no-browser): the workbench served on localhost and driven by Playwright
in Chromium. Each drag is a real mouse drag of one tabulated m∞ control point; the time runs in
the page from the pointer-up event to the next animation frame after the m∞ curve's data
changed (and, separately, the preview trace's).

    python -m benchmarks.workbench_drag [--drags 40] [--no-browser]
"""

import argparse
import socket
import statistics
import time

BAR_MS = 150.0
POINTS = (5, 6, 7, 8, 9)

WATCH = """([curve, preview]) => {
  const find = (id) => { for (const doc of Bokeh.documents) { const m = doc.get_model_by_id(id); if (m) return m; } };
  const times = {up: null, curve: null, preview: null};
  document.addEventListener("pointerup", () => { times.up = performance.now(); }, {capture: true, once: true});
  window.__bf_drag = new Promise((resolve) => {
    const done = (key) => () => requestAnimationFrame(() => {
      if (times[key] == null) times[key] = performance.now();
      if (times.curve != null && times.preview != null) resolve(times);
    });
    find(curve).properties.data.change.connect(done("curve"));
    find(preview).properties.data.change.connect(done("preview"));
    setTimeout(() => resolve(times), 5000);
  });
}"""
TO_PAGE = """([id, x, y]) => {
  const view = Bokeh.index.find_one_by_id(id);
  if (view == null) return null;
  const box = view.canvas_view.el.getBoundingClientRect();
  return [box.left + view.frame.x_scale.compute(x), box.top + view.frame.y_scale.compute(y)];
}"""


def summary(name, values_ms):
    ordered = sorted(values_ms)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return name, len(ordered), statistics.median(ordered), p90


def server_side(drags):
    from app.editors.channel_editor import ChannelEditor
    from app.state import Workbench

    workbench = Workbench()
    editor = ChannelEditor(workbench)
    editor.view()
    pending = []
    editor.defer = pending.append
    editor.gate_views["m"].tabulate.clicks += 1
    pending.clear()
    rows = []
    cases = (("m", "inf", POINTS, "tabulated m∞ point"), ("h", "alpha", (0,), "αh midpoint handle"))
    for gate, role, indices, label in cases:
        timings, previews = [], []
        for k in range(drags):
            view = editor.gate_views[gate]
            source, line = view.handle_sources[role], view.lines[role]
            index = indices[k % len(indices)]
            data = {key: list(values) for key, values in source.data.items()}
            if role == "inf":
                data["y"][index] += 0.1 if (k // len(indices)) % 2 == 0 else -0.1
            else:
                data["x"][index] += 5.0 if k % 2 == 0 else -5.0
            before = line.data["y"]
            started = time.perf_counter()
            source.data = data
            timings.append((time.perf_counter() - started) * 1e3)
            assert line.data["y"] is not before, "the curve was not redrawn"
            started = time.perf_counter()
            for run in pending:
                run()
            previews.append((time.perf_counter() - started) * 1e3)
            pending.clear()
        rows.append(summary(f"server: drag {label} → curves", timings))
        if role == "inf":
            rows.append(summary("server: preview re-simulation (next tick)", previews))
    return rows


def browser(drags):
    from playwright.sync_api import sync_playwright

    from app.server import serve
    from app.shell import live_sessions

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = serve(port=port, threaded=True)
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                  args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = chromium.new_context(viewport={"width": 1500, "height": 1000}).new_page()
            page.goto(f"http://localhost:{port}/", wait_until="networkidle", timeout=120_000)
            page.locator(".bk-tab", has_text="Channels").first.click()
            page.locator(".bf-tabulate-m button").click()
            editor = live_sessions()[-1].panes["Channels"]
            deadline = time.time() + 30
            while len(editor.gate_views["m"].handles.get("inf", ())) != 16:
                if time.time() > deadline:
                    raise RuntimeError("gate m was not tabulated")
                time.sleep(0.05)
            view = editor.gate_views["m"]
            figure = view.figures[0].object.id
            while page.evaluate(TO_PAGE, [figure, -40.0, 0.5]) is None:
                time.sleep(0.05)
            curve_ms, preview_ms = [], []
            for k in range(drags):
                index = POINTS[k % len(POINTS)]
                handle = view.handles["inf"][index]
                x, y = page.evaluate(TO_PAGE, [figure, handle.x, handle.y])
                dy = -25 if (k // len(POINTS)) % 2 == 0 else 25
                page.evaluate(WATCH, [view.lines["inf"].id, editor.preview_source.id])
                page.mouse.move(x, y)
                page.mouse.down()
                page.mouse.move(x, y + dy / 2, steps=2)
                page.mouse.move(x, y + dy, steps=2)
                page.mouse.up()
                times = page.evaluate("window.__bf_drag")
                if times["up"] is None or times["curve"] is None:
                    raise RuntimeError(f"drag {k} did not update the curve: {times}")
                curve_ms.append(times["curve"] - times["up"])
                if times["preview"] is not None:
                    preview_ms.append(times["preview"] - times["up"])
            chromium.close()
    finally:
        server.stop()
    return [summary("browser: mouse up → m∞ curve redrawn", curve_ms),
            summary("browser: mouse up → preview redrawn", preview_ms)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drags", type=int, default=40, help="drags per measurement (at least 30)")
    parser.add_argument("--no-browser", action="store_true", help="measure the server side only")
    args = parser.parse_args(argv)
    drags = max(30, args.drags)
    rows = server_side(drags)
    if not args.no_browser:
        rows += browser(drags)
    width = max(len(row[0]) for row in rows)
    print(f"{'what':<{width}}  {'n':>3}  {'median ms':>9}  {'p90 ms':>7}  bar {BAR_MS:.0f} ms")
    for name, n, median, p90 in rows:
        curves = "preview" not in name
        verdict = ("ok" if median < BAR_MS else "OVER") if curves else "(not bound by the bar)"
        print(f"{name:<{width}}  {n:>3}  {median:>9.1f}  {p90:>7.1f}  {verdict}")


if __name__ == "__main__":
    main()
