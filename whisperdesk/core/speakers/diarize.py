"""Who spoke when: speech regions → overlapping 1.5-s windows → CAM++ embeddings → clusters → speaker turns.

Runs on the CPU with onnxruntime only (no torch), never touches the shared Whisper model, and walks the audio
in blocks of a few minutes so that memory stays flat, progress is reported and a cancel is noticed quickly.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from whisperdesk.core.errors import Cancelled
from whisperdesk.core.speakers.cluster import CHUNK, centroids, cluster
from whisperdesk.core.speakers.count import SpeakerCount
from whisperdesk.core.speakers.model import SpeakerEmbedder, shared_embedder

SAMPLE_RATE = 16000
FRAME_SHIFT = 0.01  # fbank frames per second = 100
BLOCK_SECONDS = 300.0
ProgressFn = Callable[[float, float], None]
# Silero VAD for speaker turns, more lenient than its 0.5 default: quiet far-field meeting speech was missed
# (26 % of the reference speech of the AMI excerpt ami_dev00 at 0.5, 22 % at 0.35, 11 % with turns widened by
# 0.25 s) while no false alarm appeared on the real recordings. Windows are embedded on the tight regions
# (60-ms pad): a wider pad joins the regions of two people across a short pause, and windows spanning both
# voices blur the clusters (it cost the right count on a built 3-person set). The turns are widened into the
# silence around them afterwards, by TURN_PAD, without crossing a neighbour's turn.
VAD_THRESHOLD = 0.35
VAD_PAD_MS = 60
VAD_MIN_SILENCE_MS = 150
TURN_PAD = 0.19


@dataclass(frozen=True)
class Turn:
    """One stretch of speech by one speaker (speaker numbers start at 0, in order of first appearance)."""

    start: float
    end: float
    speaker: int


@dataclass(frozen=True)
class DiarizeOptions:
    count: SpeakerCount = field(default_factory=SpeakerCount)
    window: float = 1.5
    hop: float = 0.6
    min_window: float = 0.5  # speech shorter than this carries too little voice to embed
    batch: int = 16
    threads: int = 1
    chunk: int = CHUNK


@dataclass
class _Windows:
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    region: list[int] = field(default_factory=list)
    embeddings: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class Voiceprint:
    """What one speaker of a recording sounds like: the unit mean of their windows' embeddings, and how many
    seconds of their speech it rests on (for the voice library: the more seconds, the surer)."""

    embedding: np.ndarray
    seconds: float


@dataclass
class Diarization:
    turns: list[Turn]
    voices: dict[int, Voiceprint]  # by speaker number (speakers too short to embed have none)


def diarize(
    audio: np.ndarray,
    options: DiarizeOptions | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    embedder: SpeakerEmbedder | None = None,
) -> list[Turn]:
    """Speaker turns for 16-kHz mono float audio; raises Cancelled when ``cancel`` is set."""
    return diarize_voices(audio, options, progress=progress, cancel=cancel, embedder=embedder).turns


def diarize_voices(
    audio: np.ndarray,
    options: DiarizeOptions | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    embedder: SpeakerEmbedder | None = None,
) -> Diarization:
    """Speaker turns and each speaker's voiceprint; raises Cancelled when ``cancel`` is set."""
    options = options or DiarizeOptions()
    embedder = embedder or shared_embedder(options.threads)
    duration = len(audio) / SAMPLE_RATE
    windows = _Windows()
    regions: list[tuple[float, float]] = []
    block = int(BLOCK_SECONDS * SAMPLE_RATE)
    for offset in range(0, max(len(audio), 1), block):
        _check(cancel)
        for start, end in _speech_regions(audio[offset : offset + block], offset / SAMPLE_RATE):
            if regions and start - regions[-1][1] < 0.05:  # a region cut by the block edge
                start = regions.pop()[0]
            regions.append((start, end))
        if progress is not None:
            progress(min(offset + block, len(audio)) / SAMPLE_RATE * 0.2, duration)
    for index, (start, end) in enumerate(regions):
        _check(cancel)
        _embed_region(audio, start, end, index, options, embedder, windows)
        if progress is not None:
            progress(duration * 0.2 + end * 0.75, duration)
    _check(cancel)
    voices: dict[int, Voiceprint] = {}
    if windows.embeddings:
        embeddings = np.concatenate(windows.embeddings)
        labels = cluster(embeddings, options.count, chunk=options.chunk)
        turns = _turns(windows, labels, regions)
        cents, _ = centroids(embeddings, labels)
        for speaker, embedding in enumerate(cents):
            seconds = sum(t.end - t.start for t in turns if t.speaker == speaker)
            voices[speaker] = Voiceprint(embedding.astype(np.float32), seconds)
    else:  # only snippets too short to tell voices apart: one speaker
        turns = _widen([Turn(s, e, 0) for s, e in regions])
    if progress is not None:
        progress(duration, duration)
    return Diarization(turns, voices)


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("speaker labelling canceled")


def _speech_regions(audio: np.ndarray, offset: float) -> list[tuple[float, float]]:
    """Silero VAD (bundled with faster-whisper) speech regions of one block, in seconds from file start."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(audio) < SAMPLE_RATE // 10:
        return []
    vad = VadOptions(
        threshold=VAD_THRESHOLD,
        min_silence_duration_ms=VAD_MIN_SILENCE_MS,
        speech_pad_ms=VAD_PAD_MS,
        min_speech_duration_ms=200,
    )
    stamps = get_speech_timestamps(audio, vad)
    return [(offset + s["start"] / SAMPLE_RATE, offset + s["end"] / SAMPLE_RATE) for s in stamps]


def fbank(samples: np.ndarray) -> np.ndarray:
    """80-bin Kaldi log-mel filterbank (25-ms frames, 10-ms shift, no dither), as CAM++ was trained on."""
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.mel_opts.num_bins = 80
    bank = knf.OnlineFbank(opts)
    bank.accept_waveform(SAMPLE_RATE, samples)
    bank.input_finished()
    frames = bank.num_frames_ready
    if frames == 0:
        return np.zeros((0, 80), dtype=np.float32)
    return np.stack([bank.get_frame(i) for i in range(frames)]).astype(np.float32)


def _window_starts(frames: int, size: int, hop: int) -> list[int]:
    if frames <= size:
        return [0]
    starts = list(range(0, frames - size + 1, hop))
    if starts[-1] + size < frames:
        starts.append(frames - size)
    return starts


def _embed_region(
    audio: np.ndarray,
    start: float,
    end: float,
    index: int,
    options: DiarizeOptions,
    embedder: SpeakerEmbedder,
    out: _Windows,
) -> None:
    if end - start < options.min_window:
        return
    feats = fbank(audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)])
    size, hop = round(options.window / FRAME_SHIFT), round(options.hop / FRAME_SHIFT)
    starts = _window_starts(len(feats), size, hop)
    for first in range(0, len(starts), options.batch):
        group = starts[first : first + options.batch]
        batch = np.stack([feats[s : s + size] for s in group])
        batch -= batch.mean(axis=1, keepdims=True)  # per-window mean normalisation, as in training
        out.embeddings.append(embedder.embed(batch))
        for s in group:
            out.starts.append(start + s * FRAME_SHIFT)
            out.ends.append(min(end, start + (s + size) * FRAME_SHIFT))
            out.region.append(index)


def _turns(windows: _Windows, labels: np.ndarray, regions: list[tuple[float, float]]) -> list[Turn]:
    """Each overlap of two windows is split at its middle; same-speaker neighbours are joined."""
    pieces: list[Turn] = []
    count = len(labels)
    for i in range(count):
        region = regions[windows.region[i]]
        same_prev = i > 0 and windows.region[i - 1] == windows.region[i]
        same_next = i + 1 < count and windows.region[i + 1] == windows.region[i]
        left = (windows.starts[i] + windows.ends[i - 1]) / 2 if same_prev else region[0]
        right = (windows.ends[i] + windows.starts[i + 1]) / 2 if same_next else region[1]
        pieces.append(Turn(left, right, int(labels[i])))
    return _widen(_fill_unembedded(_join(pieces), regions, set(windows.region)))


def _widen(turns: list[Turn], pad: float = TURN_PAD) -> list[Turn]:
    """Each turn reaches ``pad`` further into the silence on each side; two turns never overlap."""
    out: list[Turn] = []
    for i, turn in enumerate(turns):
        start = turn.start - pad
        if out:
            start = max(start, out[-1].end)
        end = turn.end + pad
        if i + 1 < len(turns):
            end = min(end, max(turn.end, (turn.end + turns[i + 1].start) / 2))
        out.append(Turn(max(0.0, start), end, turn.speaker))
    return _join(out)


def _join(pieces: list[Turn]) -> list[Turn]:
    joined: list[Turn] = []
    for piece in pieces:
        if joined and joined[-1].speaker == piece.speaker and piece.start - joined[-1].end < 1e-6:
            joined[-1] = Turn(joined[-1].start, piece.end, piece.speaker)
        else:
            joined.append(piece)
    return joined


def _fill_unembedded(turns: list[Turn], regions: list[tuple[float, float]], embedded: set[int]) -> list[Turn]:
    """Speech too short to embed goes to the speaker of the nearest turn in time."""
    ends = [t.end for t in turns]
    extra: list[Turn] = []
    for index, (start, end) in enumerate(regions):
        if index in embedded:
            continue
        at = bisect.bisect_left(ends, start)
        near = [turns[i] for i in (at - 1, at) if 0 <= i < len(turns)]
        nearest = min(near, key=lambda t: min(abs(t.start - end), abs(t.end - start)))
        extra.append(Turn(start, end, nearest.speaker))
    return _join(sorted(turns + extra, key=lambda t: t.start))
