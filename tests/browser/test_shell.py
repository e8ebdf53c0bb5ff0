"""The workbench shell: it loads, every pane is there, and a screenshot of each is kept."""

from .conftest import screenshot, select_tab, session_of

PANES = ("Channels", "Cell", "Circuit", "Simulate", "Train", "Deploy")


def test_every_pane_opens(open_page):
    page = open_page()
    for name in PANES:
        select_tab(page, name)
        screenshot(page, f"pane_{name.lower()}")
    assert session_of().workbench.document["format"] == "brainfuse-project"
