"""The `whisperdesk` command. Subcommands live in whisperdesk.commands; heavy modules load lazily."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from whisperdesk import __version__

# Subcommand modules, in the order `--help` lists them. A missing module (feature not built) is skipped.
_COMMANDS = ("transcribe", "watch", "worker", "jobs", "search", "models", "bench", "doctor", "gui")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whisperdesk",
        description="Transcribe recordings on your own GPU (or CPU). Without a command, the window opens.",
    )
    parser.add_argument("--version", action="version", version=f"whisperdesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"whisperdesk.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"whisperdesk.commands.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def _files_only(argv: Sequence[str]) -> bool:
    """``whisperdesk FILE...`` (a file manager's "Open with"): the first word names a file, not a command."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or first in _COMMANDS:
        return False
    return os.path.exists(first) or os.sep in first or "." in first


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(argv if argv is not None else sys.argv[1:])
    if _files_only(words):
        words = ["gui", *words]
    args = parser.parse_args(words)
    if args.command is None:
        args = parser.parse_args(["gui", *words])
    if not hasattr(args, "func"):
        parser.error(f"the {args.command!r} command is not available in this build")
    from whisperdesk.core.paths import AppFolderError

    try:
        return int(args.func(args) or 0)
    except AppFolderError as exc:  # every command needs the app's folders; the window says it itself
        print(f"whisperdesk: error: {exc}", file=sys.stderr)
        return 1


def gui_main() -> int:
    return main(["gui", *sys.argv[1:]])
