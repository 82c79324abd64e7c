"""Tools for tests and benchmarks (e.g. building a random-weight Whisper model offline)."""
