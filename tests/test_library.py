"""The transcript library's store and search index, on transcripts written here (no model: what is asserted
is how the index finds the text it was given, not what a model heard; test_library_jobs.py runs real
weights through the job pipeline)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.jobstore import DONE, Job, JobStore
from whisperdesk.core.library import (
    SearchQueryError,
    StaleEditError,
    TranscriptLibrary,
    backfill,
    entry_for_job,
    reconcile,
    remove_job,
)
from whisperdesk.core.library import store as library_store
from whisperdesk.core.library.edit import rename_speakers
from whisperdesk.core.library.query import EmptyQuery, fts_expression, parse_query
from whisperdesk.core.outputs import OutputLedger, write_outputs
from whisperdesk.core.queue.retry import retry_discards_edits
from whisperdesk.core.settings import OutputOptions
from whisperdesk.core.transcript import Segment, Transcript, Word


def _transcript(source: str, *lines: tuple[str | None, str]) -> Transcript:
    segments = [
        Segment(
            float(i * 3),
            float(i * 3 + 2.5),
            f" {text}",
            (Word(float(i * 3), float(i * 3 + 1), f" {text.split()[0]}", 0.9, who),),
            who,
        )
        for i, (who, text) in enumerate(lines)
    ]
    return Transcript(source, segments, "en", 0.97, len(lines) * 3.0, "tiny.en", "int8", "cpu")


@pytest.fixture
def library(tmp_path: Path) -> Iterator[TranscriptLibrary]:
    lib = TranscriptLibrary(tmp_path / "data" / "library.sqlite3")
    yield lib
    lib.close()


@pytest.fixture
def filled(library: TranscriptLibrary, clock_values: list[float]) -> TranscriptLibrary:
    library.put(
        _transcript(
            "/rec/meeting.wav",
            ("Speaker 1", "Herr Müller presented the budget for next year."),
            ("Speaker 2", "The public holiday falls on a Monday."),
            ("Speaker 1", "Budgeting takes time; a holiday in public is fun."),
        ),
        job_id=1,
        job_created_at=10.0,
        created_at=clock_values[0],
    )
    library.put(
        _transcript(
            "/rec/會議.wav",
            (None, "我们的预算很紧"),
            (None, "東京タワーに行きました"),
        ),
        job_id=2,
        job_created_at=20.0,
        created_at=clock_values[1],
    )
    library.put(
        _transcript("/rec/later.wav", ("Ada", "Our budget is fine, said Ada.")),
        job_id=3,
        job_created_at=30.0,
        created_at=clock_values[2],
    )
    return library


@pytest.fixture
def clock_values() -> list[float]:
    return [1000.0, 2000.0, 3000.0]


# --- the record ----------------------------------------------------------------------------------------
def test_put_get_for_job_keeps_the_whole_transcript(library: TranscriptLibrary, tmp_path: Path) -> None:
    transcript = _transcript("/rec/a.wav", ("Speaker 1", "Hello there."), ("Speaker 2", "General Kenobi."))
    transcript.extra["vad"] = True
    out = tmp_path / "a.txt"
    out.write_text("Hello there.\n")
    entry = library.put(transcript, job_id=7, job_created_at=5.0, outputs={"txt": out}, max_line_length=30)
    again = library.for_job(7)
    assert again is not None and again == library.get(entry.id)
    assert again.job_id == 7 and again.source == Path("/rec/a.wav") and again.version == 1
    assert not again.edited and not again.transcript.edited and not again.imported
    assert again.max_line_length == 30
    assert again.speakers == ["Speaker 1", "Speaker 2"]
    assert [s.text for s in again.transcript.segments] == ["Hello there.", "General Kenobi."]
    assert again.transcript.segments[1].words[0].speaker == "Speaker 2"
    assert (again.transcript.language, again.transcript.model, again.transcript.extra) == (
        "en",
        "tiny.en",
        {"vad": True},
    )
    (file,) = again.outputs
    assert (file.format, file.path, file.size) == ("txt", out, out.stat().st_size)
    assert not file.changed_on_disk()
    out.write_text("Hello there, edited.\n")
    assert file.changed_on_disk()
    assert library.for_job(8) is None and library.get(999) is None


def test_a_job_run_again_replaces_its_record_and_clears_the_edit(library: TranscriptLibrary) -> None:
    first = library.put(_transcript("/rec/a.wav", (None, "one")), job_id=1)
    edited = library.update_transcript(first.id, _transcript("/rec/a.wav", (None, "one, corrected")))
    assert edited.edited and edited.version == 2 and library.is_edited(1)
    assert library.edited_job_ids() == {1}
    rerun = library.put(_transcript("/rec/a.wav", (None, "one again")), job_id=1)
    assert rerun.id == first.id and rerun.version == 3 and not rerun.edited
    assert not library.is_edited(1) and library.edited_job_ids() == set()
    assert [h.text for h in library.search("again")] == ["one again"]
    assert library.search("corrected") == []


def test_an_edit_from_an_old_version_is_refused(library: TranscriptLibrary) -> None:
    entry = library.put(_transcript("/rec/a.wav", (None, "one")), job_id=1)
    library.update_transcript(entry.id, _transcript("/rec/a.wav", (None, "two")), base_version=entry.version)
    with pytest.raises(StaleEditError, match=r"a\.wav was saved elsewhere"):
        library.update_transcript(entry.id, _transcript("/rec/a.wav", (None, "three")), base_version=1)
    assert [h.text for h in library.search("two")] == ["two"]


# --- search --------------------------------------------------------------------------------------------
def test_diacritics_are_ignored(filled: TranscriptLibrary) -> None:
    (hit,) = filled.search("muller")
    assert hit.text == "Herr Müller presented the budget for next year."
    assert hit.snippet() == "Herr [Müller] presented the budget for next year."
    assert [h.text for h in filled.search("MÜLLER")] == [hit.text]


def test_chinese_and_japanese_words_are_found_inside_unspaced_text(filled: TranscriptLibrary) -> None:
    (hit,) = filled.search("预算")
    assert hit.source == Path("/rec/會議.wav") and hit.snippet("<", ">") == "我们的<预算>很紧"
    (hit,) = filled.search("タワー")
    assert hit.text == "東京タワーに行きました" and hit.highlights == ((2, 5),)
    assert filled.search("东京") == []  # simplified 东 is another character than 東
    assert [h.text for h in filled.search("東京")] == ["東京タワーに行きました"]


def test_phrase_prefix_and_all_words(filled: TranscriptLibrary) -> None:
    phrase = filled.search('"public holiday"')
    assert [h.text for h in phrase] == ["The public holiday falls on a Monday."]
    assert phrase[0].snippet() == "The [public holiday] falls on a Monday."
    both = filled.search("public holiday")  # both words, any order
    assert len(both) == 2
    prefix = filled.search("budg*", order="best")
    assert {h.text for h in prefix} == {
        "Herr Müller presented the budget for next year.",
        "Budgeting takes time; a holiday in public is fun.",
        "Our budget is fine, said Ada.",
    }
    (ada,) = [h for h in prefix if h.speaker == "Ada"]
    assert ada.snippet() == "Our [budget] is fine, said Ada."
    assert filled.search("budg") == []  # without the star a word must match whole


def test_speaker_filter_and_orders(filled: TranscriptLibrary) -> None:
    assert [h.speaker for h in filled.search("budg*", speaker="speaker 1")] == ["Speaker 1", "Speaker 1"]
    assert [h.text for h in filled.search("budget", speaker="Ada")] == ["Our budget is fine, said Ada."]
    assert filled.search("budget", speaker="Nobody") == []
    newest = filled.search("budg*")
    assert [h.source.name for h in newest] == ["later.wav", "meeting.wav", "meeting.wav"]
    assert [h.segment_index for h in newest[1:]] == [0, 2]  # within a transcript, in time order
    best = filled.search("budget", order="best")
    assert best == sorted(best, key=lambda h: h.score)
    assert [h.job_id for h in newest] == [3, 1, 1] and newest[0].start == 0.0


@pytest.mark.parametrize(
    "query",
    ['"', '"budget', "budget AND", "NOT", "(budget", "budget)", "col:budget", "^budget", "NEAR(a b)", "a OR"],
)
def test_stray_quotes_and_operators_never_reach_fts_as_syntax(filled: TranscriptLibrary, query: str) -> None:
    try:
        hits = filled.search(query)
    except SearchQueryError as exc:
        assert "nothing to search for" in str(exc)
        return
    assert isinstance(hits, list)


def test_a_query_with_nothing_to_find_says_so_plainly(filled: TranscriptLibrary) -> None:
    for query in ("", "   ", '"', "***", "?!"):
        with pytest.raises(SearchQueryError, match="nothing to search for: type one or more words"):
            filled.search(query)
    assert [h.text for h in filled.search('"budget')] == [h.text for h in filled.search("budget")]


def test_query_parser_quotes_every_piece() -> None:
    assert fts_expression(parse_query('"public holi"* budg* NOT')) == '"public holi"* AND "budg"* AND "NOT"'
    assert fts_expression(parse_query('say "it"')) == '"say" AND "it"'
    with pytest.raises(EmptyQuery):
        parse_query('" "')


# --- keeping the index in step -------------------------------------------------------------------------
def test_edit_and_delete_keep_the_index_in_step(filled: TranscriptLibrary) -> None:
    entry = filled.for_job(3)
    assert entry is not None
    fixed = dataclasses.replace(
        entry.transcript, segments=[dataclasses.replace(entry.transcript.segments[0], text=" Our finances.")]
    )
    filled.update_transcript(entry.id, fixed, base_version=entry.version)
    assert [h.text for h in filled.search("finances")] == ["Our finances."]
    assert "later.wav" not in {h.source.name for h in filled.search("budget")}
    assert filled.delete(entry.id)
    assert filled.search("finances") == [] and filled.get(entry.id) is None


def test_index_rebuilt_when_missing_or_from_an_older_version(
    filled: TranscriptLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = filled.path
    filled.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE segments_fts")
    conn.commit()
    conn.close()
    with TranscriptLibrary(path) as reopened:
        assert [h.text for h in reopened.search("muller")] == [
            "Herr Müller presented the budget for next year."
        ]
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM segments_fts")  # a stale index that an older version left
    conn.commit()
    conn.close()
    monkeypatch.setattr(library_store, "INDEX_VERSION", library_store.INDEX_VERSION + 1)
    with TranscriptLibrary(path) as newer:
        assert len(newer.search("budg*")) == 3
        assert newer.get_meta("index_version") == str(library_store.INDEX_VERSION)


def test_an_unreadable_library_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    path.write_bytes(b"this is not a database at all" * 100)
    with TranscriptLibrary(path) as lib:
        assert lib.recovered_from is not None and lib.recovered_from.exists()
        assert lib.count() == 0


def test_two_recoveries_in_one_second_keep_both_damaged_copies(tmp_path: Path) -> None:
    """Kept copies are named apart (the same rule as the job store's): the second never overwrites the first."""
    path = tmp_path / "library.sqlite3"
    kept = []
    for content in (b"first damaged library" * 100, b"second damaged library" * 100):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.write_bytes(content)
        with TranscriptLibrary(path) as lib:
            assert lib.recovered_from is not None
            kept.append(lib.recovered_from)
    assert len(set(kept)) == 2
    assert sorted(k.read_bytes()[:6] for k in kept) == [b"first ", b"second"]


# --- the job queue -------------------------------------------------------------------------------------
def _done_job(
    store: JobStore, source: Path, ledger: OutputLedger, transcript: Transcript, formats: tuple[str, ...]
) -> tuple[Job, dict[str, Path]]:
    store.add(source)
    job = store.claim_next()
    assert job is not None
    written = write_outputs(transcript, source, OutputOptions(formats=formats), ledger=ledger)
    return store.mark_done(job.id, outputs=list(written.values())), written


def test_old_jobs_json_is_imported_lazily_and_by_backfill(store: JobStore, tmp_path: Path) -> None:
    ledger = OutputLedger(tmp_path / "ledger.json")
    lib = TranscriptLibrary.beside(store.path)
    sources = []
    for name in ("old1", "old2", "nojson"):
        source = tmp_path / f"{name}.wav"
        source.write_bytes(name.encode())
        sources.append(source)
    t1 = _transcript(str(sources[0]), ("Speaker 1", "The first old budget."))
    t2 = _transcript(str(sources[1]), (None, "A second old meeting."))
    job1, _ = _done_job(store, sources[0], ledger, t1, ("txt", "json"))
    job2, _ = _done_job(store, sources[1], ledger, t2, ("srt", "json"))
    job3, _ = _done_job(store, sources[2], ledger, t1, ("txt",))
    assert lib.count() == 0
    entry = entry_for_job(lib, job1)  # opened in the window: imported on the spot
    assert entry is not None and entry.imported and entry.job_id == job1.id
    assert [s.text for s in entry.transcript.segments] == ["The first old budget."]
    assert entry.created_at == job1.finished_at
    assert {f.format for f in entry.outputs} == {"txt", "json"}
    assert all(f.sha256 is None for f in entry.outputs)  # an import vouches for no file: the ledger does
    assert entry_for_job(lib, job3) is None  # no JSON to import from
    assert backfill(lib, store) == 1  # job2; job1 is there already
    assert backfill(lib, store) == 0  # once
    assert [h.job_id for h in lib.search("old")] == [job2.id, job1.id]
    json_path = next(p for p in job2.outputs if p.suffix == ".json")
    json_path.unlink()
    lib.delete(lib.for_job(job2.id).id)
    assert backfill(lib, store, force=True) == 0  # its JSON is gone
    assert store.get(job2.id).state == DONE
    lib.close()


def test_remove_job_keeps_or_deletes_its_transcript(store: JobStore, tmp_path: Path) -> None:
    ledger = OutputLedger(tmp_path / "ledger.json")
    lib = TranscriptLibrary.beside(store.path)
    jobs = []
    for name in ("keep", "drop"):
        source = tmp_path / f"{name}.wav"
        source.write_bytes(name.encode())
        t = _transcript(str(source), (None, f"words to {name} here"))
        job, written = _done_job(store, source, ledger, t, ("txt",))
        lib.put(t, job_id=job.id, job_created_at=job.created_at, outputs=written)
        jobs.append(job)
    assert remove_job(store, lib, jobs[0].id, keep_transcript=True)
    assert remove_job(store, lib, jobs[1].id, keep_transcript=False)
    assert store.get(jobs[0].id) is None and store.get(jobs[1].id) is None
    (kept,) = lib.search("keep")
    assert kept.job_id is None and kept.source.name == "keep.wav"
    assert lib.search("drop") == [] and lib.count() == 1
    assert lib.for_job(jobs[0].id) is None
    lib.close()


def test_entries_of_jobs_gone_from_the_queue_let_go_of_the_id(store: JobStore, tmp_path: Path) -> None:
    lib = TranscriptLibrary.beside(store.path)
    lib.put(_transcript("/rec/gone.wav", (None, "from a queue long gone")), job_id=41, job_created_at=1.0)
    source = tmp_path / "new.wav"
    source.write_bytes(b"new")
    job = store.add(source).job
    lib.put(
        _transcript("/rec/impostor.wav", (None, "another job's words")), job_id=job.id, job_created_at=-5.0
    )
    assert entry_for_job(lib, job) is None  # same id, another job (a queue database started anew)
    assert reconcile(lib, store) == 1  # job 41
    assert lib.job_ids() == set() and lib.count() == 2
    assert {h.job_id for h in lib.search("words")} | {h.job_id for h in lib.search("gone")} == {None}
    lib.close()


def test_json_output_says_edited(tmp_path: Path) -> None:
    transcript = _transcript("/rec/a.wav", (None, "fixed by hand"))
    transcript.edited = True
    source = tmp_path / "a.wav"
    source.write_bytes(b"a")
    written = write_outputs(transcript, source, OutputOptions(formats=("json",)))
    assert json.loads(written["json"].read_text())["edited"] is True


def test_renaming_a_speaker_is_an_edit_the_speaker_filter_follows(filled: TranscriptLibrary) -> None:
    entry = filled.for_job(1)
    assert entry is not None
    report = rename_speakers(filled, entry.id, {"Speaker 1": "  Grace   Hopper "}, ledger=None)
    assert report.entry.edited and report.entry.version == entry.version + 1
    assert report.entry.speakers == ["Grace Hopper", "Speaker 2"]
    assert report.entry.transcript.segments[0].words[0].speaker == "Grace Hopper"
    assert [h.speaker for h in filled.search("budg*", speaker="grace hopper")] == ["Grace Hopper"] * 2
    assert filled.search("budg*", speaker="Speaker 1") == []
    assert filled.speakers_by_job() == {1: ["Grace Hopper", "Speaker 2"], 3: ["Ada"]}  # job 2 has none
    with pytest.raises(WhisperDeskError, match="cannot be empty"):
        rename_speakers(filled, entry.id, {"Speaker 2": " "}, ledger=None)


def test_retry_of_an_edited_done_job_is_known_to_discard_edits(store: JobStore, tmp_path: Path) -> None:
    lib = TranscriptLibrary.beside(store.path)
    source = tmp_path / "a.wav"
    source.write_bytes(b"a")
    job, written = _done_job(
        store, source, OutputLedger(tmp_path / "l.json"), _transcript(str(source)), ("txt",)
    )
    entry = lib.put(_transcript(str(source), (None, "as heard")), job_id=job.id, outputs=written)
    assert not retry_discards_edits(job, lib) and not retry_discards_edits(job, None)
    lib.update_transcript(entry.id, _transcript(str(source), (None, "as corrected")))
    assert retry_discards_edits(job, lib)
    lib.close()


def test_job_threads_and_a_second_process_keep_transcripts_at_once(tmp_path: Path) -> None:
    """The processor's job threads share one library object, and the window and `watch` may each hold
    another on the same file: every put lands, each under its own job, and search sees them all."""
    import threading

    path = tmp_path / "library.sqlite3"
    first, second = TranscriptLibrary(path), TranscriptLibrary(path)
    errors: list[BaseException] = []

    def keep(lib: TranscriptLibrary, start: int) -> None:
        try:
            for job_id in range(start, start + 15):
                lib.put(
                    _transcript(f"/rec/{job_id}.wav", (None, f"shared word number{job_id}")), job_id=job_id
                )
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=keep, args=(lib, n * 100)) for n, lib in enumerate([first, first, second])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert first.count() == second.count() == 45
    assert len(second.search("shared", limit=1000)) == 45
    assert [h.job_id for h in first.search("number114")] == [114]
    first.close()
    second.close()
