"""Make test audio offline: signals, files in every container WhisperDesk accepts, and broken files.

Tests and benchmarks use these instead of downloading samples. Signals are float32 in [-1, 1]; files are
written through soundfile (wav/flac/ogg/aiff/caf) or PyAV/FFmpeg (everything compressed and every video
container), so a round trip through ``whisperdesk.core.audio`` exercises the same libraries users hit.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_SR = 16000


# --- signals -----------------------------------------------------------------------------------------
def tone(
    freq: float = 440.0, seconds: float = 1.0, sr: int = DEFAULT_SR, amplitude: float = 0.5
) -> np.ndarray:
    t = np.arange(round(seconds * sr), dtype=np.float64) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float = 1.0, sr: int = DEFAULT_SR, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    """White noise from a fixed seed so a failing test can be rerun on identical input."""
    rng = np.random.default_rng(seed)
    return (amplitude * rng.uniform(-1.0, 1.0, round(seconds * sr))).astype(np.float32)


def silence(seconds: float = 1.0, sr: int = DEFAULT_SR) -> np.ndarray:
    return np.zeros(round(seconds * sr), dtype=np.float32)


def babble(seconds: float = 2.0, sr: int = DEFAULT_SR, seed: int = 0) -> np.ndarray:
    """Voiced-sounding bursts (a gliding harmonic series, ~4 syllables/s, with pauses).

    Not speech: useful where a test needs audio with a speech-like envelope and spectrum (levels, chunking,
    silence detection), never where a recogniser or VAD must find words.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * sr)
    t = np.arange(n, dtype=np.float64) / sr
    pitch = (
        120.0
        + 30.0 * np.sin(2 * np.pi * 0.7 * t)
        + 10.0 * rng.standard_normal() * np.sin(2 * np.pi * 0.3 * t)
    )
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t), 0.0, None) ** 2
    pauses = (np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, np.pi)) > -0.6).astype(np.float64)
    out = voice * syllables * pauses
    peak = float(np.max(np.abs(out))) or 1.0
    return (0.6 * out / peak).astype(np.float32)


def speech_like(text: str, path: Path | str, *, voice: str = "en", timeout: float = 30.0) -> Path | None:
    """Speak ``text`` into a wav file with espeak-ng; None when espeak-ng is not installed (caller skips)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [exe, "-v", voice, "-w", str(path), text], check=True, capture_output=True, timeout=timeout
    )
    return path


# --- writing files -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    container: str  # FFmpeg muxer, or "soundfile:<FORMAT>:<SUBTYPE>"
    audio_codec: str | None = None
    video_codec: str | None = None  # added when write_audio(video=None) for video containers
    rates: tuple[int, ...] = ()  # encoder's accepted rates; empty: any


_SOUNDFILE_FORMATS = {
    "wav": _Spec("soundfile:WAV:PCM_16"),
    "flac": _Spec("soundfile:FLAC:PCM_16"),
    "ogg": _Spec("soundfile:OGG:VORBIS"),
    "oga": _Spec("soundfile:OGG:VORBIS"),
    "aiff": _Spec("soundfile:AIFF:PCM_16"),
    "aif": _Spec("soundfile:AIFF:PCM_16"),
    "caf": _Spec("soundfile:CAF:PCM_16"),
}
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_FFMPEG_FORMATS = {
    "mp3": _Spec("mp3", "libmp3lame", rates=_MP3_RATES),
    "m4a": _Spec("ipod", "aac", rates=_AAC_RATES),
    "aac": _Spec("adts", "aac", rates=_AAC_RATES),
    "opus": _Spec("opus", "libopus", rates=_OPUS_RATES),
    "wma": _Spec("asf", "wmav2"),
    "mka": _Spec("matroska", "flac"),
    "amr": _Spec("amr", "libopencore_amrnb", rates=(8000,)),
    "webm": _Spec("webm", "libopus", "libvpx", rates=_OPUS_RATES),
    "mp4": _Spec("mp4", "aac", "mpeg4", rates=_AAC_RATES),
    "m4v": _Spec("mp4", "aac", "mpeg4", rates=_AAC_RATES),
    "mkv": _Spec("matroska", "aac", "mpeg4", rates=_AAC_RATES),
    "mov": _Spec("mov", "aac", "mpeg4", rates=_AAC_RATES),
    "avi": _Spec("avi", "libmp3lame", "mpeg4", rates=_MP3_RATES),
    "3gp": _Spec("3gp", "libopencore_amrnb", "mpeg4", rates=(8000,)),
}
_BIT_RATES = {"libopencore_amrnb": 12200, "wmav2": 64000}
WRITABLE_FORMATS: tuple[str, ...] = tuple(sorted(_SOUNDFILE_FORMATS.keys() | _FFMPEG_FORMATS.keys()))
"""Every ``fmt`` that :func:`write_audio` accepts (the file suffix without the dot)."""

VIDEO_SIZE = (64, 48)
VIDEO_FPS = 5


def write_audio(
    path: Path | str,
    samples: np.ndarray,
    sr: int = DEFAULT_SR,
    fmt: str | None = None,
    *,
    video: bool | None = None,
    video_seconds: float | None = None,
    streaming: bool = False,
) -> Path:
    """Write ``samples`` (float32, shape (n,) or (n, channels)) as ``fmt`` (default: the path's suffix).

    ``video=None`` adds a tiny video stream to video containers (mp4, mkv, mov, webm, avi, m4v, 3gp) so the
    decoder must pick the audio track out of a real movie file; ``video=False`` writes audio only;
    ``video_seconds`` makes the picture outlast (or stop before) the sound.
    ``streaming=True`` muxes through a non-seekable writer, as a browser's MediaRecorder or a live recorder
    does: the muxer cannot go back to fill in sizes and durations (Matroska/WebM, MP3, ADTS, Ogg only).
    Encoders that cannot take ``sr`` (AMR: 8 kHz) get the nearest rate they accept, via FFmpeg.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] < 1:
        raise ValueError(f"samples must have shape (n,) or (n, channels), got {np.shape(samples)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in _SOUNDFILE_FORMATS:
        import soundfile as sf

        _, sf_format, subtype = _SOUNDFILE_FORMATS[fmt].container.split(":")
        sf.write(str(path), data, sr, format=sf_format, subtype=subtype)
        return path
    spec = _FFMPEG_FORMATS.get(fmt)
    if spec is None:
        raise ValueError(f"cannot write {fmt!r}; choose one of {', '.join(WRITABLE_FORMATS)}")
    with_video = spec.video_codec is not None and (video is None or video)
    if video and spec.video_codec is None:
        raise ValueError(f"{fmt} is an audio-only container; cannot add a video stream")
    if streaming and spec.container not in _STREAMABLE:
        raise ValueError(
            f"{fmt} cannot be written without seeking; streaming works for {', '.join(_STREAMABLE)}"
        )
    seconds = len(data) / sr if video_seconds is None else video_seconds
    if streaming:
        sink = _NonSeekable()
        _encode_with_ffmpeg(sink, spec, data, sr, with_video, seconds=seconds)
        path.write_bytes(bytes(sink.data))
    else:
        _encode_with_ffmpeg(path, spec, data, sr, with_video, seconds=seconds)
    return path


_STREAMABLE = ("matroska", "webm", "mp3", "adts", "opus")


class _NonSeekable(io.RawIOBase):
    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)


def write_video_only(path: Path | str, seconds: float = 1.0, fmt: str | None = None) -> Path:
    """A movie with a video stream and no audio stream at all (a screen capture with the mic off)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    spec = _FFMPEG_FORMATS.get(fmt)
    if spec is None or spec.video_codec is None:
        raise ValueError(f"{fmt!r} is not a video container this helper can write")
    path.parent.mkdir(parents=True, exist_ok=True)
    _encode_with_ffmpeg(path, spec, None, DEFAULT_SR, True, seconds=seconds)
    return path


def _encode_with_ffmpeg(
    path: Path | io.RawIOBase, spec: _Spec, data: np.ndarray | None, sr: int, with_video: bool, seconds: float
) -> None:
    import av

    target = str(path) if isinstance(path, Path) else path
    with av.open(target, "w", format=spec.container) as out:
        astream = None
        if data is not None:
            assert spec.audio_codec is not None
            channels = data.shape[1]
            if spec.audio_codec == "libopencore_amrnb":
                channels = 1  # AMR-NB is mono only; downmix rather than fail
                data = data.mean(axis=1, keepdims=True)
            rate = sr if not spec.rates or sr in spec.rates else min(spec.rates, key=lambda r: abs(r - sr))
            layout = "mono" if channels == 1 else "stereo" if channels == 2 else f"{channels}c"
            astream = out.add_stream(spec.audio_codec, rate=rate, layout=layout)
            if spec.audio_codec in _BIT_RATES:
                astream.codec_context.bit_rate = _BIT_RATES[spec.audio_codec]
        vstream = None
        if with_video:
            assert spec.video_codec is not None
            vstream = out.add_stream(spec.video_codec, rate=VIDEO_FPS)
            vstream.width, vstream.height = VIDEO_SIZE
            vstream.pix_fmt = "yuv420p"
        if astream is not None and data is not None:
            _mux_audio(out, astream, data, sr)
        if vstream is not None:
            _mux_video(out, vstream, seconds)


def _mux_audio(out: object, stream: object, data: np.ndarray, sr: int) -> None:
    import av

    channels = data.shape[1]
    layout = "mono" if channels == 1 else "stereo" if channels == 2 else f"{channels}c"
    block = 4096
    pcm = np.clip(data, -1.0, 1.0)
    for start in range(0, len(pcm), block):
        chunk = np.ascontiguousarray(pcm[start : start + block].reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout=layout)
        frame.sample_rate = sr
        frame.pts = start
        frame.time_base = Fraction(1, sr)
        for packet in stream.encode(frame):  # type: ignore[attr-defined]
            out.mux(packet)  # type: ignore[attr-defined]
    for packet in stream.encode(None):  # type: ignore[attr-defined]
        out.mux(packet)  # type: ignore[attr-defined]


def _mux_video(out: object, stream: object, seconds: float) -> None:
    import av

    width, height = VIDEO_SIZE
    count = max(1, round(seconds * VIDEO_FPS))
    for i in range(count):
        shade = np.uint8(40 + (i * 37) % 180)
        frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), shade, dtype=np.uint8), format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1, VIDEO_FPS)
        for packet in stream.encode(frame):  # type: ignore[attr-defined]
            out.mux(packet)  # type: ignore[attr-defined]
    for packet in stream.encode(None):  # type: ignore[attr-defined]
        out.mux(packet)  # type: ignore[attr-defined]


# --- broken files ------------------------------------------------------------------------------------
def make_empty(path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def make_truncated(source: Path | str, dest: Path | str | None = None, fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` of ``source``'s bytes: an interrupted download or copy."""
    source = Path(source)
    dest = Path(dest) if dest is not None else source.with_name(f"{source.stem}-truncated{source.suffix}")
    data = source.read_bytes()
    dest.write_bytes(data[: max(1, int(len(data) * fraction))])
    return dest


def make_garbage_after_header(
    source: Path | str, dest: Path | str | None = None, header_bytes: int = 512, seed: int = 0
) -> Path:
    """Keep the first ``header_bytes`` of ``source`` and fill the rest (same length) with random bytes."""
    source = Path(source)
    dest = Path(dest) if dest is not None else source.with_name(f"{source.stem}-garbage{source.suffix}")
    data = source.read_bytes()
    rng = np.random.default_rng(seed)
    tail = rng.integers(0, 256, max(0, len(data) - header_bytes), dtype=np.uint8).tobytes()
    dest.write_bytes(data[:header_bytes] + tail)
    return dest


def make_not_audio(path: Path | str, kind: str = "text") -> Path:
    """A file with an audio name but other content: ``kind`` is "text" (notes saved as .wav) or "png"."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "text":
        path.write_text("Meeting notes\n- this is not a recording\n- it only has an audio name\n" * 20)
    elif kind == "png":
        path.write_bytes(_tiny_png())
    else:
        raise ValueError(f"kind must be 'text' or 'png', got {kind!r}")
    return path


def _tiny_png(width: int = 8, height: int = 8) -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
