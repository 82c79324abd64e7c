"""The engine: one model, reconfigure, cancel, errors (random-weight model); progress, language, VAD timing
and the job row's language (real tiny.en/base weights)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from whisperdesk.core import engine as engine_mod
from whisperdesk.core.engine import Engine, EngineEvent, ResolvedDevice
from whisperdesk.core.errors import (
    Cancelled,
    ConfigError,
    ModelUnavailableError,
    UnsupportedComputeTypeError,
)
from whisperdesk.core.settings import DecodeOptions, ModelConfig
from whisperdesk.devtools.synth_audio import noise, write_audio

FAST = DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=24)


@pytest.fixture
def config(whisper_model_dir: Path) -> ModelConfig:
    return ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=1)


@pytest.fixture
def long_wav(tmp_path: Path) -> Path:
    return write_audio(tmp_path / "long.wav", noise(75.0, amplitude=0.3))


def test_one_model_serves_every_job(config: ModelConfig, tmp_path: Path, isolated_home: Path) -> None:
    engine = Engine(config, isolated_home / "models")
    files = [write_audio(tmp_path / f"f{i}.wav", noise(4.0 + i, seed=i)) for i in range(3)]
    results = [engine.transcribe(f, FAST) for f in files]
    assert engine.load_count == 1
    first_model = engine.model()
    assert engine.model() is first_model
    for f, t in zip(files, results, strict=True):
        assert t.source == str(f)
        assert t.duration == pytest.approx(4.0 + files.index(f), abs=0.05)
        assert t.device == "cpu" and t.compute_type.startswith("int8")  # int8 weights, float32 activations


def test_jobs_from_several_threads_share_the_model(
    config: ModelConfig, tmp_path: Path, isolated_home: Path
) -> None:
    engine = Engine(config, isolated_home / "models")
    files = [write_audio(tmp_path / f"t{i}.wav", noise(3.0, seed=i)) for i in range(4)]
    errors: list[BaseException] = []
    done: list[str] = []

    def work(path: Path) -> None:
        try:
            done.append(engine.transcribe(path, FAST).source)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(done) == sorted(str(f) for f in files)
    assert engine.load_count == 1


@pytest.fixture
def tiny_config(tiny_en_model: Path) -> ModelConfig:
    return ModelConfig(model=str(tiny_en_model), device="cpu", compute_type="int8", batch_size=1)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_progress_is_monotonic_and_reaches_duration(
    tiny_config: ModelConfig, speech_corpus: Any, isolated_home: Path, batch_size: int
) -> None:
    engine = Engine(dataclasses.replace(tiny_config, batch_size=batch_size), isolated_home / "models")
    seen: list[tuple[float, float]] = []
    options = DecodeOptions(beam_size=1, temperature=(0.0,))
    try:
        transcript = engine.transcribe(speech_corpus.path, options, progress=lambda d, t: seen.append((d, t)))
    finally:
        engine.close()
    dones = [d for d, _ in seen]
    assert dones == sorted(dones)
    assert seen[0][0] == 0.0
    assert seen[-1] == (transcript.duration, transcript.duration)
    assert len(set(dones)) >= 4  # updates arrive while it runs (segments or windows), not only at the end
    assert transcript.segments


def test_cancel_stops_between_segments(
    tiny_config: ModelConfig, speech_corpus: Any, isolated_home: Path
) -> None:
    engine = Engine(tiny_config, isolated_home / "models")
    cancel = threading.Event()
    seen: list[float] = []
    options = DecodeOptions(beam_size=1, temperature=(0.0,))

    def progress(done: float, total: float) -> None:
        seen.append(done)
        if done > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        engine.transcribe(speech_corpus.path, options, progress=progress, cancel=cancel)
    assert max(seen) < speech_corpus.duration / 2  # stopped early, after the first segment
    # the engine stays usable after a cancel
    assert engine.transcribe(speech_corpus.path, options).segments


def test_reconfigure_applies_to_next_job_only(
    config: ModelConfig, tmp_path: Path, isolated_home: Path
) -> None:
    engine = Engine(config, isolated_home / "models")
    events: list[EngineEvent] = []
    engine.add_listener(events.append)
    wav = write_audio(tmp_path / "a.wav", noise(3.0))
    assert engine.transcribe(wav, FAST).compute_type.startswith("int8")
    engine.reconfigure(dataclasses.replace(config, compute_type="float32"))
    assert engine.load_count == 1  # nothing reloads until a job needs the model
    assert engine.transcribe(wav, FAST).compute_type == "float32"
    assert engine.load_count == 2
    assert [e.kind for e in events] == ["loading", "loaded", "loading", "loaded"]
    engine.reconfigure(dataclasses.replace(config, compute_type="float32"))  # same config: no reload
    engine.transcribe(wav, FAST)
    assert engine.load_count == 2


def test_reconfigure_waits_for_the_running_job(
    config: ModelConfig, long_wav: Path, isolated_home: Path
) -> None:
    engine = Engine(config, isolated_home / "models")
    started = threading.Event()
    release = threading.Event()
    results: dict[str, Any] = {}

    def progress(done: float, total: float) -> None:
        started.set()
        release.wait(60)

    def first() -> None:
        results["first"] = engine.transcribe(long_wav, FAST, progress=progress)

    worker = threading.Thread(target=first)
    worker.start()
    assert started.wait(60)
    engine.reconfigure(dataclasses.replace(config, compute_type="float32"))
    release.set()
    worker.join(120)
    assert results["first"].compute_type.startswith("int8")  # the running job kept its model
    assert engine.transcribe(long_wav, dataclasses.replace(FAST, max_new_tokens=2)).compute_type == "float32"


def test_unsupported_compute_type_lists_supported(config: ModelConfig, isolated_home: Path) -> None:
    engine = Engine(dataclasses.replace(config, compute_type="float16"), isolated_home / "models")
    with pytest.raises(UnsupportedComputeTypeError) as info:
        engine.load()
    message = str(info.value)
    assert "float16" in message and "cpu" in message and "int8" in message and "float32" in message


def test_cuda_without_gpu_is_a_clear_error(config: ModelConfig, isolated_home: Path) -> None:
    engine = Engine(dataclasses.replace(config, device="cuda"), isolated_home / "models")
    with pytest.raises(ConfigError, match="no CUDA device"):
        engine.load()


def test_auto_device_picks_cpu_here_and_says_why(
    config: ModelConfig, isolated_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="whisperdesk")
    engine = Engine(dataclasses.replace(config, device="auto"), isolated_home / "models")
    engine.load()
    assert engine.device == "cpu"
    assert "sees no CUDA device" in caplog.text


def test_uncached_model_offline_is_one_clear_error(isolated_home: Path) -> None:
    engine = Engine(ModelConfig(model="small", device="cpu"), isolated_home / "models")
    with pytest.raises(ModelUnavailableError) as info:
        engine.load()
    message = str(info.value)
    assert (
        "model small is not downloaded" in message
        and "built-in model" in message
        and "model folder" in message
    )


def test_unknown_model_name_and_bad_folder(tmp_path: Path, isolated_home: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="does not know a model called 'huge-v9'"):
        Engine(ModelConfig(model="huge-v9", device="cpu"), isolated_home / "models").load()
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelUnavailableError, match=r"model\.bin is missing"):
        Engine(ModelConfig(model=str(empty), device="cpu"), isolated_home / "models").load()


def test_cuda_failure_at_first_use_retries_on_cpu(
    config: ModelConfig, tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No GPU here: a loader stands in for a CUDA model whose cuBLAS is missing at first use."""
    monkeypatch.setattr(engine_mod, "cuda_device_count", lambda: 1)
    real_supported = engine_mod.supported_compute_types
    monkeypatch.setattr(
        engine_mod,
        "supported_compute_types",
        lambda device: (
            {"int8", "int8_float16", "float16", "float32"} if device == "cuda" else real_supported(device)
        ),
    )

    class MissingCublasModel:
        class model:
            compute_type = "int8_float16"

        def transcribe(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")

    def loader(cfg: ModelConfig, path: str, device: ResolvedDevice) -> Any:
        if device.device == "cuda":
            return MissingCublasModel()
        return engine_mod.default_loader(cfg, path, device)

    engine = Engine(
        dataclasses.replace(config, device="cuda", compute_type="int8_float16"), tmp_path, loader=loader
    )
    events: list[EngineEvent] = []
    engine.add_listener(events.append)
    transcript = engine.transcribe(write_audio(tmp_path / "x.wav", noise(3.0)), FAST)
    assert transcript.device == "cpu" and transcript.compute_type.startswith("int8")
    fallback = [e for e in events if e.kind == "fallback"]
    assert len(fallback) == 1 and "libcublas.so.12" in fallback[0].message
    assert engine.config.device == "cpu"


@pytest.mark.parametrize("batch_size", [1, 8])
def test_language_is_detected_early_with_probability(
    base_model: Path, tmp_path: Path, isolated_home: Path, batch_size: int
) -> None:
    from whisperdesk.devtools.speech_corpus import Utterance, render

    german = render(
        [Utterance("Der Zug zum Flughafen fährt alle zwanzig Minuten ab.", "de+f2", 150, 50)] * 2,
        tmp_path / "de.wav",
    )
    config = ModelConfig(model=str(base_model), device="cpu", compute_type="int8", batch_size=batch_size)
    engine = Engine(config, isolated_home / "models")
    events: list[str] = []
    options = DecodeOptions(beam_size=1, temperature=(0.0,))
    try:
        transcript = engine.transcribe(
            german.path,
            options,
            progress=lambda d, t: events.append("done" if d >= t else "progress"),
            on_language=lambda code, p: events.append(f"language {code} {p > 0.5}"),
        )
        assert transcript.language == "de"
        assert transcript.language_probability is not None and 0.5 < transcript.language_probability <= 1.0
        assert events.count("language de True") == 1
        assert events.index("language de True") < events.index("done")  # before the job ends
        forced = engine.transcribe(german.path, dataclasses.replace(options, language="en"))
        assert forced.language == "en"
    finally:
        engine.close()


def test_language_reaches_the_job_row_while_the_job_runs(
    tiny_config: ModelConfig, speech_corpus: Any, isolated_home: Path, store: Any, tmp_path: Path
) -> None:
    from whisperdesk.core.jobstore import RUNNING
    from whisperdesk.core.outputs import OutputLedger
    from whisperdesk.core.processor import JobProcessor, job_settings
    from whisperdesk.core.settings import OutputOptions, Settings

    engine = Engine(dataclasses.replace(tiny_config, batch_size=8), isolated_home / "models")
    settings = Settings(
        decode=DecodeOptions(beam_size=1, temperature=(0.0,)), output=OutputOptions(formats=("txt",))
    )
    store.add(speech_corpus.path, job_settings(settings, output_dir=tmp_path / "out"))
    job = store.claim_next()
    assert job is not None
    rows: list[tuple[str, str | None]] = []

    def progress(job_id: int, done: float, total: float) -> None:
        row = store.get(job_id)
        rows.append((row.state, row.language))

    processor = JobProcessor(store, engine, OutputLedger(tmp_path / "ledger.json"), lambda: settings)
    try:
        final = processor.process(job, progress=progress)
    finally:
        engine.close()
    assert final.language == "en"
    running = [language for state, language in rows if state == RUNNING]
    assert running and running[-1] == "en"
    assert running.count(None) < len(running) // 2  # known from the first windows on, not only at the end


@pytest.fixture
def speech_with_silence(tmp_path: Path) -> tuple[Path, float, float]:
    """Silence, then espeak-ng speech, then silence: the VAD must keep only the middle."""
    import numpy as np

    from whisperdesk.core.audio import decode
    from whisperdesk.devtools.synth_audio import silence, speech_like

    spoken = speech_like(
        "The quarterly meeting starts at nine. Please bring the budget figures and the travel plans.",
        tmp_path / "speech.wav",
    )
    if spoken is None:
        pytest.skip("espeak-ng is not installed (the CI installs it)")
    speech = decode(spoken)
    lead = 6.0
    audio = np.concatenate([silence(lead), speech, silence(8.0)])
    path = write_audio(tmp_path / "meeting.wav", audio)
    return path, lead, lead + len(speech) / 16000


@pytest.mark.parametrize("batch_size", [1, 4])
def test_vad_keeps_speech_and_drops_silence(
    tiny_config: ModelConfig,
    speech_with_silence: tuple[Path, float, float],
    isolated_home: Path,
    batch_size: int,
) -> None:
    path, speech_start, speech_end = speech_with_silence
    engine = Engine(dataclasses.replace(tiny_config, batch_size=batch_size), isolated_home / "models")
    options = DecodeOptions(
        beam_size=1, vad=True, vad_min_silence_ms=500, temperature=(0.0,), max_new_tokens=24
    )
    try:
        transcript = engine.transcribe(path, options)
    finally:
        engine.close()
    assert transcript.segments, "the VAD found no speech in espeak-ng speech"
    for seg in transcript.segments:
        assert speech_start - 1.0 <= seg.start <= seg.end <= speech_end + 1.0
    assert "budget" in " ".join(s.text for s in transcript.segments).lower()


def test_close_stops_the_batch_scheduler_threads(
    config: ModelConfig, tmp_path: Path, isolated_home: Path
) -> None:
    before = set(threading.enumerate())
    engine = Engine(dataclasses.replace(config, batch_size=4), isolated_home / "models")
    wav = write_audio(tmp_path / "b.wav", noise(40.0))
    assert engine.transcribe(wav, FAST).extra["windows"] == 2
    started = [t for t in threading.enumerate() if t not in before and t.name != "tqdm_monitor"]
    assert started  # the scheduler runs its own threads while batching
    engine.close()
    assert [t for t in started if t.is_alive()] == []
    assert (
        engine.transcribe(wav, FAST).extra["windows"] == 2
    )  # usable again: a new scheduler starts on demand
    engine.close()
