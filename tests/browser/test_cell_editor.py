"""The Cell pane in the browser: fields with inline errors, a new section drawn in the schematic."""

from .conftest import screenshot, select_tab, session_of


def _type(page, css, text):
    field = page.locator(f"{css} input")
    field.fill(text)
    field.press("Enter")


def test_cell_fields_and_sections(open_page):
    page = open_page()
    select_tab(page, "Cell")
    workbench = session_of().workbench
    _type(page, ".bf-cell-cm", "lots")
    page.locator(".bf-field-error").get_by_text("not a number").wait_for(timeout=15_000)
    assert workbench.document["cells"]["axon"]["cm"] == 1
    _type(page, ".bf-cell-cm", "2")
    _wait(page, lambda: workbench.document["cells"]["axon"]["cm"] == 2)
    _type(page, ".bf-new-section-name", "dend")
    page.locator(".bf-add-section button").click()
    _wait(page, lambda: "dend" in workbench.document["cells"]["axon"]["morphology"])
    editor = session_of().panes["Cell"]
    _wait(page, lambda: editor.shape_source.data["name"] == ["soma", "dend"])
    page.locator(".bf-sections").get_by_text("dend").first.wait_for(timeout=15_000)
    screenshot(page, "cell_editor")


def _wait(page, condition, timeout_ms=15_000):
    waited = 0
    while not condition():
        assert waited < timeout_ms, "condition not met in time"
        page.wait_for_timeout(100)
        waited += 100
