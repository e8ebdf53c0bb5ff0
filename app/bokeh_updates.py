"""Changing Bokeh models (plot data) safely from any callback of a served session."""

import panel as pn


def served_document():
    """This session's Bokeh document when served, else None (tests, benchmarks).

    Panel's per-context current document is read, which Panel sets while it builds a session and runs
    its callbacks. ``pn.state.curdoc`` would fall back on Bokeh's process-wide curdoc, which another
    session's callback, running in the server's thread (or left suspended when a server stopped),
    may have patched: an unserved pane built meanwhile took that session's document for its own."""
    document = pn.state._curdoc.get()
    return document if document is not None and document.session_context is not None else None


def when_safe(model, update):
    """Run ``update`` (which changes Bokeh models) now when ``model`` is not in a served document (tests,
    benchmarks), else on its document's next tick: only there is the document lock held, which the
    watchers of another pane's widget callback cannot count on."""
    document = model.document
    if document is None or document.session_context is None:
        update()
    else:
        document.add_next_tick_callback(update)
