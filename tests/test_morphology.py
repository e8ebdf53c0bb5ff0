"""Sections with 3-D points and SWC import, against NEURON: the same points (pt3dadd) or the same
file (Import3d) must give the same tree, segment areas, axial resistances and input resistance.

Points whose coordinates are exact in single precision (NEURON stores pt3d as float) are
compared to 1e-10; SWC files with decimal coordinates to 1e-6 (float rounding in NEURON).
"""

import json
import math

import numpy as np
import pytest

import brainfuse_core as bf
from brainfuse_core.errors import ModelError, ProjectError
from brainfuse_core.project.schema import check_structure
from brainfuse_core.validation import _neuron, neuron_swc_sections

G_PAS = 1e-4  # S/cm²
RA = 123.0    # Ω·cm

# A tapering path with a kink, a point where the diameter steps (two points at one place) and
# segments whose half-boundaries fall between points; every number exact in float32.
TAPERED = [[0, 0, 0, 4], [10, 0, 0, 3.5], [10, 0, 0, 2.5], [25, 6, 2, 2], [40, 6, 2, 1], [52, 0, 0, 0.75]]


def input_resistance(cell, section, x=0.5):
    """MΩ into ``section(x)`` of a cell with G_PAS everywhere, from the node layout (a dense solve)."""
    layout = cell.layout
    g = np.diag(G_PAS * layout.area * 1e-2)  # S/cm² × µm² → µS
    for node in range(1, layout.size):
        p, a = layout.parent[node], layout.axial_conductance[node]
        g[node, node] += a
        g[p, p] += a
        g[node, p] -= a
        g[p, node] -= a
    current = np.zeros(layout.size)
    node = layout.node(section, x)
    current[node] = 1.0
    return np.linalg.solve(g, current)[node]


def neuron_input_resistance(h, section, x=0.5):
    for sec in section.wholetree():
        sec.insert("pas")
        for segment in sec:
            segment.pas.g = G_PAS
    impedance = h.Impedance()
    impedance.loc(x, sec=section)
    impedance.compute(0, 1)
    return impedance.input(x, sec=section)


def passive_cell(morphology):
    cell = bf.Cell(morphology, ra=RA)
    cell.insert(bf.channel("leak", gbar=G_PAS, reversal=-65.0))
    return cell


def assert_same_discretisation(cell, neuron_sections, rtol):
    """Every segment's area and resistance to its parent node, and the section lengths, as NEURON has them."""
    layout = cell.layout
    for name, section in neuron_sections.items():
        ours = cell.morphology.sections[name]
        assert section.nseg == ours.nseg
        assert section.L == pytest.approx(ours.length, rel=rtol)
        for segment in section:
            node = layout.node(name, segment.x)
            assert layout.area[node] == pytest.approx(segment.area(), rel=rtol), (name, segment.x)
            assert 1.0 / layout.axial_conductance[node] == pytest.approx(segment.ri(), rel=rtol), (name, segment.x)
        end = layout.node(name, 1.0)
        assert 1.0 / layout.axial_conductance[end] == pytest.approx(section(1.0).ri(), rel=rtol), name


# ---------------------------------------------------------------------------------------- sections with points

def test_cylinder_given_as_points_is_the_cylinder():
    cylinder = passive_cell(bf.Morphology([bf.Section("s", 50.0, 2.0, nseg=5)]))
    path = passive_cell(bf.Morphology([bf.Section("s", points=[[0, 0, 0, 2], [30, 40, 0, 2], [30, 40, 0, 2]], nseg=5)]))
    np.testing.assert_allclose(path.layout.area, cylinder.layout.area, rtol=1e-13)
    np.testing.assert_allclose(path.layout.axial_conductance, cylinder.layout.axial_conductance, rtol=1e-13)


def test_cone_area_and_resistance_are_the_frustum_integrals():
    # d from 4 to 1 µm over 30 µm: area π (r0 + r1) √(L² + (r0 − r1)²), resistance 4 Ra L / (π d0 d1).
    section = bf.Section("cone", points=[[0, 0, 0, 4], [0, 30, 0, 1]], nseg=3)
    assert section.length == 30.0
    assert section.area == pytest.approx(math.pi * 2.5 * math.hypot(30, 1.5), rel=1e-14)
    assert section.diameter == pytest.approx(section.area / (math.pi * 30.0), rel=1e-14)
    layout = passive_cell(bf.Morphology([section])).layout
    path_resistance = sum(1.0 / layout.axial_conductance[1:])
    assert path_resistance == pytest.approx(1e-2 * RA * 4 * 30 / (math.pi * 4 * 1), rel=1e-13)
    assert layout.area.sum() == pytest.approx(section.area, rel=1e-13)


def test_tapered_section_matches_neuron_pt3d(require_neuron):
    h = _neuron()
    for nseg in (1, 4, 7):
        trunk = h.Section(name="trunk")
        for point in TAPERED:
            trunk.pt3dadd(*point)
        branch = h.Section(name="branch")
        branch.L, branch.diam, branch.nseg = 20.0, 0.8, 3
        branch.connect(trunk(0.5))
        for sec in (trunk, branch):
            sec.Ra = RA
        trunk.nseg = nseg
        morphology = bf.Morphology([bf.Section("trunk", points=TAPERED, nseg=nseg),
                                    bf.Section("branch", 20.0, 0.8, nseg=3, parent="trunk", parent_x=0.5)])
        cell = passive_cell(morphology)
        assert_same_discretisation(cell, {"trunk": trunk, "branch": branch}, rtol=1e-10)
        assert sum(segment.area() for segment in trunk) == pytest.approx(morphology.sections["trunk"].area, rel=1e-12)
        for name, sec in (("trunk", trunk), ("branch", branch)):
            assert input_resistance(cell, name) == pytest.approx(neuron_input_resistance(h, sec), rel=1e-10)


def test_points_round_trip_and_derived_fields():
    section = bf.Section("dend", points=TAPERED, nseg=3, parent="soma", parent_x=0.5, region="basal")
    data = section.to_dict()
    assert data["points"] == [[float(v) for v in p] for p in TAPERED]
    assert data["length"] == round(section.length, 4) and data["diameter"] == round(section.diameter, 4)
    morphology = bf.Morphology.from_dict({"soma": {"length": 10, "diameter": 10}, "dend": data})
    again = morphology.sections["dend"]
    assert again.points == section.points and again.parent_x == 0.5 and again.nseg == 3
    assert morphology.to_dict()["dend"] == data
    # Without the derived fields the section is the same; they are for readers, not a second source.
    bare = {key: value for key, value in data.items() if key not in ("length", "diameter")}
    assert bf.Morphology.from_dict({"soma": {"length": 10, "diameter": 10}, "dend": bare}).sections["dend"].area == section.area


def test_section_with_points_refuses_contradictions_and_bad_points():
    data = bf.Section("d", points=TAPERED).to_dict()
    with pytest.raises(ModelError, match=r"morphology\.d\.length: 60 µm, but the points give a path length of 5\d\.\d{4} µm.*remove length"):
        bf.Morphology.from_dict({"d": dict(data, length=60)})
    with pytest.raises(ModelError, match="leave length and diameter out"):
        bf.Section("d", 10.0, 1.0, points=TAPERED)
    with pytest.raises(ModelError, match="at least 2 points"):
        bf.Section("d", points=[[0, 0, 0, 1]])
    with pytest.raises(ModelError, match=r"points\[1\] has diameter 0; diameters must be positive"):
        bf.Section("d", points=[[0, 0, 0, 1], [1, 0, 0, 0]])
    with pytest.raises(ModelError, match="points all coincide"):
        bf.Section("d", points=[[1, 2, 3, 1], [1, 2, 3, 2]])
    with pytest.raises(ModelError, match="give length and diameter"):
        bf.Section("d", length=10.0)
    with pytest.raises(ModelError, match=r"morphology\.d\.length: missing \(µm\); give length and diameter, or points"):
        bf.Morphology.from_dict({"d": {"diameter": 2}})


def test_project_schema_takes_points_and_names_the_bad_one():
    project = json.loads(open("projects/passive_cable.json").read())
    cell = next(iter(project["cells"].values()))
    name = next(iter(cell["morphology"]))
    cell["morphology"][name] = {"points": [[0, 0, 0, 1], [100, 0, 0, 1]], "nseg": 11}
    check_structure(project)
    cell["morphology"][name]["points"][1] = [100, 0, 1]
    with pytest.raises(ProjectError, match=r"points\[1\]: a point is \[x, y, z, diameter\] in µm"):
        check_structure(project)
    del cell["morphology"][name]["points"]
    with pytest.raises(ProjectError, match=r"\.length: missing; a positive number of µm \(or give points instead\)"):
        check_structure(project)


# ---------------------------------------------------------------------------------------- SWC against Import3d

SWC_FILES = {
    # One-point soma: wired neurites, a one-point axon drawn from the centre, a fork, a tuft,
    # a branch from the first point of a wired dendrite (attached at its x = 0) and a
    # zero-length two-point section that NEURON drops.
    "one_point_soma": """# one-point soma
1 1 0 0 0 5.5 -1
2 4 0 8 0 1.5 1
3 4 0.25 30 0 1.25 2
4 4 0 60.5 5 1.0 3
5 4 -10 80 5 0.6 4
6 4 -20.3 100.7 5.1 0.5 5
7 4 10 85 0 0.6 4
8 2 -8 0 0 0.8 1
9 3 10 0 0 1.1 1
10 3 20 0 0 1 9
11 3 30 10 0 0.5 10
12 3 30 -10 0 0.5 10
13 3 12 5 0 0.7 9
14 3 15 15 0 0.6 13
15 3 30 -10 0 0.45 12
16 3 40 -12 0 0.4 15
17 3 40 -2 0 0.4 15
""",
    # NeuroMorpho's three-point soma: a sphere of radius 7 µm.
    "three_point_soma": """1 1 1 2 3 7 -1
2 1 1 -5 3 7 1
3 1 1 9 3 7 1
4 3 1 2 40 1.2 1
5 3 1 2 90 0.9 4
6 3 25 2 3 1.0 1
7 4 1 40 3 2 1
8 4 1 100 3 1.5 7
""",
    # A soma of five points along y; neurites from its last point (x = 1), from its first (x = 0),
    # from an interior point (x = 0.5, wired), a one-point neurite from the interior.
    "soma_stack": """1 1 0 0 0 4 -1
2 1 0 4 0 6 1
3 1 0 8 0 6.5 2
4 1 0 12 0 5 3
5 1 0 15 0 2 4
6 4 0 40 0 1.5 5
7 4 0 80 0 1.2 6
8 2 0 -20 0 0.6 1
9 2 0 -60 0 0.5 8
10 3 20 8 0 1 3
11 3 50 8 0 0.8 10
12 3 -20 8 0 1 3
""",
    # A soma outline traced as a chain of points (all type 1), dendrites from the first point.
    "soma_outline": """1 1 10 0 0 0.5 -1
2 1 7.07 7.07 0 0.5 1
3 1 0 10 0 0.5 2
4 1 -7.07 7.07 0 0.5 3
5 1 -10 0 0 0.5 4
6 1 -7.07 -7.07 0 0.5 5
7 1 0 -10 0 0.5 6
8 1 7.07 -7.07 0 0.5 7
9 3 30 0 0 1 1
10 3 60 5 0 0.8 9
11 4 10 30 0 1.5 1
""",
    # A branched soma (one soma point with two soma children) splits into three soma sections.
    "branched_soma": """1 1 0 0 0 5 -1
2 1 0 5 0 5 1
3 1 3 9 0 3 2
4 1 -3 9 0 3 2
5 3 5 20 0 1 3
6 3 -5 20 0 1 4
7 2 0 -30 0 0.7 1
""",
}


@pytest.mark.parametrize("case", sorted(SWC_FILES))
def test_swc_gives_neurons_tree_and_discretisation(case, tmp_path, require_neuron):
    path = tmp_path / f"{case}.swc"
    path.write_text(SWC_FILES[case])
    h = _neuron()
    morphology = bf.load_swc(path, max_segment_length=8.0)
    theirs = neuron_swc_sections(h, path)
    assert set(morphology.sections) == set(theirs)
    names = {sec.name(): name for name, sec in theirs.items()}
    for name, section in morphology.sections.items():
        sec = theirs[name]
        sec.nseg, sec.Ra = section.nseg, RA
        if section.parent is None:
            assert sec.parentseg() is None
        else:
            assert (names[sec.parentseg().sec.name()], sec.parentseg().x) == (section.parent, section.parent_x), name
        neuron_points = [[sec.x3d(i), sec.y3d(i), sec.z3d(i), sec.diam3d(i)] for i in range(sec.n3d())]
        np.testing.assert_allclose(neuron_points, section.points, rtol=1e-6, atol=1e-5, err_msg=name)
    cell = passive_cell(morphology)
    assert_same_discretisation(cell, theirs, rtol=1e-6)
    for name in ("soma", sorted(morphology.sections)[-1]):
        assert input_resistance(cell, name) == pytest.approx(neuron_input_resistance(h, theirs[name]), rel=1e-6)


def test_swc_soma_conventions(tmp_path):
    path = tmp_path / "cells.swc"
    path.write_text(SWC_FILES["three_point_soma"])
    morphology = bf.load_swc(path)
    soma = morphology.sections["soma"]
    # The sphere of radius 7 µm as NEURON draws it: a cylinder along x, L = diam = 14 µm, the sphere's area.
    assert soma.points == ((-6.0, 2.0, 3.0, 14.0), (1.0, 2.0, 3.0, 14.0), (8.0, 2.0, 3.0, 14.0))
    assert soma.area == pytest.approx(4 * math.pi * 7.0 ** 2)
    wired = morphology.sections["basal[0]"]  # two points: joined to the centre by a wire
    assert (wired.parent, wired.parent_x, wired.length) == ("soma", 0.5, 50.0)
    single = morphology.sections["basal[1]"]  # one point: drawn from the centre, with its own diameter
    assert single.points[0] == (1.0, 2.0, 3.0, 2.0) and single.length == 24.0
    path.write_text(SWC_FILES["soma_stack"])
    sections = bf.load_swc(path).sections
    assert [p[3] for p in sections["soma"].points] == [8.0, 12.0, 13.0, 10.0, 4.0]
    assert (sections["apical[0]"].parent_x, sections["axon[0]"].parent_x, sections["basal[0]"].parent_x) == (1.0, 0.0, 0.5)
    # A neurite from a multi-point soma starts at the soma point, with its own first diameter.
    assert sections["apical[0]"].points[0] == (0.0, 15.0, 0.0, 3.0)


def test_swc_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.swc"
    for text, message in (
        ("1 1 0 0 0 5 -1\n2 3 10 0 0 1 7\n", "bad.swc:2: parent 7 of point 2 must have a smaller id"),
        ("1 1 0 0 0 5 -1\n2 3 10 0 0 1\n", "bad.swc:2: an SWC line has 7 fields"),
        ("1 1 0 0 0 5 -1\n2 3 10 0 0 -1 1\n", "bad.swc:2: radius must be positive"),
        ("1 1 0 0 0 5 -1\n3 3 10 0 0 1 2\n", "bad.swc:2: parent 2 of point 3 is not in the file"),
        ("1 1 0 0 0 5 -1\n2 3 10 0 0 1 -1\n", "one tree expected, but points on lines 1, 2 have no parent"),
    ):
        path.write_text(text)
        with pytest.raises(ModelError, match=message):
            bf.load_swc(path)
    with pytest.raises(ModelError, match="max_segment_length must be a positive number"):
        bf.load_swc(path, max_segment_length=0)
