"""The circuit as a graph: populations are nodes, projections are edges of an ``nx.MultiDiGraph``.

The graph is read from the project document and never edited itself. Every change the circuit
editor makes is one of the functions below, each of which changes a document (a copy the
workbench hands to it) in place and raises ValueError, with a message for the user, when the
change makes no sense. The document's ``layout.populations`` holds where each node is drawn; it is
kept in step with renames and deletions here, so a reopened project looks as it was left.
"""

import copy
import math
import re

import networkx as nx
import numpy as np

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXCITATORY_E_REV = -20.0  # mV: at or above this reversal a synapse depolarises from rest
SPACING = 2.0  # canvas units between default node spots
DEFAULT_COUNT = 10
DEFAULT_RATE_HZ = 10.0
DEFAULT_THRESHOLD = -20.0
DEFAULT_PROJECTION = {"synapse": {"kind": "exp", "tau": 5.0, "e_rev": 0.0},
                      "connect": {"rule": "fixed_probability", "p": 0.1, "allow_self": False},
                      "weight": 0.005}
KINDS = {"cell": "cell population", "poisson": "Poisson source", "spike_times": "spike-time source"}
RULES = ("all_to_all", "fixed_probability", "fixed_indegree", "one_to_one")

# A one-compartment Hodgkin-Huxley cell (as projects/squid_axon.json's "axon") for documents without cells.
HH_CHANNELS = {"hh_na": {"library": "hh_na", "gbar": 0.12}, "hh_k": {"library": "hh_k", "gbar": 0.036},
               "leak": {"library": "leak", "gbar": 0.0003, "reversal": -54.3}}
HH_CELL = {"morphology": {"soma": {"length": 100, "diameter": 100, "nseg": 1}}, "cm": 1, "v_init": -65,
           "reversals": {"na": 50, "k": -77}, "insert": [{"channel": "hh_na"}, {"channel": "hh_k"}, {"channel": "leak"}]}


# ---------------------------------------------------------------------- reading
def kind_of(entry):
    """"cell", "poisson" or "spike_times": what a population entry is."""
    return next((kind for kind in ("poisson", "spike_times") if kind in entry), "cell")


def size_of(entry):
    """The number of cells (or source channels) of a population entry."""
    kind = kind_of(entry)
    if kind == "poisson":
        return entry["poisson"]["n"]
    if kind == "spike_times":
        return len(entry["spike_times"])
    return entry["n"]


def is_source(entry):
    return kind_of(entry) != "cell"


def is_excitatory(projection):
    return projection["synapse"].get("e_rev", 0.0) >= EXCITATORY_E_REV


def positions(doc):
    """{population: (x, y)}: the layout's position, or a free default spot for a population without one."""
    stored = doc.get("layout", {}).get("populations", {})
    placed = {name: tuple(stored[name]) for name in doc["circuit"]["populations"] if name in stored}
    for name in doc["circuit"]["populations"]:
        if name not in placed:
            placed[name] = free_spot(placed.values())
    return placed


def free_spot(taken):
    """The first spot of a row-by-row grid (four per row) that is not near any of ``taken``."""
    taken = list(taken)
    for index in range(10_000):
        spot = (1.0 + SPACING * (index % 4), 7.0 - SPACING * (index // 4))
        if all(math.dist(spot, other) > SPACING / 2 for other in taken):
            return spot
    raise ValueError("no free spot on the canvas")


def build_graph(doc):
    """The circuit as an ``nx.MultiDiGraph``: nodes are populations (their entry's fields, ``kind``, ``size``
    and ``pos``), edges are projections keyed by their index in ``circuit.projections``."""
    graph = nx.MultiDiGraph()
    where = positions(doc)
    for name, entry in doc["circuit"]["populations"].items():
        graph.add_node(name, **copy.deepcopy(entry), kind=kind_of(entry), size=size_of(entry), pos=where[name])
    for index, projection in enumerate(doc["circuit"].get("projections", [])):
        graph.add_edge(projection["pre"], projection["post"], key=index, **copy.deepcopy(projection),
                       excitatory=is_excitatory(projection))
    return graph


def drive_index(doc, name):
    """Index in ``stimuli`` of the population's drive (a current step on all its cells), or None."""
    for index, stimulus in enumerate(doc.get("stimuli", [])):
        if stimulus["type"] == "iclamp" and stimulus["population"] == name and "cells" not in stimulus:
            return index
    return None


def fresh_name(doc, prefix="P"):
    """``prefix`` followed by the smallest number that no population uses yet."""
    taken = doc["circuit"]["populations"]
    number = 1
    while f"{prefix}{number}" in taken:
        number += 1
    return f"{prefix}{number}"


def edge_label(doc, index):
    projection = doc["circuit"]["projections"][index]
    return f"{projection['pre']} → {projection['post']} (#{index})"


# ---------------------------------------------------------------------- changes (each edits ``doc`` in place)
def add_population(doc, name, position=None):
    """A population of ``DEFAULT_COUNT`` cells of the document's first cell (an HH cell is added if there is none)."""
    _check_new_name(doc, name)
    cell = ensure_cell(doc)
    doc["circuit"]["populations"][name] = {"cell": cell, "n": DEFAULT_COUNT, "threshold": DEFAULT_THRESHOLD}
    _place(doc, name, position)


def add_source(doc, name, position=None):
    """A Poisson source of ``DEFAULT_COUNT`` channels at ``DEFAULT_RATE_HZ``."""
    _check_new_name(doc, name)
    doc["circuit"]["populations"][name] = {"poisson": {"n": DEFAULT_COUNT, "rate_hz": DEFAULT_RATE_HZ, "seed": _fresh_seed(doc)}}
    _place(doc, name, position)


def ensure_cell(doc):
    """The name of the document's first cell, after adding a one-compartment HH cell if it has none."""
    if doc["cells"]:
        return next(iter(doc["cells"]))
    renamed = merge_definitions(doc, HH_CHANNELS, {"hh": HH_CELL})
    return renamed["hh"]


def rename_population(doc, old, new):
    """Rename a population and every reference to it (projections, stimuli, recordings, layout)."""
    new = new.strip()
    if new == old:
        return
    _check_new_name(doc, new)
    doc["circuit"]["populations"] = {new if name == old else name: entry for name, entry in doc["circuit"]["populations"].items()}
    for projection in doc["circuit"].get("projections", []):
        for end in ("pre", "post"):
            if projection[end] == old:
                projection[end] = new
    for group in ("stimuli", "recordings"):
        for item in doc.get(group, []):
            if item["population"] == old:
                item["population"] = new
    stored = doc.get("layout", {}).get("populations")
    if stored and old in stored:
        doc["layout"]["populations"] = {new if name == old else name: spot for name, spot in stored.items()}


def delete_population(doc, name):
    """Remove a population with its projections, stimuli, recordings and layout entry."""
    populations = doc["circuit"]["populations"]
    if len(populations) == 1:
        raise ValueError("a circuit needs at least one population; add another before deleting this one")
    del populations[name]
    circuit = doc["circuit"]
    if "projections" in circuit:
        circuit["projections"] = [p for p in circuit["projections"] if name not in (p["pre"], p["post"])]
    for group in ("stimuli", "recordings"):
        if group in doc:
            doc[group] = [item for item in doc[group] if item["population"] != name]
    doc.get("layout", {}).get("populations", {}).pop(name, None)


def connect(doc, pre, post):
    """Append a projection ``pre`` → ``post`` with the default synapse and rule; returns its index."""
    populations = doc["circuit"]["populations"]
    for name in (pre, post):
        if name not in populations:
            raise ValueError(f"there is no population {name!r}")
    if is_source(populations[post]):
        raise ValueError(f"{post!r} is a spike source: it sends spikes but cannot receive connections")
    projections = doc["circuit"].setdefault("projections", [])
    projections.append({"pre": pre, "post": post, **copy.deepcopy(DEFAULT_PROJECTION), "seed": _fresh_seed(doc)})
    return len(projections) - 1


def delete_projection(doc, index):
    del doc["circuit"]["projections"][index]


def move_population(doc, name, x, y):
    """Draw ``name`` at (x, y); every other population keeps the spot it is drawn at now."""
    spots = positions(doc)
    spots[name] = (x, y)
    doc.setdefault("layout", {})["populations"] = {key: [round(float(a), 3), round(float(b), 3)] for key, (a, b) in spots.items()}


def set_kind(doc, name, kind):
    """Turn a population into a cell population or a Poisson source of the same size. A source cannot be
    stimulated, recorded or connected to, so those entries go with the change."""
    entry = doc["circuit"]["populations"][name]
    if kind == kind_of(entry):
        return
    n = size_of(entry)
    if kind == "cell":
        doc["circuit"]["populations"][name] = {"cell": ensure_cell(doc), "n": n, "threshold": DEFAULT_THRESHOLD}
        return
    if kind != "poisson":
        raise ValueError(f"a population becomes a cell population or a Poisson source, not {kind!r}")
    doc["circuit"]["populations"][name] = {"poisson": {"n": n, "rate_hz": DEFAULT_RATE_HZ, "seed": _fresh_seed(doc)}}
    if "projections" in doc["circuit"]:
        doc["circuit"]["projections"] = [p for p in doc["circuit"]["projections"] if p["post"] != name]
    for group in ("stimuli", "recordings"):
        if group in doc:
            doc[group] = [item for item in doc[group] if item["population"] != name]


def set_count(doc, name, n):
    entry = doc["circuit"]["populations"][name]
    if kind_of(entry) == "spike_times":
        raise ValueError("a spike-time source has one channel per list of spike times")
    (entry["poisson"] if "poisson" in entry else entry)["n"] = n


def set_drive(doc, name, amp=None, delay=None, dur=None):
    """Set fields of the population's current step, adding one (on from 0 ms for the whole run) if it has none."""
    index = drive_index(doc, name)
    if index is None:
        doc.setdefault("stimuli", []).append({"type": "iclamp", "population": name, "amp": 1.0, "delay": 0.0,
                                              "dur": doc["run"]["duration"]})
        index = len(doc["stimuli"]) - 1
    stimulus = doc["stimuli"][index]
    for key, value in (("amp", amp), ("delay", delay), ("dur", dur)):
        if value is not None:
            stimulus[key] = value


def remove_drive(doc, name):
    index = drive_index(doc, name)
    if index is not None:
        del doc["stimuli"][index]


def set_rule(doc, index, rule):
    """Change a projection's rule, keeping allow_self; a new p or k starts at a sensible value."""
    connect_ = doc["circuit"]["projections"][index]["connect"]
    if rule == connect_["rule"]:
        return
    if rule not in RULES:
        raise ValueError(f"rules are {', '.join(RULES)}, not {rule!r}")
    if rule == "one_to_one":
        doc["circuit"]["projections"][index]["connect"] = {"rule": rule}
        return
    changed = {"rule": rule, "allow_self": connect_.get("allow_self", False)}
    if rule == "fixed_probability":
        changed["p"] = DEFAULT_PROJECTION["connect"]["p"]
    if rule == "fixed_indegree":
        projection = doc["circuit"]["projections"][index]
        available = size_of(doc["circuit"]["populations"][projection["pre"]])
        if projection["pre"] == projection["post"] and not changed["allow_self"]:
            available -= 1
        changed["k"] = max(0, min(DEFAULT_COUNT, available))
    doc["circuit"]["projections"][index]["connect"] = changed


def set_synapse_kind(doc, index, kind):
    """Switch between a single (exp) and a double (exp2) exponential, keeping the decay and reversal."""
    synapse = doc["circuit"]["projections"][index]["synapse"]
    if kind == synapse["kind"]:
        return
    e_rev = synapse.get("e_rev", 0.0)
    if kind == "exp":
        changed = {"kind": "exp", "tau": synapse.get("tau_decay", 5.0), "e_rev": e_rev}
    elif kind == "exp2":
        tau_decay = synapse.get("tau", 5.0)
        changed = {"kind": "exp2", "tau_rise": min(0.5, tau_decay / 2), "tau_decay": tau_decay, "e_rev": e_rev}
    else:
        raise ValueError(f"synapses are exp or exp2, not {kind!r}")
    doc["circuit"]["projections"][index]["synapse"] = changed


def merge_definitions(doc, channels, cells):
    """Add ``channels`` and ``cells`` (name → definition) to the document. A name the document already uses
    for something else gets a numbered suffix (references follow), so no existing cell changes behaviour.
    Returns {given cell name: name in the document}."""
    channel_names = {name: _merge(doc.setdefault("channels", {}), name, entry) for name, entry in channels.items()}
    cell_names = {}
    for name, entry in cells.items():
        entry = copy.deepcopy(entry)
        for insert in entry.get("insert", []):
            insert["channel"] = channel_names.get(insert["channel"], insert["channel"])
        cell_names[name] = _merge(doc["cells"], name, entry)
    return cell_names


# ---------------------------------------------------------------------- drawing (canvas units)
def node_radius(size):
    """Circles grow with the log of the population size, so 10 and 4000 cells both stay readable."""
    return 0.35 + 0.12 * math.log10(max(size, 1))


def edge_paths(graph, samples=40):
    """{projection index: (xs, ys)}: a curve from the pre circle's rim to just short of the post circle's rim.
    Edges bend to their left, so A → B and B → A do not overlap; parallel edges bend further; a
    self-projection is a loop above its node."""
    paths = {}
    for pre, post, index in graph.edges(keys=True):
        rank = sorted(graph[pre][post]).index(index)
        p0, r0 = np.array(graph.nodes[pre]["pos"], float), node_radius(graph.nodes[pre]["size"])
        p1, r1 = np.array(graph.nodes[post]["pos"], float), node_radius(graph.nodes[post]["size"])
        t = np.linspace(0.0, 1.0, samples)[:, None]
        if pre == post:
            loop = 0.3 + 0.15 * rank
            centre = p0 + [0.0, r0 + 0.6 * loop]
            angle = -np.pi / 2 + 2 * np.pi * t
            curve = centre + loop * np.hstack([np.cos(angle), np.sin(angle)])
        else:
            along = p1 - p0
            length = max(np.hypot(*along), 1e-9)
            control = (p0 + p1) / 2 + np.array([-along[1], along[0]]) / length * (0.3 + 0.35 * rank)
            curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t ** 2 * p1
        outside = (np.hypot(*(curve - p0).T) > r0) & (np.hypot(*(curve - p1).T) > r1 + 0.1)
        if outside.sum() >= 2:
            first, last = np.flatnonzero(outside)[[0, -1]]
            kept = curve[first:last + 1]
        else:
            # Overlapping circles leave nothing outside; a straight stub still shows the projection.
            kept = np.vstack([p0, p1 + [1e-6, 0.0]])
        paths[index] = (kept[:, 0].tolist(), kept[:, 1].tolist())
    return paths


def arrow_head(xs, ys):
    """(x, y, angle) of an arrowhead at the end of a path; angle in radians for a marker that points up."""
    angle = math.atan2(ys[-1] - ys[-2], xs[-1] - xs[-2])
    return xs[-1], ys[-1], angle - math.pi / 2


def node_at(graph, x, y, slack=0.05):
    """The population whose circle contains (x, y), the nearest if several; None if none."""
    best, best_distance = None, math.inf
    for name, data in graph.nodes(data=True):
        distance = math.dist((x, y), data["pos"])
        if distance <= node_radius(data["size"]) + slack and distance < best_distance:
            best, best_distance = name, distance
    return best


def edge_at(paths, x, y, tolerance=0.15):
    """The projection whose drawn path passes within ``tolerance`` of (x, y), the nearest if several; None if none."""
    best, best_distance = None, tolerance
    point = np.array([x, y])
    for index, (xs, ys) in paths.items():
        starts = np.column_stack([xs[:-1], ys[:-1]])
        steps = np.column_stack([xs[1:], ys[1:]]) - starts
        lengths = np.maximum((steps ** 2).sum(axis=1), 1e-12)
        along = np.clip(((point - starts) * steps).sum(axis=1) / lengths, 0.0, 1.0)
        distance = np.hypot(*(starts + along[:, None] * steps - point).T).min()
        if distance <= best_distance:
            best, best_distance = index, distance
    return best


def view_ranges(graph, default=(0.0, 12.0, 0.0, 8.0), margin=0.8):
    """(x0, x1, y0, y1) of the canvas: the default area, grown (keeping its aspect) to show every node."""
    x0, x1, y0, y1 = default
    for data in graph.nodes.values():
        reach = node_radius(data["size"]) + margin
        (x, y) = data["pos"]
        x0, x1, y0, y1 = min(x0, x - reach), max(x1, x + reach), min(y0, y - reach), max(y1, y + reach)
    aspect = (default[1] - default[0]) / (default[3] - default[2])
    width, height = max(x1 - x0, (y1 - y0) * aspect), max(y1 - y0, (x1 - x0) / aspect)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - width / 2, cx + width / 2, cy - height / 2, cy + height / 2


# ---------------------------------------------------------------------- internals
def _merge(table, name, entry):
    candidate, number = name, 1
    while candidate in table and table[candidate] != entry:
        number += 1
        candidate = f"{name}_{number}"
    table[candidate] = copy.deepcopy(entry)
    return candidate


def _check_new_name(doc, name):
    if not IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a valid name: use letters, digits and _, not starting with a digit")
    if name in doc["circuit"]["populations"]:
        raise ValueError(f"there is already a population named {name!r}")


def _place(doc, name, position):
    spots = positions(doc)
    spot = position if position is not None else free_spot(spot for key, spot in spots.items() if key != name)
    move_population(doc, name, *spot)


def _fresh_seed(doc):
    seeds = [p.get("seed", 0) for p in doc["circuit"].get("projections", [])]
    seeds += [e["poisson"]["seed"] for e in doc["circuit"]["populations"].values() if "poisson" in e]
    return max(seeds, default=0) + 1
