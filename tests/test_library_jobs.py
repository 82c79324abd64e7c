"""The transcript library through the real job pipeline: real tiny.en weights transcribe espeak-ng speech,
the finished job lands in the library, an edit is saved into every format the job wrote, and search and
``whisperdesk search`` find what was said."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import docx
import pysubs2
import pytest

from whisperdesk.cli import main
from whisperdesk.core.engine import Engine
from whisperdesk.core.jobstore import DONE, JobStore
from whisperdesk.core.library import TranscriptLibrary, entry_for_job, save_edit, write_entry_outputs
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings
from whisperdesk.core.transcript import Transcript
from whisperdesk.devtools.speaker_corpus import espeak_available
from whisperdesk.devtools.speech_corpus import render, utterances

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed"),
]
ALL_FORMATS = ("txt", "srt", "vtt", "json", "docx", "md")
SENTENCES = ["The budget for the public holiday was approved on Monday."]


@pytest.fixture(scope="module")
def engine(tiny_en_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = Engine(ModelConfig(model=str(tiny_en_model), device="cpu"), tmp_path_factory.mktemp("models"))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(utterances(SENTENCES), tmp_path_factory.mktemp("speech") / "holiday.wav").path


@dataclasses.dataclass
class Done:
    store: JobStore
    library: TranscriptLibrary
    ledger: OutputLedger
    job_id: int
    source: Path


@pytest.fixture
def done(engine: Engine, speech: Path, tmp_path: Path) -> Iterator[Done]:
    """A job transcribed with real weights into every format, in the default data folder (so the CLI sees
    it), with the library the processor opens beside the queue."""
    paths = AppPaths.default().ensure()
    source = tmp_path / "rec" / "holiday.wav"
    source.parent.mkdir()
    source.write_bytes(speech.read_bytes())
    settings = Settings(decode=DecodeOptions(beam_size=1), output=OutputOptions(formats=ALL_FORMATS))
    store = JobStore(paths.jobs_db)
    ledger = OutputLedger.default(paths)
    store.add(source, job_settings(settings))
    job = store.claim_next()
    assert job is not None
    processor = JobProcessor(store, engine, ledger, lambda: settings)
    finished = processor.process(job)
    assert finished.state == DONE, finished.error
    library = processor.library()
    assert library is not None and library.path == paths.library_db
    yield Done(store, library, ledger, job.id, source)
    library.close()
    store.close()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _replace_word(transcript: Transcript, old: str, new: str) -> Transcript:
    segments = [
        dataclasses.replace(s, text=re.sub(old, new, s.text, flags=re.IGNORECASE), words=())
        for s in transcript.segments
    ]
    return dataclasses.replace(transcript, segments=segments)


def test_a_finished_job_lands_in_the_library(done: Done) -> None:
    entry = done.library.for_job(done.job_id)
    assert entry is not None and entry.version == 1 and not entry.edited
    assert entry.source == done.source and entry.transcript.model
    assert {"budget", "public", "holiday", "monday"} <= set(_words(entry.transcript.text))
    assert {f.format for f in entry.outputs} == set(ALL_FORMATS)
    assert all(f.sha256 and not f.changed_on_disk() for f in entry.outputs)
    (hit,) = done.library.search('"public holiday"')
    assert hit.job_id == done.job_id and "public holiday" in hit.snippet("", "").lower()


def test_save_edit_rewrites_every_format_and_search_follows(done: Done) -> None:
    entry = done.library.for_job(done.job_id)
    assert entry is not None
    fixed = _replace_word(entry.transcript, "budget", "allowance")
    report = save_edit(done.library, entry.id, fixed, ledger=done.ledger, base_version=entry.version)
    assert report.complete and report.conflicts == () and report.missing == ()
    assert {p.suffix for p in report.written} == {".txt", ".srt", ".vtt", ".json", ".docx", ".md"}
    assert report.entry.edited and report.entry.version == 2 and done.library.is_edited(done.job_id)
    files = {f.format: f.path for f in report.entry.outputs}
    srt = pysubs2.load(str(files["srt"]))
    vtt = pysubs2.load(str(files["vtt"]))
    for subs in (srt, vtt):
        text = " ".join(line.plaintext for line in subs)
        assert "allowance" in _words(text) and "budget" not in _words(text)
    document = docx.Document(io.BytesIO(files["docx"].read_bytes()))
    paragraphs = [p.text for p in document.paragraphs]
    assert paragraphs[0] == "holiday.wav" and "Edited" in paragraphs[1]
    assert "allowance" in _words(" ".join(paragraphs[2:])) and re.match(r"\[00:00:0\d\] ", paragraphs[2])
    data = json.loads(files["json"].read_text(encoding="utf-8"))
    assert data["edited"] is True and "allowance" in _words(data["text"])
    assert "allowance" in _words(files["txt"].read_text(encoding="utf-8"))
    assert "allowance" in _words(files["md"].read_text(encoding="utf-8"))
    assert [h.job_id for h in done.library.search("allowance")] == [done.job_id]
    assert done.library.search("budget") == []
    assert all(not f.changed_on_disk() for f in report.entry.outputs)  # recorded as we wrote them


def test_a_file_changed_outside_the_app_is_a_conflict_not_overwritten(done: Done) -> None:
    entry = done.library.for_job(done.job_id)
    assert entry is not None
    srt = next(f.path for f in entry.outputs if f.format == "srt")
    txt = next(f.path for f in entry.outputs if f.format == "txt")
    hand_made = "1\n00:00:00,000 --> 00:00:02,000\nMy own subtitle.\n"
    srt.write_text(hand_made, encoding="utf-8")
    txt.unlink()
    report = save_edit(
        done.library, entry.id, _replace_word(entry.transcript, "Monday", "Tuesday"), ledger=done.ledger
    )
    assert report.conflicts == (srt,) and report.missing == (txt,) and not report.complete
    assert srt.read_text(encoding="utf-8") == hand_made and not txt.exists()
    assert len(report.written) == 4
    json_path = next(f.path for f in entry.outputs if f.format == "json")
    assert "tuesday" in _words(json.loads(json_path.read_text(encoding="utf-8"))["text"])
    assert [h.job_id for h in done.library.search("tuesday")] == [done.job_id]
    again = write_entry_outputs(done.library, entry.id, ledger=done.ledger, overwrite=report.conflicts)
    assert again.conflicts == () and srt in again.written
    assert "tuesday" in _words(" ".join(line.plaintext for line in pysubs2.load(str(srt))))


def test_a_copy_of_a_done_recording_gets_its_own_record(done: Done, engine: Engine, tmp_path: Path) -> None:
    copy = tmp_path / "copy" / "same-talk.wav"
    copy.parent.mkdir()
    copy.write_bytes(done.source.read_bytes())
    settings = Settings(output=OutputOptions(formats=("txt", "md")))
    added = done.store.add(copy, job_settings(settings))
    assert added.job.copy_of == done.job_id
    job = done.store.claim_next()
    assert job is not None
    finished = JobProcessor(done.store, engine, done.ledger, lambda: settings, done.library).process(job)
    assert finished.state == DONE and finished.processing_time == 0.0
    entry = done.library.for_job(job.id)
    assert entry is not None and entry.source == copy
    assert "budget" in _words(entry.transcript.text)
    assert (copy.parent / "same-talk.md").read_text(encoding="utf-8").startswith("# same-talk.wav\n")
    assert {h.job_id for h in done.library.search("budget")} == {done.job_id, job.id}


def test_whisperdesk_search_prints_lines_and_json(done: Done, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "holi*"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    name, stamp, speaker, text = line.split("  ", 3)
    assert (name, speaker) == ("holiday.wav", "-") and re.fullmatch(r"00:00:0\d", stamp)
    assert "holiday" in _words(text)
    assert main(["search", '"public holiday"', "--json"]) == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert row["job_id"] == done.job_id and row["source"] == str(done.source)
    start, end = row["highlights"][0]
    assert row["text"][start:end].lower() == "public holiday"
    assert main(["search", "budget", "--speaker", "Speaker 9"]) == 1
    assert "no transcript has 'budget' said by Speaker 9" in capsys.readouterr().err


def test_whisperdesk_search_bad_query_is_a_plain_message(
    done: Done, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", '"']) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("whisperdesk search: error: nothing to search for")
    assert "fts5" not in captured.err.lower() and "sqlite" not in captured.err.lower()


def test_an_old_job_is_imported_from_its_json_when_first_opened(done: Done) -> None:
    entry = done.library.for_job(done.job_id)
    assert entry is not None
    done.library.delete(entry.id)  # as if the job finished before the library existed
    job = done.store.require(done.job_id)
    imported = entry_for_job(done.library, job)
    assert imported is not None and imported.imported
    assert "budget" in _words(imported.transcript.text)


def test_jobs_remove_keeps_the_transcript_unless_told(done: Done, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "remove", str(done.job_id)]) == 0
    assert f"removed job {done.job_id}" in capsys.readouterr().out
    assert done.store.get(done.job_id) is None and done.library.for_job(done.job_id) is None
    (kept,) = done.library.search("budget")
    assert kept.job_id is None and kept.source == done.source
    assert main(["search", "budget"]) == 0  # still found headless, by file name
    assert capsys.readouterr().out.startswith("holiday.wav  ")


def test_jobs_remove_delete_transcript(done: Done, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "remove", "--delete-transcript", str(done.job_id)]) == 0
    assert done.library.search("budget") == [] and done.library.count() == 0
    assert main(["search", "budget"]) == 1
