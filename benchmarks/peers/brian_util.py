"""Brian2 device handling shared by the peer workloads."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager

from .env_info import thread_info

BRIAN_MODES = ("runtime", "cpp_standalone")


# The Traub-Miles gates (Brette et al. 2007, COBAHH) in Brian2's equation language, with the threshold
# offset VT: shared by the peers whose cells use them; each peer adds its own membrane and synapse equations.
TRAUB_MILES_GATES = """
dm/dt = alpha_m*(1 - m) - beta_m*m : 1
dh/dt = alpha_h*(1 - h) - beta_h*h : 1
dn/dt = alpha_n*(1 - n) - beta_n*n : 1
alpha_m = 1.28/exprel((13*mV - v + VT)/(4*mV))/ms : Hz
beta_m = 1.4/exprel((v - VT - 40*mV)/(5*mV))/ms : Hz
alpha_h = 0.128*exp((17*mV - v + VT)/(18*mV))/ms : Hz
beta_h = 4/(1 + exp((40*mV - v + VT)/(5*mV)))/ms : Hz
alpha_n = 0.16/exprel((15*mV - v + VT)/(5*mV))/ms : Hz
beta_n = 0.5*exp((10*mV - v + VT)/(40*mV))/ms : Hz
"""


@contextmanager
def brian_device(mode: str, cold_cache: bool = False):
    """Select a Brian2 device for one build-and-run, then restore 'runtime'.

    cpp_standalone always compiles from scratch into a throwaway directory.
    Runtime mode reuses Brian's on-disk Cython cache unless ``cold_cache``,
    in which case a private empty cache is used so the measured build time
    includes compilation, as it would on first use.
    """
    import brian2 as b2

    if mode not in BRIAN_MODES:
        raise ValueError(f"unknown Brian2 mode {mode!r}; use {BRIAN_MODES}")
    workdir = tempfile.mkdtemp(prefix="bf_brian_")
    cython_prefs = b2.prefs.codegen.runtime.cython
    old_cache = cython_prefs.cache_dir
    try:
        if mode == "cpp_standalone":
            b2.set_device("cpp_standalone",
                          directory=os.path.join(workdir, "project"),
                          build_on_run=True)
        elif cold_cache:
            cython_prefs.cache_dir = os.path.join(workdir, "cython")
        yield
    finally:
        if mode == "cpp_standalone":
            b2.device.reinit()
            b2.set_device("runtime")
        cython_prefs.cache_dir = old_cache
        shutil.rmtree(workdir, ignore_errors=True)


def brian_thread_info() -> dict:
    import brian2 as b2

    return thread_info(
        brian2_openmp_threads=int(
            b2.prefs.devices.cpp_standalone.openmp_threads),
        brian2_codegen_target=str(b2.prefs.codegen.target))
