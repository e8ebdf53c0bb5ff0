"""Project files on disk: strict JSON in, stable indented JSON out, atomic replacement.

Reading refuses what Python's json module would otherwise accept silently and then lose or
mangle on the next save: duplicate keys (only the last survives) and NaN/Infinity (not JSON).
Writing goes to a temporary file in the target's directory, is flushed to disk, and only
then renamed over the target, so an interrupted save leaves the previous file untouched.
"""

import json
import os
import secrets
import stat
from pathlib import Path

from ..errors import ProjectError


def read_json(path):
    """The JSON document in ``path``; every failure is a one-line ProjectError naming the file."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(where, "no such file") from None
    except UnicodeDecodeError as err:
        raise ProjectError(where, f"not UTF-8 text (bad byte at offset {err.start})") from None
    except OSError as err:
        raise ProjectError(where, f"cannot read: {err.strerror}") from None

    def unique_keys(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ProjectError(where, f"key {key!r} appears twice in one object; JSON keeps only the last, so rename or merge them")
            seen.add(key)
        return dict(pairs)

    def reject_constant(name):
        raise ProjectError(where, f"{name} is not a JSON number; write a finite number")

    try:
        return json.loads(text, object_pairs_hook=unique_keys, parse_constant=reject_constant)
    except json.JSONDecodeError as err:
        raise ProjectError(where, f"line {err.lineno}, column {err.colno}: malformed JSON: {err.msg}") from None


def dumps(data):
    """Indented JSON (2 spaces) ending in a newline. Lists of plain values, and short objects of plain values,
    stay on one line so that sections, insertions and settings read as single rows."""
    return _render(data, 0) + "\n"


INLINE_OBJECT_WIDTH = 80


def _render(value, depth):
    if not value or not isinstance(value, (dict, list)) or _one_line(value):
        return _inline(value)
    inner, outer = "  " * (depth + 1), "  " * depth
    if isinstance(value, dict):
        items = [f"{inner}{_inline(str(key))}: {_render(item, depth + 1)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + outer + "}"
    return "[\n" + ",\n".join(inner + _render(item, depth + 1) for item in value) + "\n" + outer + "]"


def _one_line(value):
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    flat = all(_plain(item) or (isinstance(item, list) and all(_plain(x) for x in item)) for item in value.values())
    return flat and len(_inline(value)) <= INLINE_OBJECT_WIDTH


def _plain(value):
    return not isinstance(value, (dict, list))


def _inline(value):
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def write_atomic(path, text):
    """Replace ``path`` by ``text`` (UTF-8) so that readers see either the old file or the whole new one."""
    path = Path(os.path.realpath(path))  # write through a symlink rather than replacing the link
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # Created with 0o666 so the umask applies as for any new file; an existing file keeps its mode.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory):
    """Make the rename itself durable (POSIX); platforms or file systems that cannot sync a directory skip it."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
