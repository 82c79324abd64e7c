"""A speech corpus with known text: voice memos, talks and a lecture spoken by espeak-ng.

Real Whisper weights recognise espeak-ng speech well (jfk's text: 0 % WER with tiny.en), so generated files
with their reference text give WER beside every speed figure without shipping recordings. Sentences come
from templates, not random words, so the model's language prior helps it as on real speech. Files are
paragraphs separated by 0.3–2.5 s pauses, as in a recording, so voice activity detection finds real
boundaries and windows end mid-sentence. Cached by (minutes, seed) with a manifest holding each text.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whisperdesk.core.errors import WhisperDeskError

log = logging.getLogger(__name__)

_SR = 22050  # espeak-ng's output rate
_VOICES = ("en-us", "en-gb", "en-us+m3", "en-gb+f2", "en-029")
_NOUNS = [
    "meeting",
    "budget",
    "report",
    "project",
    "client",
    "office",
    "garden",
    "kitchen",
    "station",
    "library",
    "museum",
    "hospital",
    "newspaper",
    "computer",
    "printer",
    "window",
    "bridge",
    "market",
    "teacher",
    "doctor",
    "manager",
    "student",
    "neighbour",
]
_ADJECTIVES = [
    "early",
    "late",
    "closed",
    "busy",
    "quiet",
    "expensive",
    "ready",
    "important",
    "difficult",
    "simple",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_VERBS = [
    "review",
    "repair",
    "paint",
    "visit",
    "prepare",
    "cancel",
    "finish",
    "explain",
    "improve",
    "discuss",
]
_NUMBERS = [
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "ten",
    "twelve",
    "twenty",
    "thirty",
    "forty",
    "fifty",
]
_TEMPLATES = (
    "The {noun} will be {adj} on {day}.",
    "We need to {verb} the {noun} before {day}.",
    "Please remember to {verb} the {noun} next week.",
    "Our {noun} was {adj} again this morning.",
    "The {noun} costs about {number} dollars.",
    "I think the {noun} should be {adj} by {day}.",
    "They decided to {verb} the {noun} together.",
    "There are {number} people waiting at the {noun}.",
    "Can you {verb} the {noun} after lunch?",
    "The {noun} near the {noun2} is {adj} today.",
    "Last {day} we had to {verb} the old {noun}.",
    "Everyone agreed that the {noun} looked {adj}.",
)
KINDS = ("memo", "talk", "lecture")


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    seconds: float
    kind: str  # "memo" | "talk" | "lecture"
    text: str  # what was spoken, for WER


def sentence(rng: random.Random) -> str:
    template = rng.choice(_TEMPLATES)
    return template.format(
        noun=rng.choice(_NOUNS),
        noun2=rng.choice(_NOUNS),
        adj=rng.choice(_ADJECTIVES),
        day=rng.choice(_DAYS),
        verb=rng.choice(_VERBS),
        number=rng.choice(_NUMBERS),
    )


def speak(text: str, voice: str, scratch: Path) -> np.ndarray:
    """espeak-ng's rendering of ``text`` as float32 samples at 22.05 kHz."""
    import soundfile

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise WhisperDeskError(
            "espeak-ng is not installed: the benchmark corpus is spoken by it. Install it (Debian/Ubuntu: "
            "`sudo apt install espeak-ng`) or pass your own recordings"
        )
    wav = scratch / "piece.wav"
    subprocess.run([exe, "-v", voice, "-w", str(wav), text], check=True, capture_output=True, timeout=60)
    samples, rate = soundfile.read(str(wav), dtype="float32", always_2d=False)
    if int(rate) != _SR:
        raise WhisperDeskError(f"espeak-ng wrote {rate} Hz audio; expected {_SR} Hz")
    return samples


def synth_file(path: Path, seconds: float, rng: random.Random, scratch: Path) -> str:
    """Write about ``seconds`` of paragraphs and pauses to ``path``; returns the text spoken.

    Stops at the first paragraph that reaches the length, so no word is cut off at the end.
    """
    import soundfile

    voice = rng.choice(_VOICES)
    parts: list[np.ndarray] = []
    texts: list[str] = []
    total = 0.0
    while total < seconds or not texts:
        text = " ".join(sentence(rng) for _ in range(rng.randint(1, 4)))
        samples = speak(text, voice, scratch)
        pause = np.zeros(int(rng.uniform(0.3, 2.5) * _SR), dtype=np.float32)
        parts += [samples, pause]
        texts.append(text)
        total += (len(samples) + len(pause)) / _SR
    soundfile.write(str(path), np.concatenate(parts), _SR, subtype="PCM_16")
    return " ".join(texts)


def plan_lengths(minutes: float, rng: random.Random) -> list[tuple[float, str]]:
    """File lengths: from 3 minutes on, a lecture (~40 %, at most 12 min) and talks of 1–6 min (~30 %);
    the rest voice memos of 10–60 s, shuffled."""
    target = minutes * 60.0
    lengths: list[tuple[float, str]] = []
    if minutes >= 3:
        lengths.append((min(0.4 * target, 720.0), "lecture"))
        budget = 0.3 * target
        while budget >= 60.0:
            talk = min(rng.uniform(60.0, 360.0), budget)
            lengths.append((talk, "talk"))
            budget -= talk
    remaining = target - sum(s for s, _ in lengths)
    while remaining > 5.0:
        memo = min(rng.uniform(10.0, 60.0), remaining)
        lengths.append((memo, "memo"))
        remaining -= memo
    rng.shuffle(lengths)
    return lengths


def synthetic_corpus(folder: Path, minutes: float, *, seed: int = 0) -> list[CorpusFile]:
    """Memos, talks and a lecture, about ``minutes`` in all, with their texts; cached in ``folder``."""
    if minutes <= 0:
        raise ValueError(f"--synthetic needs a positive number of minutes, got {minutes}")
    corpus_dir = Path(folder) / f"speech-{minutes:g}min-seed{seed}"
    cached = _read_manifest(corpus_dir)
    if cached:
        return cached
    rng = random.Random(seed)
    return _make(corpus_dir, [(s, k) for s, k in plan_lengths(minutes, rng)], rng)


def short_memos(folder: Path, count: int = 20, *, seed: int = 0) -> list[CorpusFile]:
    """``count`` spoken memos of 2–5 s for the memory check (cached like the corpus)."""
    corpus_dir = Path(folder) / f"short-memos-{count}-seed{seed}"
    cached = _read_manifest(corpus_dir)
    if cached:
        return cached
    rng = random.Random(seed + 7919)
    return _make(corpus_dir, [(rng.uniform(2.0, 5.0), "memo") for _ in range(count)], rng, one_sentence=True)


def _make(
    corpus_dir: Path, lengths: list[tuple[float, str]], rng: random.Random, *, one_sentence: bool = False
) -> list[CorpusFile]:
    import soundfile

    corpus_dir.mkdir(parents=True, exist_ok=True)
    scratch = corpus_dir / ".scratch"
    scratch.mkdir(exist_ok=True)
    files = []
    try:
        for i, (seconds, kind) in enumerate(lengths):
            path = corpus_dir / f"{kind}-{i:03d}.wav"
            if one_sentence:
                text = sentence(rng)
                soundfile.write(str(path), speak(text, rng.choice(_VOICES), scratch), _SR, subtype="PCM_16")
            else:
                text = synth_file(path, seconds, rng, scratch)
            files.append(CorpusFile(path, soundfile.info(str(path)).duration, kind, text))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    entries = [{"name": f.path.name, "seconds": f.seconds, "kind": f.kind, "text": f.text} for f in files]
    (corpus_dir / "manifest.json").write_text(json.dumps(entries, indent=1), encoding="utf-8")
    return files


def _read_manifest(corpus_dir: Path) -> list[CorpusFile]:
    manifest = corpus_dir / "manifest.json"
    if not manifest.is_file():
        return []
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))
        files = [
            CorpusFile(corpus_dir / e["name"], float(e["seconds"]), e["kind"], e["text"]) for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("benchmark corpus %s is damaged; making it again", corpus_dir)
        return []
    return files if files and all(f.path.is_file() for f in files) else []


def references(files: list[CorpusFile]) -> dict[Path, str]:
    """Reference text by path, for scoring a run's transcripts."""
    return {f.path: f.text for f in files}
