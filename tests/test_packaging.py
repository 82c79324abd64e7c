"""The launcher entry and its installer stay in step with the package."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

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
