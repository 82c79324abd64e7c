"""Speaker labels through the job pipeline: job option, watched-folder option, renaming with outputs rewritten."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from whisperdesk.core.engine import Engine
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, Job, JobStore
from whisperdesk.core.library import TranscriptLibrary
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.settings import (
    DecodeOptions,
    InvalidSetting,
    ModelConfig,
    OutputOptions,
    Settings,
    WatchedFolder,
)
from whisperdesk.core.speakers import model as model_module
from whisperdesk.core.speakers.count import InvalidSpeakerCount
from whisperdesk.core.speakers.evidence import speaker_evidence
from whisperdesk.core.speakers.saved import job_speakers, job_transcript_path, rename_job_speakers
from whisperdesk.devtools.speaker_corpus import DISTINCT, conversation, espeak_available

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
OUTPUT = OutputOptions(formats=("txt", "srt", "json"))


@pytest.fixture(scope="module")
def engine(tiny_en_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Loaded on the first job (the engine loads lazily), shared by this module's jobs. Closed at the end:
    a canceled job's batch may still be decoding, and exiting under it aborts the interpreter."""
    eng = Engine(ModelConfig(model=str(tiny_en_model), device="cpu"), tmp_path_factory.mktemp("models"))
    yield eng
    eng.close()


@pytest.fixture
def ledger(tmp_path: Path) -> OutputLedger:
    return OutputLedger(tmp_path / "data" / "ledger.json")


def _run(store: JobStore, engine: Engine, ledger: OutputLedger, source: Path, speakers: str | None) -> Job:
    settings = Settings(decode=DecodeOptions(beam_size=1), output=OUTPUT)
    store.add(
        source, job_settings(settings, speakers=speakers), origin="watched", watch_folder=str(source.parent)
    )
    job = store.claim_next()
    assert job is not None
    return JobProcessor(store, engine, ledger, lambda: settings).process(job)


@pytest.fixture
def meeting(tmp_path: Path) -> Path:
    source = tmp_path / "meeting.wav"
    sf.write(source, conversation(DISTINCT[:2], 25, seed=6).audio, 16000)
    return source


def test_job_with_speakers_labels_outputs_and_renaming_rewrites_them(
    store: JobStore, engine: Engine, ledger: OutputLedger, meeting: Path
) -> None:
    done = _run(store, engine, ledger, meeting, "auto")
    assert done.state == DONE, done.error
    assert job_speakers(done.id) == ["Speaker 1", "Speaker 2"]
    with TranscriptLibrary.beside(store.path) as library:  # the transcript of record, for the rename dialog
        entry = library.for_job(done.id)
        assert entry is not None and entry.speakers == ["Speaker 1", "Speaker 2"]
        evidence = speaker_evidence(entry.transcript)
    assert [e.name for e in evidence] == ["Speaker 1", "Speaker 2"]
    assert sum(e.share for e in evidence) == pytest.approx(1.0) and all(e.share > 0.2 for e in evidence)
    for e in evidence:
        assert 1 <= len(e.lines) <= 3 and all(
            entry.transcript.segments[x.segment_index].speaker == e.name for x in e.lines
        )
    txt = meeting.with_suffix(".txt")
    assert txt.read_text(encoding="utf-8").startswith("Speaker 1: ")
    srt = meeting.with_suffix(".srt")
    srt.write_text(srt.read_text(encoding="utf-8") + "\nmy own note\n", encoding="utf-8")  # the user edits it

    result = rename_job_speakers(done, {"Speaker 1": "Ada", "Speaker 2": "Grace"}, ledger, OUTPUT)

    assert set(result.rewritten) == {txt, meeting.with_suffix(".json")}
    assert result.kept == (srt,)
    assert "my own note" in srt.read_text(encoding="utf-8")
    assert txt.read_text(encoding="utf-8").startswith("Ada: ")
    assert "\n\nGrace: " in txt.read_text(encoding="utf-8")
    data = json.loads(meeting.with_suffix(".json").read_text(encoding="utf-8"))
    assert {s["speaker"] for s in data["segments"]} == {"Ada", "Grace"}
    assert job_speakers(done.id) == ["Ada", "Grace"]
    again = rename_job_speakers(done, {"Grace": "Grace H."}, ledger, OUTPUT)  # our rewrite is ours again
    assert txt in again.rewritten


def test_job_without_speakers_keeps_plain_outputs(
    store: JobStore, engine: Engine, ledger: OutputLedger, meeting: Path
) -> None:
    done = _run(store, engine, ledger, meeting, None)
    assert done.state == DONE, done.error
    assert "Speaker" not in meeting.with_suffix(".txt").read_text(encoding="utf-8")
    assert job_speakers(done.id) == []
    assert not job_transcript_path(done.id).exists()


def test_speaker_options_are_checked_where_they_are_set() -> None:
    assert job_settings(Settings(), speakers="2-3")["speakers"] == "2-3"
    assert "speakers" not in job_settings(Settings())
    with pytest.raises(InvalidSpeakerCount):
        job_settings(Settings(), speakers="many")
    WatchedFolder(path="/rec", speakers="auto").validate()
    with pytest.raises(InvalidSetting, match="speakers"):
        WatchedFolder(path="/rec", speakers="many").validate()


def test_canceling_a_speaker_job_stops_both_threads(
    store: JobStore, engine: Engine, ledger: OutputLedger, meeting: Path
) -> None:
    settings = Settings(decode=DecodeOptions(beam_size=1), output=OUTPUT)
    store.add(meeting, job_settings(settings, speakers="auto"), origin="dropped")
    job = store.claim_next()
    assert job is not None
    cancel = threading.Event()
    seen: list[float] = []

    def progress(_job_id: int, done: float, total: float) -> None:
        seen.append(done / total)
        if done > 0.1 * total:
            cancel.set()

    ended = JobProcessor(store, engine, ledger, lambda: settings).process(
        job, cancel=cancel, progress=progress
    )
    assert ended.state == CANCELED
    assert not meeting.with_suffix(".txt").exists()
    assert not job_transcript_path(job.id).exists()
    assert seen and seen == sorted(seen)
    assert not [t for t in threading.enumerate() if t.name == "whisperdesk-speakers"]


def test_damaged_speaker_model_fails_the_job_with_advice(
    store: JobStore, engine: Engine, ledger: OutputLedger, meeting: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_module, "MODEL_SHA256", "0" * 64)
    model_module.shared_embedder.cache_clear()
    try:
        failed = _run(store, engine, ledger, meeting, "auto")
    finally:
        model_module.shared_embedder.cache_clear()
    assert failed.state == FAILED
    assert "speaker-label model" in (failed.error or "") and "Reinstall WhisperDesk" in (failed.error or "")
    assert not meeting.with_suffix(".txt").exists()
