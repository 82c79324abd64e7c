"""Speaker counting, DER and hint obedience on recordings of real people (../shared/data/real-speech).

Targets from issue 16: the right count with ``auto`` on every 2- and 3-person recording, DER ≤ 10 % on the
phone call and ≤ 20 % on each meeting excerpt (0.25-s collar, overlap counted), one speaker on every
single-speaker recording; ``N`` gives N, a range stays inside. Each recording is diarized once per module.
"""

from __future__ import annotations

import pytest

from whisperdesk.core.speakers.count import SpeakerCount
from whisperdesk.core.speakers.diarize import DiarizeOptions, Turn, diarize
from whisperdesk.core.speakers.job import count_note
from whisperdesk.devtools.der import der_parts
from whisperdesk.devtools.real_conversations import available, built_set
from whisperdesk.devtools.real_speakers import MULTI, SINGLE, real_speech_dir, recording

pytestmark = pytest.mark.skipif(
    real_speech_dir() is None, reason="../shared/data/real-speech is not beside the checkout"
)
DER_LIMIT = {"pyannote_sample": 0.10, "ami_dev00": 0.20, "ami_dev01": 0.20}


def _hyp(turns: list[Turn]) -> list[tuple[float, float, int]]:
    return [(t.start, t.end, t.speaker) for t in turns]


@pytest.fixture(scope="module")
def auto() -> dict[str, list[Turn]]:
    found = {}
    for name in (*MULTI, *SINGLE):
        rec = recording(name)
        assert rec is not None
        found[name] = diarize(rec.audio())
    return found


@pytest.mark.parametrize("name", MULTI)
def test_auto_count_and_der_on_real_conversations(name: str, auto: dict[str, list[Turn]]) -> None:
    rec = recording(name)
    assert rec is not None
    parts = der_parts(rec.numbered_turns(), _hyp(auto[name]))
    print(
        f"{name}: DER {parts.der:.1%} (missed {parts.share('missed'):.1%}, false alarm "
        f"{parts.share('false_alarm'):.1%}, confusion {parts.share('confusion'):.1%})"
    )
    assert len({t.speaker for t in auto[name]}) == rec.speakers
    assert parts.der <= DER_LIMIT[name]


def test_single_speaker_recordings_stay_one_speaker(auto: dict[str, list[Turn]]) -> None:
    counts = {name: len({t.speaker for t in auto[name]}) for name in SINGLE}
    assert counts == dict.fromkeys(SINGLE, 1)


@pytest.mark.parametrize(("name", "count"), [("ami_dev01", 4), ("pyannote_sample", 3), ("ami_dev00", 1)])
def test_an_exact_count_is_given_exactly(name: str, count: int) -> None:
    rec = recording(name)
    assert rec is not None
    turns = diarize(rec.audio(), _options(SpeakerCount(count, count)))
    assert len({t.speaker for t in turns}) == count


def test_a_range_is_kept() -> None:
    rec = recording("lj_printing_a")
    assert rec is not None
    turns = diarize(rec.audio(), _options(SpeakerCount(2, 3)))
    assert 2 <= len({t.speaker for t in turns}) <= 3


def test_too_little_speech_for_the_count_says_so_in_plain_words() -> None:
    rec = recording("leopard_ko")  # one 4-s sentence
    assert rec is not None
    asked = SpeakerCount(12, 12)
    turns = diarize(rec.audio(), _options(asked))
    found = sorted({f"Speaker {t.speaker + 1}" for t in turns})
    assert len(found) < 12
    note = count_note(asked, turns, found)
    assert note.startswith(f"{len(found)} speakers found although 12 were asked for")
    assert "too little to tell 12 voices apart" in note
    assert count_note(SpeakerCount(), turns, found) == ""


@pytest.mark.skipif(not available(), reason="a recording the built conversations need is missing")
@pytest.mark.parametrize("name", ["3-phone-lang", "4-mixed"])
def test_auto_count_on_conversations_built_from_real_voices(name: str) -> None:
    conv = built_set(name)
    turns = diarize(conv.audio)
    parts = der_parts(conv.turns, _hyp(turns))
    print(f"{name}: {len({t.speaker for t in turns})}/{conv.speakers} speakers, DER {parts.der:.1%}")
    assert len({t.speaker for t in turns}) == conv.speakers
    assert parts.der <= 0.10


def _options(count: SpeakerCount) -> DiarizeOptions:

    return DiarizeOptions(count=count)
