"""Benchmarks of the app's own path, above the core: ``whisperdesk bench`` and Tools → Benchmark.

``matrix`` times compute type × batch size through the job processor with the app's worker count,
``memory`` measures peaks and what a long queue leaves behind, ``corpus`` speaks memos, talks and a lecture
with known text, ``wer`` scores transcripts against it. The research side-by-side against faster-whisper's
own paths and the raw CTranslate2 floor lives in the repository's ``bench/`` scripts.
"""
