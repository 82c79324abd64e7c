"""Speaker-label benchmark: DER, speaker count, speed and peak memory on long synthetic conversations.

Not part of the test suite (minutes of CPU). Two steps, so that the measured process holds only what the app
would hold (the decoded audio), not the synthesis buffers:

    python tools/bench_speakers.py synth --minutes 60 [--repeat 2] --out /tmp/meeting.wav
    python tools/bench_speakers.py run /tmp/meeting.wav

``synth`` writes the WAV and its reference turns (``.turns.json``); ``--repeat 2`` plays the conversation twice
back to back, so a 60-minute corpus gives a 2-hour file. ``run`` decodes it as the app does, diarizes it and
prints DER (0.25-s collar), speakers found, wall and CPU time, and the process's peak RSS.

    python tools/bench_speakers.py real [--built]

diarizes every recording of real people in ``../shared/data/real-speech`` (and, with ``--built``, the
conversations built from their voices, devtools/real_conversations.py) with ``auto`` and with the true count,
and prints a Markdown table: speakers found, DER and its missed / false-alarm / confusion parts per file.
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
from whisperdesk.core.speakers.count import SpeakerCount
from whisperdesk.core.speakers.diarize import DiarizeOptions, diarize
from whisperdesk.devtools.der import der, der_parts
from whisperdesk.devtools.real_conversations import SETS, built_set
from whisperdesk.devtools.real_speakers import MULTI, SINGLE, recording
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


def real(args: argparse.Namespace) -> None:
    print("| recording | true | hint | found | DER | missed | false alarm | confusion | diarize s |")
    print("|---|---|---|---|---|---|---|---|---|")
    items: list[tuple[str, np.ndarray, list[tuple[float, float, int]], int]] = []
    for name in (*MULTI, *SINGLE):
        rec = recording(name)
        if rec is None:
            raise SystemExit("../shared/data/real-speech is not beside the checkout")
        audio = rec.audio()
        turns = rec.numbered_turns() or [(0.0, len(audio) / SAMPLE_RATE, 0)]
        items.append((name, audio, turns, rec.speakers))
    if args.built:
        for name in SETS:
            conv = built_set(name)
            items.append((f"built {name}", conv.audio, conv.turns, conv.speakers))
    for name, audio, turns, speakers in items:
        hints = [SpeakerCount()] + ([SpeakerCount(speakers, speakers)] if speakers > 1 else [])
        for hint in hints:
            started = time.perf_counter()
            hyp = diarize(audio, DiarizeOptions(count=hint, threads=args.threads))
            took = time.perf_counter() - started
            found = len({t.speaker for t in hyp})
            if speakers == 1:  # no reference turns: only the count is scored
                print(f"| {name} | 1 | {hint} | {found} | | | | | {took:.1f} |")
                continue
            p = der_parts(turns, [(t.start, t.end, t.speaker) for t in hyp])
            print(
                f"| {name} | {speakers} | {hint} | {found} | {p.der:.1%} | {p.share('missed'):.1%} | "
                f"{p.share('false_alarm'):.1%} | {p.share('confusion'):.1%} | {took:.1f} |",
                flush=True,
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
    on_real = steps.add_parser("real")
    on_real.add_argument("--built", action="store_true", help="also the conversations built from real voices")
    on_real.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    {"synth": synth, "run": run, "real": real}[args.step](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
