"""The window's layout between runs: its geometry, the docks' sizes (the splitters) and column widths.

Kept as JSON in the app's config folder (under ``WHISPERDESK_HOME`` when set), not in ``QSettings``: its
Windows backend is the registry, which a portable install cannot carry and tests cannot isolate. The
values are Qt's own opaque ``saveGeometry``/``saveState`` blobs, base64-encoded. A missing or damaged file
means the default layout, never an error: losing a window size is not worth a message.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from pathlib import Path

from whisperdesk.core.atomic import atomic_write_text

log = logging.getLogger(__name__)

VERSION = 1


def load_layout(path: Path) -> dict[str, bytes]:
    """The saved layout blobs by name; empty when there is none or it cannot be read."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.info("window layout in %s not used (%s); using the default layout", path, exc)
        return {}
    if not isinstance(raw, dict) or raw.get("version") != VERSION or not isinstance(raw.get("layout"), dict):
        return {}
    layout: dict[str, bytes] = {}
    for name, value in raw["layout"].items():
        try:
            layout[str(name)] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            continue
    return layout


def save_layout(path: Path, layout: dict[str, bytes]) -> bool:
    """Write the layout atomically; False (logged) when the folder cannot be written."""
    data = {
        "version": VERSION,
        "layout": {name: base64.b64encode(blob).decode("ascii") for name, blob in layout.items()},
    }
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        log.warning("could not save the window layout to %s: %s", path, exc)
        return False
    return True
