"""The Deploy pane in a browser: press Deploy on the chip example; the power readout and the core map appear."""

from app.views.deploy_results import watts_text

from .conftest import screenshot, select_tab, session_of, wait_until

CORES_JS = """id => {
  for (const doc of Bokeh.documents) {
    const source = doc.get_model_by_id(id);
    if (source) return {cores: Array.from(source.data.core), populations: Array.from(source.data.population)};
  }
  return null;
}"""
DRAWN_JS = """id => {
  const view = Bokeh.index.find_one_by_id(id);
  return view == null ? null : [view.frame.bbox.width, view.frame.bbox.height];
}"""


def test_press_deploy_and_see_the_power_readout_and_the_core_map(open_page):
    page = open_page()
    session = session_of()
    pane = session.panes["Deploy"]
    page.locator(".bf-examples select").first.select_option("chip_demo")
    wait_until(page, lambda: session.workbench.title == "chip_demo", "the chip example to open")
    select_tab(page, "Deploy")
    assert not page.locator(".bf-deploy-power").first.is_visible()
    # A shorter run without Lava keeps the test short (the Lava run is tested without a browser).
    duration = page.locator(".bf-deploy-duration input").first
    duration.fill("30")
    duration.press("Enter")
    if pane.use_lava.value:
        page.locator(".bf-deploy-lava input").first.click()
    wait_until(page, lambda: pane.fields["duration"].value == 30 and not pane.use_lava.value, "the settings to reach the server")

    page.locator(".bf-deploy-button button").first.click()
    wait_until(page, lambda: pane.job is not None, "the deployment to start", timeout=10)
    wait_until(page, lambda: pane.job.done, "the deployment to end", timeout=60)
    assert pane.job.state == "finished", pane.job.error
    wait_until(page, lambda: pane.results.visible, "the pane to show the results")
    deployment = pane.job.deployment

    watts = page.locator(".bf-deploy-watts").first
    watts.wait_for(timeout=20_000)
    assert watts.inner_text() == watts_text(deployment.power.typical)
    range_text = page.locator(".bf-deploy-range").first.inner_text()
    assert f"{watts_text(deployment.power.low)} – {watts_text(deployment.power.high)}" in range_text
    assert "per inference of 30 ms" in page.locator(".bf-deploy-joules").first.inner_text()

    wait_until(page, lambda: (page.evaluate(CORES_JS, pane.core_map.source.id) or {}).get("cores") == [0, 1],
               "the page's core map to hold the mapping's two cores")
    wait_until(page, lambda: min(page.evaluate(DRAWN_JS, pane.core_map.figure.id) or [0]) > 100,
               "the page to draw the core map")
    assert page.evaluate(CORES_JS, pane.core_map.source.id)["populations"] == ["exc", "inh"]
    assert page.locator(".bf-deploy-mapping p").first.inner_text() == "2 cores on 1 chip of loihi2 — fits"
    median = deployment.agreement["spike_time_median_error_steps"]
    page.locator(".bf-deploy-agreement td").get_by_text(f"{median:.3g} chip steps").wait_for(timeout=10_000)
    assert not page.locator(".bf-deploy-error").first.is_visible()
    page.wait_for_timeout(500)
    screenshot(page, "deploy_pane")
    page.locator(".bf-deploy-rasters").first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    screenshot(page, "deploy_pane_runs")
