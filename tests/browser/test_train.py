"""The Train pane in a browser: start a short training run, watch the loss fall, stop it, save the model."""

from .conftest import screenshot, select_tab, session_of, wait_until

TINY = {"hidden": "8", "bins": "5", "batch_size": "64", "epochs": "20", "learning_rate": "0.03"}

LOSSES_JS = """id => {
  const source = window.Bokeh.documents[0].get_model_by_id(id);
  return source === null ? null : Array.from(source.data.loss);
}"""


def page_losses(page, pane):
    """The losses the page's copy of the HH loss curve holds (None before the page has the current run's figure)."""
    return page.evaluate(LOSSES_JS, pane.plots.sources["hh"].id)


def status_text(page):
    return page.locator(".bf-train-status p").first.inner_text()


def click(page, css_class):
    page.locator(f".{css_class} button").first.click()


def test_start_a_short_run_see_the_loss_fall_stop_and_save(open_page, tmp_path):
    page = open_page()
    session = session_of()
    workbench, pane = session.workbench, session.panes["Train"]
    project = tmp_path / "trained.json"
    page.locator(".bf-save-path input").fill(str(project))
    page.locator(".bf-save-path input").press("Enter")
    click(page, "bf-save-as")
    wait_until(page, lambda: workbench.path == str(project), "the project to be saved as a file")

    select_tab(page, "Train")
    page.locator(".bf-train-neurons").get_by_role("button", name="HH", exact=True).click()
    for key, value in TINY.items():
        field = page.locator(f".bf-train-{key} input").first
        field.fill(value)
        field.press("Enter")
    wait_until(page, lambda: pane.neurons.value == "HH" and all(str(pane.fields[k].value) == v for k, v in TINY.items()),
               "the settings to reach the server")

    click(page, "bf-train-start")
    wait_until(page, lambda: pane.job is not None and pane.job.log.count("hh") >= 12, "12 training batches", timeout=60)
    wait_until(page, lambda: len(page_losses(page, pane) or []) >= 12, "the loss curve's points in the page", timeout=60)
    losses = page_losses(page, pane)
    assert sum(losses[:4]) / 4 > sum(losses[-4:]) / 4 + 0.1, losses
    assert "running" in status_text(page)

    click(page, "bf-train-stop")
    wait_until(page, lambda: pane.job.state == "stopped", "the run to stop", timeout=60)
    wait_until(page, lambda: "stopped" in status_text(page), "the page to show the stop")
    assert int(page.locator(".bf-train-progress progress").first.get_attribute("value")) < 100
    screenshot(page, "train_pane")

    click(page, "bf-train-save")
    saved = tmp_path / "trained.trained" / "hh_seed0.pt"
    wait_until(page, lambda: saved.is_file() and "training" in workbench.document, "the model and its settings to be saved")
    section = workbench.document["training"]
    assert (section["task"], section["neurons"], section["hidden"], section["epochs"]) == ("digits_noise", ["hh"], 8, 20)
    page.locator(".bf-train-message").get_by_text("Saved trained.trained/hh_seed0.pt").wait_for(timeout=30_000)
    page.locator(".bf-project-title").filter(has_text="●").wait_for(timeout=30_000)
    screenshot(page, "train_saved")
