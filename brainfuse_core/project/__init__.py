"""Project files: a versioned JSON format for channels, cells, circuits, stimuli, recordings and run settings.

``load_project(path)`` reads and checks a file, ``Project.save(path)`` writes one atomically,
``Project.simulation()`` builds a ready Simulation. Every problem in a file is a one-line
``ProjectError`` that starts with the path of the field at fault, e.g.
``cells.soma.morphology.soma.diameter: must be a positive number of µm, got -2``.
"""

from .build import Build, RunSettings
from .project import Project, load_project
from .schema import FORMAT, VERSION

__all__ = ["FORMAT", "VERSION", "Build", "Project", "RunSettings", "load_project"]
