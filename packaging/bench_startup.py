"""Time from starting WhisperDesk to its window on screen: the frozen app against the virtual environment.

Both start on a fresh home (the first start a new user sees) under one Xvfb server; a run ends when X reports
the main window (WM_CLASS ``whisperdesk``) viewable, then the app is stopped. Runs alternate between the two so
a busy machine slows both alike; the medians and their ratio are printed.

    python packaging/bench_startup.py                              # build/linux/dist/… vs this interpreter
    python packaging/bench_startup.py --frozen /usr/bin/whisperdesk --runs 5

Needs Xvfb and xwininfo (apt-get install xvfb x11-utils).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The main window: WM_CLASS's class is the application name (its instance part is argv[0]'s name, which
# differs between the two: "whisperdesk" and "__main__.py").
_WINDOW = re.compile(r'^\s*(0x[0-9a-f]+) .*\("[^"]*" "WhisperDesk"\)\s+(\d+)x(\d+)', re.MULTILINE)


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        raise SystemExit("bench_startup: Xvfb did not start")
    return proc, f":{number}"


def window_viewable(display: str) -> bool:
    tree = subprocess.run(
        ["xwininfo", "-display", display, "-root", "-tree"], capture_output=True, text=True, check=False
    ).stdout
    for match in _WINDOW.finditer(tree):
        if int(match.group(2)) < 100:
            continue  # Qt's 1x1 helper windows carry the class too
        info = subprocess.run(
            ["xwininfo", "-display", display, "-id", match.group(1)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if "IsViewable" in info:
            return True
    return False


def time_start(command: list[str], display: str, home: Path, limit: float) -> float:
    env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "DISPLAY": display,
        "LANG": "C.UTF-8",
        "QT_QPA_PLATFORM": "xcb",
        "HF_HUB_OFFLINE": "1",
    }
    start = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not window_viewable(display):
            if proc.poll() is not None:
                raise SystemExit(
                    f"bench_startup: {command[0]} exited ({proc.returncode}) before its window showed"
                )
            if time.monotonic() - start > limit:
                raise SystemExit(f"bench_startup: no window from {command[0]} after {limit:g} s")
            time.sleep(0.02)
        return time.monotonic() - start
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frozen", default=str(ROOT / "build" / "linux" / "dist" / "whisperdesk" / "whisperdesk")
    )
    parser.add_argument("--python", default=sys.executable, help="the virtual environment's interpreter")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=float, default=120.0, help="give up on one start after this many s")
    args = parser.parse_args(argv)
    for tool in ("Xvfb", "xwininfo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench_startup: {tool} is missing (apt-get install xvfb x11-utils)")
    commands = {"frozen": [args.frozen, "gui"], "venv": [args.python, "-m", "whisperdesk", "gui"]}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still close Xvfb and the app
    xvfb, display = start_xvfb()
    times: dict[str, list[float]] = {name: [] for name in commands}
    try:
        with tempfile.TemporaryDirectory(prefix="whisperdesk-startup-") as scratch:
            for run in range(args.runs):
                order = list(commands) if run % 2 == 0 else list(reversed(commands))
                for name in order:
                    home = Path(scratch) / f"{name}-{run}"
                    home.mkdir()
                    seconds = time_start(commands[name], display, home, args.limit)
                    times[name].append(seconds)
                    print(f"run {run + 1} {name:6s} {seconds:6.2f} s", flush=True)
    finally:
        xvfb.terminate()
        xvfb.wait()
    frozen, venv = statistics.median(times["frozen"]), statistics.median(times["venv"])
    print(f"median: frozen {frozen:.2f} s, venv {venv:.2f} s, frozen/venv {frozen / venv:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
