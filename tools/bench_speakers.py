"""Speaker-label benchmark: DER, speaker count, speed and peak memory on long synthetic conversations.

Not part of the test suite (minutes of CPU). Run: python tools/bench_speakers.py [--minutes 60] [--repeat 2]
``--repeat 2`` plays the conversation twice back to back, so a 60-minute corpus measures a 2-hour file's memory.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from whisperdesk.core.speakers.diarize import DiarizeOptions, diarize
from whisperdesk.devtools.der import der
from whisperdesk.devtools.speaker_corpus import DISTINCT, SAMPLE_RATE, conversation


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    conv = conversation(DISTINCT[: args.speakers], args.minutes * 60, seed=7)
    audio, turns = conv.audio, list(conv.turns)
    length = len(audio) / SAMPLE_RATE
    for i in range(1, args.repeat):
        turns += [(s + i * length, e + i * length, k) for s, e, k in conv.turns]
    audio = np.tile(audio, args.repeat)
    print(f"synthesised {len(audio) / SAMPLE_RATE / 60:.1f} min in {time.perf_counter() - started:.0f} s")
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    hyp = diarize(audio, DiarizeOptions(threads=args.threads))
    took = time.perf_counter() - started
    duration = len(audio) / SAMPLE_RATE
    found = len({t.speaker for t in hyp})
    score = der(turns, [(t.start, t.end, t.speaker) for t in hyp])
    print(
        f"{duration / 60:.1f} min, {args.speakers} speakers: found {found}, DER {score * 100:.2f} %, "
        f"{took:.0f} s ({took / duration:.3f}x realtime, {args.threads} thread), "
        f"peak RSS {peak_rss_mb():.0f} MB (after synthesis {rss_before:.0f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
