"""A project: the JSON document, kept exactly as written, and the way from it to a running Simulation.

The document is the source of truth. Nothing is filled in or reordered, so what is loaded is
what is saved; core objects are built from it afresh on every ``build``.
"""

import copy
import json
from pathlib import Path

from ..errors import ProjectError
from ..simulation import Simulation
from .build import build
from .files import dumps, read_json, write_atomic
from .schema import check_structure


class Project:
    """A validated project document. ``path`` is the file it was loaded from, if any."""

    def __init__(self, data, path=None):
        try:
            # A JSON round trip turns tuples into lists and rejects NaN and non-JSON values up front.
            data = json.loads(json.dumps(data, allow_nan=False))
        except (TypeError, ValueError) as err:
            raise ProjectError("", f"a project holds only JSON values (objects, lists, strings, finite numbers, booleans, null): {err}") from None
        check_structure(data)
        build(data)
        self._data = data
        self.path = None if path is None else Path(path)

    @classmethod
    def from_dict(cls, data):
        return cls(data)

    def to_dict(self):
        return copy.deepcopy(self._data)

    def save(self, path):
        """Write the project to ``path`` atomically: the previous file survives any failure before the final rename."""
        write_atomic(path, dumps(self._data))

    @property
    def duration(self):
        """The run length of the project (ms)."""
        return self._data["run"]["duration"]

    def build(self):
        """A fresh Build: network, stimuli, probes and run settings."""
        return build(self._data)

    def simulation(self):
        """A Simulation set up as the project's run section says (the duration is given to ``run``)."""
        parts = self.build()
        run = parts.run
        return Simulation(parts.network, parts.stimuli, parts.probes, dt=run.dt, celsius=run.celsius, method=run.method,
                          dtype=run.dtype, batch=run.batch)

    def run(self, duration=None, progress=False, monitor=None, chunk_steps=None):
        """Simulate for ``duration`` ms (the project's own by default) and return the Result;
        ``monitor`` and ``chunk_steps`` as in ``Simulation.run``."""
        return self.simulation().run(self.duration if duration is None else duration, progress=progress, monitor=monitor,
                                     chunk_steps=chunk_steps)

    def __repr__(self):
        circuit = self._data["circuit"]
        return (f"Project({str(self.path) if self.path else 'unsaved'}: {len(circuit['populations'])} population(s), "
                f"{len(circuit.get('projections', []))} projection(s))")


def load_project(path):
    """Read, check and return the project in ``path``; any problem is a one-line ProjectError."""
    return Project(read_json(path), path)
