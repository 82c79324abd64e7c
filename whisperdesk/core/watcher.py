"""Folder watching that hands on each arriving recording once, and only when it has finished arriving.

Events only say "something happened to this path"; they fire when a copy *starts*, repeat for every
written chunk, and get lost when OS buffers overflow. So events, the startup scan and the periodic rescan
all feed one set of *pending* paths, and :meth:`FolderWatcher.tick` (called by the owner's timer or loop,
never by a watchdog thread) stats each pending path: a file becomes a :class:`Candidate` once its size
and mtime have not changed for ``settle_seconds`` by the injected clock and it opens for reading. A
candidate is remembered by (size, mtime) so re-announcements of an unchanged file produce nothing; the
job store's fingerprint check is the second, persistent line of defence across restarts.

Native observers (inotify, FSEvents, ReadDirectoryChangesW) are tried first; when they cannot start
(inotify limits: errno 28/24, unsupported file systems) a folder is polled instead, with a log line that
says why. A dead observer or a folder that went away (unplugged drive, dropped share) is noticed by the
periodic health check, reported in :meth:`FolderWatcher.statuses` and restarted, followed by a rescan.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from whisperdesk.core.audio import SUPPORTED_EXTENSIONS
from whisperdesk.core.clock import SYSTEM_CLOCK, Clock
from whisperdesk.core.errors import WhisperDeskError

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from whisperdesk.core.settings import WatchedFolder

log = logging.getLogger(__name__)

DEFAULT_EXTENSIONS: frozenset[str] = frozenset(e.lower() for e in SUPPORTED_EXTENSIONS)

# Names that download managers, sync tools, editors and WhisperDesk itself use while a file is incomplete.
TEMP_SUFFIXES: frozenset[str] = frozenset(
    {
        ".part", ".partial", ".crdownload", ".download", ".tmp", ".temp", ".wdtmp", ".filepart",
        ".opdownload", ".aria2", ".!sync", ".!ut", ".!qb", ".!bt", ".swp", ".lock", ".sync",
    }
)  # fmt: skip
TEMP_PREFIXES: tuple[str, ...] = ("~$", "~syncthing~", "~lock.", ".~lock", ".syncthing.")
# Folders that hold the trash, thumbnails or a sync tool's state rather than the user's recordings.
IGNORED_DIR_NAMES: frozenset[str] = frozenset(
    {"$recycle.bin", "system volume information", "@eadir", "#recycle", "#snapshot", "__macosx", "lost+found"}
)

FolderMode = Literal["watching", "polling", "error", "stopped"]
ObserverFactory = Callable[[bool], "BaseObserver"]


class WatchConfigError(WhisperDeskError):
    """The folders to watch cannot be watched as configured."""


@dataclass(frozen=True)
class WatchSpec:
    """One watched folder. ``exclude`` lists subfolders whose files are never picked up (outputs,
    the "done" folder that processed sources are moved to)."""

    path: Path
    recursive: bool = False
    polling: bool = False
    exclude: tuple[Path, ...] = ()

    @classmethod
    def from_settings(cls, folder: WatchedFolder, done_subfolder: str = "done") -> WatchSpec:
        path = Path(folder.path).expanduser()
        exclude = (path / done_subfolder,) if folder.after_processing == "move" else ()
        return cls(path, recursive=folder.recursive, polling=folder.polling, exclude=exclude)


@dataclass(frozen=True)
class Candidate:
    """A file that finished arriving: give it to :meth:`JobStore.add`."""

    path: Path
    folder: Path  # the watched folder (as configured) it arrived in
    size: int
    mtime_ns: int
    readable: bool = True  # False: it still could not be opened after the grace time; the job reports why


@dataclass(frozen=True)
class FolderStatus:
    folder: Path
    mode: FolderMode
    reason: str | None = None  # why it is polling or in error, in words for the user


@dataclass(frozen=True)
class Observation:
    """What a pending file looked like, and since when (monotonic seconds) it has looked like that."""

    size: int
    mtime_ns: int
    since: float


def observe(previous: Observation | None, size: int, mtime_ns: int, now: float) -> Observation:
    """The stability rule's state step: unchanged size+mtime keep their start time, any change restarts it."""
    if previous is not None and previous.size == size and previous.mtime_ns == mtime_ns:
        return previous
    return Observation(size, mtime_ns, now)


def is_settled(observation: Observation, now: float, settle_seconds: float) -> bool:
    return now - observation.since >= settle_seconds


def _real(path: str | os.PathLike[str]) -> str:
    """The form paths are reported in: absolute, symlinks resolved (FSEvents reports /private/var...)."""
    return os.path.realpath(os.fspath(path))


def _norm(path: str | os.PathLike[str]) -> str:
    """The form paths are compared in (case-insensitive where the platform is)."""
    return os.path.normcase(_real(path))


def _is_within(path: str, folder: str) -> bool:
    """Both normalised with :func:`_norm` / ``os.path.normcase``."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def ignore_reason(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str],
    *,
    recursive: bool,
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    excluded: Sequence[str] = (),
) -> str | None:
    """Why a file at ``path`` under watched folder ``root`` is not a recording to pick up, or None.

    Pure string logic (no I/O); ``path`` and ``root`` are absolute and resolved the same way and
    ``excluded`` holds folder paths normalised with ``os.path.normcase``.
    """
    path, root = os.fspath(path), os.fspath(root)
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    if rel == os.curdir or parts[0] == os.pardir:
        return "outside the watched folder"
    if len(parts) > 1 and not recursive:
        return "in a subfolder, and the folder is not watched recursively"
    for part in parts[:-1]:
        if part.startswith("."):
            return f"in the hidden folder {part!r}"
        if part.lower() in IGNORED_DIR_NAMES:
            return f"in the system folder {part!r}"
    normalised = os.path.normcase(path)
    for folder in excluded:
        if _is_within(normalised, folder):
            return f"in the excluded folder {folder}"
    name = parts[-1]
    lowered = name.lower()
    if lowered.startswith(TEMP_PREFIXES):
        return "a temporary or lock file"
    if name.startswith("."):
        return "hidden"
    if name.endswith("~"):
        return "a backup file"
    suffix = os.path.splitext(lowered)[1]
    if suffix in TEMP_SUFFIXES:
        return "a partial download or temporary file"
    if suffix not in extensions:
        return f"not an audio or video file ({suffix or 'no extension'})"
    return None


def check_output_dirs(
    folders: Iterable[WatchSpec], output_dirs: Iterable[Path | str], *, exclude_outputs: bool
) -> None:
    """Refuse an output folder that a watched folder would see, unless it is excluded from watching.

    An output folder equal to the watched folder itself is fine: outputs are text formats, never picked up.
    """
    outs = [(Path(o), _norm(o)) for o in output_dirs if o is not None]
    for spec in folders:
        root = _norm(spec.path)
        for shown, out in outs:
            if out != root and spec.recursive and _is_within(out, root) and not exclude_outputs:
                raise WatchConfigError(
                    f"the output folder {shown} is inside the watched folder {spec.path}, which is watched "
                    "with its subfolders: WhisperDesk would pick up its own output folder. Choose an output "
                    "folder outside it, or exclude the output folder from watching"
                )


def default_observer_factory(polling: bool, polling_interval: float = 2.0) -> BaseObserver:
    if polling:
        from watchdog.observers.polling import PollingObserver

        return PollingObserver(timeout=polling_interval)
    from watchdog.observers import Observer

    return Observer()


class _Handler(FileSystemEventHandler):
    """Runs on watchdog's thread: only records the path; all work happens in :meth:`FolderWatcher.tick`."""

    def __init__(self, inbox: deque[tuple[str, int, str]], index: int) -> None:
        super().__init__()
        self._inbox = inbox
        self._index = index

    def dispatch(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if getattr(event, "dest_path", "") else ""
        if event.is_directory:
            if kind in ("created", "moved"):
                self._inbox.append(("scan", self._index, dest or src))
            return
        if kind == "moved":
            self._inbox.append(("gone", self._index, src))
            if dest:
                self._inbox.append(("seen", self._index, dest))
        elif kind == "deleted":
            self._inbox.append(("gone", self._index, src))
        elif kind in ("created", "modified", "closed"):
            self._inbox.append(("seen", self._index, src))


class _Folder:
    def __init__(self, index: int, spec: WatchSpec, excluded: tuple[str, ...]) -> None:
        self.index = index
        self.spec = spec
        self.root = _real(spec.path)
        self.key = os.path.normcase(self.root)
        self.excluded = excluded
        self.observer: BaseObserver | None = None
        self.mode: FolderMode = "stopped"
        self.reason: str | None = None
        self.native_failed = False
        self.polling_reason: str | None = None


@dataclass
class _Pending:
    folder: _Folder
    seen: Observation | None = None
    blocked_since: float | None = None


class FolderWatcher:
    """Watches folders and returns, from :meth:`tick`, the files that finished arriving.

    Thread model: watchdog threads only append to an inbox; ``tick()``, ``scan()`` and status reads
    may be called from one owner thread (a worker thread in the GUI, the main loop in the CLI).
    """

    def __init__(
        self,
        folders: Iterable[WatchSpec],
        *,
        settle_seconds: float = 2.0,
        rescan_seconds: float = 300.0,
        health_seconds: float = 10.0,
        unreadable_grace_seconds: float = 60.0,
        polling_interval: float = 2.0,
        extensions: Iterable[str] | None = None,
        output_dirs: Iterable[Path | str] = (),
        exclude_outputs: bool = True,
        clock: Clock | None = None,
        observer_factory: ObserverFactory | None = None,
        on_status: Callable[[FolderStatus], None] | None = None,
    ) -> None:
        specs = [WatchSpec(Path(s.path).expanduser(), s.recursive, s.polling, s.exclude) for s in folders]
        if settle_seconds < 0 or rescan_seconds <= 0 or health_seconds <= 0:
            raise ValueError("settle_seconds must be >= 0 and rescan/health periods > 0")
        for spec in specs:
            if spec.path.exists() and not spec.path.is_dir():
                raise WatchConfigError(f"{spec.path} is a file, not a folder; watch the folder that holds it")
        outputs = [Path(o).expanduser() for o in output_dirs if o is not None]
        check_output_dirs(specs, outputs, exclude_outputs=exclude_outputs)
        self.settle_seconds = float(settle_seconds)
        self.rescan_seconds = float(rescan_seconds)
        self.health_seconds = float(health_seconds)
        self.unreadable_grace_seconds = float(unreadable_grace_seconds)
        self.polling_interval = float(polling_interval)
        self.extensions = (
            DEFAULT_EXTENSIONS
            if extensions is None
            else frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
        )
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._factory: ObserverFactory = observer_factory or (
            lambda polling: default_observer_factory(polling, self.polling_interval)
        )
        self._on_status = on_status
        out_norm = tuple(_norm(o) for o in outputs)
        self._folders = [
            _Folder(
                i,
                spec,
                tuple(_norm(e) for e in spec.exclude)
                + tuple(o for o in out_norm if exclude_outputs and o != _norm(spec.path)),
            )
            for i, spec in enumerate(specs)
        ]
        self._inbox: deque[tuple[str, int, str]] = deque()
        self._pending: dict[str, _Pending] = {}
        self._announced: dict[str, tuple[int, int]] = {}
        self._lock = threading.RLock()
        self._started = False
        now = self.clock.monotonic()
        self._next_rescan = now + self.rescan_seconds
        self._next_health = now + self.health_seconds
        self._last_activity = now

    # -- lifecycle -----------------------------------------------------------------------------------
    @property
    def folders(self) -> tuple[WatchSpec, ...]:
        return tuple(f.spec for f in self._folders)

    def start(self) -> None:
        """Start observers and queue the startup scan (done by the next :meth:`tick`)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            for folder in self._folders:
                self._start_folder(folder)
            self.scan()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._started = False
            for folder in self._folders:
                self._stop_observer(folder, timeout)
                self._set_status(folder, "stopped", None)

    def __enter__(self) -> FolderWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(
        self,
        on_candidates: Callable[[list[Candidate]], None],
        stop: threading.Event,
        interval: float = 0.5,
    ) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set; for a plain worker thread or the CLI."""
        started_here = not self._started
        self.start()
        try:
            while not stop.is_set():
                found = self.tick()
                if found:
                    on_candidates(found)
                stop.wait(interval)
        finally:
            if started_here:
                self.stop()

    # -- inputs --------------------------------------------------------------------------------------
    def scan(self, folder: Path | str | None = None) -> None:
        """Ask for a full scan of one watched folder (or all) at the next tick; catches missed events.
        Thread-safe."""
        key = None if folder is None else _norm(folder)
        for f in self._folders:
            if key is None or key == f.key:
                self._inbox.append(("scan", f.index, f.root))

    def notify(self, path: Path | str) -> None:
        """Tell the watcher that ``path`` may have changed (thread-safe). Paths outside every watched
        folder are ignored."""
        target = _real(path)
        key = os.path.normcase(target)
        for f in self._folders:
            if _is_within(key, f.key):
                self._inbox.append(("seen", f.index, target))
                return

    def forget(self, path: Path | str) -> None:
        """Drop what the watcher remembers of ``path``, so it is handed on again when next seen."""
        with self._lock:
            target = _real(path)
            self._announced.pop(target, None)
            self._pending.pop(target, None)

    # -- state for the GUI / CLI (safe to read from any thread) --------------------------------------
    def statuses(self) -> list[FolderStatus]:
        return [FolderStatus(f.spec.path, f.mode, f.reason) for f in self._folders]

    def pending(self) -> list[Path]:
        """Files seen but not yet settled (e.g. still being copied)."""
        return [Path(p) for p in list(self._pending)]

    @property
    def busy(self) -> bool:
        """True while files are waiting to settle or events/scans are not yet processed."""
        return bool(self._pending) or bool(self._inbox)

    def quiet_for(self) -> float:
        """Seconds since a file last appeared or changed in a watched folder (for exit-when-idle)."""
        return self.clock.monotonic() - self._last_activity

    # -- the work ------------------------------------------------------------------------------------
    def tick(self) -> list[Candidate]:
        """Process events and scans, check health and rescans when due, return newly settled files."""
        with self._lock:
            now = self.clock.monotonic()
            if self._started and now >= self._next_health:
                self._next_health = now + self.health_seconds
                self.check_health()
            if self._started and now >= self._next_rescan:
                self._next_rescan = now + self.rescan_seconds
                log.debug("periodic rescan of %d watched folder(s)", len(self._folders))
                self.scan()
            self._drain_inbox(now)
            return self._settle(now)

    def check_health(self) -> None:
        """Restart observers that died and folders that came back; rescan those (events were lost)."""
        with self._lock:
            for folder in self._folders:
                if folder.mode in ("watching", "polling"):
                    exists = os.path.isdir(folder.root)
                    if exists and self._observer_alive(folder):
                        continue
                    why = "the folder is gone" if not exists else "its watching thread stopped"
                    log.warning("watching %s stopped (%s); restarting", folder.spec.path, why)
                    self._stop_observer(folder, 1.0)
                elif folder.mode != "error":
                    continue
                self._start_folder(folder)
                if folder.mode in ("watching", "polling"):
                    self._inbox.append(("scan", folder.index, folder.root))

    def _drain_inbox(self, now: float) -> None:
        while self._inbox:
            op, index, path = self._inbox.popleft()
            folder = self._folders[index]
            if op == "scan":
                if path == folder.root or folder.spec.recursive:
                    self._scan_dir(folder, path, now)
            elif op == "gone":
                self._announced.pop(path, None)
                self._pending.pop(path, None)
            elif path not in self._pending and self._accept(folder, path):
                self._pending[path] = _Pending(folder)

    def _accept(self, folder: _Folder, path: str) -> bool:
        reason = ignore_reason(
            path,
            folder.root,
            recursive=folder.spec.recursive,
            extensions=self.extensions,
            excluded=folder.excluded,
        )
        if reason is not None:
            log.debug("ignoring %s: %s", path, reason)
        return reason is None

    def _scan_dir(self, folder: _Folder, top: str, now: float) -> None:
        full = top == folder.root
        seen: set[str] = set()
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                with os.scandir(directory) as entries:
                    items = list(entries)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot list %s while scanning %s: %s", directory, folder.spec.path, exc)
                continue
            for entry in items:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if folder.spec.recursive and not self._skip_dir(folder, entry):
                            stack.append(entry.path)
                        continue
                    if not self._accept(folder, entry.path):
                        continue
                    st = entry.stat()
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                seen.add(entry.path)
                if self._announced.get(entry.path) == (st.st_size, st.st_mtime_ns):
                    continue
                pending = self._pending.get(entry.path)
                if pending is None:
                    pending = self._pending[entry.path] = _Pending(folder)
                    self._last_activity = now
                pending.seen = observe(pending.seen, st.st_size, st.st_mtime_ns, now)
        if full:  # forget files that are gone, so a later identical copy is handed on again
            prefix = folder.root.rstrip(os.sep) + os.sep
            for path in [p for p in self._announced if p.startswith(prefix) and p not in seen]:
                del self._announced[path]

    def _skip_dir(self, folder: _Folder, entry: os.DirEntry[str]) -> bool:
        name = entry.name
        if name.startswith(".") or name.lower() in IGNORED_DIR_NAMES:
            return True
        normalised = os.path.normcase(entry.path)
        return any(_is_within(normalised, ex) for ex in folder.excluded)

    def _settle(self, now: float) -> list[Candidate]:
        ready: list[Candidate] = []
        for path, pending in list(self._pending.items()):
            try:
                st = os.stat(path)
            except OSError:
                del self._pending[path]  # gone (deleted, renamed away) before it settled
                continue
            hidden = getattr(st, "st_file_attributes", 0) & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0)
            if not stat.S_ISREG(st.st_mode) or hidden:
                del self._pending[path]
                continue
            key = (st.st_size, st.st_mtime_ns)
            if self._announced.get(path) == key:
                del self._pending[path]  # re-announced, unchanged
                continue
            before = pending.seen
            pending.seen = observe(before, st.st_size, st.st_mtime_ns, now)
            if pending.seen is not before:
                self._last_activity = now
                pending.blocked_since = None
            if not is_settled(pending.seen, now, self.settle_seconds):
                continue
            problem = _open_problem(path)
            readable = problem is None
            if problem is not None:
                if pending.blocked_since is None:
                    pending.blocked_since = now
                if now - pending.blocked_since < self.unreadable_grace_seconds:
                    continue
                log.warning(
                    "%s still cannot be opened after %.0f s (%s); handing it on so its job reports the problem",
                    path,
                    self.unreadable_grace_seconds,
                    problem,
                )
            del self._pending[path]
            self._announced[path] = key
            ready.append(
                Candidate(Path(path), pending.folder.spec.path, st.st_size, st.st_mtime_ns, readable)
            )
        ready.sort(key=lambda c: (c.mtime_ns, str(c.path)))
        return ready

    # -- observers -----------------------------------------------------------------------------------
    def _start_folder(self, folder: _Folder) -> None:
        if not os.path.isdir(folder.root):
            self._set_status(
                folder,
                "error",
                f"folder not found: {folder.spec.path}; watching starts when it is available again",
            )
            return
        polling = folder.spec.polling or folder.native_failed
        observer: BaseObserver | None = None
        try:
            observer = self._factory(polling)
            observer.schedule(
                _Handler(self._inbox, folder.index), folder.root, recursive=folder.spec.recursive
            )
            observer.start()
        except Exception as exc:
            if observer is not None:
                with contextlib.suppress(Exception):
                    observer.stop()
            if polling:
                log.error("cannot watch %s: %s", folder.spec.path, exc)
                self._set_status(folder, "error", f"cannot watch {folder.spec.path}: {exc}")
                return
            folder.native_failed = True
            code = getattr(exc, "errno", None)
            if code in (errno.ENOSPC, errno.EMFILE):
                why = (
                    f"the system limit on watched folders is reached (errno {code}); raise "
                    "fs.inotify.max_user_watches / fs.inotify.max_user_instances with sysctl to get instant events"
                )
            else:
                why = f"native file events are unavailable ({exc})"
            log.warning(
                "watching %s by polling every %.0f s: %s", folder.spec.path, self.polling_interval, why
            )
            folder.polling_reason = why
            self._start_folder(folder)
            return
        folder.observer = observer
        if polling:
            self._set_status(folder, "polling", folder.polling_reason or "polling was chosen for this folder")
        else:
            self._set_status(folder, "watching", None)

    def _stop_observer(self, folder: _Folder, timeout: float) -> None:
        observer, folder.observer = folder.observer, None
        if observer is None:
            return
        with contextlib.suppress(Exception):
            observer.stop()
        with contextlib.suppress(RuntimeError):
            observer.join(timeout)

    @staticmethod
    def _observer_alive(folder: _Folder) -> bool:
        observer = folder.observer
        if observer is None or not observer.is_alive():
            return False
        emitters = list(observer.emitters)
        return bool(emitters) and all(e.is_alive() for e in emitters)

    def _set_status(self, folder: _Folder, mode: FolderMode, reason: str | None) -> None:
        if (folder.mode, folder.reason) == (mode, reason):
            return
        folder.mode, folder.reason = mode, reason
        if self._on_status is not None:
            try:
                self._on_status(FolderStatus(folder.spec.path, mode, reason))
            except Exception:
                log.exception("folder status listener failed")


def _open_problem(path: str) -> str | None:
    """None if the file opens for reading now (a writer on Windows holds it exclusively until done)."""
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
