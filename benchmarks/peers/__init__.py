"""Reference runs of the peer simulators (NEURON, Brian2).

These modules exist so that BrainFuse's tests and benchmark tables can be
checked against established simulators on identical workloads.  They are
deliberately independent of ``brainfuse_core``: a bug in our core must not be
able to leak into the numbers we compare it against.

Run the command-line entry points from the repository root, e.g.::

    python -m benchmarks.peers.cobahh
    python -m benchmarks.peers.hh_independent --n 1000 --duration-ms 100
"""
