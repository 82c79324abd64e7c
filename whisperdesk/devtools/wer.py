"""The WER scorer, for the tests: it lives in :mod:`whisperdesk.benchmark.wer`, one scorer for the lost-speech
tests and the benchmark's WER column (the benchmark is app code and may not import devtools)."""

from whisperdesk.benchmark.wer import Score, edit_distance, missing_sentences, normalise, score, total

__all__ = ["Score", "edit_distance", "missing_sentences", "normalise", "score", "total"]
