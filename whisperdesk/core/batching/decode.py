"""From a batch's encoder output to segments: generate, temperature fallback, tokens → segments, tail recovery.

Pure functions over a loaded model (no threads, no queue), so each step can be tested on real weights alone.
They reuse faster-whisper's own pieces (``get_prompt``, ``_split_segments_by_timestamps``,
``generate_with_fallback``, ``add_word_timestamps``, ``restore_speech_timestamps``) with the sequential
path's thresholds; windows are decoded independently (no conditioning on the previous window), as in
``BatchedInferencePipeline``.

**The unfinished tail.** Decoding with timestamps, Whisper often ends a window with text that has no closing
timestamp: the last sentence runs to (or past) the window's end. ``_split_segments_by_timestamps`` drops that
text, because the sequential path then seeks back to the last complete timestamp and decodes from there
again. Decoding each window once, the scheduler used to lose those sentences (real base weights: WER 10.0 %
against 8.1 % sequential, whole sentences missing). :func:`split_window` therefore reports where the
unfinished tail starts, and the scheduler decodes that stretch again as a *follow-up window*
(:func:`tail_features`: the same window's log-mel frames from the last timestamp on, padded to 30 s — the
frames the sequential path would decode), fed back into the batch queue ahead of new windows.

Decided by measurement (2-core CPU, int8, beam 5, batch 8, espeak-ng corpus from
:mod:`whisperdesk.devtools.speech_corpus`; shared, noisy machine). Keeping the tail's tokens instead cannot
recover what was never decoded: the window that lost "He forgot his umbrella..." ended ``<|20.00|><|20.00|>``
with no text after it (85-s file, tiny.en: 16.8 % WER and one sentence missing either way, sequential 13.6 %).
Re-decoding from the last timestamp: 11.4 %, nothing missing; on a 10-min file 6.4 % (before 8.2 %,
sequential 6.2 %), at the same speed within noise (9.9× vs 10.1× realtime; 4 follow-ups for 26 windows).
Keeping the tokens is only the last resort, after :data:`MAX_TAIL_ROUNDS` follow-ups or when a follow-up
makes no headway.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from whisperdesk.core.batching.layout import ModelHandle
from whisperdesk.core.settings import DecodeOptions
from whisperdesk.core.transcript import Segment, Word

# faster-whisper's defaults for what DecodeOptions does not expose; the sequential path uses the same values.
BEST_OF = 5
PATIENCE = 1.0
LENGTH_PENALTY = 1.0
REPETITION_PENALTY = 1.0
NO_REPEAT_NGRAM_SIZE = 0
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
MAX_INITIAL_TIMESTAMP = 1.0
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
MAX_LENGTH = 448  # Whisper's decoder context
N_FRAMES = 3000  # log-mel frames in a 30-s window
MAX_TAIL_ROUNDS = 4  # follow-up decodes of one window at most; then the tail's tokens are kept as they are
MIN_TAIL_SECONDS = 0.2  # a shorter unfinished stretch holds no word worth another decode
MIN_SPEECH_SECONDS = 0.3  # a window (or tail) with less speech after VAD is not decoded (see is_silence)
SNAP_SECONDS = 0.4  # a segment start this close before a VAD join belongs after it (see snap_starts)
JOIN_STEP = 1e-4  # seconds past a join (1.6 samples): in the later chunk whatever the float rounding
MIN_REMOVED_SAMPLES = 160  # 10 ms: a join with less silence removed is not one (see snap_starts)
LANGUAGE_SURE = 0.5  # a first window this sure names the file's language (faster-whisper's threshold) ...
LANGUAGE_WINDOWS = 3  # ... else up to this many of the file's windows vote


@dataclass
class Decoded:
    """One window's best hypothesis."""

    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    temperature: float


@dataclass(frozen=True)
class GenerateCall:
    """Everything one batched ``generate`` gets; the seam tests use to observe or inject faults."""

    model: Any  # faster_whisper.WhisperModel
    encoder_output: Any  # ctranslate2.StorageView
    prompts: list[list[int]]
    kwargs: dict[str, Any]
    members: tuple[tuple[int, int], ...]
    device: str


GenerateFn = Callable[[GenerateCall], list[Any]]


def default_generate(call: GenerateCall) -> list[Any]:
    return list(call.model.model.generate(call.encoder_output, call.prompts, **call.kwargs))


# --- StorageView helpers ----------------------------------------------------------------------------------
class StorageHolder:
    """Keeps numpy buffers alive as long as the StorageViews built on them."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []


def as_numpy(storage: Any) -> np.ndarray:
    if str(storage.device) != "cpu":
        import ctranslate2

        storage = storage.to_device(ctranslate2.Device.cpu)
    return np.asarray(storage)


def storage(array: np.ndarray, holder: StorageHolder) -> Any:
    import ctranslate2

    array = np.ascontiguousarray(array)
    holder.arrays.append(array)
    return ctranslate2.StorageView.from_array(array)


def select_rows(encoder_output: Any, indices: Sequence[int], holder: StorageHolder) -> Any:
    """Rows ``indices`` of a batch's encoder output (for per-file word alignment and per-window fallback)."""
    if list(indices) == list(range(int(encoder_output.shape[0]))):
        return encoder_output
    return storage(as_numpy(encoder_output)[list(indices)], holder)


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


# --- language, prompts, generate ---------------------------------------------------------------------------
def language_distributions(model: Any, encoder_output: Any) -> list[dict[str, float]]:
    """Every language's probability, for each row of an encoder output."""
    return [
        {token[2:-2]: float(p) for token, p in ranked}
        for ranked in model.model.detect_language(encoder_output)
    ]


def vote(distributions: Sequence[dict[str, float]]) -> tuple[str, float]:
    """The language with the highest mean probability over several windows, and that mean.

    One window can mislead: an English espeak-ng memo read as Swahili (0.48 against 0.34 English) on its
    first window is English at 0.44 on its second; the sequential path, which trusts one window (it chose
    Swahili at 0.67 on the same file), and the scheduler both decoded it as gibberish.
    """
    totals: dict[str, float] = {}
    for dist in distributions:
        for language, p in dist.items():
            totals[language] = totals.get(language, 0.0) + p
    language = max(totals, key=totals.__getitem__)
    return language, totals[language] / max(1, len(distributions))


def suppress_tokens(tokenizer: Any) -> list[int]:
    from faster_whisper.transcribe import get_suppressed_tokens

    return list(get_suppressed_tokens(tokenizer, [-1]))


def prompts_for(
    handle: ModelHandle, tokenizers: Sequence[Any], initial_prompt: str | None
) -> list[list[int]]:
    """One prompt per window (its own language and task token), all with the same shape."""
    previous = handle.prompt_tokens(initial_prompt)
    return [
        handle.model.get_prompt(tok, previous_tokens=previous, without_timestamps=False) for tok in tokenizers
    ]


def generate_kwargs(model: Any, tokenizer: Any, options: DecodeOptions, prompt_length: int) -> dict[str, Any]:
    """The first-temperature ``generate`` arguments the sequential path would use for these options."""
    max_length = MAX_LENGTH
    if options.max_new_tokens is not None:
        max_length = min(MAX_LENGTH, prompt_length + options.max_new_tokens)
    kwargs: dict[str, Any] = {
        "length_penalty": LENGTH_PENALTY,
        "repetition_penalty": REPETITION_PENALTY,
        "no_repeat_ngram_size": NO_REPEAT_NGRAM_SIZE,
        "max_length": max_length,
        "return_scores": True,
        "return_no_speech_prob": True,
        "suppress_blank": True,
        "suppress_tokens": suppress_tokens(tokenizer),
        "max_initial_timestamp_index": round(MAX_INITIAL_TIMESTAMP / model.time_precision),
    }
    first = options.temperature[0]
    if first > 0:
        kwargs.update(beam_size=1, num_hypotheses=BEST_OF, sampling_topk=0, sampling_temperature=first)
    else:
        kwargs.update(beam_size=options.beam_size, patience=PATIENCE)
    return kwargs


def read_results(results: Sequence[Any], temperature: float) -> list[Decoded]:
    decoded = []
    for result in results:
        tokens = list(result.sequences_ids[0])
        seq_len = len(tokens)
        avg_logprob = float(result.scores[0]) * (seq_len**LENGTH_PENALTY) / (seq_len + 1)
        decoded.append(Decoded(tokens, avg_logprob, float(result.no_speech_prob), temperature))
    return decoded


# --- temperature fallback ---------------------------------------------------------------------------------
def needs_fallback(text: str, out: Decoded) -> bool:
    """The sequential path's rule: retry a too repetitive or too unlikely result, unless it is silence."""
    from faster_whisper.transcribe import get_compression_ratio

    if out.no_speech_prob > NO_SPEECH_THRESHOLD and out.avg_logprob < LOG_PROB_THRESHOLD:
        return False
    return get_compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD or out.avg_logprob < LOG_PROB_THRESHOLD


def transcription_options(options: DecodeOptions, tokenizer: Any, temperatures: Sequence[float]) -> Any:
    from faster_whisper.transcribe import TranscriptionOptions

    return TranscriptionOptions(
        beam_size=options.beam_size,
        best_of=BEST_OF,
        patience=PATIENCE,
        length_penalty=LENGTH_PENALTY,
        repetition_penalty=REPETITION_PENALTY,
        no_repeat_ngram_size=NO_REPEAT_NGRAM_SIZE,
        log_prob_threshold=LOG_PROB_THRESHOLD,
        no_speech_threshold=NO_SPEECH_THRESHOLD,
        compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
        condition_on_previous_text=False,
        prompt_reset_on_temperature=0.5,
        temperatures=list(temperatures),
        initial_prompt=options.initial_prompt,
        prefix=None,
        suppress_blank=True,
        suppress_tokens=suppress_tokens(tokenizer),
        without_timestamps=False,
        max_initial_timestamp=MAX_INITIAL_TIMESTAMP,
        word_timestamps=options.word_timestamps,
        prepend_punctuations=PREPEND_PUNCTUATIONS,
        append_punctuations=APPEND_PUNCTUATIONS,
        multilingual=False,
        max_new_tokens=options.max_new_tokens,
        clip_timestamps="0",
        hallucination_silence_threshold=None,
        hotwords=None,
    )


def fallback(
    model: Any,
    options: DecodeOptions,
    encoder_output: Any,
    prompts: Sequence[list[int]],
    tokenizers: Sequence[Any],
    decoded: list[Decoded],
    holder: StorageHolder,
    wanted: Callable[[int], bool] | None = None,
) -> list[Decoded]:
    """Re-decode, at the next temperatures, the windows the sequential path would retry (same thresholds);
    ``wanted(i)`` False skips window ``i`` (its job was canceled)."""
    rest = list(options.temperature[1:])
    out = list(decoded)
    if not rest:
        return out
    for i, first in enumerate(decoded):
        if wanted is not None and not wanted(i):
            continue
        if not needs_fallback(tokenizers[i].decode(first.tokens).strip(), first):
            continue
        result, avg_logprob, temperature, _ratio = model.generate_with_fallback(
            select_rows(encoder_output, [i], holder),
            prompts[i],
            tokenizers[i],
            transcription_options(options, tokenizers[i], rest),
        )
        out[i] = Decoded(
            list(result.sequences_ids[0]),
            float(avg_logprob),
            float(result.no_speech_prob),
            float(temperature),
        )
    return out


def is_silence(out: Decoded) -> bool:
    """The sequential path's "no voice activity" rule: a window the model thinks holds no speech, and whose
    text it is unsure of, gives no segment (``generate_segments`` fast-forwards past it).

    Without it the scheduler kept what base invents on silence: on lj_printing_a.flac the 0.23-s tail after
    the last word decoded as " Thank you very much." (no-speech probability 0.73, mean log-probability
    -1.36), which faster-whisper's sequential path drops by this rule.
    """
    return out.no_speech_prob > NO_SPEECH_THRESHOLD and out.avg_logprob <= LOG_PROB_THRESHOLD


SILENT = Decoded([], float("-inf"), 1.0, 0.0)  # what a window too short to decode counts as


# --- tokens → segments ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowText:
    """A window's complete segments and, when its decode stopped mid-segment, where that tail starts.

    ``items`` are faster-whisper segment dicts (``start``/``end`` in the window's timeline). ``resume`` is
    the offset in seconds from the window's start of the last complete timestamp, when text after it was
    left unfinished; None when the window is complete.
    """

    items: list[dict[str, Any]]
    resume: float | None
    size: int  # the window's length in log-mel frames, for word alignment


def window_frames(model: Any, duration: float) -> int:
    return int(math.ceil(duration) * model.frames_per_second)


def split_window(
    model: Any, tokenizer: Any, out: Decoded, offset: float, duration: float, *, keep_tail: bool = False
) -> WindowText:
    """Segments of one decoded window (times in the speech timeline, clamped to the window).

    ``keep_tail`` keeps an unfinished tail's tokens as a last segment that runs to the window's end, instead
    of reporting where it starts (the scheduler's last resort, see the module docstring).
    """
    from faster_whisper.transcribe import get_compression_ratio

    size = window_frames(model, duration)
    if is_silence(out):
        return WindowText([], None, size)
    subsegments, seek, single_ending = model._split_segments_by_timestamps(
        tokenizer=tokenizer,
        tokens=out.tokens,
        time_offset=offset,
        segment_size=size,
        segment_duration=duration,
        seek=0,
    )
    resume = None
    resume_s = seek / model.frames_per_second
    if seek < size and not single_ending and duration - resume_s >= MIN_TAIL_SECONDS:
        # Like the sequential path, decode again from the last complete timestamp even when no text follows
        # it: a window ending "<|20.00|><|20.00|>" has stopped before speech it never transcribed.
        if keep_tail or seek == 0:
            tail = _tail_tokens(out.tokens, subsegments, tokenizer)
            if tail:
                subsegments.append({"start": offset + resume_s, "end": offset + duration, "tokens": tail})
        else:
            resume = resume_s
    window_end = offset + duration
    items = []
    for sub in subsegments:
        text = tokenizer.decode(sub["tokens"])
        start = clamp(float(sub["start"]), offset, window_end)
        items.append(
            {
                "text": text,
                "tokens": sub["tokens"],
                "start": start,
                "end": clamp(float(sub["end"]), start, window_end),
                "seek": int(offset * model.frames_per_second),
                "avg_logprob": out.avg_logprob,
                "no_speech_prob": out.no_speech_prob,
                "compression_ratio": get_compression_ratio(text),
            }
        )
    return WindowText(items, resume, size)


def _tail_tokens(tokens: list[int], subsegments: list[dict[str, Any]], tokenizer: Any) -> list[int]:
    """The text tokens after the last complete segment (what ``_split_segments_by_timestamps`` dropped)."""
    used = sum(len(s["tokens"]) for s in subsegments)
    rest = tokens[used:]
    return rest if any(t < tokenizer.eot and t < tokenizer.timestamp_begin for t in rest) else []


def tail_features(features: np.ndarray, resume: float, duration: float, frames_per_second: int) -> np.ndarray:
    """The window's log-mel frames from ``resume`` to its end, padded to 30 s: the follow-up window.

    Cutting the features (not the audio) is what the sequential path does when it seeks: it slices the
    whole file's features at the seek point and pads.
    """
    start = round(resume * frames_per_second)
    end = min(features.shape[-1], math.ceil(duration * frames_per_second))
    piece = features[:, start:end]
    return np.ascontiguousarray(np.pad(piece, ((0, 0), (0, N_FRAMES - piece.shape[-1]))), dtype=np.float32)


def add_words(
    model: Any,
    windows: list[WindowText],
    tokenizer: Any,
    encoder_rows: Any,
    last_speech_timestamp: float,
) -> float | None:
    """Word timestamps for the windows' segments (in place); returns the last speech timestamp."""
    items = [w.items for w in windows]
    last = model.add_word_timestamps(
        items,
        tokenizer,
        encoder_rows,
        [w.size for w in windows],
        PREPEND_PUNCTUATIONS,
        APPEND_PUNCTUATIONS,
        last_speech_timestamp,
    )
    return None if last is None else float(last)


def to_segments(
    items: list[dict[str, Any]],
    low: float,
    high: float,
    *,
    words: bool,
    speech_chunks: Sequence[dict[str, int]] | None,
    duration: float,
) -> list[Segment]:
    """WhisperDesk segments of one window: word times clamped to the window, mapped back to file time
    when VAD cut the silences out, and kept inside the file."""
    from faster_whisper.transcribe import Segment as FwSegment
    from faster_whisper.transcribe import Word as FwWord
    from faster_whisper.transcribe import restore_speech_timestamps

    fw_segments = []
    for n, item in enumerate(items):
        fw_words = None
        if words:
            fw_words = []
            for wd in item.get("words", []):
                start = clamp(float(wd["start"]), low, high)
                fw_words.append(
                    FwWord(start, clamp(float(wd["end"]), start, high), wd["word"], wd["probability"])
                )
        fw_segments.append(
            FwSegment(
                id=n,
                seek=item["seek"],
                start=round(item["start"], 3),
                end=round(item["end"], 3),
                text=item["text"],
                tokens=item["tokens"],
                avg_logprob=item["avg_logprob"],
                compression_ratio=item["compression_ratio"],
                no_speech_prob=item["no_speech_prob"],
                words=fw_words,
                temperature=None,
            )
        )
    if speech_chunks:
        if not words:  # word times map word by word; a bare segment start needs this
            starts = snap_starts([g.start for g in fw_segments], [g.end for g in fw_segments], speech_chunks)
            fw_segments = [dataclasses.replace(g, start=t) for g, t in zip(fw_segments, starts, strict=True)]
        fw_segments = list(restore_speech_timestamps(fw_segments, list(speech_chunks), 16000))
    out = []
    for seg in fw_segments:
        start = clamp(float(seg.start), 0.0, duration)
        seg_words = tuple(
            Word(
                clamp(float(w.start), 0.0, duration),
                clamp(float(w.end), 0.0, duration),
                w.word,
                float(w.probability),
            )
            for w in (seg.words or ())
        )
        out.append(Segment(start, clamp(float(seg.end), start, duration), seg.text, seg_words))
    return out


def snap_starts(
    starts: Sequence[float], ends: Sequence[float], speech_chunks: Sequence[dict[str, int]]
) -> list[float]:
    """Segment starts (speech-only timeline) moved past a VAD join they sit just before.

    Whisper's timestamps have 20-ms steps, so a segment that begins where VAD joined two speech chunks often
    starts a few hundredths before the join. Mapped back to the file, that start lands at the end of the
    earlier chunk and the segment (and its subtitle cue) spans the whole silence VAD removed (3.1 s instead
    of 33.1 s in the test). A start within :data:`SNAP_SECONDS` of a join whose segment ends after it moves
    onto the join: the last ``speech_pad_ms`` (400 ms) of a chunk is padding, not a word.
    """
    chunks = list(speech_chunks)
    joins = []
    total = 0
    for chunk, after in itertools.pairwise(chunks):
        total += int(chunk["end"]) - int(chunk["start"])
        # Only where VAD removed silence: there a chunk ends with its full padding. Where it split long
        # speech (30-s limit) or shared the padding of a short pause, nothing was removed and the last
        # 0.4 s before the join is speech.
        if int(after["start"]) - int(chunk["end"]) > MIN_REMOVED_SAMPLES:
            joins.append(total / 16000)
    out = []
    for start, end in zip(starts, ends, strict=True):
        for join in joins:
            if join - SNAP_SECONDS <= start < join and join + JOIN_STEP < end:
                start = join + JOIN_STEP  # just past it: maps to the later chunk's first sample
                break
        out.append(start)
    return out
