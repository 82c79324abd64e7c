"""Real speech with known text, made offline with espeak-ng: the corpus for WER and lost-speech tests.

Why synthetic: real Whisper weights recognise espeak-ng speech well (jfk-level accuracy), the text of every
sentence is known exactly, and the layout is ours to choose. Sentences are spoken in several voices, speeds
and pitches and joined with short, uneven pauses, so Silero VAD merges them into speech regions longer than
a 30-s window and sentences cross window boundaries — the place where a batched decoder used to drop the
unfinished tail of a window. Files are written once per cache folder and reused (keyed by their content).

``build_corpus(folder)`` gives the ~80-s English test file; ``build_long_file(folder, minutes=10)`` a long
lecture-like file for progress tests; ``shared_files()`` adds jfk and multilingual.mp3 from ``../shared/data``
when that folder exists.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000

# Voices, speeds (words/min) and pitches (0-99) cycled over the sentences.
VOICES = ("en-us+m3", "en-gb+f2", "en-us+f3", "en-gb-x-rp+m1", "en-us+m7")
SPEEDS = (150, 170, 135, 160, 175)
PITCHES = (45, 60, 35, 50, 70)

SENTENCES = (
    "The office will be closed on Friday because of the public holiday.",
    "The doctor recommended more sleep and a short walk after every meal.",
    "Please send the quarterly report to the finance team before noon.",
    "Our train to Edinburgh leaves from platform nine at half past seven.",
    "She painted the kitchen a pale shade of green last weekend.",
    "The library has extended its opening hours during the examination period.",
    "Remember to water the tomatoes while I am away on holiday.",
    "The committee approved the new budget after a long discussion.",
    "A heavy storm knocked down several trees along the river path.",
    "He forgot his umbrella at the museum and had to go back for it.",
    "The bakery on the corner sells fresh bread every morning.",
    "Our neighbours adopted a small brown dog from the animal shelter.",
    "The engineers replaced the old bridge with a wider steel structure.",
    "Children learned how to plant seeds in the school garden.",
    "The concert was postponed until the singer recovered from her cold.",
    "Fresh snow covered the mountain road and closed the northern pass.",
    "My grandfather still repairs old clocks in his workshop.",
    "The ferry to the island runs twice a day in the winter months.",
    "Volunteers cleaned the beach and collected three bags of plastic.",
    "The museum opened a new exhibition about ancient maps.",
)

# Pieces for the long file: every sentence is unique, so a dropped one can be found.
_SUBJECTS = (
    "The manager",
    "My sister",
    "The new teacher",
    "Our landlord",
    "The young pilot",
    "A local farmer",
    "The head chef",
    "The county librarian",
)
_ACTIONS = (
    "repaired the broken fence",
    "ordered a dozen blue folders",
    "visited the harbour museum",
    "cancelled the evening meeting",
    "planted apple trees",
    "wrote a letter to the council",
    "bought a second hand bicycle",
    "cleaned the attic windows",
    "painted the garden shed",
    "booked a table for dinner",
    "moved the piano upstairs",
    "collected the parcels",
)
_TIMES = (
    "on Monday morning",
    "before the storm arrived",
    "after the long holiday",
    "during the lunch break",
    "late on Thursday evening",
    "early last spring",
    "while the children slept",
)


@dataclass(frozen=True)
class Utterance:
    text: str
    voice: str
    speed: int
    pitch: int


@dataclass(frozen=True)
class SpokenSentence:
    text: str
    start: float  # seconds in the file
    end: float


@dataclass(frozen=True)
class CorpusFile:
    """One audio file with its reference: the full text and where each sentence was spoken."""

    path: Path
    sentences: tuple[SpokenSentence, ...]
    language: str = "en"

    @property
    def reference(self) -> str:
        return " ".join(s.text for s in self.sentences)

    @property
    def duration(self) -> float:
        import soundfile

        return float(soundfile.info(str(self.path)).duration)


class CorpusUnavailable(RuntimeError):
    """espeak-ng is missing; tests that need speech say so instead of passing on nothing."""


def espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise CorpusUnavailable(
            "espeak-ng is not installed; install it (apt install espeak-ng) to build the speech test corpus"
        )
    return exe


def speak(utterance: Utterance) -> np.ndarray:
    """One sentence as 16-kHz float32 samples, leading and trailing silence trimmed."""
    from faster_whisper.audio import decode_audio

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(
            [
                espeak(),
                "-v",
                utterance.voice,
                "-s",
                str(utterance.speed),
                "-p",
                str(utterance.pitch),
                "-w",
                str(wav),
                utterance.text,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        samples = np.asarray(decode_audio(str(wav), sampling_rate=SAMPLE_RATE), dtype=np.float32)
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


def utterances(texts: tuple[str, ...] | list[str]) -> list[Utterance]:
    """Texts with voices, speeds and pitches cycled so no two neighbours sound alike."""
    return [
        Utterance(text, VOICES[i % len(VOICES)], SPEEDS[i % len(SPEEDS)], PITCHES[(i * 2) % len(PITCHES)])
        for i, text in enumerate(texts)
    ]


def pauses(count: int, seed: int) -> list[float]:
    """Uneven gaps between sentences, mostly shorter than VAD's 1-s silence, so speech regions run long."""
    rng = np.random.default_rng(seed)
    return [float(x) for x in rng.choice((0.35, 0.5, 0.7, 0.9, 1.3), size=count)]


def render(parts: list[Utterance], path: Path, *, seed: int = 0, lead: float = 0.6) -> CorpusFile:
    """Speak ``parts`` one after another into ``path`` (16-kHz mono wav), or reuse it if already built."""
    import soundfile

    key = hashlib.sha256(json.dumps([seed, lead, [p.__dict__ for p in parts]]).encode()).hexdigest()[:16]
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        saved = json.loads(meta.read_text())
        if saved.get("key") == key:
            return CorpusFile(path, tuple(SpokenSentence(**s) for s in saved["sentences"]))
    gaps = pauses(len(parts), seed)
    chunks = [np.zeros(round(lead * SAMPLE_RATE), np.float32)]
    spoken: list[SpokenSentence] = []
    at = lead
    for part, gap in zip(parts, gaps, strict=True):
        samples = speak(part)
        spoken.append(SpokenSentence(part.text, round(at, 3), round(at + len(samples) / SAMPLE_RATE, 3)))
        chunks += [samples, np.zeros(round(gap * SAMPLE_RATE), np.float32)]
        at += len(samples) / SAMPLE_RATE + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.wav")
    soundfile.write(str(tmp), np.concatenate(chunks), SAMPLE_RATE, subtype="PCM_16")
    os.replace(tmp, path)
    meta.write_text(json.dumps({"key": key, "sentences": [s.__dict__ for s in spoken]}, indent=1))
    return CorpusFile(path, tuple(spoken))


def build_corpus(folder: Path) -> CorpusFile:
    """~80 s of English speech that crosses two 30-s window boundaries mid-region."""
    return render(utterances(SENTENCES), Path(folder) / "sentences.wav", seed=8)


def long_sentences(count: int) -> list[str]:
    """``count`` distinct sentences built from fixed pieces (deterministic)."""
    combos = itertools.product(_SUBJECTS, _ACTIONS, _TIMES)
    picked = [c for i, c in enumerate(combos) if i % 4 == 1][:count]
    return [f"{who} {did} {when}." for who, did, when in picked]


def build_long_file(folder: Path, minutes: float = 10.0) -> CorpusFile:
    """A lecture-like file of about ``minutes`` minutes (one sentence ≈ 4.2 s with its pause)."""
    count = max(1, round(minutes * 60 / 4.2))
    return render(utterances(long_sentences(count)), Path(folder) / f"long-{minutes:g}min.wav", seed=10)


def shared_data() -> Path | None:
    """``../shared/data`` next to the checkout (or $WHISPERDESK_SHARED_DATA), when present."""
    env = os.environ.get("WHISPERDESK_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    for folder in candidates:
        if (folder / "references.json").is_file():
            return folder
    return None


def shared_file(name: str) -> tuple[Path, str] | None:
    """A shared recording and its reference text, or None when the shared folder is absent."""
    folder = shared_data()
    if folder is None or not (folder / name).is_file():
        return None
    refs = json.loads((folder / "references.json").read_text())
    reference = refs[name]["reference"]
    if reference.startswith("same as "):
        reference = refs[reference.removeprefix("same as ")]["reference"]
    return folder / name, reference


def build_speech_of_length(folder: Path, seconds: float, *, first: int = 0) -> CorpusFile:
    """About ``seconds`` of lecture speech (whole sentences, ≈ 4 s each with its pause), starting at the
    ``first``-th sentence of :func:`long_sentences`, so files of different lengths hold different text: the
    recordings of the queue-latency tests and benchmark (a 12-minute talk, memos of 11 to 103 s)."""
    count = max(1, round(seconds / 4.0))
    texts = long_sentences(first + count)[first:]
    name = f"speech-{seconds:g}s-{first}.wav"
    return render(utterances(texts), Path(folder) / name, seed=first + count)
