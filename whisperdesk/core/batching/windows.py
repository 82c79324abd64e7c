"""The scheduler's CPU stage for one file: speech regions, ≤ 30-s windows and their log-mel features.

A window here is exactly the window faster-whisper's batched pipeline would decode (Silero VAD
``get_speech_timestamps``, ``collect_chunks``, the model's ``FeatureExtractor`` and ``pad_or_trim``); only
*when* and *in which batch* it is decoded changes. The recording is read as a stream of blocks, twice
(:func:`plan_stream`): pass one runs VAD and keeps only speech offsets, pass two cuts the windows, so memory
does not grow with the recording's length (a 12-hour recording is 2.8 GB of samples). VAD over a stream
gives the regions faster-whisper finds over the whole file, bit for bit (:class:`_SileroStream`,
:class:`_SpeechFinder`). The plan kept per job holds no audio (only sample offsets), so a long queue costs a
few bytes per file until its features are computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from whisperdesk.core.errors import AudioError, Cancelled
from whisperdesk.core.settings import DecodeOptions

SAMPLE_RATE = 16000
WINDOW_SECONDS = 30
N_FRAMES = 3000  # log-mel frames per 30-s window, what the encoder expects
KEEP_SECONDS = 120.0  # a recording this short is kept from pass one (7.7 MB) rather than decoded twice
# faster-whisper's SileroVADModel: 512-sample windows with 64 samples of context, run 10,000 at a time
VAD_WINDOW = 512
VAD_CONTEXT = 64
VAD_BATCH_WINDOWS = 10_000


@dataclass(frozen=True)
class WindowSpan:
    """One window's place in the file; ``offset``/``duration`` are in the speech-only timeline under VAD."""

    index: int
    offset: float
    duration: float
    end_time: float  # where the window ends in the original file, for progress


@dataclass(frozen=True)
class WindowPlan:
    duration: float
    spans: tuple[WindowSpan, ...]
    speech_chunks: tuple[dict[str, int], ...] | None  # VAD regions in samples; None when VAD is off

    def timestamp_map(self) -> Any:
        """faster-whisper's map from the speech-only timeline back to the file (None without VAD)."""
        if not self.speech_chunks:
            return None
        from faster_whisper.vad import SpeechTimestampsMap

        return SpeechTimestampsMap(list(self.speech_chunks), SAMPLE_RATE)


def vad_options(options: DecodeOptions) -> Any:
    """The batched pipeline's VAD settings: speech regions at most one window long, the user's silence gap."""
    from faster_whisper.vad import VadOptions

    return VadOptions(
        min_silence_duration_ms=options.vad_min_silence_ms, max_speech_duration_s=WINDOW_SECONDS
    )


def plan_windows(audio: np.ndarray, options: DecodeOptions) -> tuple[WindowPlan, list[np.ndarray]]:
    """Split ``audio`` into windows; returns the plan and each window's samples (fresh arrays).

    The whole-array form of :func:`plan_stream`, for callers that hold the audio anyway (tests, the bench).
    """
    plan = scan((audio,), options)
    return plan, list(cut((audio,), plan))


def plan_stream(
    open_blocks: Callable[[], Iterable[np.ndarray]],
    options: DecodeOptions,
    *,
    keep_seconds: float | None = None,
    stop: Callable[[], bool] | None = None,
    source: str = "",
) -> tuple[WindowPlan, Iterator[np.ndarray]]:
    """The plan of a recording read as a stream, and an iterator of its windows' samples, in order.

    Two passes, because a window's place depends on what comes after it (VAD pads a speech region by
    looking at the next one, and a file's window count is known only at its end) while the scheduler needs
    the whole plan before it hands out the first window. Pass one (``open_blocks()``: decode, VAD) keeps
    only speech offsets; pass two opens the stream again and cuts the windows out of it one at a time, so
    memory stays at a few blocks and one window whatever the length. A recording of at most
    ``keep_seconds`` (default ``KEEP_SECONDS``) is kept from pass one instead of being decoded twice (a
    voice memo costs one decode).
    ``stop()`` is asked between blocks of pass one; true raises :class:`Cancelled`.
    """
    keep = int((KEEP_SECONDS if keep_seconds is None else keep_seconds) * SAMPLE_RATE)
    kept: list[np.ndarray] | None = []
    held = 0

    def first_pass() -> Iterator[np.ndarray]:
        nonlocal kept, held
        for block in open_blocks():
            if stop is not None and stop():
                raise Cancelled()
            if kept is not None:
                held += len(block)
                if held <= keep:
                    kept.append(block)
                else:
                    kept = None
            yield block

    plan = scan(first_pass(), options)
    return plan, cut(kept if kept is not None else open_blocks(), plan, source=source)


def scan(blocks: Iterable[np.ndarray], options: DecodeOptions) -> WindowPlan:
    """Pass one over a recording: its length, speech regions (under VAD) and windows; no samples are kept.

    Equal to faster-whisper's whole-file ``get_speech_timestamps`` + ``collect_chunks`` on the joined
    blocks, whatever the block sizes (see :class:`_SileroStream` and :class:`_SpeechFinder`).
    """
    silero = _SileroStream() if options.vad else None
    finder = _SpeechFinder(vad_options(options)) if options.vad else None
    total = 0
    for block in blocks:
        total += len(block)
        if silero is not None and finder is not None:
            for probs in silero.feed(block):
                finder.feed(probs)
    duration = float(total) / SAMPLE_RATE
    if total == 0:
        return WindowPlan(duration, (), None)
    if silero is None or finder is None:
        step = WINDOW_SECONDS * SAMPLE_RATE
        spans = []
        for i, start in enumerate(range(0, total, step)):
            length = min(step, total - start) / SAMPLE_RATE
            spans.append(WindowSpan(i, i * float(WINDOW_SECONDS), length, i * WINDOW_SECONDS + length))
        return WindowPlan(duration, tuple(spans), None)
    finder.feed(silero.finish())
    return plan_from_regions(total, finder.finish(total))


def plan_from_regions(total: int, chunks: list[dict[str, int]]) -> WindowPlan:
    """The windows faster-whisper's ``collect_chunks`` makes of these speech regions in ``total`` samples."""
    duration = float(total) / SAMPLE_RATE
    if not chunks:
        return WindowPlan(duration, (), ())
    from faster_whisper.vad import collect_chunks

    # the windows' layout depends only on the regions: no audio needed (every piece comes back empty)
    _empty, metadata = collect_chunks(
        np.zeros(0, dtype=np.float32), chunks, sampling_rate=SAMPLE_RATE, max_duration=WINDOW_SECONDS
    )
    plan = WindowPlan(duration, (), tuple(dict(c) for c in chunks))
    ts_map = plan.timestamp_map()
    spans: list[WindowSpan] = []
    for meta in metadata:
        if meta["duration"] == 0:  # collect_chunks can emit an empty leading chunk; nothing to decode there
            continue
        offset, length = float(meta["offset"]), float(meta["duration"])
        end = float(ts_map.get_original_time(offset + length, is_end=True))
        spans.append(WindowSpan(len(spans), offset, length, min(end, duration)))
    return WindowPlan(duration, tuple(spans), plan.speech_chunks)


def cut(blocks: Iterable[np.ndarray], plan: WindowPlan, *, source: str = "") -> Iterator[np.ndarray]:
    """Pass two: each window's samples (speech regions joined under VAD), cut from the stream in order.

    Holds one block and the window being filled. Raises :class:`AudioError` when the stream is not the one
    the plan was made from (the file was replaced or rewritten between the passes).
    """
    lengths = [round(span.duration * SAMPLE_RATE) for span in plan.spans]
    regions = [(c["start"], c["end"]) for c in plan.speech_chunks] if plan.speech_chunks is not None else None
    expected = round(plan.duration * SAMPLE_RATE)
    window, parts, filled = 0, [], 0
    region = 0
    position = 0
    for block in blocks:
        begin, position = position, position + len(block)
        if regions is None:
            pieces = [block]
        else:
            pieces = []
            while region < len(regions) and regions[region][0] < position:
                start, end = regions[region]
                if end > begin:
                    pieces.append(block[max(start, begin) - begin : min(end, position) - begin])
                if end > position:
                    break  # the region goes on in the next block
                region += 1
        for piece in pieces:
            while len(piece) and window < len(lengths):
                take = min(len(piece), lengths[window] - filled)
                parts.append(piece[:take])
                filled += take
                piece = piece[take:]
                if filled == lengths[window]:
                    yield np.concatenate(parts)  # a fresh array: never a view that keeps a block alive
                    window, parts, filled = window + 1, [], 0
    if position != expected or window != len(lengths):
        raise AudioError(
            source,
            "the recording changed while it was being transcribed (it now holds "
            f"{position / SAMPLE_RATE:.1f} s of audio, not {plan.duration:.1f} s); "
            "transcribe it again once it is no longer being written",
        )


class _SileroStream:
    """Silero VAD speech probabilities over a stream of blocks, equal bit for bit to faster-whisper's run.

    faster-whisper's ``SileroVADModel`` pads the whole file with 1 to 512 zeros to whole 512-sample windows,
    gives each window the previous window's last 64 samples as context (zeros for the first one), zeroes
    the last 64 samples of the last window (a side effect of how it builds the contexts, kept here), and
    runs the model ``VAD_BATCH_WINDOWS`` windows at a time, carrying the LSTM state from batch to batch.
    Running the same batches on the same inputs with the same state gives the same probabilities; a batch
    runs as soon as its windows have arrived, except the last, which waits for the end of the stream.
    Blocks are copied straight into the model's input rows, so memory is one batch (23 MB) at any length.
    """

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(VAD_CONTEXT, dtype=np.float32)
        self._inputs = np.zeros((VAD_BATCH_WINDOWS, VAD_CONTEXT + VAD_WINDOW), dtype=np.float32)
        self._samples = self._inputs[:, VAD_CONTEXT:]  # the rows' audio part, filled as blocks arrive
        self._held = 0  # samples in the batch being filled

    def feed(self, block: np.ndarray) -> Iterator[np.ndarray]:
        """Probabilities of every batch this block completes (none, usually)."""
        size = VAD_BATCH_WINDOWS * VAD_WINDOW
        at = 0
        while at < len(block):
            take = min(len(block) - at, size - self._held)
            self._copy(block[at : at + take])
            at += take
            if self._held == size:
                yield self._run(VAD_BATCH_WINDOWS, last=False)

    def finish(self) -> np.ndarray:
        """The last batch: what is left, padded with zeros as faster-whisper pads the file."""
        rows = self._held // VAD_WINDOW + 1
        row, col = divmod(self._held, VAD_WINDOW)
        self._samples[row, col:] = 0.0
        return self._run(rows, last=True)

    def _copy(self, piece: np.ndarray) -> None:
        """Append ``piece`` (it fits) to the batch's rows: the open row's end, whole rows, the next row's start."""
        at = 0
        row, col = divmod(self._held, VAD_WINDOW)
        if col:
            take = min(len(piece), VAD_WINDOW - col)
            self._samples[row, col : col + take] = piece[:take]
            at, row = take, row + (col + take == VAD_WINDOW)
        whole = (len(piece) - at) // VAD_WINDOW
        if whole:
            self._samples[row : row + whole] = piece[at : at + whole * VAD_WINDOW].reshape(whole, VAD_WINDOW)
            at, row = at + whole * VAD_WINDOW, row + whole
        if at < len(piece):
            self._samples[row, : len(piece) - at] = piece[at:]
        self._held += len(piece)

    def _run(self, rows: int, *, last: bool) -> np.ndarray:
        inputs = self._inputs[:rows]  # the first rows of a C-ordered array: contiguous
        inputs[0, :VAD_CONTEXT] = self._context
        inputs[1:, :VAD_CONTEXT] = inputs[:-1, -VAD_CONTEXT:]
        self._context = inputs[-1, -VAD_CONTEXT:].copy()
        if last:
            inputs[-1, -VAD_CONTEXT:] = 0.0
        out, self._h, self._c = self._session.run(None, {"input": inputs, "h": self._h, "c": self._c})
        self._held = 0
        return np.asarray(out)


class _SpeechFinder:
    """faster-whisper's ``get_speech_timestamps`` decision loop, fed batch by batch instead of all at once.

    The loop carries all its state from one 512-sample window to the next, so feeding the probabilities in
    pieces gives the same regions as one pass; ``finish`` closes the last region and pads them all, line
    for line as faster-whisper does (its loop is not reachable without handing it the whole file). Equality
    with the library is tested on real speech, silence and tone across batch joins.
    """

    def __init__(self, options: Any) -> None:
        sr = SAMPLE_RATE
        self.threshold = options.threshold
        self.neg_threshold = (
            options.neg_threshold
            if options.neg_threshold is not None
            else max(options.threshold - 0.15, 0.01)
        )
        self.min_speech_samples = sr * options.min_speech_duration_ms / 1000
        self.speech_pad_samples = sr * options.speech_pad_ms / 1000
        self.max_speech_samples = (
            sr * options.max_speech_duration_s - VAD_WINDOW - 2 * self.speech_pad_samples
        )
        self.min_silence_samples = sr * options.min_silence_duration_ms / 1000
        self.min_silence_samples_at_max_speech = sr * 98 / 1000
        self.index = 0
        self.triggered = False
        self.speeches: list[dict[str, int]] = []
        self.current: dict[str, int] = {}
        self.temp_end = 0  # a possible end of the current region (some silence is tolerated)
        self.prev_end = self.next_start = 0  # where to cut when a region reaches the maximum length

    def feed(self, probs: np.ndarray) -> None:
        # compared as arrays, exactly as the library compares each float32 probability with the thresholds
        speech = (probs >= self.threshold).tolist()
        silence = (probs < self.neg_threshold).tolist()
        window = VAD_WINDOW
        for is_speech, is_silence in zip(speech, silence, strict=True):
            i = self.index
            self.index += 1
            if is_speech and self.temp_end:
                self.temp_end = 0
                if self.next_start < self.prev_end:
                    self.next_start = window * i
            if is_speech and not self.triggered:
                self.triggered = True
                self.current["start"] = window * i
                continue
            if self.triggered and window * i - self.current["start"] > self.max_speech_samples:
                if self.prev_end:
                    self.current["end"] = self.prev_end
                    self.speeches.append(self.current)
                    self.current = {}
                    if self.next_start < self.prev_end:  # silence reached before and still no speech
                        self.triggered = False
                    else:
                        self.current["start"] = self.next_start
                    self.prev_end = self.next_start = self.temp_end = 0
                else:
                    self.current["end"] = window * i
                    self.speeches.append(self.current)
                    self.current = {}
                    self.prev_end = self.next_start = self.temp_end = 0
                    self.triggered = False
                    continue
            if is_silence and self.triggered:
                if not self.temp_end:
                    self.temp_end = window * i
                if window * i - self.temp_end > self.min_silence_samples_at_max_speech:  # not a short pause
                    self.prev_end = self.temp_end
                if window * i - self.temp_end < self.min_silence_samples:
                    continue
                self.current["end"] = self.temp_end
                if self.current["end"] - self.current["start"] > self.min_speech_samples:
                    self.speeches.append(self.current)
                self.current = {}
                self.prev_end = self.next_start = self.temp_end = 0
                self.triggered = False

    def finish(self, length: int) -> list[dict[str, int]]:
        """The regions of a recording of ``length`` samples, padded by ``speech_pad_ms``."""
        speeches, pad = self.speeches, self.speech_pad_samples
        if self.current and (length - self.current["start"]) > self.min_speech_samples:
            self.current["end"] = length
            speeches.append(self.current)
        for i, speech in enumerate(speeches):
            if i == 0:
                speech["start"] = int(max(0, speech["start"] - pad))
            if i != len(speeches) - 1:
                silence_duration = speeches[i + 1]["start"] - speech["end"]
                if silence_duration < 2 * pad:
                    speech["end"] += int(silence_duration // 2)
                    speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - silence_duration // 2))
                else:
                    speech["end"] = int(min(length, speech["end"] + pad))
                    speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - pad))
            else:
                speech["end"] = int(min(length, speech["end"] + pad))
        return speeches


def window_features(feature_extractor: Any, samples: np.ndarray) -> np.ndarray:
    """Log-mel features of one window, padded to 30 s: what ``BatchedInferencePipeline`` feeds the encoder."""
    from faster_whisper.audio import pad_or_trim

    features = feature_extractor(samples)[..., :-1]
    return np.ascontiguousarray(pad_or_trim(features, N_FRAMES), dtype=np.float32)


def iter_features(feature_extractor: Any, pieces: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Features window by window from an iterator of windows' samples (bounded memory: one window's)."""
    for piece in pieces:
        yield window_features(feature_extractor, piece)
