"""One browser session's state: the project document being edited, its file, undo/redo and errors.

The document is the core's project format (a JSON-like dict) and the only copy of the model in
the app. Editors never change it in place: they call ``edit`` with a function that changes a
copy; the copy is checked by building a core ``Project`` from it, and only a valid copy
replaces the document. A rejected edit changes nothing and leaves its message in ``error``.
"""

import copy
import json
from pathlib import Path

import param

from brainfuse_core.errors import BrainFuseError
from brainfuse_core.project import Project, load_project
from brainfuse_core.project.files import read_json

PROJECTS_DIR = Path(__file__).resolve().parent.parent / "projects"
UNDO_LIMIT = 200


def example_projects():
    """{name: path} of the example projects shipped in ``projects/``."""
    return {path.stem: path for path in sorted(PROJECTS_DIR.glob("*.json"))}


def blank_document():
    """A one-cell project to start from: a squid-axon patch with a current step."""
    return read_json(PROJECTS_DIR / "squid_axon.json")


class Workbench(param.Parameterized):
    """The state of one workbench session. Watch ``revision`` to redraw after any change of ``document``."""

    document = param.Dict(doc="The project document (core format); replaced, never mutated, on every accepted edit.")
    path = param.String(default=None, allow_None=True, doc="The file the document was opened from or last saved to.")
    dirty = param.Boolean(default=False, doc="Whether the document differs from the file.")
    error = param.String(default="", doc="Why the last edit, open or save was refused; empty after a success.")
    open_errors = param.List(default=[], doc="Problems of a file that could not be opened ('field: message').")
    rejected_text = param.String(default="", doc="The text of a file that could not be opened, kept so nothing is lost.")
    revision = param.Integer(default=0, doc="Incremented on every change of document (edits, undo, open).")
    message = param.String(default="", doc="The outcome of the last action, for a status line.")

    def __init__(self, document=None, path=None, **params):
        super().__init__(**params)
        self._undo, self._redo = [], []
        self._saved = None
        if path is not None:
            self.open(path)
            if self.document is None:
                self._replace(blank_document(), None)
        else:
            self._replace(Project(document).to_dict() if document is not None else blank_document(), None)

    # ------------------------------------------------------------------ reading
    def project(self):
        """The document as a core Project (valid by construction)."""
        return Project(self.document, self.path)

    @property
    def title(self):
        """The project's name as shown: its file name without .json, or "untitled"."""
        return Path(self.path).stem if self.path else "untitled"

    @property
    def can_undo(self):
        return bool(self._undo)

    @property
    def can_redo(self):
        return bool(self._redo)

    # ------------------------------------------------------------------ editing
    def edit(self, change, label="edit"):
        """Apply ``change`` (a function that modifies a copy of the document in place) if the result is a
        valid project. Returns True when accepted; otherwise sets ``error`` and leaves everything as it was."""
        candidate = copy.deepcopy(self.document)
        try:
            change(candidate)
            Project(candidate)
        except BrainFuseError as err:
            self.error = f"{label}: {err}"
            return False
        except (ValueError, TypeError, KeyError) as err:
            self.error = f"{label}: {err}"
            return False
        if candidate == self.document:
            self.error = ""
            return True
        self._undo.append(self.document)
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()
        self._set(candidate)
        self.message = label
        return True

    def undo(self):
        if not self._undo:
            return False
        self._redo.append(self.document)
        self._set(self._undo.pop())
        self.message = "undo"
        return True

    def redo(self):
        if not self._redo:
            return False
        self._undo.append(self.document)
        self._set(self._redo.pop())
        self.message = "redo"
        return True

    # ------------------------------------------------------------------ files
    def open(self, path):
        """Open a project file. A file that fails validation is not opened: its problems go to
        ``open_errors`` and its text to ``rejected_text``; the current document stays."""
        path = Path(path)
        try:
            project = load_project(path)
        except BrainFuseError as err:
            self._reject(path, [str(err)])
            return False
        except OSError as err:
            self._reject(path, [f"{path}: {err.strerror or err}"])
            return False
        self._undo.clear()
        self._redo.clear()
        self._replace(project.to_dict(), path)
        self.message = f"opened {path.name}"
        return True

    def open_text(self, text, name="uploaded.json"):
        """Open a project from the text of a file (an upload); same rules as ``open``, no path kept."""
        try:
            data = json.loads(text)
            project = Project(data)
        except json.JSONDecodeError as err:
            self._reject(name, [f"{name}: not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}"], text)
            return False
        except BrainFuseError as err:
            self._reject(name, [str(err)], text)
            return False
        self._undo.clear()
        self._redo.clear()
        self._replace(project.to_dict(), None)
        self.message = f"opened {name}"
        return True

    def save(self, path=None):
        """Save to ``path`` (or the current file). Returns True on success; otherwise sets ``error``."""
        target = Path(path) if path else (Path(self.path) if self.path else None)
        if target is None:
            self.error = "save: this project has no file yet; use Save as and give a path"
            return False
        if target.suffix != ".json":
            self.error = f"save: {target.name}: project files end in .json"
            return False
        try:
            self.project().save(target)
        except OSError as err:
            self.error = f"save: {target}: {err.strerror or err}"
            return False
        self._saved = copy.deepcopy(self.document)
        self.path = str(target)
        self.dirty = False
        self.error = ""
        self.message = f"saved {target.name}"
        return True

    # ------------------------------------------------------------------ internals
    def _reject(self, path, errors, text=None):
        self.open_errors = errors
        if text is None:
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
        self.rejected_text = text
        self.error = f"could not open {Path(path).name}: {errors[0]}"

    def _replace(self, document, path):
        self._saved = copy.deepcopy(document)
        self.open_errors, self.rejected_text, self.error = [], "", ""
        # The document first: whoever sees the new path must already find the new document.
        self._set(document)
        self.path = None if path is None else str(path)

    def _set(self, document):
        self.document = document
        self.dirty = document != self._saved
        self.error = ""
        self.revision += 1
