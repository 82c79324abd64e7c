"""Decoding every container WhisperDesk accepts, and one distinct, named error for every kind of bad file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from whisperdesk.core import audio
from whisperdesk.core.errors import (
    AudioError,
    EmptyFileError,
    FileDisappearedError,
    NoAudioStreamError,
    NotAudioError,
    TruncatedFileError,
    UnreadableFileError,
)
from whisperdesk.devtools.synth_audio import (
    WRITABLE_FORMATS,
    make_empty,
    make_garbage_after_header,
    make_not_audio,
    make_truncated,
    noise,
    silence,
    speech_like,
    tone,
    write_audio,
    write_video_only,
)

SECONDS = 2.0
SOURCE_SR = 44100
FREQ = 440.0
VIDEO_FORMATS = {"webm", "mp4", "m4v", "mkv", "mov", "avi", "3gp"}


def _stereo_tone(seconds: float = SECONDS, sr: int = SOURCE_SR) -> np.ndarray:
    left = tone(FREQ, seconds, sr, amplitude=0.5)
    return np.stack([left, left], axis=1)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 2-s stereo 44.1 kHz tone per container, written once for the module (encoding is the slow part)."""
    folder = tmp_path_factory.mktemp("media")
    return {fmt: write_audio(folder / f"tone.{fmt}", _stereo_tone(), SOURCE_SR) for fmt in WRITABLE_FORMATS}


def _dominant_hz(samples: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / sr)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("fmt", WRITABLE_FORMATS)
def test_decode_round_trip(fmt: str, media: dict[str, Path]) -> None:
    samples = audio.decode(media[fmt])
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) / 16000 == pytest.approx(SECONDS, abs=0.12)  # codecs pad or trim a few ms
    assert float(np.max(np.abs(samples))) <= 1.0
    middle = samples[4000:-4000]
    # resampled correctly: the pitch survives 44.1 kHz -> 16 kHz (8 kHz AMR included)
    assert _dominant_hz(middle, 16000) == pytest.approx(FREQ, abs=4)
    # downmixed as an average: L = R = 0.5 sine -> RMS 0.354 (AMR's narrowband codec loses some level)
    rms = float(np.sqrt(np.mean(middle**2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.2)


@pytest.mark.parametrize("fmt", WRITABLE_FORMATS)
def test_probe_describes_the_audio_track(fmt: str, media: dict[str, Path]) -> None:
    info = audio.probe(media[fmt])
    assert info.path == media[fmt]
    assert info.duration == pytest.approx(SECONDS, abs=0.12)
    assert info.has_video is (fmt in VIDEO_FORMATS)
    assert info.channels == (1 if fmt in ("amr", "3gp") else 2)
    assert info.sample_rate in (8000, 44100, 48000)  # AMR is 8 kHz; Opus always decodes at 48 kHz
    assert info.codec and info.container


def test_probe_reports_codec_and_container_names(media: dict[str, Path]) -> None:
    assert audio.probe(media["wav"]).codec == "pcm_s16le"
    assert audio.probe(media["mp3"]).codec == "mp3"
    mp4 = audio.probe(media["mp4"])
    assert (mp4.codec, mp4.container) == ("aac", "mp4")
    assert audio.probe(media["webm"]).container == "webm"


def test_other_sampling_rates(media: dict[str, Path]) -> None:
    assert len(audio.decode(media["mp3"], sampling_rate=8000)) == pytest.approx(SECONDS * 8000, abs=200)
    assert len(audio.decode(media["flac"], sampling_rate=22050)) == pytest.approx(SECONDS * 22050, abs=10)
    with pytest.raises(ValueError):
        audio.decode(media["wav"], sampling_rate=0)


def test_libsndfile_and_ffmpeg_paths_agree(media: dict[str, Path]) -> None:
    """WAV goes through libsndfile, AIFF (same PCM) through FFmpeg: same samples, same downmix level."""
    a, b = audio.decode(media["wav"]), audio.decode(media["aiff"])
    assert len(a) == len(b)
    assert float(np.max(np.abs(a - b))) < 1e-3


def test_16k_wav_needs_no_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import av

    path = write_audio(tmp_path / "plain.wav", noise(1.5, seed=3))
    expected = audio.decode(path)

    def no_ffmpeg(*args: object, **kwargs: object) -> None:
        raise AssertionError("FFmpeg was used for a file libsndfile reads")

    monkeypatch.setattr(av, "open", no_ffmpeg)
    monkeypatch.setattr(av, "AudioResampler", no_ffmpeg)
    np.testing.assert_array_equal(audio.decode(path), expected)
    assert len(expected) == 24000


def test_full_scale_correlated_stereo_does_not_clip(tmp_path: Path) -> None:
    loud = tone(300.0, 1.0, 44100, amplitude=0.99)
    path = write_audio(tmp_path / "loud.m4a", np.stack([loud, loud], axis=1), 44100)
    samples = audio.decode(path)
    assert 0.9 < float(np.max(np.abs(samples))) <= 1.0
    assert float(np.mean(np.abs(samples) > 0.999)) < 0.001


def test_silence_decodes_to_zeros(tmp_path: Path) -> None:
    samples = audio.decode(write_audio(tmp_path / "quiet.flac", silence(1.0)))
    assert len(samples) == 16000 and not samples.any()


def test_is_supported() -> None:
    for name in ("talk.MP3", "a.wav", "b.m4a", "c.mkv", "d.webm", "e.opus", "f.MOV", "g.aiff"):
        assert audio.is_supported(name), name
    for name in ("notes.txt", "talk.srt", "photo.png", "noext", "archive.zip"):
        assert not audio.is_supported(name), name
    assert all(ext.startswith(".") and ext == ext.lower() for ext in audio.SUPPORTED_EXTENSIONS)
    assert {f".{fmt}" for fmt in WRITABLE_FORMATS} <= audio.SUPPORTED_EXTENSIONS


# --- bad inputs --------------------------------------------------------------------------------------
def _assert_error(path: Path, kind: type[AudioError], *, probe: bool = True) -> AudioError:
    calls = [audio.decode, audio.probe] if probe else [audio.decode]
    errors = []
    for call in calls:
        with pytest.raises(kind) as info:
            call(path)
        err = info.value
        assert type(err) is kind  # the exact class, not just any AudioError
        assert path.name in str(err)
        assert err.path == str(path)
        assert err.reason and str(path) not in err.reason  # callers prefix the path to the reason
        errors.append(err)
    return errors[0]


def test_missing_file(tmp_path: Path) -> None:
    err = _assert_error(tmp_path / "gone.mp3", FileDisappearedError)
    assert "disappeared" in str(err)


def test_empty_file(tmp_path: Path) -> None:
    err = _assert_error(make_empty(tmp_path / "empty.wav"), EmptyFileError)
    assert "0 bytes" in str(err)


@pytest.mark.parametrize(
    ("name", "kind"), [("notes.wav", "text"), ("picture.wav", "png"), ("clip.mp4", "png")]
)
def test_not_audio(tmp_path: Path, name: str, kind: str) -> None:
    err = _assert_error(make_not_audio(tmp_path / name, kind), NotAudioError)
    assert ("text" if kind == "text" else "PNG") in str(err)


def test_unrecognised_binary_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "blob.mp3"
    path.write_bytes(bytes(range(1, 200)) * 50)
    _assert_error(path, NotAudioError)


def test_video_without_audio(tmp_path: Path) -> None:
    err = _assert_error(write_video_only(tmp_path / "screen.mp4"), NoAudioStreamError)
    assert "no audio" in str(err)


@pytest.mark.parametrize(
    "fmt", ["wav", "flac", "mp3", "m4a", "mp4", "mov", "mkv", "webm", "mka", "aac", "amr", "wma", "aiff"]
)
def test_truncated_file(fmt: str, media: dict[str, Path], tmp_path: Path) -> None:
    cut = make_truncated(media[fmt], tmp_path / f"cut.{fmt}")
    with pytest.raises(TruncatedFileError) as info:
        audio.decode(cut)
    assert cut.name in str(info.value)
    assert "cut off or damaged" in str(info.value)


def test_truncated_file_can_be_accepted_on_request(media: dict[str, Path], tmp_path: Path) -> None:
    for fmt in ("wav", "mp3", "flac"):
        cut = make_truncated(media[fmt], tmp_path / f"half.{fmt}")
        samples = audio.decode(cut, allow_truncated=True)
        assert len(samples) / 16000 == pytest.approx(SECONDS / 2, abs=0.15), fmt


@pytest.mark.parametrize("fmt", ["mp3", "flac", "webm", "mkv", "wma", "aac"])
def test_garbage_after_a_valid_header(fmt: str, media: dict[str, Path], tmp_path: Path) -> None:
    bad = make_garbage_after_header(media[fmt], tmp_path / f"garbage.{fmt}", header_bytes=1024)
    with pytest.raises(TruncatedFileError) as info:
        audio.decode(bad)
    assert bad.name in str(info.value)


def test_short_file_truncation_names_both_lengths(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "speech.wav", noise(10.0))
    cut = make_truncated(path, tmp_path / "speech-cut.wav", fraction=0.3)
    with pytest.raises(TruncatedFileError, match=r"3\.0 s of the 10\.0 s"):
        audio.decode(cut)


@pytest.mark.parametrize("fmt", ["webm", "mkv", "mp3", "aac", "opus"])
def test_live_recordings_without_stated_lengths_are_accepted(fmt: str, tmp_path: Path) -> None:
    """MediaRecorder/OBS-style files carry no duration or size; they must not be called truncated."""
    path = write_audio(tmp_path / f"live.{fmt}", tone(FREQ, SECONDS), streaming=True)
    assert len(audio.decode(path)) / 16000 == pytest.approx(SECONDS, abs=0.12)


@pytest.mark.parametrize("fmt", ["mkv", "mp4", "webm", "mov"])
def test_picture_outlasting_the_sound_is_not_truncation(fmt: str, tmp_path: Path) -> None:
    path = write_audio(tmp_path / f"screen.{fmt}", tone(FREQ, SECONDS), video_seconds=SECONDS + 1.5)
    assert len(audio.decode(path)) / 16000 == pytest.approx(SECONDS, abs=0.12)


def test_streaming_wav_with_open_size_is_accepted(tmp_path: Path) -> None:
    """Live recorders write 0xFFFFFFFF as the data size until they finish: not a truncation."""
    path = write_audio(tmp_path / "live.wav", noise(1.0))
    data = bytearray(path.read_bytes())
    at = data.index(b"data")
    data[at + 4 : at + 8] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    assert len(audio.decode(path)) == 16000


@pytest.mark.parametrize("subtype", ["IMA_ADPCM", "MS_ADPCM", "ULAW", "FLOAT", "PCM_24"])
def test_wav_codecs_dictaphones_use(subtype: str, tmp_path: Path) -> None:
    """Compressed WAV states its length in a ``fact`` chunk, not the data size: no false truncation."""
    import soundfile as sf

    path = tmp_path / f"memo-{subtype}.wav"
    sf.write(str(path), tone(FREQ, SECONDS, 22050), 22050, subtype=subtype)
    samples = audio.decode(path)
    assert len(samples) / 16000 == pytest.approx(SECONDS, abs=0.08)
    assert _dominant_hz(samples, 16000) == pytest.approx(FREQ, abs=4)
    with pytest.raises(TruncatedFileError):
        audio.decode(make_truncated(path, tmp_path / f"cut-{subtype}.wav"))


def test_speech_like(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    if shutil.which("espeak-ng"):
        spoken = speech_like("Testing one two three.", tmp_path / "speech.wav")
        assert spoken is not None
        assert len(audio.decode(spoken)) > 16000 * 0.5
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert speech_like("anything", tmp_path / "none.wav") is None
    assert not (tmp_path / "none.wav").exists()


def test_write_audio_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="docx"):
        write_audio(tmp_path / "a.docx", tone())
    with pytest.raises(ValueError, match="audio-only"):
        write_audio(tmp_path / "a.mp3", tone(), video=True)
    with pytest.raises(ValueError):
        write_video_only(tmp_path / "a.wav")
    audio_only = write_audio(tmp_path / "a.mp4", tone(), video=False)
    assert audio.probe(audio_only).has_video is False


def test_folder(tmp_path: Path) -> None:
    folder = tmp_path / "recordings.wav"
    folder.mkdir()
    err = _assert_error(folder, UnreadableFileError)
    assert "folder" in str(err)


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs are POSIX")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    _assert_error(fifo, UnreadableFileError)


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_audio(tmp_path / "locked.wav", noise(0.5))

    def denied(file: object, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(audio, "open", denied, raising=False)  # shadows the builtin inside the module only
    err = _assert_error(path, UnreadableFileError)
    assert "permission denied" in str(err)


@pytest.mark.skipif(
    sys.platform == "win32" or (hasattr(os, "geteuid") and os.geteuid() == 0), reason="root reads anything"
)
def test_permission_denied_for_real(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "private.wav", noise(0.5))
    path.chmod(0)
    try:
        _assert_error(path, UnreadableFileError)
    finally:
        path.chmod(0o644)


def test_every_bad_input_has_its_own_error(tmp_path: Path, media: dict[str, Path]) -> None:
    bad = {
        tmp_path / "missing.wav": FileDisappearedError,
        make_empty(tmp_path / "empty.wav"): EmptyFileError,
        make_not_audio(tmp_path / "text.wav"): NotAudioError,
        write_video_only(tmp_path / "video.mp4"): NoAudioStreamError,
        make_truncated(media["wav"], tmp_path / "cut.wav"): TruncatedFileError,
    }
    folder = tmp_path / "dir.wav"
    folder.mkdir()
    bad[folder] = UnreadableFileError
    seen = set()
    for path, kind in bad.items():
        with pytest.raises(AudioError) as info:
            audio.decode(path)
        assert type(info.value) is kind, path
        seen.add(type(info.value))
    assert len(seen) == 6
