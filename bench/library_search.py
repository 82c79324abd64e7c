"""How fast the transcript library answers searches when it holds a large collection.

It fills a library in a temporary folder with synthetic transcripts (by default 2,000 of ~1,000 words
each: ~2 million words, ~100,000 segments), through the library's own ``put`` (the path finished jobs take),
then times each kind of query the window and ``whisperdesk search`` send: a single word, a phrase, a
prefix, a word with the speaker filter, a CJK word inside unspaced text, a word typed without its accent,
a rare word; in both orders (newest first, best match). Each query runs ``--repeat`` times after one warm-up;
the median and 95th percentile are printed in milliseconds with the number of results (at most ``--limit``,
as the window asks). The text is drawn from a word list (a Zipf-like mix of common and rare made-up words,
with the query words planted at known rates): meaningless prose, but the index sees the same token counts
and spreads as in real speech.

    python -m bench.library_search                       # 2,000 transcripts, ~2 M words
    python -m bench.library_search --transcripts 200     # a quick look
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from whisperdesk.core.library.store import TranscriptLibrary
from whisperdesk.core.transcript import Segment, Transcript

SEGMENT_WORDS = (12, 28)  # words per segment, like Whisper's sentence-sized segments
SYLLABLES = ("ka", "lo", "mi", "ren", "tu", "sa", "vel", "dor", "pi", "an", "est", "ori", "qua", "ne", "zu")
PLANTED = ("budget", "budgets", "budgeting", "holiday", "public", "Müller", "allowance")
CJK_SENTENCES = ("我们的预算很紧", "明天是公共假期", "東京タワーに行きました", "会議は月曜日です")
SPEAKERS = ("Speaker 1", "Speaker 2", "Speaker 3", "Speaker 4")

QUERIES: tuple[tuple[str, str, str | None], ...] = (
    ("single word", "budget", None),
    ("phrase", '"public holiday"', None),
    ("prefix", "budg*", None),
    ("speaker filter", "budget", "Speaker 3"),
    ("CJK word", "预算", None),
    ("no accent typed", "muller", None),
    ("two words", "public budget", None),
    ("rare word", "allowance", None),
)


@dataclass(frozen=True)
class Timing:
    label: str
    query: str
    speaker: str | None
    order: str
    results: int
    median_ms: float
    p95_ms: float


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def make_transcript(
    index: int, words: Sequence[str], weights: Sequence[float], target: int, rng: random.Random
) -> Transcript:
    segments: list[Segment] = []
    at, count = 0.0, 0
    cjk = index % 20 == 0  # one transcript in twenty is Chinese/Japanese
    while count < target:
        if cjk:
            text = rng.choice(CJK_SENTENCES)
            n = len(text)
        else:
            n = rng.randint(*SEGMENT_WORDS)
            picked = rng.choices(words, weights, k=n)
            if rng.random() < 0.05:  # planted words, each in about 5 % / 7 segments
                picked[rng.randrange(n)] = rng.choice(PLANTED[:-1])
            if rng.random() < 0.02:
                at_word = rng.randrange(n - 1)
                picked[at_word : at_word + 2] = ["public", "holiday"]
            if rng.random() < 0.0005:
                picked[rng.randrange(n)] = "allowance"
            text = " ".join(picked).capitalize() + "."
        length = 0.3 * n
        segments.append(Segment(at, at + length, text, speaker=SPEAKERS[len(segments) % len(SPEAKERS)]))
        at += length + 0.2
        count += n
    return Transcript(
        f"/recordings/meeting-{index:04d}.wav", segments, "en", 0.99, at, "synthetic", "int8", "cpu"
    )


def fill(library: TranscriptLibrary, transcripts: int, words_each: int, seed: int) -> tuple[int, float]:
    """Put the synthetic transcripts in; returns (words stored, seconds taken)."""
    rng = random.Random(seed)
    vocab = vocabulary(20_000, rng)
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]  # Zipf: a few words very common
    total = 0
    started = time.perf_counter()
    for i in range(transcripts):
        transcript = make_transcript(i, vocab, weights, words_each, rng)
        total += sum(len(s.text.split()) if " " in s.text else len(s.text) for s in transcript.segments)
        library.put(transcript, job_id=i + 1, job_created_at=float(i), created_at=1_700_000_000.0 + i * 3600)
    return total, time.perf_counter() - started


def time_queries(library: TranscriptLibrary, repeat: int, limit: int) -> list[Timing]:
    timings: list[Timing] = []
    for order in ("newest", "best"):
        for label, query, speaker in QUERIES:
            hits = library.search(query, speaker=speaker, order=order, limit=limit)  # warm-up
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                library.search(query, speaker=speaker, order=order, limit=limit)
                samples.append((time.perf_counter() - started) * 1000)
            samples.sort()
            p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
            timings.append(Timing(label, query, speaker, order, len(hits), statistics.median(samples), p95))
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.library_search", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--transcripts", type=int, default=2000)
    parser.add_argument("--words", type=int, default=1000, help="words per transcript (about)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--limit", type=int, default=100, help="results asked for, as the window does")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--folder", help="keep the library here (and reuse it next time) instead of a temp dir"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wd-library-bench-") as tmp:
        folder = Path(args.folder) if args.folder else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        library = TranscriptLibrary(folder / "library.sqlite3")
        try:
            if library.count() == args.transcripts:  # --folder: reuse a library filled by an earlier run
                print(f"library: reusing the {args.transcripts} transcripts in {folder}")
            else:
                words, seconds = fill(library, args.transcripts, args.words, args.seed)
                size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
                print(
                    f"library: {args.transcripts} transcripts, {words:,} words, {library.segment_count():,} "
                    f"segments, {size:.0f} MB on disk; filled in {seconds:.1f} s"
                )
            for t in time_queries(library, args.repeat, args.limit):
                who = f" --speaker '{t.speaker}'" if t.speaker else ""
                print(
                    f"{t.order:6}  {t.label:16} {t.query + who:34} {t.results:4d} results  "
                    f"median {t.median_ms:7.2f} ms  p95 {t.p95_ms:7.2f} ms"
                )
        finally:
            library.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
