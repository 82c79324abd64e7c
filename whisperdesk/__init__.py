"""WhisperDesk: transcribe recordings on your own GPU through one shared faster-whisper model."""

__version__ = "0.1.0"
