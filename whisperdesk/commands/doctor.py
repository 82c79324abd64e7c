"""`whisperdesk doctor`: print what this machine can run and why the GPU is or is not used.

The report module loads CTranslate2 and NVML only when the command runs, so registering it costs nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the GPU, CUDA libraries, packages and model cache",
        description=(
            "Check what WhisperDesk can run on: NVIDIA driver and GPUs, the CUDA 12 libraries CTranslate2 "
            "loads, supported compute types, installed versions and downloaded models. Ends with one line "
            "saying whether the GPU will be used and, if not, why."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON (for bug reports)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from whisperdesk.core.doctor import collect_report, format_report

    report = collect_report()
    if getattr(args, "json", False):
        print(json.dumps(report.to_dict(), indent=2))
    else:
        sys.stdout.write(format_report(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Allows ``python -m whisperdesk.commands.doctor`` when the CLI entry point is broken."""
    parser = argparse.ArgumentParser(prog="whisperdesk")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["doctor", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
