"""The voice library: remembering named voices, matching them in later recordings of real people (and never
giving a known name to someone else), the job and rename flow headless, and the Voices page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from whisperdesk.core.engine import Engine
from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.jobstore import Job, JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings, UiOptions
from whisperdesk.core.speakers.assign import speaker_label
from whisperdesk.core.speakers.diarize import Diarization, diarize_voices
from whisperdesk.core.speakers.saved import (
    job_transcript_path,
    job_voiceprints,
    load_transcript,
    remember_job_voices,
    rename_job_speakers,
)
from whisperdesk.core.speakers.voices import MATCH_SIMILARITY, VoiceLibrary
from whisperdesk.core.transcript import Transcript
from whisperdesk.devtools.real_speakers import RealRecording, real_speech_dir, recording
from whisperdesk.ui.voices_dialog import VoicesDialog

needs_real = pytest.mark.skipif(
    real_speech_dir() is None, reason="../shared/data/real-speech is not beside the checkout"
)


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(192)
    return (v / np.linalg.norm(v)).astype(np.float32)


# --- the library --------------------------------------------------------------------------------------
def test_remember_rename_merge_and_forget(tmp_path: Path) -> None:
    library = VoiceLibrary(tmp_path / "voices.json")
    grace = library.remember("Grace", _unit(1), 20.0)
    again = library.remember(" grace ", _unit(2), 20.0)  # the same name again: one voice, averaged
    assert again.id == grace.id and again.seconds == 40.0
    assert float(again.embedding @ _unit(1)) == pytest.approx(float(again.embedding @ _unit(2)), abs=1e-5)
    ada = library.remember("Ada", _unit(3), 5.0)
    with pytest.raises(WhisperDeskError, match="already called Ada"):
        library.rename(grace.id, "Ada")
    library.rename(grace.id, "Grace Hopper")
    assert [v.name for v in library.voices()] == ["Ada", "Grace Hopper"]
    merged = library.merge([ada.id, grace.id], "Ada L.")
    assert [(v.name, v.seconds) for v in library.voices()] == [("Ada L.", 45.0)]
    stored = json.loads(library.path.read_text(encoding="utf-8"))["voices"][0]["embedding"]
    library.forget(merged.id)
    assert library.voices() == []
    assert stored not in library.path.read_text(encoding="utf-8")  # the embedding itself is gone from disk


def test_a_damaged_library_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "voices.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(WhisperDeskError, match="move the file away"):
        VoiceLibrary(path).voices()


def test_the_library_exists_only_when_the_user_opted_in(tmp_path: Path) -> None:
    paths = AppPaths(
        config_dir=tmp_path / "c", data_dir=tmp_path / "d", cache_dir=tmp_path / "k", log_dir=tmp_path / "l"
    )
    assert VoiceLibrary.for_settings(Settings(), paths) is None
    library = VoiceLibrary.for_settings(Settings(ui=UiOptions(remember_voices=True)), paths)
    assert library is not None and library.path.parent == tmp_path / "d"


# --- matching real voices -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_voices() -> dict[str, tuple[RealRecording, Diarization]]:
    if real_speech_dir() is None:
        pytest.skip("../shared/data/real-speech is not beside the checkout")
    found = {}
    for name in (
        "ami_dev00",
        "ami_dev01",
        "pyannote_sample",
        "lj_printing_a",
        "osr_harvard_0034",
        "leopard_en",
    ):
        rec = recording(name)
        assert rec is not None
        found[name] = (rec, diarize_voices(rec.audio()))
    return found


def _people(rec: RealRecording, found: Diarization) -> dict[str, tuple[np.ndarray, float]]:
    """Each diarized speaker's voiceprint under the reference name of the person it mostly covers."""
    people = {}
    for speaker, voice in found.voices.items():
        cover: dict[str, float] = {}
        for turn in (t for t in found.turns if t.speaker == speaker):
            for start, end, who in rec.turns or ((0.0, 1e9, rec.name),):
                cover[who] = cover.get(who, 0.0) + max(0.0, min(end, turn.end) - max(start, turn.start))
        people[max(cover, key=lambda k: cover[k])] = (voice.embedding, voice.seconds)
    return people


@needs_real
def test_a_voice_named_in_one_meeting_is_recognised_in_another_and_given_to_no_one_else(
    tmp_path: Path, real_voices: dict[str, tuple[RealRecording, Diarization]]
) -> None:
    library = VoiceLibrary(tmp_path / "voices.json")
    first = _people(*real_voices["ami_dev00"])
    library.remember("Maya", *first["MEE009"])  # the user named one person in the first excerpt
    second = _people(*real_voices["ami_dev01"])  # the same two people, another stretch of the meeting
    assert library.match(second) == {"MEE009": "Maya"}
    for other in ("pyannote_sample", "lj_printing_a", "osr_harvard_0034", "leopard_en"):
        assert library.match(_people(*real_voices[other])) == {}, other


@needs_real
def test_strangers_never_get_a_known_name(
    tmp_path: Path, real_voices: dict[str, tuple[RealRecording, Diarization]]
) -> None:
    """Every person of every recording named; each other recording's people get only their own names."""
    people = {name: _people(rec, found) for name, (rec, found) in real_voices.items()}
    library = VoiceLibrary(tmp_path / "voices.json")
    for who, (embedding, seconds) in people["ami_dev00"].items():
        library.remember(who, embedding, seconds)
    for name in ("pyannote_sample", "lj_printing_a", "osr_harvard_0034", "leopard_en"):
        assert library.match(people[name]) == {}, name
    for name in ("pyannote_sample", "lj_printing_a", "osr_harvard_0034", "leopard_en"):
        for who, (embedding, seconds) in people[name].items():
            library.remember(who, embedding, seconds)
    matched = library.match(people["ami_dev01"])
    assert matched == {who: who for who in matched} and matched  # only right names, at least one of them
    assert MATCH_SIMILARITY >= 0.55  # the measured highest stranger was 0.530 (BENCHMARKS.md)


# --- the job flow, headless -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(tiny_en_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = Engine(ModelConfig(model=str(tiny_en_model), device="cpu"), tmp_path_factory.mktemp("models"))
    yield eng
    eng.close()


def _run(store: JobStore, engine: Engine, ledger: OutputLedger, source: Path, settings: Settings) -> Job:
    store.add(source, job_settings(settings, speakers="2"), origin="dropped")
    job = store.claim_next()
    assert job is not None
    return JobProcessor(store, engine, ledger, lambda: settings).process(job)


def _who(transcript: Transcript, label: str, rec: RealRecording) -> str:
    """The reference person speaking most under ``label``'s segments."""
    cover: dict[str, float] = {}
    for seg in (s for s in transcript.segments if s.speaker == label):
        for start, end, who in rec.turns:
            cover[who] = cover.get(who, 0.0) + max(0.0, min(end, seg.end) - max(start, seg.start))
    return max(cover, key=lambda k: cover[k])


@needs_real
def test_a_name_given_in_one_job_labels_the_voice_in_the_next(
    tmp_path: Path, store: JobStore, engine: Engine
) -> None:
    first, second = recording("ami_dev00"), recording("ami_dev01")
    assert first is not None and second is not None
    settings = Settings(
        decode=DecodeOptions(beam_size=1),
        output=OutputOptions(formats=("txt", "json"), output_dir=str(tmp_path / "out")),
        ui=UiOptions(remember_voices=True),
    )
    ledger = OutputLedger(tmp_path / "ledger.json")
    done = _run(store, engine, ledger, first.path, settings)
    assert done.state == "done", done.error
    labelled = load_transcript(job_transcript_path(done.id))
    assert set(job_voiceprints(done.id)) == set(labelled.speakers)
    label = next(lab for lab in labelled.speakers if _who(labelled, lab, first) == "MEE009")
    rename_job_speakers(done, {label: "Maya"}, ledger, settings.output)
    assert remember_job_voices(done.id, {label: "Maya"}, VoiceLibrary.for_settings(settings)) == ["Maya"]

    later = _run(store, engine, ledger, second.path, settings)
    assert later.state == "done", later.error
    named = load_transcript(job_transcript_path(later.id))
    assert "Maya" in named.speakers and _who(named, "Maya", second) == "MEE009"
    assert [s for s in named.speakers if s != "Maya"] == [
        speaker_label(i) for i in range(2) if speaker_label(i) in named.speakers
    ]
    assert "Maya:" in (tmp_path / "out" / "ami_dev01.txt").read_text(encoding="utf-8")


@needs_real
def test_without_the_opt_in_no_voice_is_kept(tmp_path: Path, store: JobStore, engine: Engine) -> None:
    rec = recording("pyannote_sample")
    assert rec is not None
    settings = Settings(
        decode=DecodeOptions(beam_size=1), output=OutputOptions(formats=("txt",), output_dir=str(tmp_path))
    )
    done = _run(store, engine, OutputLedger(tmp_path / "ledger.json"), rec.path, settings)
    assert done.state == "done", done.error
    assert job_voiceprints(done.id) == {}
    assert not (AppPaths.default().data_dir / "voices.json").exists()


# --- the Voices page ----------------------------------------------------------------------------------------
def test_voices_page_lists_renames_merges_and_forgets(qtbot: QtBot, tmp_path: Path) -> None:
    library = VoiceLibrary(tmp_path / "voices.json")
    for seed, name in enumerate(("Ada", "Grace", "G. Hopper")):
        library.remember(name, _unit(seed), 10.0 + seed)
    page = VoicesDialog(library)
    qtbot.addWidget(page)
    assert [v.name for v in page.voices()] == ["Ada", "G. Hopper", "Grace"]
    assert page.table.item(2, 1).text() == "11 s"
    page.select("Grace", "G. Hopper")
    assert page.merge_button.isEnabled() and not page.rename_button.isEnabled()
    page.merge_to(page.selected(), "Grace")
    assert [(v.name, v.seconds) for v in library.voices()] == [("Ada", 10.0), ("Grace", 23.0)]
    page.select("Ada")
    page.rename_to(page.selected()[0], "Grace")  # taken: said in plain words, nothing changes
    assert "already called Grace" in page.message.text()
    page.rename_to(page.selected()[0], "Ada L.")
    page.select("Ada L.")
    page.forget(page.selected())
    assert [v.name for v in library.voices()] == ["Grace"] == [v.name for v in page.voices()]


def test_voices_page_says_when_nothing_is_kept(qtbot: QtBot, tmp_path: Path) -> None:
    page = VoicesDialog(VoiceLibrary(tmp_path / "voices.json"), enabled=False)
    qtbot.addWidget(page)
    assert page.table.rowCount() == 0 and "Remember voices I name" in page.message.text()


def test_the_opt_in_is_a_setting_off_by_default(qtbot: QtBot) -> None:
    from whisperdesk.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    assert not dialog.voices_check.isChecked()
    dialog.voices_check.setChecked(True)
    assert dialog.result_settings().ui.remember_voices is True


@pytest.mark.parametrize("opted_in", [True, False])
def test_renaming_in_the_window_remembers_the_voice_only_when_opted_in(
    qtbot: QtBot, store: JobStore, tmp_path: Path, opted_in: bool
) -> None:
    from whisperdesk.core.outputs import write_outputs
    from whisperdesk.core.speakers.diarize import Voiceprint
    from whisperdesk.core.speakers.saved import save_job_transcript
    from whisperdesk.core.transcript import Segment
    from whisperdesk.devtools.synth_audio import noise, write_audio
    from whisperdesk.services.speaker_renamer import SpeakerRenamer

    settings = Settings(output=OutputOptions(formats=("txt",)), ui=UiOptions(remember_voices=opted_in))
    source = write_audio(tmp_path / "call.wav", noise(1.0, amplitude=0.3, seed=2))
    job = store.add(source, job_settings(settings, speakers="auto"), origin="dropped").job
    assert store.claim_next() is not None
    transcript = Transcript(
        str(source),
        [Segment(0.0, 1.0, " Hi.", speaker="Speaker 1")],
        "en",
        1.0,
        1.0,
        "tiny.en",
        "int8",
        "cpu",
    )
    ledger = OutputLedger(tmp_path / "ledger.json")
    written = write_outputs(transcript, source, settings.output, ledger=ledger)
    prints = {"Speaker 1": Voiceprint(_unit(7), 12.0)} if opted_in else None
    save_job_transcript(job.id, transcript, voiceprints=prints)
    store.mark_done(job.id, outputs=list(written.values()))
    renamer = SpeakerRenamer(store, ledger, lambda: settings)
    with qtbot.waitSignal(renamer.renamed, timeout=30_000) as done:
        renamer.rename(job.id, {"Speaker 1": "Ada"})
    assert renamer.wait()
    library = VoiceLibrary.in_folder(AppPaths.default().data_dir)
    if opted_in:
        assert "voice remembered: Ada" in done.args[1]
        assert [(v.name, v.seconds) for v in library.voices()] == [("Ada", 12.0)]
    else:
        assert "remembered" not in done.args[1] and not library.path.exists()
