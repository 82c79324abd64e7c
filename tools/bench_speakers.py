"""Speaker-label benchmark: DER, speaker count, speed and peak memory on long synthetic conversations.

Not part of the test suite (minutes of CPU). Run: python tools/bench_speakers.py [--minutes 60] [--repeat 2]
``--repeat 2`` plays the conversation twice back to back, so a 60-minute corpus measures a 2-hour file's memory.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time

import numpy as np

from whisperdesk.core.speakers.diarize import DiarizeOptions, diarize
from whisperdesk.devtools.der import der
from whisperdesk.devtools.speaker_corpus import DISTINCT, SAMPLE_RATE, conversation


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RssSampler(threading.Thread):
    """Peak resident memory while diarizing (the process's lifetime peak would include the synthesis)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        process = psutil.Process()
        while not self.stop.wait(0.1):
            self.peak = max(self.peak, process.memory_info().rss)


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
    del conv
    print(f"synthesised {len(audio) / SAMPLE_RATE / 60:.1f} min in {time.perf_counter() - started:.0f} s")
    sampler = RssSampler()
    sampler.start()
    started, cpu = time.perf_counter(), cpu_seconds()
    hyp = diarize(audio, DiarizeOptions(threads=args.threads))
    took, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    sampler.stop.set()
    sampler.join()
    duration = len(audio) / SAMPLE_RATE
    found = len({t.speaker for t in hyp})
    score = der(turns, [(t.start, t.end, t.speaker) for t in hyp])
    print(
        f"{duration / 60:.1f} min, {args.speakers} speakers: found {found}, DER {score * 100:.2f} %, "
        f"wall {took:.0f} s ({took / duration:.3f}x realtime), CPU {cpu:.0f} s ({cpu / duration:.3f}x), "
        f"{args.threads} thread(s); peak RSS while diarizing {sampler.peak / 2**20:.0f} MB "
        f"(audio alone {audio.nbytes / 2**20:.0f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
