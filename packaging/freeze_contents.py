"""What the frozen app must carry, read from the installed distributions (used by whisperdesk.spec).

The spec names no pure-Python dependency by hand: it walks whisperdesk's run-time requirements, so a new
dependency in pyproject.toml is frozen with its data files and metadata as soon as it is installed.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re

from packaging.markers import default_environment
from packaging.requirements import Requirement


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(root: str) -> dict[str, metadata.Distribution]:
    """The installed distributions ``root`` needs at run time, by normalised name (extras and other
    platforms' requirements left out)."""
    env = {**default_environment(), "extra": ""}
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency without a marker that is not installed
        key = normalise(dist.metadata["Name"])
        if key in seen:
            continue
        seen[key] = dist
        for line in dist.requires or ():
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return seen


def top_level_packages(dist: metadata.Distribution) -> set[str]:
    """Import names a distribution installs: its top-level packages and single-file modules."""
    names = set()
    for f in dist.files or ():
        parts = f.parts
        if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] in ("..", "__pycache__"):
            continue
        if len(parts) > 1 and f.name == "__init__.py":
            names.add(parts[0])
        elif len(parts) == 1 and f.suffix == ".py":
            names.add(f.stem)
    return {n for n in names if n.isidentifier()}


def is_pure(dist: metadata.Distribution) -> bool:
    """A pure-Python wheel: no compiled code, so no PyInstaller hook is likely to exist for it."""
    return "Root-Is-Purelib: true" in (dist.read_text("WHEEL") or "")
