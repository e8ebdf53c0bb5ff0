"""The structure of a project file as a JSON Schema, and one-line error messages from it.

The schema checks shapes, types and plain ranges; cross-references (which cell a population
uses, which channel a cell inserts) and the physics are checked when the project is built.
Subschemas may carry two keywords of our own that the validator ignores: ``units`` (named in
messages about numbers) and ``message`` (replaces the generic text for names, distributions and pairs).
"""

import json
import re

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..channels import CHANNELS
from ..errors import ProjectError

FORMAT = "brainfuse-project"
VERSION = 1

IDENTIFIER = {
    "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
    "message": "names are letters, digits and _, not starting with a digit",
}
ION = {"enum": ["na", "k", "ca"], "message": "ions are na, k and ca"}
SECTION_NAME = {"type": "string", "pattern": r"^[^\s.]+$", "message": "section names contain no spaces or dots"}


def number(units, **bounds):
    return {"type": "number", "units": units, **bounds}


def positive(units):
    return number(units, exclusiveMinimum=0)


def non_negative(units):
    return number(units, minimum=0)


def obj(properties, required=(), extra=False):
    """An object with the given fields; ``extra`` is the schema of any other field (False: none allowed)."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": extra}


def listing(items, min_items=0):
    return {"type": "array", "items": items, "minItems": min_items}


def named(values):
    """An object mapping identifiers to ``values``."""
    return {"type": "object", "propertyNames": IDENTIFIER, "additionalProperties": values}


def tagged(tag, variants, required=()):
    """An object whose ``tag`` field picks one of ``variants`` (tag value → (fields, required fields))."""
    return {
        "type": "object",
        "required": [tag, *required],
        "properties": {tag: {"enum": list(variants)}},
        "allOf": [
            {"if": {"required": [tag], "properties": {tag: {"const": value}}},
             "then": obj({tag: {"const": value}, **fields}, variant_required)}
            for value, (fields, variant_required) in variants.items()
        ],
    }


def distribution(units, **bounds):
    """A fixed number, or independent normal draws (one per cell) from a seed."""
    return {
        "type": ["number", "object"], "units": units, **bounds,
        "message": f'must be a number of {units} or {{"normal": {{"mean": …, "std": …}}, "seed": …}}',
        "properties": {"normal": obj({"mean": number(units), "std": non_negative(units)}, ["mean", "std"]),
                       "seed": {"type": "integer", "minimum": 0}},
        "required": ["normal", "seed"], "additionalProperties": False,
    }


NUMBERS = {"type": "array", "items": {"type": "number"}}
CELL_INDICES = listing({"type": "integer", "minimum": 0})

CURVE = obj(
    {
        "kind": {"type": "string"},
        "variable": {"enum": ["v", "cai"]},
        "expression": {"type": "string"},
        "parameters": {"type": "object", "additionalProperties": {"type": "number"}},
        "points": NUMBERS,
        "values": NUMBERS,
    },
    ["kind"],
    extra={"type": "number"},
)

GATE = obj({"power": {"type": "integer", "minimum": 1}, **{key: CURVE for key in ("alpha", "beta", "inf", "tau")}})

FULL_CHANNEL = obj({
    "gbar": non_negative("S/cm²"),
    "gates": named(GATE),
    "ion": ION,
    "reversal": number("mV"),
    "q10": positive("(factor per 10 °C)"),
    "temperature": number("°C"),
    "description": {"type": "string"},
})

# Overrides are the library function's keyword arguments; which ones exist is checked on build.
LIBRARY_CHANNEL = obj({"library": {"enum": sorted(CHANNELS)}, "gbar": non_negative("S/cm²")}, ["library"],
                      extra={"type": "number"})

CHANNEL = {"type": "object", "if": {"required": ["library"]}, "then": LIBRARY_CHANNEL, "else": FULL_CHANNEL}

# A cylinder (length, diameter) or a path through 3-D points [x, y, z, diameter] (µm), whose
# length and area-equivalent diameter are derived (and, if written, must agree with the points).
SECTION = {
    **obj(
        {
            "length": positive("µm"),
            "diameter": positive("µm"),
            "points": {"type": "array", "minItems": 2, "message": "points is a list of at least 2 [x, y, z, diameter] (µm)",
                       "items": {"type": "array", "items": {"type": "number", "units": "µm"}, "minItems": 4, "maxItems": 4,
                                 "message": "a point is [x, y, z, diameter] in µm"}},
            "nseg": {"type": "integer", "minimum": 1},
            "parent": {"type": "string"},
            "parent_x": number("(fraction of the parent)", minimum=0, maximum=1),
            "region": {"type": "string"},
            "ra": positive("Ω·cm"),
            "cm": positive("µF/cm²"),
        },
    ),
    "if": {"required": ["points"]},
    "else": {"required": ["length", "diameter"],
             "properties": {key: {**positive("µm"), "message": "must be a positive number of µm (or give points instead)"}
                            for key in ("length", "diameter")}},
}

WHERE = {"type": ["string", "array"], "items": {"type": "string"}, "message": "must be a section or region name, or a list of them"}

CELL = obj(
    {
        "morphology": {"type": "object", "minProperties": 1, "propertyNames": SECTION_NAME, "additionalProperties": SECTION},
        "cm": positive("µF/cm²"),
        "ra": positive("Ω·cm"),
        "v_init": number("mV"),
        "reversals": {"type": "object", "propertyNames": ION, "additionalProperties": number("mV")},
        "insert": listing(obj({"channel": {"type": "string"}, "where": WHERE, "gbar": non_negative("S/cm²")}, ["channel"])),
        "pools": listing(obj({
            "pool": {"type": "string"}, "where": WHERE, "depth": positive("µm"), "decay": positive("ms"),
            "rest": positive("mM"), "gamma": number("(fraction)", minimum=0, maximum=1),
        })),
    },
    ["morphology"],
)

POPULATION = obj({
    "cell": IDENTIFIER,
    "n": {"type": "integer", "minimum": 1},
    "threshold": number("mV"),
    "v_init": distribution("mV"),
    "poisson": obj({
        "n": {"type": "integer", "minimum": 1}, "rate_hz": non_negative("Hz"), "seed": {"type": "integer", "minimum": 0},
        "start": non_negative("ms"), "stop": non_negative("ms"),
    }, ["n", "rate_hz", "seed"]),
    "spike_times": listing(listing(non_negative("ms")), min_items=1),
})

SYNAPSES = {
    "exp": ({"tau": positive("ms"), "e_rev": number("mV")}, []),
    "exp2": ({"tau_rise": positive("ms"), "tau_decay": positive("ms"), "e_rev": number("mV")}, []),
}
RULES = {
    "all_to_all": ({"allow_self": {"type": "boolean"}}, []),
    "fixed_probability": ({"p": number("(probability)", minimum=0, maximum=1), "allow_self": {"type": "boolean"}}, ["p"]),
    "fixed_indegree": ({"k": {"type": "integer", "minimum": 0}, "allow_self": {"type": "boolean"}}, ["k"]),
    "one_to_one": ({}, []),
    "explicit": ({"pairs": listing({"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2,
                                    "message": "a pair is [pre index, post index]"})}, ["pairs"]),
}

PROJECTION = obj(
    {
        "pre": IDENTIFIER,
        "post": IDENTIFIER,
        "synapse": tagged("kind", SYNAPSES),
        "connect": tagged("rule", RULES),
        "weight": non_negative("µS"),
        "seed": {"type": "integer", "minimum": 0},
        "delay": non_negative("ms"),
        "target": obj({"section": {"type": "string"}, "x": number("(position along the section)", minimum=0, maximum=1),
                       "region": {"type": "string"}}),
        "initial_conductance": distribution("µS", minimum=0),
    },
    ["pre", "post", "synapse", "connect", "weight"],
)

AMPLITUDE = {"type": ["number", "array"], "units": "nA (µA/cm² with density)", "items": {"type": "number"},
             "message": "must be a number of nA (µA/cm² with density), or a list with one per batch element"}
TARGET = {
    "population": IDENTIFIER, "cells": CELL_INDICES, "section": {"type": "string"},
    "x": number("(position along the section)", minimum=0, maximum=1), "name": {"type": "string"},
}
CURRENT = dict(TARGET, density={"type": "boolean"})
STIMULI = {
    "iclamp": ({"amp": AMPLITUDE, "delay": non_negative("ms"), "dur": non_negative("ms"), **CURRENT}, ["amp"]),
    "pulse_train": ({"amp": AMPLITUDE, "delay": non_negative("ms"), "width": positive("ms"), "interval": positive("ms"),
                     "number": {"type": "integer", "minimum": 0}, **CURRENT}, ["amp", "delay", "width", "interval", "number"]),
    "noisy": ({"mean": number("nA (µA/cm² with density)"), "std": non_negative("nA (µA/cm² with density)"),
               "delay": non_negative("ms"), "dur": non_negative("ms"), "seed": {"type": "integer", "minimum": 0}, **CURRENT},
              ["mean", "std"]),
    "waveform": ({"values": listing({"type": "number", "units": "nA"}, min_items=1), "sample_dt": positive("ms"), **CURRENT},
                 ["values", "sample_dt"]),
    "vclamp": ({"levels": listing({"type": "array", "prefixItems": [positive("ms"), number("mV")], "minItems": 2, "maxItems": 2,
                                   "message": "a level is [duration ms, command mV]"}, min_items=1),
                "rs": positive("MΩ"), **TARGET}, ["levels"]),
}
STIMULUS = tagged("type", STIMULI, required=["population"])

RECORDING = obj(
    {**TARGET, "variable": {"type": "string"}, "every": {"type": "integer", "minimum": 1}},
    ["population", "variable"],
)

RUN = obj(
    {
        "duration": positive("ms"),
        "dt": positive("ms"),
        "celsius": number("°C"),
        "method": {"enum": ["backward_euler", "crank_nicolson"]},
        "dtype": {"enum": ["float32", "float64"]},
        "batch": {"type": "integer", "minimum": 1},
    },
    ["duration", "dt"],
)

# Where the workbench draws each population in the circuit editor ([x, y], arbitrary canvas units).
# Simulation ignores it; it lives in the file so that a reopened project looks as it was left.
LAYOUT = obj({"populations": named({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                                    "message": "a position is [x, y]"})})

# The HH-vs-LIF experiments (training/experiments.py, ``brainfuse train``): every field has a default
# there; "quick" overrides any of them for the smoke run (``--quick``). Cross-checks (the cell is a
# one-compartment cell, dt divides bin_ms, the data options exist) are made when the spec is built.
TRAINING_TASKS = ["digits_noise", "digits_rows", "delayed_match", "temporal_xor"]
CORRUPTION_NAMES = ["gaussian_noise", "shot_noise", "impulse_noise", "gaussian_blur", "contrast"]
CONSTANT_TABLES = {"enum": ["cifar10c", "imagenet_c"], "message": "corruption constants are cifar10c or imagenet_c"}
COUNT = {"type": "integer", "minimum": 1}
TRAINING_SETTINGS = {
    "task": {"enum": TRAINING_TASKS},
    "neurons": {**listing({"enum": ["hh", "lif"]}, min_items=1), "uniqueItems": True},
    "cell": IDENTIFIER,
    "hidden": COUNT,
    "bins": COUNT,
    "bin_ms": positive("ms"),
    "dt": positive("ms"),
    "celsius": number("°C"),
    "threshold": number("mV"),
    "learn_conductances": {"type": "boolean"},
    "lif": obj({"tau_m": positive("ms"), "threshold": number("mV"), "v_reset": number("mV"), "v_rest": number("mV"),
                "learn_tau": {"type": "boolean"}}),
    "input_scale": obj({"hh": positive("µA/cm² per unit"), "lif": positive("µA/cm² per unit")}),
    "readout": {"enum": ["count", "voltage", "windows"]},
    "windows": COUNT,
    "surrogate_beta": positive("1/mV"),
    "epochs": COUNT,
    "batch_size": COUNT,
    "learning_rate": positive("(Adam step size)"),
    "seeds": {**listing({"type": "integer", "minimum": 0}, min_items=1), "uniqueItems": True},
    "corruptions": {**listing({"enum": CORRUPTION_NAMES}, min_items=1), "uniqueItems": True},
    "severities": {**listing({"type": "integer", "minimum": 1, "maximum": 5}, min_items=1), "uniqueItems": True},
    "constants": {"type": ["string", "object"], "message": "must be cifar10c, imagenet_c or an object corruption → table",
                  "if": {"type": "string"}, "then": CONSTANT_TABLES,
                  "else": obj({name: CONSTANT_TABLES for name in CORRUPTION_NAMES})},
    "data": {"type": "object", "additionalProperties": {"type": ["number", "string", "boolean", "array"]}},
}
TRAINING = obj({**TRAINING_SETTINGS, "quick": obj(TRAINING_SETTINGS)}, ["task"])

PROJECT = obj(
    {
        "format": {"const": FORMAT},
        "version": {"type": "integer"},
        "description": {"type": "string"},
        "channels": named(CHANNEL),
        "cells": named(CELL),
        "circuit": obj({"populations": {**named(POPULATION), "minProperties": 1}, "projections": listing(PROJECTION)},
                       ["populations"]),
        "stimuli": listing(STIMULUS),
        "recordings": listing(RECORDING),
        "run": RUN,
        "layout": LAYOUT,
        "training": TRAINING,
    },
    ["format", "version", "cells", "circuit", "run"],
)

_VALIDATOR = Draft202012Validator(PROJECT)
_PLAIN_KEY = re.compile(r"[^\s.\"]+")


def check_structure(data):
    """Raise a ProjectError for the most relevant structural problem in ``data``, if any."""
    check_header(data)
    error = best_match(_VALIDATOR.iter_errors(data))
    if error is not None:
        path, message = describe(error)
        raise ProjectError(path, message)


_TRAINING_VALIDATOR = Draft202012Validator(obj({"training": TRAINING}))


def check_training(section):
    """Raise a ProjectError (path ``training.…``) for the most relevant structural problem of a training section."""
    error = best_match(_TRAINING_VALIDATOR.iter_errors({"training": section}))
    if error is not None:
        path, message = describe(error)
        raise ProjectError(path, message)


def check_header(data):
    """Format and version first: a newer file may legitimately fail every other check."""
    if not isinstance(data, dict):
        raise ProjectError("", f"a project file holds a JSON object, got {_show(data)}")
    if data.get("format") != FORMAT:
        got = "missing" if "format" not in data else f"got {_show(data['format'])}"
        raise ProjectError("format", f'must be "{FORMAT}" ({got}); is this a BrainFuse project file?')
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        got = "missing" if "version" not in data else f"got {_show(version)}"
        raise ProjectError("version", f"must be a positive integer format version ({got})")
    if version > VERSION:
        raise ProjectError("version", f"this file uses format version {version}, but this BrainFuse reads versions up to "
                                      f"{VERSION}; upgrade BrainFuse to open it")


def format_path(parts):
    """``["cells", "soma", "insert", 0, "channel"]`` → ``cells.soma.insert[0].channel``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            # Keys with spaces, dots or quotes are quoted so the path stays one unambiguous line.
            text += f"[{_show(part)}]"
        else:
            text += f".{part}" if text else part
    return text


def describe(error):
    """(path, message) for a jsonschema error, in the words of the project format."""
    parts = list(error.absolute_path)
    schema, kind, value, got = error.schema, error.validator, error.validator_value, _show(error.instance)
    if "propertyNames" in error.absolute_schema_path:
        # The bad value is a key of the object at `parts`; point at the key itself.
        return format_path(parts + [error.instance]), f"{schema.get('message', 'not an allowed name')}, got {got}"
    if kind == "required":
        missing = next(key for key in value if key not in error.instance)
        expected = schema.get("properties", {}).get(missing, {})
        return format_path(parts + [missing]), f"missing; {_expected(expected)}"
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))[0]
        return format_path(parts + [unknown]), f"unknown field; allowed here: {', '.join(allowed)}"
    if kind in ("type", "pattern") and "message" in schema:
        return format_path(parts), f"{schema['message']}, got {got}"
    if kind == "type":
        return format_path(parts), f"must be {_expected(schema)}, got {got}"
    if kind == "exclusiveMinimum" and value == 0:
        return format_path(parts), f"must be a positive number{_of(schema)}, got {got}"
    bounds = {"exclusiveMinimum": "greater than", "minimum": "at least", "maximum": "at most", "exclusiveMaximum": "less than"}
    if kind in bounds:
        return format_path(parts), f"must be {bounds[kind]} {value}{_of(schema, ' ')}, got {got}"
    if kind == "enum":
        return format_path(parts), f"must be one of {', '.join(_show(v) for v in value)}, got {got}"
    if kind == "const":
        return format_path(parts), f"must be {_show(value)}, got {got}"
    if kind in ("minItems", "maxItems"):
        if "message" in schema:
            return format_path(parts), f"{schema['message']}, got {got}"
        return format_path(parts), f"needs {'at least' if kind == 'minItems' else 'at most'} {value} item(s), got {len(error.instance)}"
    if kind == "minProperties":
        return format_path(parts), "must not be empty"
    return format_path(parts), " ".join(error.message.split())


_TYPES = {"number": "a number", "integer": "an integer", "string": "a string", "boolean": "true or false",
          "object": "an object", "array": "a list"}


def _expected(schema):
    if "message" in schema:
        return schema["message"].removeprefix("must be ")
    if "enum" in schema:
        return "one of " + ", ".join(_show(v) for v in schema["enum"])
    types = schema.get("type")
    if types is None:
        return "required"
    words = " or ".join(_TYPES[t] for t in ([types] if isinstance(types, str) else types))
    return words + _of(schema)


def _of(schema, joiner=" of "):
    units = schema.get("units")
    if not units:
        return ""
    return f" {units}" if units.startswith("(") else f"{joiner}{units}"


def _show(value, limit=60):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
