"""Record the threading environment a peer measurement ran under.

Peers run with their default threading (NEURON: 1 thread, Brian2 runtime:
single-threaded numpy/Cython, Brian2 cpp_standalone: OpenMP off unless
``openmp_threads`` is set).  We don't tune them, but we record what was in
effect so a timing table can't silently compare 1 thread against many.
"""

from __future__ import annotations

import os

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_info(**simulator_threads) -> dict:
    """Environment thread variables, CPU count, plus per-simulator counts."""
    info = {var: os.environ.get(var) for var in _THREAD_VARS}
    info["cpu_count"] = os.cpu_count()
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["cpu_affinity"] = None
    info.update(simulator_threads)
    return info
