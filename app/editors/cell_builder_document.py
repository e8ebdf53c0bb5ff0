"""The Cell builder's changes to the project document: cylinders, regions, densities, SWC import.

Each function changes ``doc`` (a copy handed out by ``Workbench.edit``) in place and raises
ValueError with a message for the user when the change makes no sense; the workbench then
builds the core model from the result, which catches everything else. Units: µm, S/cm², Ω·cm,
µF/cm².
"""

import math
import tempfile
from pathlib import Path

import numpy as np

from brainfuse_core.cells import Section, load_swc
from brainfuse_core.cells.morphology import DERIVED_DECIMALS
from brainfuse_core.channels import CHANNELS
from brainfuse_core.project.build import build_channels

SEGMENT_LENGTH = 20.0  # µm: new cylinders get odd nseg with segments no longer than this
NEW_DIAMETER = 1.0     # µm
SOMA = {"length": 20.0, "diameter": 20.0, "nseg": 1, "region": "soma"}
OPTIONAL_SECTION_KEYS = ("ra", "cm")


def morphology_of(doc, cell):
    return doc["cells"][cell]["morphology"]


def default_nseg(length):
    """An odd number of segments (so a section has a centre node) none longer than SEGMENT_LENGTH."""
    n = max(1, math.ceil(length / SEGMENT_LENGTH))
    return n if n % 2 else n + 1


def fresh_section_name(morphology, region):
    """region1, region2, ...: the first unused. Never the region's own name, since a ``where`` naming both
    a section and a region means the section alone, and the region's densities would be unreachable."""
    base = "".join(ch if not (ch.isspace() or ch == ".") else "_" for ch in region) or "dend"
    k = 1
    while f"{base}{k}" in morphology or f"{base}{k}" in regions(morphology):
        k += 1
    return f"{base}{k}"


def check_section_name(morphology, name):
    if not name or any(ch.isspace() or ch == "." for ch in name):
        raise ValueError(f"section names are not empty and contain no spaces or dots; got {name!r}")
    if name in morphology:
        raise ValueError(f"this cell has a section named {name!r} already")


def child_region(morphology, parent, region=None):
    """The region of a new child: ``region`` when chosen, else the parent's (a soma's children are "dend")."""
    if region:
        return region
    inherited = morphology[parent].get("region", "soma")
    return "dend" if inherited == "soma" else inherited


def add_section(doc, cell, parent, parent_x, length, name=None, region=None, diameter=NEW_DIAMETER, nseg=None):
    """Add a cylinder of ``length`` µm leaving ``parent`` at ``parent_x``; returns its name."""
    morphology = morphology_of(doc, cell)
    if parent not in morphology:
        raise ValueError(f"no section {parent!r} in cell {cell!r}")
    if not length > 0:
        raise ValueError("a cylinder needs a length: drag further from where it starts")
    region = child_region(morphology, parent, region)
    name = name or fresh_section_name(morphology, region)
    check_section_name(morphology, name)
    morphology[name] = {"length": float(length), "diameter": float(diameter),
                        "nseg": int(nseg or default_nseg(length)), "parent": parent,
                        "parent_x": float(min(1.0, max(0.0, parent_x))), "region": region}
    return name


def descendants(morphology, name):
    """``name`` and every section below it."""
    found, stack = [], [name]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(child for child, section in morphology.items() if section.get("parent") == current)
    return found


def reattach(doc, cell, section, parent, parent_x):
    """Hang ``section`` (with everything below it) on ``parent`` at ``parent_x``.

    Traced sections keep their shape: when the new parent is traced too, the moved branch's points
    are shifted so that it starts where it now hangs (moving points changes nothing electrical)."""
    morphology = morphology_of(doc, cell)
    if "parent" not in morphology[section]:
        raise ValueError(f"{section!r} is the root of the cell; re-attach its children instead")
    if parent in descendants(morphology, section):
        raise ValueError(f"cannot attach {section!r} to {parent!r}: {parent!r} hangs from {section!r} (it would make a loop)")
    entry = morphology[section]
    entry["parent"], entry["parent_x"] = parent, float(min(1.0, max(0.0, parent_x)))
    target = point_along(morphology[parent], entry["parent_x"])
    if target is not None and "points" in entry:
        shift = [t - p for t, p in zip(target, entry["points"][0][:3])]
        for name in descendants(morphology, section):
            if "points" in morphology[name]:
                morphology[name]["points"] = [[x + shift[0], y + shift[1], z + shift[2], d]
                                              for x, y, z, d in morphology[name]["points"]]


def point_along(section, fraction):
    """(x, y, z) µm at ``fraction`` of a traced section's path, or None for a plain cylinder."""
    points = section.get("points")
    if not points:
        return None
    arcs = np.concatenate([[0.0], np.cumsum([math.dist(a[:3], b[:3]) for a, b in zip(points, points[1:])])])
    return [float(np.interp(fraction * arcs[-1], arcs, [p[k] for p in points])) for k in range(3)]


def as_cylinder(entry):
    """Turn a traced section into a plain cylinder of the same length and area-equivalent diameter."""
    if "points" in entry:
        traced = Section("traced", points=entry.pop("points"))
        entry["length"], entry["diameter"] = round(traced.length, DERIVED_DECIMALS), round(traced.diameter, DERIVED_DECIMALS)


def delete_section(doc, cell, section):
    """Remove ``section`` and everything below it; densities placed only there go with them."""
    morphology = morphology_of(doc, cell)
    if "parent" not in morphology[section]:
        raise ValueError(f"{section!r} is the root of the cell and cannot be deleted; delete the cell's branches instead")
    for name in descendants(morphology, section):
        del morphology[name]
    _prune_places(doc["cells"][cell])


def set_section_value(doc, cell, section, key, value):
    """Set one property of a section; ``None`` removes an optional one (``ra``, ``cm``: the cell's own then).
    A new length or diameter makes a traced section a plain cylinder."""
    entry = morphology_of(doc, cell)[section]
    if key in ("length", "diameter"):
        as_cylinder(entry)  # a traced section's length and diameter come from its points
    if value is None:
        if key not in OPTIONAL_SECTION_KEYS:
            raise ValueError(f"{key} needs a value")
        entry.pop(key, None)
    else:
        entry[key] = value
    if key == "region":
        _prune_places(doc["cells"][cell])


def regions(morphology):
    """{region: [sections]} in document order."""
    found = {}
    for name, section in morphology.items():
        found.setdefault(section.get("region", "soma"), []).append(name)
    return found


def where_text(where):
    """An insertion's ``where`` as shown: a name, or a comma-separated list."""
    return where if isinstance(where, str) else ", ".join(where)


def channel_names(doc):
    """Every channel a cell can use: the library's and the project's own (including edited ones)."""
    return sorted(set(CHANNELS) | set(doc.get("channels", {})))


def default_gbar(doc, channel):
    """The channel's own density (S/cm²), as the project defines it."""
    return float(build_channels(doc.get("channels", {}))[channel].gbar)


def _specificity(where, morphology):
    """How narrow a place is: everywhere 0, a region or list 1, one section 2 (later insertions win)."""
    if where == "all":
        return 0
    if isinstance(where, str) and where in morphology:
        return 2
    return 1


def set_density(doc, cell, channel, where, gbar=None):
    """Put ``channel`` at ``gbar`` S/cm² (None: the channel's own) on ``where`` ("all", a region or a section).

    An existing insertion of the channel on exactly ``where`` is changed; a new one goes after every
    broader one, so a section's own density overrides its region's, and a region's overrides "all"."""
    entry = doc["cells"][cell]
    insertions = entry.setdefault("insert", [])
    for item in insertions:
        if item["channel"] == channel and item.get("where", "all") == where:
            item.pop("gbar", None)
            if gbar is not None:
                item["gbar"] = float(gbar)
            return
    morphology = entry["morphology"]
    rank = _specificity(where, morphology)
    position = len(insertions)
    for k, item in enumerate(insertions):
        if _specificity(item.get("where", "all"), morphology) > rank:
            position = k
            break
    new = {"channel": channel, "where": where}
    if gbar is not None:
        new["gbar"] = float(gbar)
    insertions.insert(position, new)


def remove_density(doc, cell, channel, where):
    """Remove the insertion of ``channel`` on exactly ``where``."""
    insertions = doc["cells"][cell].get("insert", [])
    keep = [item for item in insertions if not (item["channel"] == channel and item.get("where", "all") == where)]
    if len(keep) == len(insertions):
        raise ValueError(f"{channel} is not inserted on {where!r} itself (it may come from a broader place)")
    doc["cells"][cell]["insert"] = keep


def density_sources(doc, cell, section):
    """[(channel, gbar S/cm², where it comes from)] in effect in ``section``, as the core resolves them."""
    entry = doc["cells"][cell]
    morphology = entry["morphology"]
    region = morphology[section].get("region", "soma")
    found = {}
    for item in entry.get("insert", []):
        where = item.get("where", "all")
        places = [where] if isinstance(where, str) else list(where)
        if "all" in places or section in places or region in places:
            found[item["channel"]] = (item.get("gbar"), where_text(where))
    result = []
    for channel, (gbar, where) in found.items():
        result.append((channel, default_gbar(doc, channel) if gbar is None else float(gbar), where))
    return result


def new_cell(doc, name):
    """Add cell ``name``: one soma cylinder (20 µm × 20 µm), no channels yet."""
    check_cell_name(doc, name)
    doc["cells"][name] = {"morphology": {"soma": dict(SOMA)}, "insert": []}


def check_cell_name(doc, name):
    if not name.isidentifier():
        raise ValueError(f"cell names are letters, digits and _, not starting with a digit; got {name!r}")
    if name in doc["cells"]:
        raise ValueError(f"a cell named {name!r} exists already")


def read_swc(path, max_segment_length=None):
    """The morphology dict of an SWC file, read by the core. Errors are the core's (ModelError) or OSError."""
    return load_swc(path, max_segment_length=max_segment_length).to_dict()


def read_swc_bytes(data, filename, max_segment_length=None):
    """The same for an uploaded file's bytes; messages name ``filename``, not the temporary copy."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(filename).name
        path.write_bytes(data)
        try:
            return read_swc(path, max_segment_length)
        except (ValueError, OSError) as err:  # ModelError is a ValueError; so is a file that is not text
            raise ValueError(str(err).replace(str(path), Path(filename).name)) from None


def add_swc_cell(doc, name, morphology):
    """Add cell ``name`` with an imported ``morphology`` and no channels yet."""
    check_cell_name(doc, name)
    doc["cells"][name] = {"morphology": morphology, "insert": []}


def _prune_places(cell_entry):
    """Drop sections and regions that no longer exist from the insertions' ``where`` (and insertions left nowhere)."""
    morphology = cell_entry["morphology"]
    places = {"all"} | set(morphology) | set(regions(morphology))
    for group in ("insert", "pools"):
        kept = []
        for item in cell_entry.get(group, []):
            where = item.get("where", "all")
            if isinstance(where, str):
                if where in places:
                    kept.append(item)
                continue
            remaining = [place for place in where if place in places]
            if remaining:
                kept.append({**item, "where": remaining if len(remaining) > 1 else remaining[0]})
        if group in cell_entry:
            cell_entry[group] = kept
