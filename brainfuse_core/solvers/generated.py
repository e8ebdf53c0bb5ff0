"""Generated kernel source as files, so that numba keeps their machine code on disk.

Compiling a generated kernel takes seconds (tens of seconds for a large network); numba can
cache machine code only for functions defined in a file. Each generated source is written once
to ``BRAINFUSE_KERNEL_CACHE`` (default ``~/.cache/brainfuse/kernels``) under a name derived from
its text, the helper modules it calls into and numba's version, and imported from there: a new
process running the same model loads the compiled code instead of compiling it again, and any
change of the model's structure or of our helpers gives a new file. Only our own generated text
is ever written or executed, never user text (model numbers are run-time parameters).
"""

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numba

_HELPERS = ("compiled.py", "fastmath.py", "network_kernel.py", "cable_kernel.py", "generated.py")
_MODULES = {}


def cache_dir():
    return Path(os.environ.get("BRAINFUSE_KERNEL_CACHE") or Path.home() / ".cache" / "brainfuse" / "kernels")


def _helpers_digest():
    here = Path(__file__).parent
    digest = hashlib.sha256(numba.__version__.encode())
    for name in _HELPERS:
        path = here / name
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


_HELPERS_DIGEST = _helpers_digest()


def load(source, namespace, dependencies=()):
    """The module of generated ``source`` (which should decorate with ``numba.njit(cache=True)``),
    its globals taken from ``namespace``. ``dependencies`` are the ``digest``s of generated modules
    whose functions ``namespace`` holds, as they are part of what the code means."""
    digest = hashlib.sha256("\n".join([_HELPERS_DIGEST, *dependencies, source]).encode()).hexdigest()[:24]
    if digest in _MODULES:
        return _MODULES[digest]
    name = f"brainfuse_kernel_{digest}"
    spec = importlib.util.spec_from_file_location(name, _written(name, source))
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update({key: value for key, value in namespace.items() if not key.startswith("__")})
    # numba's cached code re-imports its module by name when loaded in a later process.
    sys.modules[name] = module
    spec.loader.exec_module(module)  # our generated code, never user text
    module.digest = digest
    _MODULES[digest] = module
    return module


def _written(name, source):
    """The path of the file holding ``source``, written atomically if new (processes may race). Where
    the cache directory cannot be written, a directory of this process's own (compiled anew each run)."""
    global _PRIVATE
    for directory in (cache_dir(), _PRIVATE):
        if directory is None:
            _PRIVATE = directory = Path(tempfile.mkdtemp(prefix="brainfuse-kernels-"))
        path = directory / f"{name}.py"
        try:
            if not path.exists():
                directory.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".tmp", delete=False) as handle:
                    handle.write(source)
                os.replace(handle.name, path)
            return path
        except OSError:
            continue
    raise OSError(f"cannot write generated kernels to {cache_dir()} nor to a temporary directory; set BRAINFUSE_KERNEL_CACHE")


_PRIVATE = None
