"""Turn any recording (audio or video file) into the 16 kHz mono float32 samples Whisper needs.

Every failure becomes one distinct :class:`~whisperdesk.core.errors.AudioError` subclass whose message names
the file, says what is wrong and what to do, so the GUI, CLI and job store can show it as is.

Truncation policy: a file that stops early is an error (``TruncatedFileError``), not a silent half
transcript. Only what a header *states* can accuse a file (FFmpeg's estimates from bitrate or the last page
would reject healthy files), each compared in a way that gaps or a longer video track cannot trip:

* decoded samples vs a stated sample count: WAV data chunk (or ``fact`` for ADPCM), FLAC STREAMINFO, AIFF,
  MP3 with a Xing/Info/VBRI frame — short by more than ``max(0.5 s, 0.2 %)`` is truncated;
* the last audio packet's end time vs the audio track's duration: MP4/MOV/M4A/3GP (moov);
* size on disk vs a stated size: Matroska/WebM Segment, ASF/WMA File Properties, AVI RIFF;
* and for any format, a stream that ends in data the decoder rejects (ADTS, AMR, WMA cut mid-frame) or a
  demuxer that gives up. A few corrupt packets mid-file are skipped (as FFmpeg does) up to 1 % of packets.

Files that state nothing (Ogg, CBR MP3 without an Info frame, live WebM, ADTS cut on a frame boundary) cannot
be checked, and PCM cannot be checked for garbage (every byte pattern is valid audio). Callers that want
whatever decodes anyway pass ``allow_truncated=True``.

PyAV and soundfile are imported inside functions: importing the core must stay cheap.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from whisperdesk.core.errors import (
    AudioError,
    EmptyFileError,
    FileDisappearedError,
    NoAudioStreamError,
    NotAudioError,
    TruncatedFileError,
    UnreadableFileError,
)

if TYPE_CHECKING:
    import av.container

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {
        # audio
        ".wav", ".wave", ".flac", ".mp3", ".mp2", ".m4a", ".m4b", ".aac", ".ogg", ".oga", ".opus", ".spx",
        ".wma", ".mka", ".amr", ".aiff", ".aif", ".aifc", ".caf", ".au", ".ac3", ".wv", ".ape",
        # video containers (their audio track is transcribed)
        ".webm", ".mp4", ".mkv", ".mov", ".m4v", ".avi", ".3gp", ".3g2", ".wmv", ".asf", ".flv", ".mpg",
        ".mpeg", ".ts", ".mts", ".m2ts", ".ogv", ".vob",
    }
)  # fmt: skip

_SOUNDFILE_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga"})
_SOUNDFILE_FORMATS = {"WAV": None, "WAVEX": None, "FLAC": None, "OGG": "VORBIS"}  # format -> required subtype
_BLOCK_FRAMES = 1 << 16  # soundfile read size: ~4 s at 16 kHz; keeps chunks small for hour-long files
_SNIFF_BYTES = 4096
_IMAGE_DEMUXERS = ("image2", "tty", "gif", "apng", "webp", "ico")  # FFmpeg opens pictures/text as "video"


def is_supported(path: Path | str) -> bool:
    """Whether the file's extension is one WhisperDesk offers to transcribe (watchers filter on this)."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    duration: float  # seconds; the best figure the file states (0.0 when it states none)
    sample_rate: int  # of the source audio track, before resampling
    channels: int
    codec: str  # e.g. "pcm_s16le", "mp3", "aac", "opus"
    container: str  # e.g. "wav", "mp4", "matroska", "ogg"
    has_video: bool  # a real picture track, not an MP3's embedded cover art


def probe(path: Path | str) -> AudioInfo:
    """Describe the audio track without decoding it.

    Raises the same errors as :func:`decode`, except damage only decoding can find (a cut-off tail).
    """
    path = Path(path)
    head = _check_readable(path)
    with _open_container(path, head) as container:
        stream = _audio_stream(path, head, container)
        stated = _stated(path, head, container, stream).length()
        duration = stated if stated is not None else _any_duration(container, stream)
        ctx = stream.codec_context
        return AudioInfo(
            path=path,
            duration=round(duration or 0.0, 6),
            sample_rate=int(ctx.sample_rate or 0),
            channels=int(ctx.channels or 0),
            codec=ctx.codec.canonical_name,
            container=_container_name(path, container),
            has_video=_has_video(container),
        )


def decode(
    path: Path | str, sampling_rate: int = SAMPLE_RATE, *, allow_truncated: bool = False
) -> np.ndarray:
    """Decode ``path``'s first audio track to mono float32 in [-1, 1] at ``sampling_rate``.

    The whole recording in one array (~230 MB per hour at 16 kHz): for short files and callers that need
    it all at once. Long recordings are read as an :class:`AudioStream` (what this collects), whose blocks go
    into one buffer preallocated from the header's length, so peak memory is about the size of the result.
    """
    stream = AudioStream(path, sampling_rate, allow_truncated=allow_truncated)
    sink: _Sink | None = None
    for block in stream:
        if sink is None:
            sink = _Sink(stream.expected_samples)
        sink.add(block)
    return sink.result() if sink is not None else np.zeros(0, dtype=np.float32)


class AudioStream:
    """``path``'s first audio track as mono float32 blocks at ``sampling_rate``, decoded as they are read.

    Why: a 12-hour recording is 2.8 GB of samples at 16 kHz; a consumer that works block by block (VAD,
    window cutting) keeps memory flat whatever the length. Blocks hold ``_BLOCK_FRAMES`` samples or a little
    more (the last one fewer), are fresh arrays the consumer may keep, and are exactly the samples
    :func:`decode` returns for the file, in order.

    Every iteration decodes the file from the start (a second pass reads the same samples) and runs
    :func:`decode`'s checks: a file that cannot be opened raises before the first block; damage only the
    whole decode can show (cut off, undecodable tail, too many bad packets) raises after the last block,
    so a consumer that reads to the end never takes a damaged file for a whole one.
    WAV/FLAC/Ogg-Vorbis go through libsndfile when it can read them (no FFmpeg demuxing); everything else,
    and anything libsndfile rejects, through FFmpeg. When libsndfile fails in the middle of a file, FFmpeg
    takes over from the sample where it stopped (both decode lossless formats to the same samples).
    """

    def __init__(
        self, path: Path | str, sampling_rate: int = SAMPLE_RATE, *, allow_truncated: bool = False
    ) -> None:
        if sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be positive, got {sampling_rate}")
        self.path = Path(path)
        self.sampling_rate = sampling_rate
        self.allow_truncated = allow_truncated
        self.expected_samples: int | None = None  # the header's length, once an iteration has opened the file
        self.samples = 0  # handed out by the current (or last) iteration

    def __iter__(self) -> Iterator[np.ndarray]:
        self.samples, self.expected_samples = 0, None
        head = _check_readable(self.path)
        sniffed = _sniff(head)
        if sniffed.not_media:
            raise _fail(NotAudioError, self.path, _not_audio_message(sniffed.not_media))
        if self.path.suffix.lower() in _SOUNDFILE_SUFFIXES:
            try:
                for block in _soundfile_blocks(self, head):
                    self.samples += len(block)
                    yield block
                return
            except _NotForSoundfile:
                pass  # FFmpeg reads it (and classifies what is wrong with it)
        skip = self.samples
        for block in _ffmpeg_blocks(self, head):
            if skip:
                cut = min(skip, len(block))
                skip -= cut
                block = block[cut:]
                if not len(block):
                    continue
            self.samples += len(block)
            yield block


_E = TypeVar("_E", bound=AudioError)


def _fail(cls: type[_E], path: Path, reason: str) -> _E:
    """``error.reason`` (what is wrong, what to do) stays path-free for callers that print the path
    themselves (CLI, job list); ``str(error)`` is the whole sentence with the file named."""
    exc = cls(path, reason)
    exc.args = (f"{path}: {reason}",)
    return exc


# --- file checks -------------------------------------------------------------------------------------
def _check_readable(path: Path) -> bytes:
    """Turn OS-level problems into their errors before FFmpeg hides them; returns the file's first bytes."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _fail(
            FileDisappearedError,
            path,
            "file disappeared before it could be read (moved, renamed or deleted); "
            "add it again from where it is now",
        ) from None
    except PermissionError:
        raise _unreadable(path, "permission denied while looking at the file") from None
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(
            UnreadableFileError,
            path,
            "is a folder, not a file; add the recordings inside it, or watch the folder instead",
        )
    if not stat.S_ISREG(st.st_mode):
        raise _fail(
            UnreadableFileError,
            path,
            "is not a regular file (a pipe or device); save the recording to a file first",
        )
    if st.st_size == 0:
        raise _fail(
            EmptyFileError,
            path,
            "file is empty (0 bytes); it may still be copying or downloading — "
            "wait until it is complete, then add it again",
        )
    try:
        with open(path, "rb") as fh:
            return fh.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise _fail(
            FileDisappearedError, path, "file disappeared while opening it (moved or deleted); add it again"
        ) from None
    except PermissionError:
        raise _unreadable(path, "permission denied") from None
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from None


def _unreadable(path: Path, why: str) -> UnreadableFileError:
    return _fail(
        UnreadableFileError,
        path,
        f"cannot read the file ({why}); give your user read access to it, "
        "or copy it to a folder you can read",
    )


@dataclass(frozen=True)
class _Sniffed:
    media: str | None = None  # a container we recognise by its magic bytes
    not_media: str | None = None  # something that is certainly not audio, described for the user


_NOT_MEDIA_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
)


def _sniff(head: bytes) -> _Sniffed:
    """Recognise containers and obvious non-audio by their first bytes (FFmpeg's own guess is too lenient)."""
    h = head
    if h[:4] in (b"RIFF", b"RF64", b"BW64") and h[8:12] == b"WAVE":
        return _Sniffed(media="WAV")
    if h[:4] == b"RIFF" and h[8:12] == b"AVI ":
        return _Sniffed(media="AVI")
    if h[:4] == b"RIFF" and h[8:12] == b"WEBP":
        return _Sniffed(not_media="a WebP image")
    simple = {
        b"fLaC": "FLAC",
        b"OggS": "Ogg",
        b"\x1a\x45\xdf\xa3": "Matroska/WebM",
        b"caff": "CAF",
        b"#!AM": "AMR",
        b".snd": "AU",
        b"wvpk": "WavPack",
        b"MAC ": "Monkey's Audio",
        b"FLV\x01": "FLV",
        b"\x00\x00\x01\xba": "MPEG program stream",
    }
    if h[:4] in simple:
        return _Sniffed(media=simple[h[:4]])
    if h[:3] == b"ID3":
        return _Sniffed(media="MP3")
    if h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"):
        return _Sniffed(media="AIFF")
    if h[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return _Sniffed(media="MP4/MOV")
    if h[:8] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11":
        return _Sniffed(media="ASF/WMA")
    if len(h) >= 2 and h[0] == 0xFF and (h[1] & 0xE0) == 0xE0:
        return _Sniffed(media="MPEG audio")
    if len(h) > 376 and h[0] == 0x47 and h[188] == 0x47 and h[376] == 0x47:
        return _Sniffed(media="MPEG transport stream")
    for magic, what in _NOT_MEDIA_MAGIC:
        if h.startswith(magic):
            return _Sniffed(not_media=what)
    if _looks_like_text(h):
        return _Sniffed(not_media="a text file")
    return _Sniffed()


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut by the sniff window
            return False
        text = head[: exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
    return printable >= 0.97 * max(1, len(text))


def _not_audio_message(what: str) -> str:
    return (
        f"this is {what}, not an audio or video recording; choose the recording itself "
        "(if the file was renamed, give it back its real extension)"
    )


# --- FFmpeg ------------------------------------------------------------------------------------------
def _open_container(path: Path, head: bytes) -> av.container.InputContainer:
    import av

    sniffed = _sniff(head)
    if sniffed.not_media:
        raise _fail(NotAudioError, path, _not_audio_message(sniffed.not_media))
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FileNotFoundError:
        raise _fail(
            FileDisappearedError, path, "file disappeared while opening it (moved or deleted); add it again"
        ) from None
    except av.error.PermissionError:
        if not os.access(path, os.R_OK):
            raise _unreadable(path, "permission denied") from None
        raise _damaged(path, head, "FFmpeg cannot read its header") from None
    except av.error.FFmpegError as exc:
        if sniffed.media:
            raise _damaged(path, head, f"its header cannot be read ({_ffmpeg_reason(exc)})") from None
        raise _fail(
            NotAudioError,
            path,
            f"not an audio or video file FFmpeg recognises ({_ffmpeg_reason(exc)}); check that this "
            "is the recording, or convert it to WAV, FLAC or MP3 with another program",
        ) from None


def _damaged(path: Path, head: bytes, detail: str) -> TruncatedFileError:
    media = _sniff(head).media
    kind = f"{media} file" if media else "file"
    return _fail(
        TruncatedFileError,
        path,
        f"this {kind} is cut off or damaged: {detail}; copy or download it again, "
        "or export it again from the app that recorded it",
    )


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _audio_stream(path: Path, head: bytes, container: av.container.InputContainer) -> Any:
    streams = list(container.streams.audio)
    if not streams:
        fmt = container.format.name
        if any(name in fmt for name in _IMAGE_DEMUXERS) or fmt.endswith("_pipe") or not _sniff(head).media:
            raise _fail(
                NotAudioError,
                path,
                f"FFmpeg reads this as {container.format.long_name or fmt}, which has no sound; "
                "choose the recording itself",
            )
        what = "video but no audio track" if _has_video(container) else "no audio track"
        raise _fail(
            NoAudioStreamError,
            path,
            f"this {_container_name(path, container)} file has {what}, so there is nothing to "
            "transcribe; check that the recording was made with sound (microphone on, audio not muted)",
        )
    from av.stream import Disposition

    return next((s for s in streams if s.disposition & Disposition.default), streams[0])


def _has_video(container: av.container.InputContainer) -> bool:
    from av.stream import Disposition

    return any(not (s.disposition & Disposition.attached_pic) for s in container.streams.video)


def _container_name(path: Path, container: av.container.InputContainer) -> str:
    names = container.format.name.split(",")
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in names else names[0]


def _any_duration(container: av.container.InputContainer, stream: Any) -> float | None:
    """Best figure for display and buffer sizing; may be an estimate."""
    seconds = _stream_duration(stream)
    if seconds is None and container.duration is not None:
        seconds = container.duration / 1_000_000
    return seconds


@dataclass(frozen=True)
class _Stated:
    """What a header promises about the file's length. Only these may accuse a file of being truncated:
    FFmpeg's other figures are estimates (bitrate, last Ogg page), and an estimate that is off would reject
    a healthy file."""

    audio_seconds: float | None = None  # sample count / rate: compared with the samples decoded
    stream_end: float | None = None  # the audio track's duration: compared with the last packet's end time
    file_bytes: int | None = None  # the total size: compared with the size on disk
    # the whole file's duration (video included): only a loose check, audio may legitimately end earlier
    container_seconds: float | None = None

    def length(self) -> float | None:
        return self.audio_seconds if self.audio_seconds is not None else self.stream_end


def _stated(path: Path, head: bytes, container: Any, stream: Any) -> _Stated:
    """Per container, the one figure that is written down rather than guessed.

    Timestamped containers are judged by timestamps or byte counts, not by sample counts: a recording with
    gaps (dropped audio) or a video track that outlasts the audio is not truncated.
    """
    fmt = container.format.name
    if fmt == "wav":
        return _Stated(audio_seconds=_wav_declared_duration(path))
    if fmt == "flac":
        return _Stated(audio_seconds=_flac_declared_duration(head))
    if fmt == "aiff" or (fmt == "mp3" and _mp3_has_length_header(path)):  # COMM frames; Xing frame count
        return _Stated(audio_seconds=_stream_duration(stream))
    if fmt.startswith("mov,mp4"):
        return _Stated(stream_end=_stream_duration(stream))  # the audio track's own duration (mdhd)
    if fmt.startswith("matroska"):
        seconds = container.duration / 1_000_000 if container.duration is not None else None
        return _Stated(file_bytes=_ebml_segment_end(head), container_seconds=seconds)
    if fmt == "asf":
        return _Stated(file_bytes=_asf_file_size(head), container_seconds=_asf_play_seconds(head))
    if fmt == "avi" and head[:4] == b"RIFF":
        return _Stated(file_bytes=struct.unpack("<I", head[4:8])[0] + 8)
    return _Stated()


def _stream_duration(stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _flac_declared_duration(head: bytes) -> float | None:
    """STREAMINFO's total sample count (0 in streamed FLAC: unknown)."""
    if head[:4] != b"fLaC" or len(head) < 42 or head[4] & 0x7F != 0:
        return None
    info = head[8:42]
    rate = (info[10] << 12) | (info[11] << 4) | (info[12] >> 4)
    total = ((info[13] & 0x0F) << 32) | int.from_bytes(info[14:18], "big")
    return total / rate if rate and total else None


def _ebml_segment_end(head: bytes) -> int | None:
    """Where the Matroska Segment says the file ends (None for live recordings, which leave it open)."""

    def vint(pos: int) -> tuple[int, int, bool]:
        first = head[pos]
        length = 9 - first.bit_length() if first else 9
        if length > 8 or pos + length > len(head):
            raise ValueError("bad EBML size")
        value = first & (0xFF >> length)
        for byte in head[pos + 1 : pos + length]:
            value = (value << 8) | byte
        return value, length, value == (1 << (7 * length)) - 1

    try:
        if head[:4] != b"\x1a\x45\xdf\xa3":
            return None
        size, n, _ = vint(4)
        pos = 4 + n + size
        if head[pos : pos + 4] != b"\x18\x53\x80\x67":
            return None
        size, n, unknown = vint(pos + 4)
        return None if unknown else pos + 4 + n + size
    except (IndexError, ValueError):
        return None


_WAV_PCM_TAGS = (0x0001, 0x0003, 0x0006, 0x0007)  # integer PCM, float, A-law, µ-law: fixed bytes per frame


def _wav_declared_duration(path: Path) -> float | None:
    """Seconds of audio the RIFF header promises (libsndfile and FFmpeg both clamp it to the file size).

    PCM-like data: data size / block size. Compressed WAV (IMA ADPCM from dictaphones, MP3-in-WAV): only the
    ``fact`` chunk's frame count says; without one there is no stated length.
    """
    try:
        with open(path, "rb") as fh:
            riff = fh.read(12)
            if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
                return None  # RF64/BW64 keep sizes in ds64; not worth a parser
            rate = block_align = tag = 0
            fact_frames: int | None = None
            while True:
                header = fh.read(8)
                if len(header) < 8:
                    return None
                chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
                body_len = min(size, 40) if chunk_id in (b"fmt ", b"fact") else 0
                body = fh.read(body_len)
                if chunk_id == b"fmt ":
                    if len(body) < 16:
                        return None
                    tag, _, rate, _, block_align = struct.unpack("<HHIIH", body[:14])
                    # WAVE_FORMAT_EXTENSIBLE keeps the real format tag in its sub-format GUID
                    if tag == 0xFFFE and len(body) >= 26:
                        tag = struct.unpack("<H", body[24:26])[0]
                elif chunk_id == b"fact" and len(body) >= 4:
                    fact_frames = struct.unpack("<I", body[:4])[0]
                elif chunk_id == b"data":
                    if size in (0, 0xFFFFFFFF) or not rate:
                        return None  # streaming writers leave the size open
                    if tag in _WAV_PCM_TAGS and block_align:
                        return size / block_align / rate
                    return fact_frames / rate if fact_frames else None
                fh.seek(size - len(body) + (size & 1), os.SEEK_CUR)
    except (OSError, struct.error):
        return None


_ASF_FILE_PROPERTIES = bytes.fromhex("a1dcab8c47a9cf118ee400c00c205365")


def _asf_play_seconds(head: bytes) -> float | None:
    at = head.find(_ASF_FILE_PROPERTIES)
    if at < 0 or len(head) < at + 92:
        return None
    play, _send, preroll_ms, flags = struct.unpack("<QQQI", head[at + 64 : at + 92])
    return None if flags & 1 or play == 0 else max(0.0, play / 1e7 - preroll_ms / 1e3)


def _asf_file_size(head: bytes) -> int | None:
    """The File Size field of ASF's File Properties object (not filled in for broadcast streams)."""
    at = head.find(_ASF_FILE_PROPERTIES)
    if at < 0 or len(head) < at + 92:
        return None
    (size,) = struct.unpack("<Q", head[at + 40 : at + 48])
    (flags,) = struct.unpack("<I", head[at + 88 : at + 92])
    return None if flags & 1 or size == 0 else size


def _mp3_has_length_header(path: Path) -> bool:
    """A Xing/Info/VBRI frame states the frame count; without it FFmpeg guesses from the first bitrate."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(10)
            offset = 0
            if start[:3] == b"ID3" and len(start) == 10:
                size = start[6:10]
                offset = 10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3])
            fh.seek(offset)
            frame = fh.read(2048)
    except OSError:
        return False
    return any(tag in frame for tag in (b"Xing", b"Info", b"VBRI"))


class _Sink:
    """One growing float32 buffer: avoids a list of chunks plus a concatenated copy (2× peak memory)."""

    def __init__(self, expected_samples: int | None) -> None:
        capacity = int(expected_samples * 1.01) + 4096 if expected_samples else 30 * SAMPLE_RATE
        self.buf = np.empty(capacity, dtype=np.float32)
        self.n = 0

    def add(self, chunk: np.ndarray) -> None:
        end = self.n + len(chunk)
        if end > len(self.buf):
            grown = np.empty(max(end, int(len(self.buf) * 1.5)), dtype=np.float32)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n : end] = chunk
        self.n = end

    def result(self) -> np.ndarray:
        out = self.buf
        out.resize((self.n,), refcheck=False)  # shrinks in place: no second copy of an hour of audio
        return out


class _Gather:
    """Resampled frames (about a thousand samples each) gathered into blocks of at least ``_BLOCK_FRAMES``."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.n = 0

    def add(self, chunk: np.ndarray) -> None:
        if len(chunk):
            self.parts.append(chunk)
            self.n += len(chunk)

    def take(self, *, final: bool = False) -> list[np.ndarray]:
        """The gathered block once it is full (or, ``final``, whatever is left), clipped; else nothing."""
        if not self.n or (self.n < _BLOCK_FRAMES and not final):
            return []
        block = np.concatenate(self.parts)  # a fresh array: never a view of a frame's buffer
        self.parts, self.n = [], 0
        return [_clipped(block)]


def _clipped(block: np.ndarray) -> np.ndarray:
    """In place: resampling filters overshoot slightly at full scale, and float WAV may hold anything."""
    return np.clip(block, -1.0, 1.0, out=block)


class _Resampler:
    """FFmpeg's resampler to mono float at the target rate; rebuilt if the input format changes mid-file."""

    def __init__(self, rate: int, out: Callable[[np.ndarray], None]) -> None:
        self.rate = rate
        self.out = out
        self.key: tuple[str, str, int] | None = None
        self.impl: Any = None

    def feed(self, frame: Any) -> None:
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key != self.key:
            self.flush()
            import av

            # rematrix_maxval=1 makes the downmix an average (FFmpeg's default sums stereo at -3 dB, which
            # clips correlated full-scale channels and differs from the libsndfile path)
            self.impl = av.AudioResampler(
                format="flt", layout="mono", rate=self.rate, options={"rematrix_maxval": "1.0"}
            )
            self.key = key
        self._take(self.impl.resample(frame))

    def flush(self) -> None:
        if self.impl is not None:
            self._take(self.impl.resample(None))
            self.impl = None
            self.key = None

    def _take(self, frames: list[Any]) -> None:
        for out in frames:
            self.out(out.to_ndarray().reshape(-1))


def _ffmpeg_blocks(state: AudioStream, head: bytes) -> Iterator[np.ndarray]:
    import av

    path, rate = state.path, state.sampling_rate
    with _open_container(path, head) as container:
        stream = _audio_stream(path, head, container)
        if stream.codec_context is None:
            raise _fail(
                UnreadableFileError,
                path,
                "its audio uses a codec this FFmpeg build cannot decode; "
                "convert it to WAV, FLAC or MP3 with another program",
            )
        stated = _stated(path, head, container, stream)
        estimate = stated.length() or _any_duration(container, stream)
        state.expected_samples = math.ceil(estimate * rate) if estimate else None
        gather = _Gather()
        resampler = _Resampler(rate, gather.add)
        progress = _Progress(stream)
        handed = 0
        try:
            for packet in container.demux(stream):
                progress.packet(packet)
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    progress.bad_packet()
                    continue
                progress.frames(len(frames))
                for frame in frames:
                    resampler.feed(frame)
                for block in gather.take():
                    handed += len(block)
                    yield block
        except av.error.FFmpegError as exc:
            if getattr(exc, "errno", None) in (errno.EIO, errno.ESTALE, errno.ENXIO):
                raise _unreadable(path, f"reading failed: {_ffmpeg_reason(exc)}") from None
            progress.stopped = _ffmpeg_reason(exc)
        resampler.flush()
        total = handed + gather.n
        decoded = total / rate
        log.debug("decoded %s: %.2f s, %d packets, %d bad", path, decoded, progress.packets, progress.bad)
        if total == 0:
            if (estimate or 0) > 0.5 or progress.bad or progress.stopped:
                raise _damaged(path, head, "no audio in it can be decoded")
            raise _fail(
                EmptyFileError,
                path,
                "holds no audio at all (a header with 0 seconds of sound); the recording may have failed "
                "or still be in progress — check it in the app that made it",
            )
        if not state.allow_truncated:
            _check_complete(path, head, stated, decoded, progress)
        elif progress.bad or progress.stopped:
            log.warning("%s: damaged audio skipped; using the %.1f s that decode", path, decoded)
        yield from gather.take(final=True)


class _Progress:
    """What the decode loop saw, for judging completeness afterwards."""

    def __init__(self, stream: Any) -> None:
        self.time_base = stream.time_base
        self.start = stream.start_time or 0
        self.packets = 0
        self.bad = 0
        self.tail_bad = False  # the last packets that should have produced audio failed to decode
        self.stopped: str | None = None  # the demuxer gave up with this error
        self.last_end: int | None = None  # in time_base units

    def packet(self, packet: Any) -> None:
        self.packets += 1
        if packet.pts is not None:
            end = packet.pts + (packet.duration or 0)
            self.last_end = end if self.last_end is None else max(self.last_end, end)

    def bad_packet(self) -> None:
        self.bad += 1
        self.tail_bad = True

    def frames(self, count: int) -> None:
        if count:
            self.tail_bad = False

    def end_seconds(self) -> float | None:
        if self.last_end is None or not self.time_base:
            return None
        return float((self.last_end - self.start) * self.time_base)


def _short_by(expected: float, got: float) -> bool:
    return expected - got > max(0.5, 0.002 * expected)


def _check_complete(path: Path, head: bytes, stated: _Stated, decoded: float, seen: _Progress) -> None:
    if stated.audio_seconds is not None and _short_by(stated.audio_seconds, decoded):
        raise _damaged(
            path,
            head,
            f"it ends after {_clock(decoded)} of the {_clock(stated.audio_seconds)} its header announces",
        )
    end = seen.end_seconds()
    if stated.stream_end is not None and end is not None and _short_by(stated.stream_end, end):
        raise _damaged(
            path,
            head,
            f"its audio stops at {_clock(end)} of the {_clock(stated.stream_end)} its header announces",
        )
    if stated.file_bytes is not None:
        size = path.stat().st_size
        if size < stated.file_bytes:
            raise _damaged(
                path,
                head,
                f"it holds {size * 100 // stated.file_bytes} % of the data its header announces "
                f"(the audio stops after {_clock(decoded)})",
            )
    whole = stated.container_seconds
    heard = end if end is not None else decoded
    if whole is not None and heard < 0.5 * whole and whole - heard > 1.0:
        raise _damaged(
            path, head, f"its audio stops at {_clock(heard)} although the file lasts {_clock(whole)}"
        )
    if seen.stopped is not None:
        raise _damaged(path, head, f"reading stops at {_clock(decoded)} ({seen.stopped})")
    if seen.tail_bad:
        raise _damaged(path, head, f"it ends in undecodable data after {_clock(decoded)}")
    if seen.bad > max(2, seen.packets // 100):
        raise _damaged(path, head, f"{seen.bad} of its {seen.packets} audio packets cannot be decoded")
    if seen.bad:
        log.warning("%s: skipped %d damaged audio packets of %d", path, seen.bad, seen.packets)


def _clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# --- libsndfile fast path ----------------------------------------------------------------------------
class _NotForSoundfile(Exception):
    """libsndfile cannot read this file (or stopped in it): FFmpeg takes over, and gives the precise error."""


def _soundfile_blocks(state: AudioStream, head: bytes) -> Iterator[np.ndarray]:
    """Decode WAV/FLAC/Vorbis with libsndfile; raises ``_NotForSoundfile`` to hand the file to FFmpeg."""
    import soundfile as sf

    path, rate = state.path, state.sampling_rate
    try:
        fh = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        raise _NotForSoundfile() from None
    with fh:
        required = _SOUNDFILE_FORMATS.get(fh.format, "")
        if required == "" or (required is not None and fh.subtype != required) or fh.samplerate <= 0:
            raise _NotForSoundfile()
        src_rate, frames = fh.samplerate, fh.frames
        if fh.format in ("WAV", "WAVEX"):
            expected = _wav_declared_duration(path)
        elif fh.format == "FLAC":
            expected = _flac_declared_duration(head)
        else:
            expected = None  # Ogg states no length
        estimate = expected if expected is not None else (frames / src_rate if 0 < frames < 2**62 else None)
        state.expected_samples = math.ceil(estimate * rate) if estimate else None
        handed = 0
        try:
            blocks = (
                (_clipped(block) for block in _mono_blocks(fh))
                if src_rate == rate
                else _resampled(_frames_of(fh, src_rate), rate)
            )
            for block in blocks:
                handed += len(block)
                yield block
        except (sf.LibsndfileError, RuntimeError):
            raise _NotForSoundfile() from None  # corrupt FLAC/Vorbis data: FFmpeg gives the precise error
    if handed == 0:
        raise _NotForSoundfile()  # libsndfile returns nothing for some broken Ogg files without complaint
    decoded = handed / rate
    if not state.allow_truncated and expected is not None and _short_by(expected, decoded):
        raise _damaged(
            path,
            head,
            f"it ends after {_clock(decoded)} of the {_clock(expected)} its header announces",
        )


def _resampled(frames: Iterator[Any], rate: int) -> Iterator[np.ndarray]:
    gather = _Gather()
    resampler = _Resampler(rate, gather.add)
    for frame in frames:
        resampler.feed(frame)
        yield from gather.take()
    resampler.flush()
    yield from gather.take(final=True)


def _mono_blocks(fh: Any) -> Iterator[np.ndarray]:
    while True:
        block = fh.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
        if not len(block):
            return
        yield block[:, 0].copy() if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)


def _frames_of(fh: Any, src_rate: int) -> Iterator[Any]:
    import av

    start = 0
    for mono in _mono_blocks(fh):
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = src_rate
        frame.time_base = Fraction(1, src_rate)
        frame.pts = start
        yield frame
        start += len(mono)
