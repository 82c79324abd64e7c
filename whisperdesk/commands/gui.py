"""`whisperdesk gui [--minimized] [FILE...]`: the desktop window (also what `whisperdesk` with no command, or
with only files, starts). With a window already running on the same data folder, the files go to it."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gui",
        help="open the desktop window (the default command)",
        description="Open the WhisperDesk window: queue, watched folders, GPU gauges and settings.\n"
        "Files given are queued; with a window already open on the same data folder, they are handed\n"
        "to it and this start exits.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--minimized",
        action="store_true",
        help="start hidden in the system tray (minimised to the task bar where there is no tray)",
    )
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="recordings or folders to queue (handed to the running window if there is one)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from whisperdesk.app import run_gui  # Qt loads only when the window is wanted

    return run_gui(sys.argv[:1], minimized=args.minimized, files=args.files)
