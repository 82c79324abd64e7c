"""faster-whisper finds Silero VAD's ONNX file beside its own modules (``faster_whisper/assets``); PyInstaller
collects only Python code unless told, and the VAD would fail at the first transcription."""

from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("faster_whisper")
