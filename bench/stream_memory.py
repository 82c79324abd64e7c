"""Peak memory against recording length, and the transcripts the long-recording path must not change.

Two commands:

    python bench/stream_memory.py rss --kind generated --minutes 10 60 180 --model /path/to/base
    python bench/stream_memory.py transcripts OUT.json --model /path/to/base

``rss`` writes one long recording per length into a temporary folder (deleted afterwards) and transcribes it
in a fresh child process through ``Engine.transcribe`` at batch 8 on the CPU, the app's path for one file,
then prints the child's peak RSS (the kernel's high-water mark, ``VmHWM``). Kinds:

* ``generated``: a 10-minute cycle of 3 min silence, 3 min 440-Hz tone, 3 min quiet noise and ~20 s of
  espeak-ng speech, at 22.05 kHz FLAC (so the resampler runs), as an all-day recorder in an empty room;
* ``real``: the English recordings of real people in the shared ``data/real-speech`` folder, concatenated
  with 1-s pauses and repeated to length, at 16 kHz WAV: every minute is speech that reaches the model.

``transcripts`` transcribes jfk, those real recordings concatenated once (~4 min) and a 3-minute espeak-ng
talk, and writes every segment (start, end, text) as JSON: run it on two versions of the code and compare
the files to show a change kept the words and timestamps.

The child imports ``whisperdesk`` from wherever ``PYTHONPATH`` points first, so the same script measures an
exported copy of another branch (``git archive main | tar -x -C /tmp/main-src``, then
``--pythonpath /tmp/main-src``). This file therefore imports only ``whisperdesk``, never ``bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SR_GENERATED = 22050
REAL_FILES = (
    "lj_printing_a.flac",
    "osr_harvard_0034.flac",
    "ami_dev00.flac",
    "pyannote_sample.flac",
    "ami_dev01.flac",
    "leopard_en.flac",
)
_SENTENCES = (
    "The recorder ran all day in the empty hall, and only now and then did someone speak into it.",
    "Please remember that the meeting on the third floor starts at ten, not at half past nine.",
)


def _shared_real_speech() -> Path:
    from whisperdesk.devtools.speech_corpus import shared_data

    data = shared_data()
    if data is None or not (data / "real-speech").is_dir():
        raise SystemExit("the shared data folder (data/real-speech) is not available on this machine")
    return data / "real-speech"


def _real_speech_16k() -> np.ndarray:
    """The English real-speech recordings joined with 1-s pauses (all are 16 kHz mono)."""
    import soundfile as sf

    folder = _shared_real_speech()
    parts: list[np.ndarray] = []
    for name in REAL_FILES:
        samples, rate = sf.read(str(folder / name), dtype="float32", always_2d=True)
        if rate != 16000:
            raise SystemExit(f"{name}: expected 16 kHz, found {rate}")
        parts += [samples.mean(axis=1, dtype=np.float32), np.zeros(16000, dtype=np.float32)]
    return np.concatenate(parts)


def _espeak_clip(rate: int) -> np.ndarray:
    """~20 s of espeak-ng speech at ``rate``, made once."""
    from whisperdesk.devtools.speech_corpus import render, utterances

    with tempfile.TemporaryDirectory() as tmp:
        corpus = render(utterances(list(_SENTENCES)), Path(tmp) / "clip.wav", seed=3)
        import soundfile as sf

        samples, source_rate = sf.read(str(corpus.path), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1, dtype=np.float32)
    if source_rate == rate:
        return mono
    positions = np.arange(0, len(mono) * rate // source_rate) * (source_rate / rate)
    return np.interp(positions, np.arange(len(mono)), mono).astype(np.float32)


def write_generated(path: Path, seconds: float) -> Path:
    """The ``generated`` kind, written block by block (never the whole file in memory)."""
    import soundfile as sf

    rate = SR_GENERATED
    clip = _espeak_clip(rate)
    rng = np.random.default_rng(7)
    minute = 60 * rate
    t = np.arange(minute, dtype=np.float64) / rate
    tone_minute = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    cycle: list[tuple[str, int]] = [("silence", 3), ("tone", 3), ("noise", 3), ("speech", 1)]
    left = int(seconds * rate)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as out:
        while left > 0:
            for kind, minutes in cycle:
                for _ in range(minutes):
                    if kind == "silence":
                        block = np.zeros(minute, dtype=np.float32)
                    elif kind == "tone":
                        block = tone_minute
                    elif kind == "noise":
                        block = (0.003 * rng.standard_normal(minute)).astype(np.float32)
                    else:
                        block = np.zeros(minute, dtype=np.float32)
                        block[: min(len(clip), minute)] = clip[:minute]
                    block = block[:left]
                    out.write(block)
                    left -= len(block)
                    if left <= 0:
                        return path
    return path


def write_real(path: Path, seconds: float) -> Path:
    """The ``real`` kind: the real recordings repeated to ``seconds``, as 16-kHz WAV."""
    import soundfile as sf

    joined = _real_speech_16k()
    left = int(seconds * 16000)
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, format="WAV", subtype="PCM_16") as out:
        while left > 0:
            block = joined[:left]
            out.write(block)
            left -= len(block)
    return path


def child_rss(path: Path, model: str, batch: int, threads: int) -> dict[str, Any]:
    """In the child: transcribe ``path`` once at ``batch`` on the CPU; peak RSS and what came out."""
    import resource

    from whisperdesk.core.engine import Engine
    from whisperdesk.core.settings import DecodeOptions, ModelConfig

    config = ModelConfig(
        model=model, device="cpu", compute_type="int8", batch_size=batch, cpu_threads=threads
    )
    with tempfile.TemporaryDirectory() as models_dir:
        engine = Engine(config, Path(models_dir), local_files_only=True)
        engine.load()
        loaded_rss = _vm("VmRSS")
        began = time.monotonic()
        transcript = engine.transcribe(path, DecodeOptions())
        wall = time.monotonic() - began
        engine.close()
    return {
        "peak_rss_mb": round(
            (_vm("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
        ),
        "model_loaded_rss_mb": round((loaded_rss or 0) / 2**20),
        "wall_s": round(wall, 1),
        "audio_s": round(transcript.duration, 1),
        "segments": len(transcript.segments),
        "words": sum(len(s.text.split()) for s in transcript.segments),
        "code": str(Path(sys.modules["whisperdesk"].__file__ or "?").parent),
    }


def child_cpu_stage(path: Path) -> dict[str, Any]:
    """In the child: the scheduler's CPU stage alone (decode, VAD, windows, log-mel features), no model.

    Deterministic (no sampling), so it shows what reading the recording costs apart from inference. Uses
    the streaming planner where this version of the code has one, else decode + ``plan_windows`` (main).
    """
    from faster_whisper.feature_extractor import FeatureExtractor

    from whisperdesk.core.batching import windows
    from whisperdesk.core.settings import DecodeOptions

    extractor = FeatureExtractor()
    began = time.monotonic()
    if hasattr(windows, "plan_stream"):
        from whisperdesk.core.audio import AudioStream

        plan, pieces = windows.plan_stream(lambda: AudioStream(path), DecodeOptions())
        how = "stream"
    else:
        from whisperdesk.core.audio import decode

        plan, pieces = windows.plan_windows(decode(path), DecodeOptions())
        how = "whole file"
    count = sum(1 for _ in windows.iter_features(extractor, pieces))
    return {
        "peak_rss_mb": round((_vm("VmHWM") or 0) / 2**20),
        "wall_s": round(time.monotonic() - began, 1),
        "audio_s": round(plan.duration, 1),
        "windows": count,
        "how": how,
        "code": str(Path(sys.modules["whisperdesk"].__file__ or "?").parent),
    }


def child_transcripts(files: list[Path], model: str, batch: int, threads: int) -> dict[str, Any]:
    from whisperdesk.core.engine import Engine
    from whisperdesk.core.settings import DecodeOptions, ModelConfig

    config = ModelConfig(
        model=model, device="cpu", compute_type="int8", batch_size=batch, cpu_threads=threads
    )
    out: dict[str, Any] = {"code": str(Path(sys.modules["whisperdesk"].__file__ or "?").parent), "files": {}}
    with tempfile.TemporaryDirectory() as models_dir:
        engine = Engine(config, Path(models_dir), local_files_only=True)
        for path in files:
            transcript = engine.transcribe(path, DecodeOptions())
            out["files"][path.name] = [[s.start, s.end, s.text] for s in transcript.segments]
        engine.close()
    return out


def _vm(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _run_child(args: list[str], pythonpath: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env=env,
        cwd=tempfile.gettempdir(),  # not the checkout: PYTHONPATH decides which whisperdesk is imported
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rss = sub.add_parser("rss", help="peak RSS against recording length")
    rss.add_argument("--kind", choices=("generated", "real"), required=True)
    rss.add_argument("--minutes", type=float, nargs="+", required=True)
    rss.add_argument(
        "--cpu-stage",
        action="store_true",
        help="only decode, VAD, windows and features (no model, no inference)",
    )
    texts = sub.add_parser("transcripts", help="segments of jfk, real speech and espeak speech, as JSON")
    texts.add_argument("out", type=Path)
    for p in (rss, texts):
        p.add_argument("--model", required=True, help="a CTranslate2 model folder (the real base weights)")
        p.add_argument("--batch", type=int, default=8)
        p.add_argument("--threads", type=int, default=0)
        p.add_argument("--pythonpath", default=None, help="import whisperdesk from here (another version)")
        p.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()))
    child = sub.add_parser("child-rss")
    child.add_argument("path", type=Path)
    child.add_argument("--cpu-stage", action="store_true")
    child_t = sub.add_parser("child-transcripts")
    child_t.add_argument("paths", type=Path, nargs="+")
    for p in (child, child_t):
        p.add_argument("--model", required=True)
        p.add_argument("--batch", type=int, default=8)
        p.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)

    if args.command == "child-rss":
        if args.cpu_stage:
            print(json.dumps(child_cpu_stage(args.path)))
        else:
            print(json.dumps(child_rss(args.path, args.model, args.batch, args.threads)))
        return
    if args.command == "child-transcripts":
        print(json.dumps(child_transcripts(args.paths, args.model, args.batch, args.threads)))
        return
    common = ["--model", args.model, "--batch", str(args.batch), "--threads", str(args.threads)]
    work = Path(tempfile.mkdtemp(prefix="wd-stream-", dir=args.folder))
    try:
        if args.command == "transcripts":
            import soundfile as sf

            from whisperdesk.devtools.speech_corpus import build_long_file, shared_data

            data = shared_data()
            if data is None:
                raise SystemExit("the shared data folder is not available on this machine")
            real = work / "real-speech-joined.wav"
            sf.write(str(real), _real_speech_16k(), 16000, subtype="PCM_16")
            talk = build_long_file(work, minutes=3.0).path
            files = [data / "jfk.flac", real, talk]
            result = _run_child(["child-transcripts", *map(str, files), *common], args.pythonpath)
            args.out.write_text(json.dumps(result, indent=1))
            print(
                f"{args.out}: {sum(len(v) for v in result['files'].values())} segments from {result['code']}"
            )
            return
        what = "CPU stage only" if args.cpu_stage else f"batch={args.batch} model={args.model}"
        print(f"kind={args.kind} {what} code={args.pythonpath or 'this checkout'}")
        for minutes in args.minutes:
            path = work / (f"{args.kind}-{minutes:g}min" + (".flac" if args.kind == "generated" else ".wav"))
            began = time.monotonic()
            (write_generated if args.kind == "generated" else write_real)(path, minutes * 60)
            size = path.stat().st_size
            written = time.monotonic() - began
            stage = ["--cpu-stage"] if args.cpu_stage else []
            row = _run_child(["child-rss", str(path), *common, *stage], args.pythonpath)
            path.unlink()
            if args.cpu_stage:
                print(
                    f"{minutes:g} min ({size / 2**20:.0f} MB file): CPU stage peak RSS {row['peak_rss_mb']} MB, "
                    f"{row['wall_s']} s wall, {row['windows']} windows ({row['how']}) [{row['code']}]",
                    flush=True,
                )
                continue
            print(
                f"{minutes:g} min ({size / 2**20:.0f} MB file, written in {written:.0f} s): "
                f"peak RSS {row['peak_rss_mb']} MB (model loaded: {row['model_loaded_rss_mb']} MB), "
                f"{row['wall_s']} s wall for {row['audio_s']} s audio, {row['segments']} segments, "
                f"{row['words']} words [{row['code']}]",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
