"""Layer rules: the core stays Qt-free so the CLI and headless watcher run without a display, and each
layer imports only what is below it (import-linter contracts in pyproject.toml)."""

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


REPO = PACKAGE.parent


def _lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.is_file(), "import-linter is missing: pip install -e '.[test]'"
    return subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


def test_layer_contracts_hold() -> None:
    """pyproject.toml's import-linter contracts: core imports no Qt, devtools or layer above it; the
    benchmark no test tooling; widgets run no engine, scheduler, job processing or benchmark themselves."""
    out = _lint_imports(REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "7 kept, 0 broken" in out.stdout  # every contract ran


def test_layer_contracts_catch_a_core_module_importing_devtools(tmp_path: Path) -> None:
    """The contracts are not vacuous: the same package with one forbidden import added fails them."""
    import os
    import shutil

    copy = tmp_path / "whisperdesk"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    clock = copy / "core" / "clock.py"
    clock.write_text(
        clock.read_text(encoding="utf-8") + "\nimport whisperdesk.devtools.wer\n", encoding="utf-8"
    )
    out = _lint_imports(tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode != 0
    assert "whisperdesk.core.clock -> whisperdesk.devtools.wer" in out.stdout, out.stdout


def test_psycopg_stays_in_the_team_queue_backend(tmp_path: Path) -> None:
    """Only core/queue/postgres.py may import psycopg (an optional extra): a second module importing it,
    even inside a function, breaks the contract."""
    import os
    import shutil

    copy = tmp_path / "whisperdesk"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    worker = copy / "core" / "queue" / "loop.py"
    worker.write_text(
        worker.read_text(encoding="utf-8")
        + "\n\ndef _connect() -> None:\n    import psycopg  # noqa: F401\n",
        encoding="utf-8",
    )
    out = _lint_imports(tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode != 0
    assert "whisperdesk.core.queue.loop -> psycopg" in out.stdout, out.stdout
