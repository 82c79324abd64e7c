"""TXT/SRT/VTT/JSON rendering, and writing them without ever clobbering a file WhisperDesk did not write."""

from __future__ import annotations

import errno
import itertools
import json
import os
import threading
from pathlib import Path

import pysubs2
import pytest

from whisperdesk import __version__
from whisperdesk.core import atomic, outputs
from whisperdesk.core.errors import OutputConflictError, OutputWriteError
from whisperdesk.core.outputs import OutputLedger, output_paths, render, subtitle_cues, write_outputs
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import OutputOptions
from whisperdesk.core.transcript import Segment, Transcript, Word

LONG = (
    "This segment is far too long for a single subtitle cue because it keeps going with one clause after "
    "another until a reader would need several screens to finish it"
)


def _words(text: str, start: float, end: float) -> tuple[Word, ...]:
    tokens = text.split()
    step = (end - start) / len(tokens)
    return tuple(
        Word(start + i * step, start + (i + 1) * step, f" {tok}", 0.9) for i, tok in enumerate(tokens)
    )


def _transcript(segments: list[Segment] | None = None, **kw: object) -> Transcript:
    if segments is None:
        segments = [
            Segment(0.0, 2.5, " Hello there."),
            Segment(2.5, 5.25, " Short & <sweet> {braces} back\\slash."),
            Segment(6.0, 20.0, " " + LONG),
        ]
    fields: dict[str, object] = {
        "source": "/rec/talk.mp3",
        "segments": segments,
        "language": "en",
        "language_probability": 0.98,
        "duration": 21.0,
        "model": "small",
        "compute_type": "int8",
        "device": "cpu",
        "processing_time": 3.5,
    }
    fields.update(kw)
    return Transcript(**fields)  # type: ignore[arg-type]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


# --- cues --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [20, 42, 80])
def test_cues_respect_line_length_and_keep_every_word(width: int) -> None:
    transcript = _transcript()
    cues = subtitle_cues(transcript, width)
    for cue in cues:
        assert 1 <= len(cue.lines) <= 2
        assert all(0 < len(line) <= width for line in cue.lines)
        assert cue.start <= cue.end
    assert [w for c in cues for line in c.lines for w in line.split()] == transcript.text.split()
    starts = [c.start for c in cues]
    assert starts == sorted(starts)


def test_short_segment_is_one_cue_with_its_times() -> None:
    cues = subtitle_cues(_transcript([Segment(1.25, 3.5, " Just a few words.")]), 42)
    assert cues == [outputs.Cue(1.25, 3.5, ("Just a few words.",))]


def test_two_lines_are_balanced() -> None:
    text = "one two three four five six seven eight nine ten"
    cue = subtitle_cues(_transcript([Segment(0, 4, text)]), 30)[0]
    assert len(cue.lines) == 2
    assert abs(len(cue.lines[0]) - len(cue.lines[1])) <= 6


def test_long_segment_without_words_shares_time_by_characters() -> None:
    seg = Segment(6.0, 20.0, LONG)
    cues = subtitle_cues(_transcript([seg]), 42)
    assert len(cues) >= 2
    assert cues[0].start == seg.start and cues[-1].end == seg.end
    for a, b in itertools.pairwise(cues):
        assert a.end == pytest.approx(b.start)  # contiguous: no gap, no overlap
    chars = [len(c.text.replace("\n", " ")) for c in cues]
    durations = [c.end - c.start for c in cues]
    assert durations[0] / durations[-1] == pytest.approx(chars[0] / chars[-1], rel=0.15)


def test_long_segment_with_words_cuts_at_word_times() -> None:
    words = _words(LONG, 6.0, 20.0)
    seg = Segment(6.0, 20.0, LONG, words)
    cues = subtitle_cues(_transcript([seg]), 42)
    assert len(cues) >= 2
    assert cues[0].start == seg.start and cues[-1].end == seg.end
    by_text = {w.text.strip(): w for w in words}  # the words in LONG are unique enough for this check
    for cue in cues[:-1]:
        last_word = cue.text.split()[-1]
        assert cue.end == pytest.approx(by_text[last_word].end)


def test_text_without_spaces_is_broken_inside_and_not_respaced() -> None:
    text = "今天天气很好我们一起去公园散步然后去吃午饭晚上再回家休息明天继续工作" * 2
    cues = subtitle_cues(_transcript([Segment(0.0, 10.0, text)]), 16)
    assert all(len(line) <= 16 for c in cues for line in c.lines)
    assert "".join(line for c in cues for line in c.lines) == text


def test_cjk_word_timestamps_are_joined_without_spaces() -> None:
    words = (Word(0.0, 0.5, "你好", 0.9), Word(0.5, 1.0, "世界", 0.9))
    cues = subtitle_cues(_transcript([Segment(0.0, 1.0, "你好世界", words)]), 42)
    assert cues[0].lines == ("你好世界",)


def test_empty_segments_make_no_cues() -> None:
    assert subtitle_cues(_transcript([Segment(0, 1, "   "), Segment(1, 2, "")]), 42) == []


# --- formats -----------------------------------------------------------------------------------------
def test_srt_parses_back_with_matching_times() -> None:
    transcript = _transcript()
    text = render(transcript, "srt", OutputOptions(max_line_length=42))
    subs = pysubs2.SSAFile.from_string(text, format_="srt")
    cues = subtitle_cues(transcript, 42)
    assert len(subs) == len(cues)
    assert [(e.start, e.end) for e in subs] == [(_ms(c.start), _ms(c.end)) for c in cues]
    assert (subs[0].start, subs[0].end) == (0, 2500)
    assert (subs[1].start, subs[1].end) == (2500, 5250)
    assert subs[2].start == 6000 and subs[-1].end == 20000
    for event in subs:
        lines = event.plaintext.split("\n")
        assert len(lines) <= 2 and all(len(line) <= 42 for line in lines)
    assert "Short & <sweet> {braces} back\\slash." in text  # raw text, not read as ASS markup
    assert text.startswith("1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n")


def test_vtt_parses_back_and_escapes_markup() -> None:
    transcript = _transcript()
    text = render(transcript, "vtt", OutputOptions(max_line_length=30))
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n")
    assert "Short &amp; &lt;sweet&gt;" in text
    subs = pysubs2.SSAFile.from_string(text, format_="vtt")
    cues = subtitle_cues(transcript, 30)
    assert [(e.start, e.end) for e in subs] == [(_ms(c.start), _ms(c.end)) for c in cues]
    for cue in cues:
        assert all(len(line) <= 30 for line in cue.lines)


def test_hour_long_timestamps() -> None:
    text = render(_transcript([Segment(3725.5, 3727.004, "late")]), "srt")
    assert "01:02:05,500 --> 01:02:07,004" in text


def test_txt_one_line_per_segment() -> None:
    text = render(_transcript(), "txt")
    lines = text.splitlines()
    assert lines[0] == "Hello there." and len(lines) == 3 and text.endswith("\n")
    assert render(_transcript([]), "txt") == ""


def test_json_has_every_key() -> None:
    words = _words("Hello there.", 0.0, 2.5)
    transcript = _transcript(
        [Segment(0.0, 2.5, " Hello there.", words), Segment(2.5, 4.0, " No words here.")],
        task="translate",
        extra={"vad": True, "path": Path("/x")},
    )
    data = json.loads(render(transcript, "json"))
    assert data["schema_version"] == outputs.JSON_SCHEMA_VERSION
    assert data["generator"] == f"WhisperDesk {__version__}"
    for key, value in {
        "source": "/rec/talk.mp3",
        "language": "en",
        "language_probability": 0.98,
        "duration": 21.0,
        "model": "small",
        "compute_type": "int8",
        "device": "cpu",
        "task": "translate",
        "processing_time": 3.5,
        "text": "Hello there. No words here.",
    }.items():
        assert data[key] == value, key
    first, second = data["segments"]
    assert first == {
        "id": 0,
        "start": 0.0,
        "end": 2.5,
        "text": "Hello there.",
        "words": [
            {"start": 0.0, "end": 1.25, "word": " Hello", "probability": 0.9},
            {"start": 1.25, "end": 2.5, "word": " there.", "probability": 0.9},
        ],
    }
    assert "words" not in second
    assert data["extra"] == {"vad": True, "path": "/x"}


def test_json_is_strict_json_without_nan() -> None:
    text = render(_transcript(language_probability=float("nan"), language=None), "json")
    assert "NaN" not in text
    data = json.loads(text)
    assert data["language_probability"] is None and data["language"] is None


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="pdf"):
        render(_transcript(), "pdf")


# --- paths -------------------------------------------------------------------------------------------
def test_output_paths(tmp_path: Path) -> None:
    source = tmp_path / "rec" / "talk.mp3"
    assert output_paths(source, OutputOptions()) == {
        "txt": source.parent / "talk.txt",
        "srt": source.parent / "talk.srt",
        "vtt": source.parent / "talk.vtt",
        "json": source.parent / "talk.json",
    }
    out = tmp_path / "out"
    assert output_paths(source, OutputOptions(formats=("srt",)), out) == {"srt": out / "talk.srt"}
    relative = OutputOptions(formats=("txt",), output_dir="transcripts")
    assert output_paths(source, relative) == {"txt": source.parent / "transcripts" / "talk.txt"}
    absolute = OutputOptions(formats=("txt",), output_dir=str(out))
    assert output_paths(source, absolute) == {"txt": out / "talk.txt"}
    assert output_paths(tmp_path / "a.b.final.wav", OutputOptions(formats=("json",)))["json"].name == (
        "a.b.final.json"
    )


# --- writing -----------------------------------------------------------------------------------------
@pytest.fixture
def ledger(tmp_path: Path) -> OutputLedger:
    return OutputLedger(tmp_path / "data" / OutputLedger.FILE_NAME)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "talk.mp3"
    path.write_bytes(b"not decoded here")
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.wdtmp"))


def test_write_all_formats(tmp_path: Path, source: Path, ledger: OutputLedger) -> None:
    transcript = _transcript()
    options = OutputOptions()
    written = write_outputs(transcript, source, options, ledger=ledger)
    assert written == output_paths(source, options)
    for fmt, path in written.items():
        assert path.read_text(encoding="utf-8") == render(transcript, fmt, options)
        assert ledger.owns(path, source)
    assert _leftovers(tmp_path) == []
    assert json.loads(ledger.path.read_text())["entries"]


def test_output_dir_is_created(tmp_path: Path, source: Path) -> None:
    out = tmp_path / "a" / "b"
    written = write_outputs(_transcript(), source, OutputOptions(formats=("txt",)), output_dir=out)
    assert written == {"txt": out / "talk.txt"} and written["txt"].exists()


def test_foreign_file_is_never_replaced(tmp_path: Path, source: Path, ledger: OutputLedger) -> None:
    mine = tmp_path / "talk.srt"
    mine.write_text("my hand-made subtitles\n", encoding="utf-8")
    with pytest.raises(OutputConflictError) as info:
        write_outputs(_transcript(), source, OutputOptions(), ledger=ledger)
    message = str(info.value)
    assert "talk.srt" in message and "overwrite" in message and "output folder" in message
    assert mine.read_text(encoding="utf-8") == "my hand-made subtitles\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["talk.mp3", "talk.srt"]
    assert _leftovers(tmp_path) == []


def test_overwrite_replaces_a_foreign_file(tmp_path: Path, source: Path, ledger: OutputLedger) -> None:
    mine = tmp_path / "talk.txt"
    mine.write_text("old\n", encoding="utf-8")
    write_outputs(_transcript(), source, OutputOptions(formats=("txt",)), ledger=ledger, overwrite=True)
    assert mine.read_text(encoding="utf-8").startswith("Hello there.")
    assert ledger.owns(mine, source)


def test_ledger_allows_rewriting_our_own_files(source: Path, ledger: OutputLedger) -> None:
    options = OutputOptions()
    first = write_outputs(_transcript(), source, options, ledger=ledger)
    second = write_outputs(_transcript([Segment(0, 1, "Revised.")]), source, options, ledger=ledger)
    assert first == second
    assert second["txt"].read_text(encoding="utf-8") == "Revised.\n"


def test_without_a_ledger_every_existing_file_is_foreign(source: Path) -> None:
    options = OutputOptions(formats=("txt",))
    write_outputs(_transcript(), source, options)
    with pytest.raises(OutputConflictError):
        write_outputs(_transcript(), source, options)


def test_edited_output_is_protected(source: Path, ledger: OutputLedger) -> None:
    options = OutputOptions(formats=("txt", "srt"))
    written = write_outputs(_transcript(), source, options, ledger=ledger)
    written["srt"].write_text("corrected by hand\n", encoding="utf-8")
    with pytest.raises(OutputConflictError, match=r"talk\.srt was changed after WhisperDesk wrote it"):
        write_outputs(_transcript([Segment(0, 1, "Again.")]), source, options, ledger=ledger)
    assert written["srt"].read_text(encoding="utf-8") == "corrected by hand\n"
    assert written["txt"].read_text(encoding="utf-8").startswith("Hello there.")  # nothing half-written


def test_same_stem_from_another_recording_gets_its_own_names(
    tmp_path: Path, source: Path, ledger: OutputLedger
) -> None:
    options = OutputOptions(formats=("txt", "json"))
    wav = tmp_path / "talk.wav"
    wav.write_bytes(b"x")
    first = write_outputs(_transcript(source=str(wav)), wav, options, ledger=ledger)
    second = write_outputs(_transcript(), source, options, ledger=ledger)
    assert first == {"txt": tmp_path / "talk.txt", "json": tmp_path / "talk.json"}
    assert second == {"txt": tmp_path / "talk.mp3.txt", "json": tmp_path / "talk.mp3.json"}
    assert json.loads(first["json"].read_text())["source"] == str(wav)
    again = write_outputs(_transcript(), source, options, ledger=ledger)  # re-run: same alternate names
    assert again == second


def test_rendering_error_writes_nothing(tmp_path: Path, source: Path, ledger: OutputLedger) -> None:
    transcript = _transcript(extra={"unserialisable": object()})
    with pytest.raises(TypeError):
        write_outputs(transcript, source, OutputOptions(), ledger=ledger)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["talk.mp3"]


def _failing_replace(monkeypatch: pytest.MonkeyPatch, fail_on: str, err: int) -> None:
    real = os.replace

    def replace(src: str, dst: str) -> None:
        if str(dst).endswith(fail_on):
            raise OSError(err, os.strerror(err), str(dst))
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)


def test_disk_full_leaves_no_partial_set(
    tmp_path: Path, source: Path, ledger: OutputLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_replace(monkeypatch, ".vtt", errno.ENOSPC)  # third of txt, srt, vtt, json
    with pytest.raises(OutputWriteError) as info:
        write_outputs(_transcript(), source, OutputOptions(), ledger=ledger)
    assert "talk.vtt" in str(info.value) and "disk is full" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["talk.mp3"]
    assert _leftovers(tmp_path) == []
    assert not ledger.path.exists() or not json.loads(ledger.path.read_text())["entries"]


def test_failed_rewrite_restores_the_previous_set(
    tmp_path: Path, source: Path, ledger: OutputLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = OutputOptions()
    first = write_outputs(_transcript(), source, options, ledger=ledger)
    before = {fmt: p.read_bytes() for fmt, p in first.items()}
    _failing_replace(monkeypatch, ".json", errno.ENOSPC)
    with pytest.raises(OutputWriteError):
        write_outputs(_transcript([Segment(0, 1, "New.")]), source, options, ledger=ledger)
    assert {fmt: p.read_bytes() for fmt, p in first.items()} == before
    assert all(ledger.owns(p, source) for p in first.values())  # still ours: a later re-run may replace them
    assert _leftovers(tmp_path) == []


def test_permission_denied_names_the_file(
    tmp_path: Path, source: Path, ledger: OutputLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = atomic.tempfile.mkstemp

    def mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        if str(kwargs.get("prefix", "")).startswith(".talk.srt"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    with pytest.raises(OutputWriteError) as info:
        write_outputs(_transcript(), source, OutputOptions(), ledger=ledger)
    assert "talk.srt" in str(info.value) and "Permission denied" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["talk.mp3"]


def test_output_dir_that_cannot_be_created(tmp_path: Path, source: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputWriteError, match="output folder"):
        write_outputs(_transcript(), source, OutputOptions(), output_dir=blocker / "sub")


def test_folder_in_the_way(tmp_path: Path, source: Path, ledger: OutputLedger) -> None:
    (tmp_path / "talk.json").mkdir()
    with pytest.raises(OutputConflictError, match=r"talk\.json is a folder"):
        write_outputs(_transcript(), source, OutputOptions(), ledger=ledger, overwrite=True)
    assert not (tmp_path / "talk.txt").exists()


# --- ledger ------------------------------------------------------------------------------------------
def test_default_ledger_lives_in_the_data_dir(isolated_home: Path) -> None:
    ledger = OutputLedger.default()
    assert ledger.path == AppPaths.default().data_dir / "outputs-ledger.json"
    assert str(ledger.path).startswith(str(isolated_home))


def test_corrupt_ledger_counts_as_empty(source: Path, ledger: OutputLedger) -> None:
    options = OutputOptions(formats=("txt",))
    write_outputs(_transcript(), source, options, ledger=ledger)
    ledger.path.write_text("{not json", encoding="utf-8")
    with pytest.raises(OutputConflictError):  # safe direction: unknown files are not ours
        write_outputs(_transcript(), source, options, ledger=ledger)
    write_outputs(_transcript(), source, options, ledger=ledger, overwrite=True)
    assert ledger.owns(source.with_suffix(".txt"), source)


def test_ledger_is_thread_safe(tmp_path: Path, ledger: OutputLedger) -> None:
    def work(i: int) -> None:
        src = tmp_path / f"rec{i}.wav"
        src.write_bytes(b"x")
        write_outputs(_transcript(), src, OutputOptions(formats=("txt", "json")), ledger=ledger)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = json.loads(ledger.path.read_text())["entries"]
    assert len(entries) == 16
    assert all(ledger.owns(tmp_path / f"rec{i}.txt") for i in range(8))


def test_ledger_forget(source: Path, ledger: OutputLedger) -> None:
    written = write_outputs(_transcript(), source, OutputOptions(formats=("txt",)), ledger=ledger)
    ledger.forget(written.values())
    assert ledger.lookup(written["txt"]) is None and not ledger.owns(written["txt"])


def test_death_between_writes_and_ledger_update_does_not_orphan_our_files(
    source: Path, ledger: OutputLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill after the files are renamed into place but before the ledger records them: the re-run of the
    same job must still recognise them as ours (exactly once, nothing refused)."""
    options = OutputOptions(formats=("txt", "json"))
    write_outputs(_transcript(), source, options, ledger=ledger)
    with monkeypatch.context() as m:
        m.setattr(OutputLedger, "record", lambda self, written, src: None)  # the process "dies" here
        write_outputs(_transcript(language="de"), source, options, ledger=ledger)
    rerun = write_outputs(_transcript(language="fr"), source, options, ledger=ledger)
    assert json.loads(rerun["json"].read_text(encoding="utf-8"))["language"] == "fr"
    # an edit by the user is still refused afterwards
    rerun["txt"].write_text("my edit", encoding="utf-8")
    with pytest.raises(OutputConflictError, match="changed after WhisperDesk wrote it"):
        write_outputs(_transcript(), source, options, ledger=ledger)
