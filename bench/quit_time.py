"""How long quitting the window takes while a job is mid-window (issue 17.5: "ends the process within 2 s").

Starts the real window (``whisperdesk gui FILE``, offscreen) in a fresh data folder on a long spoken
recording, waits until the job is being decoded (its progress in the job store is above zero), asks it to
quit with SIGTERM (the same path as File → Quit and the tray's Quit, without the confirmation dialog) and
times until the process has exited. It also checks the outcome: the job is queued again, not done, not
failed, its attempt not counted.

    nice -n 19 python -m bench.quit_time --model tiny.en --batch-size 1 8 --repeat 3

Prints one line per run and the worst case per batch size. Figures go in BENCHMARKS.md with the machine's
conditions.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from whisperdesk.core.jobstore import QUEUED, RUNNING, JobStore
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings, save_settings
from whisperdesk.devtools.real_models import fetch
from whisperdesk.devtools.speech_corpus import build_long_file

START_WAIT_S = 300.0


def _wait(predicate: object, what: str, window: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while not predicate():  # type: ignore[operator]
        if window.poll() is not None:
            raise SystemExit(f"the window exited before {what} (status {window.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def quit_once(
    model: Path, recording: Path, batch_size: int, root: Path, min_progress: float
) -> tuple[float, str]:
    """One run: seconds from SIGTERM to the process's exit, and the job's state afterwards."""
    home = root / f"home-b{batch_size}-{time.monotonic_ns()}"
    env = dict(os.environ, WHISPERDESK_HOME=str(home), QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    runtime = home / "rt"
    runtime.mkdir(parents=True, mode=0o700)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    paths = AppPaths.under(home).ensure()
    save_settings(
        paths.settings_file,
        Settings(
            model=ModelConfig(model=str(model), device="cpu", compute_type="int8", batch_size=batch_size),
            decode=DecodeOptions(),
            output=OutputOptions(formats=("txt",), output_dir=str(home / "out")),
        ),
    )
    window = subprocess.Popen(
        [sys.executable, "-m", "whisperdesk", "gui", str(recording)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with JobStore(paths.jobs_db) as store:

            def decoding() -> bool:
                jobs = store.find(recording)
                return bool(jobs) and jobs[0].state == RUNNING and jobs[0].progress >= min_progress

            _wait(decoding, "the job to be decoding", window)
            asked = time.monotonic()
            window.send_signal(signal.SIGTERM)
            window.wait(START_WAIT_S)
            seconds = time.monotonic() - asked
            (job,) = store.find(recording)
            outcome = job.state if job.state != QUEUED else f"queued (attempts {job.attempts})"
        return seconds, outcome
    finally:
        if window.poll() is None:
            window.kill()
            window.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="tiny.en", help="tiny.en or base (pinned real weights) or a folder"
    )
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the spoken recording")
    parser.add_argument("--min-progress", type=float, default=0.02, help="quit once the job is this far")
    args = parser.parse_args(argv)
    model = Path(args.model) if Path(args.model).is_dir() else fetch(args.model)
    with tempfile.TemporaryDirectory(prefix="wd-quit-") as tmp:
        root = Path(tmp)
        recording = build_long_file(root / "speech", minutes=args.minutes).path
        print(
            f"model {model.name}, {args.minutes:g}-min recording, quit at ≥ {args.min_progress:.0%} progress"
        )
        for batch in args.batch_size:
            times = []
            for i in range(args.repeat):
                seconds, outcome = quit_once(model, recording, batch, root, args.min_progress)
                times.append(seconds)
                print(
                    f"  batch {batch:2d} run {i + 1}: exited {seconds:.2f} s after quit was asked; job {outcome}"
                )
            print(
                f"batch {batch:2d}: worst {max(times):.2f} s, best {min(times):.2f} s over {len(times)} runs"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
