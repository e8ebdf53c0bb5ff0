"""A network: populations and projections. A single Cell is a network of one population of one cell."""

from ..cells import Cell
from ..errors import ModelError
from .population import Population


class Network:
    def __init__(self, populations=(), projections=()):
        self.populations = {}
        for population in populations:
            self.add(population)
        self.projections = list(projections)

    def add(self, population):
        if population.name in self.populations:
            raise ModelError(f"population name {population.name!r} is used twice")
        self.populations[population.name] = population
        return population

    def connect(self, projection):
        self.projections.append(projection)
        return projection

    def build(self):
        for projection in self.projections:
            projection.build(self.populations)
        return self

    @classmethod
    def of(cls, model, name="cell"):
        if isinstance(model, Network):
            return model
        if isinstance(model, Cell):
            return cls([Population(name, model, 1)])
        raise ModelError(f"cannot simulate a {type(model).__name__}; give a Cell or a Network")
