"""The Simulate pane in a browser: stop a running simulation and start another; two sessions stay apart."""

import time

from .conftest import screenshot, select_tab, session_of

RASTER_POINTS_JS = """id => {
  const source = window.Bokeh.documents[0].get_model_by_id(id);
  if (source === null) return -1;
  let spikes = 0;
  for (const column of Object.values(source.data))
    for (const count of column[0]) spikes += Number(count);
  return spikes;
}"""


def wait_until(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def click(page, css_class):
    page.locator(f".{css_class} button").first.click()


def set_duration(page, workbench, ms):
    field = page.locator(".bf-duration input").first
    field.fill(str(ms))
    field.press("Enter")
    wait_until(lambda: workbench.document["run"]["duration"] == ms, 20, "the duration edit")


def raster_points(page, pane):
    """How many spikes the page's raster images hold (the sum of their pixel counts, its copy of the pane's
    current raster data); -1 before the page has the figure of the pane's current run."""
    return page.evaluate(RASTER_POINTS_JS, pane.plots.raster_source.id)


def status_text(page):
    return page.locator(".bf-sim-status p").first.inner_text()


def test_stop_a_running_simulation_and_start_another(open_page):
    page = open_page()
    session = session_of()
    pane = session.panes["Simulate"]
    page.locator(".bf-examples select").first.select_option("cobahh")
    wait_until(lambda: session.workbench.title == "cobahh", 20, "cobahh to open")
    select_tab(page, "Simulate")

    click(page, "bf-run")
    wait_until(lambda: pane.runner.state == "running" and pane.raster_spike_count() > 0, 60, "spikes of the running run")
    first = pane.runner.run
    wait_until(lambda: raster_points(page, pane) > 0, 20, "spikes in the page's raster")
    assert "running" in status_text(page)

    click(page, "bf-pause")
    wait_until(lambda: pane.runner.state == "paused", 10, "the run to pause")
    wait_until(lambda: "paused" in status_text(page), 10, "the page to show the pause")
    assert page.locator(".bf-pause button").first.inner_text() == "Resume"
    screenshot(page, "simulate_live")

    click(page, "bf-stop")
    wait_until(lambda: pane.runner.state == "stopped", 20, "the run to stop")
    assert first.data.fraction_done < 1
    wait_until(lambda: "stopped" in status_text(page), 10, "the page to show the stop")
    assert int(page.locator(".bf-progress progress").first.get_attribute("value")) < 100

    set_duration(page, session.workbench, 20)
    click(page, "bf-run")
    wait_until(lambda: pane.runner.run is not first, 10, "a new run")
    wait_until(lambda: pane.runner.state == "finished", 60, "the second run to finish")
    assert pane.raster_spike_count() > 0 and pane.runner.run.duration == 20
    wait_until(lambda: "finished" in status_text(page), 10, "the page to show the finished run")
    wait_until(lambda: raster_points(page, pane) == pane.raster_spike_count(), 10, "every spike drawn")
    assert page.locator(".bf-progress progress").first.get_attribute("value") == "100"


def test_two_sessions_do_not_see_each_others_edits_or_runs(open_page):
    first_page = open_page()
    first = session_of()
    second_page = open_page()
    second = session_of()
    assert first is not second and first.workbench is not second.workbench
    for page in (first_page, second_page):
        select_tab(page, "Simulate")

    set_duration(first_page, first.workbench, 30)
    assert second.workbench.document["run"]["duration"] == 100
    assert first_page.locator(".bf-duration input").first.input_value() == "30"
    assert second_page.locator(".bf-duration input").first.input_value() == "100"

    click(first_page, "bf-run")
    ran = first.panes["Simulate"]
    wait_until(lambda: ran.runner.state == "finished", 60, "the run in the first session")
    assert ran.raster_spike_count() > 0
    wait_until(lambda: raster_points(first_page, ran) > 0, 10, "spikes in the first page")
    idle = second.panes["Simulate"]
    assert idle.runner.state == "idle" and idle.runner.run is None and idle.raster_spike_count() == 0
    assert raster_points(second_page, idle) == 0
    assert "Not run yet" in status_text(second_page)
