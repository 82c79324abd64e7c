"""Long recordings as a stream: the same samples, VAD regions, windows and transcript as the whole file, in
memory that does not grow with the recording's length."""

from __future__ import annotations

import shutil
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisperdesk.core import audio
from whisperdesk.core.batching import windows
from whisperdesk.core.batching.windows import cut, plan_stream, plan_windows, scan, vad_options
from whisperdesk.core.errors import AudioError, Cancelled, TruncatedFileError
from whisperdesk.core.settings import DecodeOptions
from whisperdesk.devtools.synth_audio import make_truncated, noise, silence, tone, write_audio

SR = 16000
VAD_BATCH = windows.VAD_BATCH_WINDOWS * windows.VAD_WINDOW  # samples per Silero batch (320 s)


def _blocks(samples: np.ndarray, size: int) -> list[np.ndarray]:
    return [samples[i : i + size] for i in range(0, len(samples), size)]


@pytest.fixture(scope="module")
def talk(speech_corpus: Any) -> np.ndarray:
    """~6 min: espeak-ng speech, silences, a tone and quiet noise, so VAD regions start and stop often and
    the file spans a join between two Silero batches."""
    speech = audio.decode(speech_corpus.path)
    rng = np.random.default_rng(5)
    parts = [
        speech,
        silence(4.0),
        tone(440.0, 20.0, SR, amplitude=0.3),
        speech[: 20 * SR],
        noise(30.0, SR, amplitude=0.003, seed=1),
        speech,
        silence(2.5),
        speech[::-1].copy(),  # speech-like energy that is no language
        (0.2 * rng.standard_normal(5 * SR)).astype(np.float32),
        speech,
        silence(0.7),
        speech,
    ]
    joined = np.concatenate(parts).astype(np.float32)
    assert len(joined) > VAD_BATCH  # the test is about the join
    return joined


# --- VAD over a stream ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def whole_file_vad(talk: np.ndarray) -> tuple[np.ndarray, list[dict[str, int]]]:
    """faster-whisper's own VAD over the whole array: its probabilities and its regions (the reference)."""
    from faster_whisper.vad import get_speech_timestamps, get_vad_model

    probs = get_vad_model()(np.pad(talk, (0, 512 - len(talk) % 512)))
    return probs, get_speech_timestamps(talk, vad_options(DecodeOptions()))


def _streamed_probs(samples: np.ndarray, size: int) -> np.ndarray:
    silero = windows._SileroStream()
    probs = [p for block in _blocks(samples, size) for p in silero.feed(block)]
    return np.concatenate([*probs, silero.finish()])


def _regions(probs: np.ndarray, options: DecodeOptions, length: int, piece: int) -> list[dict[str, int]]:
    finder = windows._SpeechFinder(vad_options(options))
    for at in range(0, len(probs), piece):
        finder.feed(probs[at : at + piece])
    return finder.finish(length)


def test_streamed_vad_equals_faster_whisper_over_the_whole_file(
    talk: np.ndarray, whole_file_vad: tuple[np.ndarray, list[dict[str, int]]]
) -> None:
    """Blocks of any size, across a join of two Silero batches: the same probabilities bit for bit, and the
    decision loop fed in pieces finds the same regions as the library's single pass."""
    from faster_whisper.vad import get_speech_timestamps

    whole_probs, whole_regions = whole_file_vad
    streamed = _streamed_probs(talk, 4099)
    np.testing.assert_array_equal(streamed, whole_probs)
    assert len(whole_regions) > 5
    assert _regions(streamed, DecodeOptions(), len(talk), 777) == whole_regions
    short_pauses = DecodeOptions(vad_min_silence_ms=300)
    expected = get_speech_timestamps(talk, vad_options(short_pauses))
    assert expected != whole_regions
    assert _regions(streamed, short_pauses, len(talk), 10_000) == expected


def test_scan_finds_the_library_regions_from_blocks(
    talk: np.ndarray, whole_file_vad: tuple[np.ndarray, list[dict[str, int]]]
) -> None:
    plan = scan(_blocks(talk, VAD_BATCH + 1), DecodeOptions())
    assert list(plan.speech_chunks or ()) == whole_file_vad[1]
    assert plan.duration == len(talk) / SR


@pytest.mark.parametrize("length", [VAD_BATCH, VAD_BATCH - 1, 1000])
def test_streamed_vad_at_the_lengths_where_padding_and_batches_meet(talk: np.ndarray, length: int) -> None:
    """A multiple of 512 ends in a window of padding only, which here is a batch of its own; one sample less
    fills the last batch exactly; a file shorter than one batch is all last batch."""
    from faster_whisper.vad import get_vad_model

    samples = talk[:length]
    expected = get_vad_model()(np.pad(samples, (0, 512 - len(samples) % 512)))
    np.testing.assert_array_equal(_streamed_probs(samples, 65536), expected)


def test_windows_cut_from_a_stream_are_the_windows_of_the_whole_file(
    talk: np.ndarray, whole_file_vad: tuple[np.ndarray, list[dict[str, int]]]
) -> None:
    from faster_whisper.vad import collect_chunks

    regions = whole_file_vad[1]
    pieces, metadata = collect_chunks(talk, regions, sampling_rate=SR, max_duration=30)
    kept = [(p, m) for p, m in zip(pieces, metadata, strict=True) if len(p)]
    plan = windows.plan_from_regions(len(talk), [dict(r) for r in regions])
    streamed = list(cut(_blocks(talk, 12345), plan))
    assert len(streamed) == len(kept) == len(plan.spans) > 5
    for span, piece, (expected, meta) in zip(plan.spans, streamed, kept, strict=True):
        np.testing.assert_array_equal(piece, expected)
        assert (span.offset, span.duration) == (meta["offset"], meta["duration"])


def test_windows_without_vad_from_a_stream_are_30_second_slices(talk: np.ndarray) -> None:
    options = DecodeOptions(vad=False)
    plan = scan(_blocks(talk, 50_000), options)
    streamed = list(cut(_blocks(talk, 33_333), plan))
    step = 30 * SR
    assert len(streamed) == -(-len(talk) // step)
    for i, piece in enumerate(streamed):
        np.testing.assert_array_equal(piece, talk[i * step : (i + 1) * step])
    whole_plan, whole_pieces = plan_windows(talk, options)
    assert whole_plan == plan and len(whole_pieces) == len(streamed)


# --- decoding as a stream ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Ten seconds of changing sound per container: 16 kHz (libsndfile, no resampling), 44.1 kHz stereo
    (resampled and mixed down), and FFmpeg-only formats."""
    folder = tmp_path_factory.mktemp("recordings")
    rng = np.random.default_rng(2)
    mono16 = np.concatenate([tone(300.0, 4.0, SR, amplitude=0.9), noise(6.0, SR, amplitude=0.4)])
    sr = 44100
    left = np.concatenate([tone(523.0, 5.0, sr, amplitude=0.99), (0.5 * rng.standard_normal(5 * sr))])
    stereo = np.stack([left, left[::-1]], axis=1).astype(np.float32)
    return {
        "wav16": write_audio(folder / "a16.wav", mono16, SR),
        "flac16": write_audio(folder / "a16.flac", mono16, SR),
        "wav44": write_audio(folder / "a44.wav", stereo, sr),
        "flac44": write_audio(folder / "a44.flac", stereo, sr),
        "ogg": write_audio(folder / "a44.ogg", stereo, sr),
        "mp3": write_audio(folder / "a44.mp3", stereo, sr),
        "m4a": write_audio(folder / "a44.m4a", stereo, sr),
        "webm": write_audio(folder / "a44.webm", stereo, sr),
    }


@pytest.mark.parametrize("name", ["wav16", "flac16", "wav44", "flac44", "ogg", "mp3", "m4a", "webm"])
def test_a_stream_holds_exactly_the_decoded_samples(name: str, recordings: dict[str, Path]) -> None:
    path = recordings[name]
    stream = audio.AudioStream(path)
    blocks = list(stream)
    assert len(blocks) > 1  # ten seconds come in ~4-s blocks
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert max(len(b) for b in blocks) < 2 * (1 << 16)
    joined = np.concatenate(blocks)
    np.testing.assert_array_equal(joined, audio.decode(path))
    assert stream.samples == len(joined)
    assert float(np.abs(joined).max()) <= 1.0
    np.testing.assert_array_equal(np.concatenate(list(stream)), joined)  # a second pass reads the same


@pytest.mark.parametrize("name", ["wav44", "flac16", "mp3"])
def test_a_cut_off_file_is_reported_after_its_last_block(
    name: str, recordings: dict[str, Path], tmp_path: Path
) -> None:
    cut_file = make_truncated(recordings[name], tmp_path / f"cut{recordings[name].suffix}")
    received: list[np.ndarray] = []
    with pytest.raises(TruncatedFileError, match="cut off or damaged"):
        for block in audio.AudioStream(cut_file):
            received.append(block)
    partial = audio.AudioStream(cut_file, allow_truncated=True)
    np.testing.assert_array_equal(np.concatenate(list(partial)), audio.decode(cut_file, allow_truncated=True))


def test_a_file_that_cannot_be_read_fails_before_the_first_block(tmp_path: Path) -> None:
    from whisperdesk.core.errors import FileDisappearedError, NotAudioError

    stream = audio.AudioStream(tmp_path / "gone.wav")  # nothing is opened until it is read
    with pytest.raises(FileDisappearedError):
        next(iter(stream))
    text = tmp_path / "notes.wav"
    text.write_text("not a recording at all\n" * 50)
    with pytest.raises(NotAudioError):
        next(iter(audio.AudioStream(text)))
    with pytest.raises(ValueError):
        audio.AudioStream(text, sampling_rate=0)


def test_libsndfile_failing_mid_file_hands_over_to_ffmpeg_without_repeating_samples(
    recordings: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When libsndfile gives up after some blocks, FFmpeg goes on from the next sample (lossless FLAC decodes
    to the same samples in both), so the stream holds each sample once."""
    path = recordings["flac16"]
    expected = audio.decode(path)
    real = audio._mono_blocks

    def fails_after_one(fh: Any) -> Iterator[np.ndarray]:
        blocks = real(fh)
        yield next(blocks)
        import soundfile as sf

        raise sf.LibsndfileError(0, "injected: corrupt frame")

    monkeypatch.setattr(audio, "_mono_blocks", fails_after_one)
    np.testing.assert_array_equal(np.concatenate(list(audio.AudioStream(path))), expected)


# --- the two passes --------------------------------------------------------------------------------------
def _written(folder: Path, samples: np.ndarray, name: str) -> Path:
    return write_audio(folder / name, samples, SR)


def test_a_long_recording_is_read_twice_and_a_short_one_once(talk: np.ndarray, tmp_path: Path) -> None:
    path = _written(tmp_path, talk[: 100 * SR], "talk.flac")
    opened: list[int] = []

    def open_blocks() -> Iterable[np.ndarray]:
        opened.append(1)
        return audio.AudioStream(path)

    expected_plan, expected_pieces = plan_windows(audio.decode(path), DecodeOptions())
    for keep, reads in ((0.0, 2), (100.0, 1)):
        opened.clear()
        plan, pieces = plan_stream(open_blocks, DecodeOptions(), keep_seconds=keep)
        got = list(pieces)
        assert len(opened) == reads
        assert plan == expected_plan
        assert len(got) == len(expected_pieces)
        for a, b in zip(got, expected_pieces, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_recording_rewritten_between_the_passes_fails_with_a_clear_error(
    talk: np.ndarray, tmp_path: Path
) -> None:
    path = _written(tmp_path, talk[: 40 * SR], "memo.wav")
    plan, pieces = plan_stream(
        lambda: audio.AudioStream(path), DecodeOptions(), keep_seconds=0, source=str(path)
    )
    _written(tmp_path, talk[: 25 * SR], "memo.wav")  # the recorder wrote it again, shorter
    with pytest.raises(AudioError, match="changed while it was being transcribed") as info:
        list(pieces)
    assert info.value.path == str(path)
    assert plan.duration == pytest.approx(40.0)


def test_planning_stops_between_blocks_when_canceled(talk: np.ndarray) -> None:
    seen: list[int] = []

    def blocks() -> Iterator[np.ndarray]:
        for block in _blocks(talk, SR):
            seen.append(len(block))
            yield block

    with pytest.raises(Cancelled):
        plan_stream(blocks, DecodeOptions(), stop=lambda: len(seen) >= 3)
    assert len(seen) == 3


# --- memory -----------------------------------------------------------------------------------------------
def _long_file(folder: Path, minutes: float, clip: np.ndarray) -> Path:
    """``minutes`` of a recorder left running: silence, a tone, quiet noise and now and then speech."""
    import soundfile as sf

    path = folder / f"day-{minutes:g}.wav"
    minute = 60 * SR
    cycle = [silence(60.0), tone(440.0, 60.0, SR, amplitude=0.3), noise(60.0, SR, amplitude=0.003)]
    speech = np.zeros(minute, dtype=np.float32)
    speech[: min(len(clip), minute)] = clip[:minute]
    cycle.append(speech)
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=1, subtype="PCM_16") as out:
        for i in range(int(minutes)):
            out.write(cycle[i % len(cycle)])
    return path


def _planning_peak(path: Path) -> tuple[int, int]:
    """Peak bytes traced while the scheduler's CPU stage plans and cuts ``path`` (decode, VAD, windows)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        plan, pieces = plan_stream(lambda: audio.AudioStream(path), DecodeOptions())
        count = sum(1 for _ in pieces)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(plan.spans) > 0
    return peak, count


def test_memory_of_decoding_and_planning_does_not_grow_with_the_recording(
    speech_corpus: Any, tmp_path: Path
) -> None:
    """6 vs 16 minutes (both past one Silero batch and past what is kept from pass one): the same peak.
    Reading the whole 16 minutes would hold 61 MB of samples, and the old path three copies of them."""
    clip = audio.decode(speech_corpus.path)[: 50 * SR]
    short_peak, short_windows = _planning_peak(_long_file(tmp_path, 6, clip))
    long_peak, long_windows = _planning_peak(_long_file(tmp_path, 16, clip))
    whole = 16 * 60 * SR * 4
    assert long_windows >= 2 * short_windows  # the long file really was cut, all of it
    assert long_peak < short_peak * 1.15 + 2 * 2**20, (short_peak, long_peak)
    # one VAD batch (23 MB) and what a short file keeps (7.7 MB): well under one copy of the samples
    assert long_peak < 0.6 * whole, (long_peak, whole)


# --- the transcript ---------------------------------------------------------------------------------------
@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (the CI installs it)"
)
def test_a_streamed_file_is_transcribed_exactly_as_the_whole_array(
    tiny_en_model: Path, speech_corpus: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real weights: the scheduler reading the file in two passes (nothing kept) and the scheduler given the
    whole decoded array give the same words and timestamps."""
    from whisperdesk.core.batching.layout import ModelHandle, load_for_batching
    from whisperdesk.core.batching.scheduler import BatchScheduler

    handle = ModelHandle(load_for_batching(str(tiny_en_model), "cpu", "int8"), "cpu", "int8", "tiny.en", 8)
    monkeypatch.setattr(windows, "KEEP_SECONDS", 0.0)  # force the second read
    reads: list[Path] = []

    def counted(path: Path) -> audio.AudioStream:
        reads.append(path)
        return audio.AudioStream(path)

    scheduler = BatchScheduler(cpu_workers=1, stream_fn=counted)
    try:
        options = DecodeOptions(word_timestamps=True)
        streamed = scheduler.transcribe(handle, speech_corpus.path, options)
        whole = scheduler.transcribe(
            handle, speech_corpus.path, options, audio=audio.decode(speech_corpus.path)
        )
    finally:
        scheduler.close()
    assert len(reads) == 2
    assert [(s.start, s.end, s.text, s.words) for s in streamed.segments] == [
        (s.start, s.end, s.text, s.words) for s in whole.segments
    ]
    assert streamed.duration == whole.duration and len(streamed.segments) > 5


def test_a_cut_off_recording_fails_its_job_before_any_window_is_decoded(
    whisper_model_dir: Path, tmp_path: Path
) -> None:
    """Damage found at the end of pass one fails the job before its windows reach a batch (random weights:
    plumbing only, no text asserted)."""
    from faster_whisper import WhisperModel

    from whisperdesk.core.batching.layout import ModelHandle
    from whisperdesk.core.batching.scheduler import BatchScheduler

    model = WhisperModel(str(whisper_model_dir), device="cpu", compute_type="int8", cpu_threads=2)
    whole = write_audio(tmp_path / "memo.flac", noise(70.0, SR, amplitude=0.2), SR)
    damaged = make_truncated(whole, tmp_path / "memo-cut.flac")
    scheduler = BatchScheduler(cpu_workers=1)
    try:
        with pytest.raises(TruncatedFileError, match="cut off or damaged"):
            scheduler.transcribe(
                ModelHandle(model, "cpu", "int8", "micro", 8), damaged, DecodeOptions(vad=False)
            )
        assert not scheduler.history  # no batch ran
    finally:
        scheduler.close()
