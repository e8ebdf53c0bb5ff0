"""Reading channels out of the project document and the edits the channel editor makes to it.

Functions that take ``doc`` and return something only read it; functions named ``set_…`` or
``add_…`` change the ``doc`` they are given (the workbench's candidate copy inside ``edit``).
A library entry such as ``{"library": "hh_na", "gbar": 0.12}`` (or a library channel the
project does not list yet) becomes the full definition of the built channel, under the same
name, the first time its kinetics are edited: a full definition is what then gets saved.
"""

import re

from brainfuse_core.cells.cell import DEFAULT_REVERSALS
from brainfuse_core.channels import CHANNELS, Channel
from brainfuse_core.project.build import library_channel
from brainfuse_core.project.schema import IDENTIFIER

_IDENTIFIER = re.compile(IDENTIFIER["pattern"])
DEFAULT_CELSIUS = 6.3


def channel_choices(doc):
    """[(name, origin)]: the project's channels in document order, then the library's others."""
    project = list(doc.get("channels", {}))
    return [(name, "project") for name in project] + [(name, "library") for name in CHANNELS if name not in project]


def channel_from(doc, name):
    """The core Channel ``name`` as the document defines it (a library channel when it does not)."""
    entry = doc.get("channels", {}).get(name)
    if entry is None:
        return CHANNELS[name]()
    if "library" in entry:
        return library_channel(name, entry)
    return Channel.from_dict(name, entry)


def is_full_definition(doc, name):
    entry = doc.get("channels", {}).get(name)
    return entry is not None and "library" not in entry


def full_definition(doc, name):
    """The channel as a full definition (a fresh dict): what the document will hold once edited."""
    return channel_from(doc, name).to_dict()


def celsius(doc):
    return float(doc.get("run", {}).get("celsius", DEFAULT_CELSIUS))


def home_cell(doc, name):
    """The name of the first cell that inserts channel ``name``, or None."""
    for cell_name, cell in doc.get("cells", {}).items():
        if any(item.get("channel") == name for item in cell.get("insert", [])):
            return cell_name
    return None


def reversal_of(doc, channel):
    """The reversal potential (mV) the channel sees: its own, else its ion's in the first cell
    that inserts it, else the core's default for the ion."""
    if channel.reversal is not None:
        return float(channel.reversal)
    cell = home_cell(doc, channel.name)
    reversals = doc["cells"][cell].get("reversals", {}) if cell else {}
    return float(reversals.get(channel.ion, DEFAULT_REVERSALS[channel.ion]))


def check_new_name(doc, name):
    """Why ``name`` cannot be the name of a new channel, or None."""
    if not name:
        return "type a name for the new channel"
    if not _IDENTIFIER.fullmatch(name):
        return f"{name!r}: {IDENTIFIER['message']}"
    if name in doc.get("channels", {}):
        return f"the project already has a channel named {name!r}"
    if name in CHANNELS:
        return f"{name!r} is a library channel's name; choose another"
    return None


def add_channel_copy(doc, name, source):
    """Add channel ``name`` to ``doc``: a full definition copied from channel ``source``."""
    problem = check_new_name(doc, name)
    if problem:
        raise ValueError(problem)
    doc.setdefault("channels", {})[name] = full_definition(doc, source)


def _editable(doc, name):
    """The channel's entry in ``doc`` as a full definition (converted or added as needed)."""
    channels = doc.setdefault("channels", {})
    if not is_full_definition(doc, name):
        channels[name] = full_definition(doc, name)
    return channels[name]


def set_curve(doc, name, gate, role, curve):
    _editable(doc, name)["gates"][gate][role] = curve


def set_gate(doc, name, gate, data):
    _editable(doc, name)["gates"][gate] = data


def set_gate_power(doc, name, gate, power):
    _editable(doc, name)["gates"][gate]["power"] = power


def set_curve_parameter(doc, name, gate, role, parameter, value):
    """One number of a curve: a form's parameter, or an expression curve's named parameter."""
    curve = _editable(doc, name)["gates"][gate][role]
    if curve["kind"] == "expression":
        curve["parameters"][parameter] = value
    else:
        curve[parameter] = value


def set_gbar(doc, name, value):
    """The channel's conductance density (S/cm²). A library entry keeps its library form: every
    library function takes ``gbar``."""
    entry = doc.setdefault("channels", {}).setdefault(name, {"library": name})
    entry["gbar"] = value
