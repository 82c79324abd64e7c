"""Speaker-label benchmark: DER, speaker count, speed and peak memory on long synthetic conversations.

Not part of the test suite (minutes of CPU). Two steps, so that the measured process holds only what the app
would hold (the decoded audio), not the synthesis buffers:

    python tools/bench_speakers.py synth --minutes 60 [--repeat 2] --out /tmp/meeting.wav
    python tools/bench_speakers.py run /tmp/meeting.wav

``synth`` writes the WAV and its reference turns (``.turns.json``); ``--repeat 2`` plays the conversation twice
back to back, so a 60-minute corpus gives a 2-hour file. ``run`` decodes it as the app does, diarizes it and
prints DER (0.25-s collar), speakers found, wall and CPU time, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from whisperdesk.core.audio import decode
from whisperdesk.core.speakers.diarize import DiarizeOptions, diarize
from whisperdesk.devtools.der import der
from whisperdesk.devtools.speaker_corpus import DISTINCT, SAMPLE_RATE, conversation


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def synth(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    conv = conversation(DISTINCT[: args.speakers], args.minutes * 60, seed=args.seed)
    length = len(conv.audio) / SAMPLE_RATE
    turns = [(s + i * length, e + i * length, k) for i in range(args.repeat) for s, e, k in conv.turns]
    sf.write(args.out, np.tile(conv.audio, args.repeat), SAMPLE_RATE, subtype="PCM_16")
    Path(args.out).with_suffix(".turns.json").write_text(json.dumps(turns), encoding="utf-8")
    print(f"{args.out}: {length * args.repeat / 60:.1f} min in {time.perf_counter() - started:.0f} s")


def run(args: argparse.Namespace) -> None:
    turns = [tuple(t) for t in json.loads(Path(args.audio).with_suffix(".turns.json").read_text("utf-8"))]
    started, cpu = time.perf_counter(), cpu_seconds()
    audio = decode(args.audio)
    hyp = diarize(audio, DiarizeOptions(threads=args.threads))
    took, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    duration = len(audio) / SAMPLE_RATE
    score = der(turns, [(t.start, t.end, t.speaker) for t in hyp])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{duration / 60:.1f} min, {len({t[2] for t in turns})} speakers: found {len({t.speaker for t in hyp})}, "
        f"DER {score * 100:.2f} %; decode+diarize wall {took:.0f} s ({took / duration:.3f}x realtime), "
        f"CPU {cpu:.0f} s ({cpu / duration:.3f}x), {args.threads} thread(s); peak RSS {peak:.0f} MB "
        f"(decoded audio {audio.nbytes / 2**20:.0f} MB)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    make = steps.add_parser("synth")
    make.add_argument("--minutes", type=float, default=60.0)
    make.add_argument("--speakers", type=int, default=4)
    make.add_argument("--repeat", type=int, default=1)
    make.add_argument("--seed", type=int, default=7)
    make.add_argument("--out", required=True)
    measure = steps.add_parser("run")
    measure.add_argument("audio")
    measure.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    (synth if args.step == "synth" else run)(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
