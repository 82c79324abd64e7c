"""The core must stay Qt-free so the CLI and headless watcher run without a display."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import whisperdesk

PACKAGE = Path(whisperdesk.__file__).parent
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "qtpy")
HEAVY_MODULES = ("faster_whisper", "ctranslate2", "pynvml", "PySide6")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_core_never_imports_qt() -> None:
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(_imports(p) & set(QT_MODULES))
        for p in (PACKAGE / "core").rglob("*.py")
        if _imports(p) & set(QT_MODULES)
    }
    assert offenders == {}


def test_core_never_imports_gui_layers() -> None:
    offenders = []
    for p in (PACKAGE / "core").rglob("*.py"):
        text = p.read_text(encoding="utf-8")
        if "whisperdesk.ui" in text or "whisperdesk.services" in text or "whisperdesk.app" in text:
            offenders.append(str(p.relative_to(PACKAGE)))
    assert offenders == []


def test_importing_core_and_cli_loads_no_heavy_module() -> None:
    """Heavy imports are lazy: `whisperdesk --help` must not pay for CTranslate2, NVML or Qt."""
    code = (
        "import sys, importlib, pkgutil, whisperdesk.core as c, whisperdesk.cli\n"
        "for m in pkgutil.iter_modules(c.__path__): importlib.import_module('whisperdesk.core.' + m.name)\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
