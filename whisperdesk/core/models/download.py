"""Download a named model from the Hugging Face hub: progress, cancel, resume, checksum, disk space.

huggingface_hub builds the URLs, headers and error types and honours ``HF_ENDPOINT`` (a mirror, or the
loopback hub of the tests). The transfer loop is ours because huggingface_hub 1.x/2.x downloads into a
per-process temporary file that is deleted on failure: it cannot resume after a crash or a cancel. Here
each file grows in ``<name>.partial/<file>.part``; a new attempt asks for the rest with an HTTP Range, and
the folder is renamed into place only after every file matched the checksum the hub publishes for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisperdesk.core.errors import Cancelled, ModelError
from whisperdesk.core.models.catalogue import repo_id_for
from whisperdesk.core.models.store import (
    Manifest,
    RemoteFile,
    file_matches,
    model_folder,
    read_manifest,
    staging_folder,
    write_manifest,
)
from whisperdesk.core.units import format_size

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
WANTED = ("config.json", "preprocessor_config.json", "model.bin", "tokenizer.json")  # as faster-whisper
SPACE_MARGIN = 50_000_000  # never fill a disk to the last byte
_CHUNK = 256 * 1024  # cancel and progress react within a quarter megabyte


class DownloadError(ModelError):
    """A download could not finish; the message says why and what to do."""


class NotEnoughSpaceError(DownloadError):
    pass


class DownloadCancelled(Cancelled):
    """The user stopped the download; what arrived stays on disk for a resume."""


@dataclass(frozen=True)
class DownloadProgress:
    name: str
    done_bytes: int
    total_bytes: int
    bytes_per_second: float
    file: str

    @property
    def eta_seconds(self) -> float | None:
        if self.bytes_per_second <= 0:
            return None
        return max(0.0, (self.total_bytes - self.done_bytes) / self.bytes_per_second)

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 0.0


ProgressFn = Callable[[DownloadProgress], None]


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")


def _wanted(name: str) -> bool:
    return name in WANTED or (name.startswith("vocabulary.") and "/" not in name)


def fetch_manifest(name: str, hub: str | None = None) -> Manifest:
    """Ask the hub which files ``name`` has, their sizes and checksums, at its current commit."""
    from huggingface_hub import HfApi

    repo_id = repo_id_for(name)
    if repo_id is None:
        raise DownloadError(f"{name!r} is not a model WhisperDesk knows; see `whisperdesk models list`.")
    info = HfApi(endpoint=hub or endpoint()).model_info(repo_id, files_metadata=True)
    files = tuple(
        RemoteFile(
            s.rfilename,
            int(s.lfs.size if s.lfs else s.size or 0),
            s.lfs.sha256 if s.lfs else None,
            None if s.lfs else s.blob_id,
        )
        for s in info.siblings or ()
        if _wanted(s.rfilename)
    )
    if not any(f.name == "model.bin" for f in files):
        raise DownloadError(
            f"The hub repository {repo_id} has no model.bin; it is not a faster-whisper model."
        )
    return Manifest(name, repo_id, str(info.sha), files)


def check_space(folder: Path, needed: int) -> None:
    """Refuse to start when the disk cannot hold what is still to come (plus a margin)."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed + SPACE_MARGIN > free:
        raise NotEnoughSpaceError(
            f"Not enough disk space: the download needs {format_size(needed)} more, but only "
            f"{format_size(free)} is free on the disk holding {folder}. Free some space or remove models "
            "you do not use, then try again."
        )


class _Meter:
    """Counts bytes for the progress callback and stops the transfer when canceled."""

    def __init__(
        self, name: str, total: int, done: int, progress: ProgressFn | None, cancel: threading.Event
    ):
        self._name, self._total, self.done = name, total, done
        self._progress, self._cancel = progress, cancel
        self._start_bytes, self._start = done, time.monotonic()
        self._last_report = 0.0

    def add(self, count: int, file: str) -> None:
        self.done += count
        if self._cancel.is_set():
            raise DownloadCancelled("download canceled")
        now = time.monotonic()
        if now - self._last_report >= 0.2 or self.done >= self._total:
            self._last_report = now
            self.report(file)

    def report(self, file: str) -> None:
        if self._progress is None:
            return
        elapsed = time.monotonic() - self._start
        speed = (self.done - self._start_bytes) / elapsed if elapsed > 0 else 0.0
        self._progress(DownloadProgress(self._name, self.done, self._total, speed, file))


def download_model(
    name: str,
    models_dir: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    hub: str | None = None,
) -> Path:
    """Download (or finish downloading) ``name`` and return its verified folder."""
    if offline():
        raise DownloadError(
            "WhisperDesk is set to work offline (HF_HUB_OFFLINE), so models cannot be downloaded; "
            "use the built-in model or a model folder you already have."
        )
    cancel = cancel or threading.Event()
    hub = hub or endpoint()
    try:
        manifest = fetch_manifest(name, hub)
        return _download(manifest, Path(models_dir), hub, progress, cancel)
    except (DownloadError, DownloadCancelled):
        raise
    except Exception as exc:
        raise _explain(exc, name, hub) from exc


def _explain(exc: Exception, name: str, hub: str) -> DownloadError:
    """Turn what the network, the hub or the disk raised into a sentence a person can act on."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    log.info("download of %s from %s failed: %s: %s", name, hub, type(exc).__name__, exc)
    resume = "Try again later; the download continues where it stopped."
    if isinstance(exc, OfflineModeIsEnabled):
        return DownloadError("WhisperDesk is set to work offline, so models cannot be downloaded.")
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(f"The model server does not have {name}; pick another model.")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return DownloadError(f"The model server refused the download of {name} (HTTP {status}). {resume}")
    if isinstance(exc, OSError) and not type(exc).__module__.startswith("httpx"):
        return DownloadError(
            f"The model could not be saved ({exc.strerror or 'write failed'}); check the disk and try again."
        )
    return DownloadError(
        f"The model server could not be reached or the connection broke while downloading {name}. "
        f"Check the internet connection. {resume}"
    )


def _download(
    manifest: Manifest, models_dir: Path, hub: str, progress: ProgressFn | None, cancel: threading.Event
) -> Path:
    staging = staging_folder(manifest.name, models_dir)
    previous = read_manifest(staging)
    if previous is not None and previous != manifest:  # the model changed on the hub: start over
        log.info("model %s changed on the hub since the partial download; starting over", manifest.name)
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    write_manifest(staging, manifest)
    have = {f.name: _present_bytes(staging, f) for f in manifest.files}
    check_space(staging, manifest.total_bytes - sum(have.values()))
    meter = _Meter(manifest.name, manifest.total_bytes, sum(have.values()), progress, cancel)
    meter.report("")
    for remote in manifest.files:
        _fetch_file(manifest, remote, staging, hub, meter)
    final = model_folder(manifest.name, models_dir)
    if final.exists():
        shutil.rmtree(final)
    staging.replace(final)
    log.info("model %s downloaded and verified into %s", manifest.name, final)
    return final


def _present_bytes(staging: Path, remote: RemoteFile) -> int:
    if (staging / remote.name).is_file():
        return remote.size
    part = staging / f"{remote.name}.part"
    size = part.stat().st_size if part.is_file() else 0
    if size > remote.size:  # longer than published: cannot be a prefix of it
        part.unlink()
        return 0
    return size


def _fetch_file(manifest: Manifest, remote: RemoteFile, staging: Path, hub: str, meter: _Meter) -> None:
    done = staging / remote.name
    if done.is_file():
        return
    part = staging / f"{remote.name}.part"
    _stream(manifest, remote, part, hub, meter)
    if not file_matches(part, remote):
        part.unlink()
        meter.done -= remote.size
        raise DownloadError(
            f"The downloaded {remote.name} of {manifest.name} is damaged (its checksum does not match the "
            "published one) and was deleted. Try again."
        )
    part.replace(done)


def _stream(manifest: Manifest, remote: RemoteFile, part: Path, hub: str, meter: _Meter) -> None:
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_stream_backoff

    url = hf_hub_url(manifest.repo_id, remote.name, revision=manifest.commit, endpoint=hub)
    have = part.stat().st_size if part.is_file() else 0
    if have == remote.size:
        return
    headers = build_hf_headers(library_name="whisperdesk")
    if have:
        headers["Range"] = f"bytes={have}-"
        log.info("resuming %s of %s at byte %d", remote.name, manifest.name, have)
    with (
        http_stream_backoff("GET", url, headers=headers, max_retries=1, base_wait_time=0.5) as response,
        open(part, "ab" if have else "wb") as out,
    ):
        hf_raise_for_status(response)
        if have and response.status_code == 200:  # the server ignored the Range: take the whole file
            out.truncate(0)
            meter.done -= have
        _copy_body(response, out, remote, meter)
    if part.stat().st_size != remote.size:
        raise DownloadError(
            f"The connection ended before {remote.name} of {manifest.name} was complete. "
            "Try again; the download continues where it stopped."
        )


def _copy_body(response: Any, out: Any, remote: RemoteFile, meter: _Meter) -> None:
    try:
        for chunk in response.iter_bytes(chunk_size=_CHUNK):
            out.write(chunk)
            meter.add(len(chunk), remote.name)
    finally:
        with contextlib.suppress(OSError):
            out.flush()
            os.fsync(out.fileno())
