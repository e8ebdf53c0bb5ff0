"""Opening project files in the browser: a file that fails validation is listed, not opened, never a stack trace."""

import json

from app.state import example_projects

from .conftest import screenshot, session_of


def test_invalid_project_file_opens_with_its_error_listed(open_page, tmp_path):
    data = json.loads(example_projects()["squid_axon"].read_text())
    data["circuit"]["populations"]["axon"]["n"] = -4
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(data))
    page = open_page()
    before = session_of().workbench.document
    page.locator(".bf-open-path input").fill(str(bad))
    page.locator(".bf-open-path input").press("Enter")
    page.locator(".bf-open button").click()
    listed = page.locator(".bf-open-errors").get_by_text("circuit.populations.axon.n")
    listed.wait_for(state="visible", timeout=15_000)
    assert "at least 1" in listed.inner_text()
    assert "Traceback" not in page.content()
    assert session_of().workbench.document == before
    screenshot(page, "open_invalid_project")


def test_opening_an_example_replaces_the_document(open_page):
    page = open_page()
    page.locator(".bf-examples select").select_option("cobahh")
    page.locator(".bf-project-title").filter(has_text="cobahh").wait_for(timeout=15_000)
    assert set(session_of().workbench.document["circuit"]["populations"]) == {"E", "I"}
