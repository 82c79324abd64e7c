"""Speaker labelling quality and mechanics on synthetic espeak-ng conversations with known turns.

DER (0.25-s collar) thresholds from issue 11: ≤ 5 % on clean sets, ≤ 10 % on noisy similar voices, right speaker
count on each, one speaker on jfk. Conversations are synthesised once per session and diarized once each.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from whisperdesk.core.errors import Cancelled
from whisperdesk.core.speakers.cluster import cluster
from whisperdesk.core.speakers.count import InvalidSpeakerCount, SpeakerCount, parse_speaker_count
from whisperdesk.core.speakers.diarize import DiarizeOptions, Turn, diarize
from whisperdesk.core.speakers.model import MODEL_FILE, SpeakerEmbedder, SpeakerModelError, verify_model
from whisperdesk.devtools.der import der
from whisperdesk.devtools.speaker_corpus import (
    DISTINCT,
    SIMILAR,
    Conversation,
    conversation,
    espeak_available,
)
from whisperdesk.devtools.speech_corpus import shared_file

_SHARED_JFK = shared_file("jfk.wav")
JFK = _SHARED_JFK[0] if _SHARED_JFK else None  # ../shared/data beside the checkout, when present
needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")

CORPUS = {
    # name: (voices, seconds, seed, SNR dB or None, DER limit)
    "two-distinct": (DISTINCT[:2], 60, 1, None, 0.05),
    "three-distinct": (DISTINCT[:3], 75, 2, None, 0.05),
    "five-short-turns": (DISTINCT, 110, 3, None, 0.05),
    "similar-noisy-12dB": (SIMILAR, 75, 4, 12.0, 0.10),
}


@pytest.fixture(scope="session")
def conversations() -> dict[str, Conversation]:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    return {name: conversation(v, s, seed=seed, snr_db=snr) for name, (v, s, seed, snr, _) in CORPUS.items()}


@pytest.fixture(scope="session")
def diarized(conversations: dict[str, Conversation]) -> dict[str, list[Turn]]:
    return {name: diarize(c.audio) for name, c in conversations.items()}


def _hyp(turns: list[Turn]) -> list[tuple[float, float, int]]:
    return [(t.start, t.end, t.speaker) for t in turns]


# --- speaker count -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"), [("auto", SpeakerCount()), ("3", SpeakerCount(3, 3)), (" 2-4 ", SpeakerCount(2, 4))]
)
def test_speaker_count_parses(text: str, expected: SpeakerCount) -> None:
    assert parse_speaker_count(text) == expected
    assert parse_speaker_count(str(expected)) == expected


@pytest.mark.parametrize("text", ["", "two", "0", "4-2", "1-99", "-3"])
def test_bad_speaker_count_says_what_to_type(text: str) -> None:
    with pytest.raises(InvalidSpeakerCount, match="auto"):
        parse_speaker_count(text)


# --- the shipped model -------------------------------------------------------------------------------
def test_shipped_model_passes_its_hash_check() -> None:
    assert verify_model() == MODEL_FILE


def test_damaged_model_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model.onnx"
    shutil.copyfile(MODEL_FILE, copy)
    with copy.open("r+b") as fh:
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(SpeakerModelError, match="Reinstall"):
        SpeakerEmbedder(copy)
    with pytest.raises(SpeakerModelError, match="missing"):
        SpeakerEmbedder(tmp_path / "absent.onnx")


# --- the DER scorer ----------------------------------------------------------------------------------
def test_der_is_zero_for_the_reference_under_any_speaker_names() -> None:
    ref = [(0.0, 2.0, 0), (2.5, 4.0, 1), (4.5, 6.0, 0)]
    assert der(ref, ref) == 0.0
    assert der(ref, [(s, e, 7 - k) for s, e, k in ref]) == 0.0


def test_der_counts_miss_false_alarm_and_confusion() -> None:
    ref = [(0.0, 10.0, 0), (10.0, 20.0, 1)]
    assert der(ref, [(0.0, 20.0, 0)], collar=0.0) == pytest.approx(0.5)
    assert der(ref, [(0.0, 10.0, 0)], collar=0.0) == pytest.approx(0.5)
    assert der(ref, [*ref, (20.0, 25.0, 1)], collar=0.0) == pytest.approx(0.25)


def test_der_collar_forgives_boundary_slips() -> None:
    ref = [(0.0, 10.0, 0), (10.0, 20.0, 1)]
    slipped = [(0.0, 10.2, 0), (10.2, 20.0, 1)]
    assert der(ref, slipped, collar=0.0) > 0.0
    assert der(ref, slipped, collar=0.25) == 0.0


# --- quality -----------------------------------------------------------------------------------------
@needs_espeak
@pytest.mark.parametrize("name", list(CORPUS))
def test_diarization_error_and_speaker_count(
    name: str, conversations: dict[str, Conversation], diarized: dict[str, list[Turn]]
) -> None:
    conv, turns = conversations[name], diarized[name]
    score = der(conv.turns, _hyp(turns))
    print(f"{name}: DER {score * 100:.2f} %, {len({t.speaker for t in turns})}/{conv.speakers} speakers")
    assert len({t.speaker for t in turns}) == conv.speakers
    assert score <= CORPUS[name][4]


@pytest.mark.skipif(JFK is None, reason="../shared/data (jfk.wav) is not available")
def test_one_speaker_on_jfk() -> None:
    from whisperdesk.core.audio import decode

    assert JFK is not None
    turns = diarize(decode(JFK))
    assert turns
    assert {t.speaker for t in turns} == {0}


@needs_espeak
def test_exact_count_is_obeyed(conversations: dict[str, Conversation]) -> None:
    conv = conversations["three-distinct"]
    turns = diarize(conv.audio, DiarizeOptions(count=SpeakerCount(2, 2)))
    assert len({t.speaker for t in turns}) == 2


@needs_espeak
def test_range_bounds_the_estimate(conversations: dict[str, Conversation]) -> None:
    conv = conversations["two-distinct"]
    turns = diarize(conv.audio, DiarizeOptions(count=SpeakerCount(3, 5)))
    assert len({t.speaker for t in turns}) >= 3


@needs_espeak
def test_chunked_clustering_matches_whole_clustering(conversations: dict[str, Conversation]) -> None:
    """Long files are clustered in chunks; force tiny chunks on a short file to check the joining."""
    conv = conversations["three-distinct"]
    turns = diarize(conv.audio, DiarizeOptions(chunk=40))
    assert len({t.speaker for t in turns}) == 3
    assert der(conv.turns, _hyp(turns)) <= 0.05


def test_cluster_handles_tiny_inputs() -> None:
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((3, 192)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert cluster(emb[:0], SpeakerCount()).tolist() == []
    assert cluster(emb[:1], SpeakerCount()).tolist() == [0]
    assert sorted(set(cluster(emb, SpeakerCount(3, 3)).tolist())) == [0, 1, 2]


# --- progress and cancel -----------------------------------------------------------------------------
@needs_espeak
def test_progress_rises_to_the_duration(conversations: dict[str, Conversation]) -> None:
    conv = conversations["two-distinct"]
    seen: list[tuple[float, float]] = []
    diarize(conv.audio[: 16000 * 20], progress=lambda done, total: seen.append((done, total)))
    dones = [d for d, _ in seen]
    assert dones == sorted(dones)
    assert seen[-1][0] == pytest.approx(seen[-1][1]) == pytest.approx(20.0)


@needs_espeak
def test_cancel_stops_with_cancelled(conversations: dict[str, Conversation]) -> None:
    conv = conversations["two-distinct"]
    cancel = threading.Event()

    def stop_midway(done: float, total: float) -> None:
        if done > 0.3 * total:
            cancel.set()

    with pytest.raises(Cancelled):
        diarize(conv.audio, progress=stop_midway, cancel=cancel)


def test_a_sliver_of_a_long_recording_is_no_speaker_unless_asked_for() -> None:
    """Mechanics of the minimum-share prior: two tight groups of 600 windows and 12 in-between windows (like
    windows spanning two people's turns) are two speakers with auto, three when three are asked for."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((2, 192))

    def group(centre: np.ndarray, count: int) -> np.ndarray:
        rows = centre + 0.6 * rng.standard_normal((count, 192))
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    emb = np.concatenate([group(centres[0], 600), group(centres.sum(0), 12), group(centres[1], 600)])
    assert cluster(emb.astype(np.float32), SpeakerCount()).max() + 1 == 2
    assert cluster(emb.astype(np.float32), SpeakerCount(3, 3)).max() + 1 == 3
