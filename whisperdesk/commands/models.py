"""`whisperdesk models list|download|remove|verify`: the model manager without the window."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from whisperdesk.commands.progress import format_clock


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list, download, remove or verify models",
        description=(
            "Manage the speech models: the built-in model that comes with WhisperDesk and the named models "
            "that can be downloaded. Downloads resume where they stopped and are checked before use."
        ),
        epilog="exit status: 0 ok, 1 a model could not be downloaded, removed or verified, 2 invalid usage.",
    )
    parser.set_defaults(func=run, action="list")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="the catalogue: size, languages, speed/quality, downloaded or not")
    download = actions.add_parser("download", help="download models (resumes an interrupted download)")
    download.add_argument("names", nargs="+", metavar="NAME")
    remove = actions.add_parser("remove", help="delete downloaded models")
    remove.add_argument("names", nargs="+", metavar="NAME")
    verify = actions.add_parser("verify", help="check models by checksum (all downloaded ones by default)")
    verify.add_argument("names", nargs="*", metavar="NAME")


def run(args: argparse.Namespace) -> int:
    from whisperdesk.core.paths import AppPaths

    paths = AppPaths.default()
    models_dir = paths.models_dir if args.action == "list" else paths.ensure().models_dir  # these write
    action = {"list": _list, "download": _download, "remove": _remove, "verify": _verify}[args.action]
    return action(args, models_dir)


def _current_model() -> str:
    from whisperdesk.core.paths import AppPaths
    from whisperdesk.core.settings import load_settings

    return load_settings(AppPaths.default().settings_file)[0].model.model


def _list(args: argparse.Namespace, models_dir) -> int:  # type: ignore[no-untyped-def]
    from whisperdesk.core.models.overview import rows
    from whisperdesk.core.models.recommend import for_this_machine
    from whisperdesk.core.units import format_size

    recommendation = for_this_machine()
    table = rows(models_dir, _current_model(), recommendation)
    width = max(len(r.entry.label) for r in table)
    for r in table:
        mark = f"  [{r.recommended}]" if r.recommended else ""
        print(
            f"{r.entry.label:<{width}}  {format_size(r.entry.size_bytes):>8}  {r.entry.languages:<12}  "
            f"{r.entry.hint:<36}  {r.status}{mark}"
        )
    print(f"\n{recommendation.reason}")
    print(f"Models are kept in {models_dir}")
    return 0


class _Printer:
    """One updating line on a terminal; a line per 10 % when piped."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last_step = -1

    def __call__(self, progress) -> None:  # type: ignore[no-untyped-def]
        from whisperdesk.core.units import format_size

        eta = progress.eta_seconds
        line = (
            f"{progress.name}: {format_size(progress.done_bytes)} of {format_size(progress.total_bytes)}"
            f" · {format_size(progress.bytes_per_second)}/s"
            + (f" · {format_clock(eta)} left" if eta is not None else "")
        )
        if self._tty:
            sys.stderr.write("\r" + line + "\033[K")
            sys.stderr.flush()
            return
        step = int(progress.fraction * 10)
        if step != self._last_step:
            self._last_step = step
            print(line, file=sys.stderr, flush=True)

    def end(self) -> None:
        if self._tty:
            sys.stderr.write("\r\033[K")


def _download(args: argparse.Namespace, models_dir) -> int:  # type: ignore[no-untyped-def]
    from whisperdesk.core.models.builtin import is_builtin
    from whisperdesk.core.models.download import DownloadCancelled, DownloadError, download_model

    cancel = threading.Event()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        cancel.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    status = 0
    try:
        for name in args.names:
            if is_builtin(name):
                print(f"{name}: included with WhisperDesk, nothing to download")
                continue
            printer = _Printer()
            try:
                folder = download_model(name, models_dir, progress=printer, cancel=cancel)
            except DownloadCancelled:
                printer.end()
                print(
                    f"whisperdesk: {name}: download stopped; run the same command to resume", file=sys.stderr
                )
                return 1
            except DownloadError as exc:
                printer.end()
                print(f"whisperdesk: error: {name}: {exc}", file=sys.stderr)
                status = 1
                continue
            printer.end()
            print(f"{name}: downloaded and verified ({folder})")
    finally:
        signal.signal(signal.SIGINT, previous)
    return status


def _remove(args: argparse.Namespace, models_dir) -> int:  # type: ignore[no-untyped-def]
    from whisperdesk.core.models.builtin import is_builtin
    from whisperdesk.core.models.catalogue import repo_id_for
    from whisperdesk.core.models.store import remove_model

    status = 0
    for name in args.names:
        if is_builtin(name):
            print(f"whisperdesk: error: {name}: the built-in model comes with WhisperDesk", file=sys.stderr)
            status = 1
            continue
        removed = remove_model(name, models_dir, repo_id_for(name))
        if removed:
            print(f"{name}: removed")
        else:
            print(f"whisperdesk: error: {name}: not downloaded, nothing to remove", file=sys.stderr)
            status = 1
    return status


def _verify(args: argparse.Namespace, models_dir) -> int:  # type: ignore[no-untyped-def]
    from whisperdesk.core.errors import ModelUnavailableError
    from whisperdesk.core.models.builtin import BUILTIN, ensure_builtin, is_builtin
    from whisperdesk.core.models.store import downloads_dir, verify_download

    names = list(args.names)
    if not names:
        found = sorted(p.name for p in downloads_dir(models_dir).glob("*") if not p.name.endswith(".partial"))
        names = [BUILTIN, *(n.replace("--", "/") for n in found)]
    status = 0
    for name in names:
        if is_builtin(name):
            try:
                print(f"{name}: {ensure_builtin(models_dir).note}")
            except ModelUnavailableError as exc:
                print(f"whisperdesk: error: {name}: {exc}", file=sys.stderr)
                status = 1
            continue
        result = verify_download(name, models_dir)
        if result.ok:
            print(f"{name}: {result.detail}")
        else:
            print(f"whisperdesk: error: {name}: {result.detail}", file=sys.stderr)
            status = 1
    return status
