"""Form fields bound to one value of the project document, with inline errors.

A field shows the document's value, parses what the user types (numbers without ``eval``),
checks the field's own bounds, and hands a valid value to ``workbench.edit``. Text that does
not parse, a value out of bounds, or an edit the workbench refuses shows the reason beside
the field and leaves the document as it was; the field then keeps the user's text so nothing
typed is lost until it is corrected or the document changes.
"""

import math

import panel as pn


def parse_number(text, integer=False, minimum=None, exclusive_minimum=None, maximum=None):
    """``text`` as a float (or int), or raise ValueError with a message for the user."""
    text = str(text).strip()
    if not text:
        raise ValueError("enter a number")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if integer:
        if value != int(value):
            raise ValueError(f"must be a whole number, got {text}")
        value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}, got {text}")
    if exclusive_minimum is not None and value <= exclusive_minimum:
        raise ValueError(f"must be greater than {exclusive_minimum}, got {text}")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be at most {maximum}, got {text}")
    return value


class BoundField:
    """A text input for one document value. ``read(doc)`` gives the value (or None when absent),
    ``write(doc, value)`` stores a parsed value; ``parse(text)`` raises ValueError for bad input."""

    def __init__(self, workbench, label, read, write, parse, css_class, width=150, placeholder=""):
        self.workbench, self.read, self.write, self.parse = workbench, read, write, parse
        self.input = pn.widgets.TextInput(label=label, width=width, css_classes=[css_class], placeholder=placeholder)
        self.error = pn.pane.Markdown("", visible=False, css_classes=["bf-field-error"], styles={"color": "#b00020"},
                                      margin=(0, 10), width=width + 60)
        self.input.param.watch(self._entered, "value")
        self._showing = None
        self.refresh()

    def refresh(self):
        """Show the document's value (after any change of the document)."""
        try:
            value = self.read(self.workbench.document)
        except (KeyError, IndexError, TypeError):
            value = None
        text = "" if value is None else _format(value)
        self._showing = text
        self.input.value = text
        self._clear()

    def _entered(self, event):
        if event.new == self._showing:
            return
        try:
            value = self.parse(event.new)
        except ValueError as err:
            self._fail(str(err))
            return
        if not self.workbench.edit(lambda doc: self.write(doc, value), f"set {self.input.label}"):
            self._fail(self.workbench.error.split(": ", 1)[-1])
            return
        self._showing = event.new
        self._clear()

    def _fail(self, message):
        self.error.object = f"⚠ {message}"
        self.error.visible = True

    def _clear(self):
        self.error.object, self.error.visible = "", False

    def view(self):
        return pn.Column(self.input, self.error, margin=0)


def _format(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)
