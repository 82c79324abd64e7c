"""`whisperdesk gui [--minimized]`: the desktop window (also what `whisperdesk` with no command starts)."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gui",
        help="open the desktop window (the default command)",
        description="Open the WhisperDesk window: queue, watched folders, GPU gauges and settings.",
    )
    parser.add_argument(
        "--minimized",
        action="store_true",
        help="start hidden in the system tray (minimised to the task bar where there is no tray)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from whisperdesk.app import run_gui  # Qt loads only when the window is wanted

    return run_gui(sys.argv[:1], minimized=args.minimized)
