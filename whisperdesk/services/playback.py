"""Plays a job's recording inside the app: QMediaPlayer + QAudioOutput behind seconds-based slots.

Why a service: the transcript view, the speaker dialog's play buttons and the search results all play the
same recording through one player, and none of them should know Qt's milliseconds or its error enums.

Positions are in seconds (floats) everywhere outside this file. ``play_range`` plays one stretch and stops
at its end (the speaker dialog's evidence lines). A recording that was moved or deleted since it was
transcribed is reported by ``sourceMissing`` with the path that was tried; once the user locates it,
:class:`LocatedRecordings` remembers the new place for every later opening.

Qt's FFmpeg backend advances the playback clock even where no audio device exists (measured with PySide6
6.11 offscreen, no sound server: the position follows the wall clock), so tests play for real.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal, Slot
from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer

from whisperdesk.core.atomic import atomic_write_text

log = logging.getLogger(__name__)

MIN_RATE, MAX_RATE = 0.5, 2.0
SEEK_STEP_S = 5.0


class LocatedRecordings:
    """Where the user found recordings that had moved: original path → new path, kept in one JSON file."""

    def __init__(self, file: Path) -> None:
        self._file = file
        self._map: dict[str, str] = {}
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self._map = {str(k): str(v) for k, v in data.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("the list of located recordings %s cannot be read (%s); starting afresh", file, exc)

    def resolve(self, original: Path) -> Path:
        """The recording's current place: where the user located it, else where it was transcribed."""
        found = self._map.get(str(original))
        return Path(found) if found and Path(found).is_file() else original

    def remember(self, original: Path, found: Path) -> None:
        self._map[str(original)] = str(found)
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self._file, json.dumps(self._map, ensure_ascii=False, indent=1))
        except OSError as exc:  # playing still works this time; only the memory of it is lost
            log.warning("could not remember where %s was found (%s)", original, exc)


class Playback(QObject):
    """Signals: positionChanged(float s), durationChanged(float s), playingChanged(bool),
    sourceChanged(str path), sourceMissing(str path tried), problem(str plain words)."""

    positionChanged = Signal(float)
    durationChanged = Signal(float)
    playingChanged = Signal(bool)
    sourceChanged = Signal(str)
    sourceMissing = Signal(str)
    problem = Signal(str)
    silentChanged = Signal(bool)  # True: no sound device, playback runs silently (the clock still moves)

    def __init__(self, located: LocatedRecordings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._located = located
        self._player = QMediaPlayer(self)
        self._audio = QAudioOutput(self)
        self._player.setAudioOutput(self._audio)
        self._source: Path | None = None
        self._original: Path | None = None
        self._stop_at: float | None = None
        self._pending_seek: float | None = None
        self._player.positionChanged.connect(self._on_position)
        self._player.durationChanged.connect(self._on_duration)
        self._player.playbackStateChanged.connect(self._on_state)
        self._player.errorOccurred.connect(self._on_error)
        self._player.mediaStatusChanged.connect(self._on_media_status)
        self._devices = QMediaDevices(self)
        self._devices.audioOutputsChanged.connect(self._on_outputs_changed)
        self._silent = not QMediaDevices.audioOutputs()

    @property
    def silent(self) -> bool:
        """No sound device to play on: the player still runs (the text follows), but nothing is heard."""
        return self._silent

    @Slot()
    def _on_outputs_changed(self) -> None:
        silent = not QMediaDevices.audioOutputs()
        if silent != self._silent:
            self._silent = silent
            if not silent:
                self._audio.setDevice(QMediaDevices.defaultAudioOutput())
            self.silentChanged.emit(silent)

    # --- what is loaded --------------------------------------------------------------------------------
    @property
    def source(self) -> Path | None:
        """The file being played (after any relocation); None when nothing could be loaded."""
        return self._source

    @property
    def original(self) -> Path | None:
        """The recording as the transcript names it."""
        return self._original

    def open(self, recording: Path | str) -> bool:
        """Load ``recording`` (or where it was located since); False and ``sourceMissing`` when absent."""
        original = Path(recording)
        if self._original == original and self._source is not None:
            return True
        self._stop_at = None
        self._player.pause()
        self._original = original
        path = self._located.resolve(original) if self._located is not None else original
        if not path.is_file():
            self._source = None
            self._player.setSource(QUrl())
            self.sourceMissing.emit(str(path))
            return False
        self._load(path)
        return True

    def locate(self, found: Path | str) -> bool:
        """The user found the missing recording at ``found``: play it from now on, and remember that."""
        path = Path(found)
        if not path.is_file() or self._original is None:
            return False
        if self._located is not None:
            self._located.remember(self._original, path)
        self._load(path)
        return True

    def _load(self, path: Path) -> None:
        self._source = path
        self._player.setSource(QUrl.fromLocalFile(str(path)))
        self.sourceChanged.emit(str(path))

    # --- state -------------------------------------------------------------------------------------------
    @property
    def position(self) -> float:
        return self._player.position() / 1000.0

    @property
    def duration(self) -> float:
        return max(0, self._player.duration()) / 1000.0

    @property
    def playing(self) -> bool:
        return self._player.playbackState() == QMediaPlayer.PlaybackState.PlayingState

    @property
    def rate(self) -> float:
        return self._player.playbackRate()

    @property
    def volume(self) -> float:
        return self._audio.volume()

    # --- controls ----------------------------------------------------------------------------------------
    @Slot()
    def play(self) -> None:
        if self._source is not None:
            self._player.play()

    @Slot()
    def pause(self) -> None:
        self._stop_at = None
        self._player.pause()

    @Slot()
    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    @Slot()
    def stop(self) -> None:
        """Pause and go back to the start.

        Not ``QMediaPlayer.stop()``: with Qt 6.11's FFmpeg backend, stop() right after a pause that followed
        a seek can hang the GUI thread for good (seen here in about one run in two of a 40-round loop of
        load, seek, play, pause, stop; never without the stop). Pausing and seeking ends in the same place.
        """
        self._stop_at = None
        self._player.pause()
        self._player.setPosition(0)

    @Slot(float)
    def seek(self, seconds: float) -> None:
        """Go to ``seconds`` (clamped to the recording); kept for later if the media is still loading."""
        seconds = max(0.0, seconds)
        if self.duration > 0:
            seconds = min(seconds, self.duration)
        self._pending_seek = seconds if not self._player.isSeekable() else None
        self._player.setPosition(round(seconds * 1000))
        self.positionChanged.emit(seconds)

    @Slot(float)
    def seek_by(self, delta: float) -> None:
        self.seek(self.position + delta)

    @Slot(float)
    def play_from(self, seconds: float) -> None:
        self._stop_at = None
        self.seek(seconds)
        self.play()

    @Slot(float, float)
    def play_range(self, start: float, end: float) -> None:
        """Play ``start``..``end`` and pause there (a speaker's line in the rename dialog)."""
        self.seek(start)
        self._stop_at = end
        self.play()

    @Slot(float)
    def set_rate(self, rate: float) -> None:
        self._player.setPlaybackRate(min(MAX_RATE, max(MIN_RATE, rate)))

    @Slot(float)
    def set_volume(self, volume: float) -> None:
        self._audio.setVolume(min(1.0, max(0.0, volume)))

    def close(self) -> None:
        """Let go of the file (before the window closes); see :meth:`stop` for why there is no stop()."""
        self._stop_at = None
        self._player.pause()
        self._player.setSource(QUrl())
        self._source = None
        self._original = None

    # --- from the player ---------------------------------------------------------------------------------
    @Slot("qint64")
    def _on_position(self, ms: int) -> None:
        seconds = ms / 1000.0
        if self._stop_at is not None and seconds >= self._stop_at:
            self._stop_at = None
            self._player.pause()
        self.positionChanged.emit(seconds)

    @Slot("qint64")
    def _on_duration(self, ms: int) -> None:
        self.durationChanged.emit(max(0, ms) / 1000.0)

    @Slot(QMediaPlayer.PlaybackState)
    def _on_state(self, state: QMediaPlayer.PlaybackState) -> None:
        self.playingChanged.emit(state == QMediaPlayer.PlaybackState.PlayingState)

    @Slot(QMediaPlayer.MediaStatus)
    def _on_media_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status == QMediaPlayer.MediaStatus.LoadedMedia and self._pending_seek is not None:
            self._player.setPosition(round(self._pending_seek * 1000))
            self._pending_seek = None

    @Slot(QMediaPlayer.Error, str)
    def _on_error(self, error: QMediaPlayer.Error, detail: str) -> None:
        if error == QMediaPlayer.Error.NoError:
            return
        log.warning("playback of %s failed: %s (%s)", self._source, detail, error)
        name = self._source.name if self._source is not None else "the recording"
        self.problem.emit(
            f"{name} cannot be played here; its transcript is still shown. The log has the technical detail."
        )
