"""Build a real CTranslate2 Whisper model with random weights, fully offline.

Tests and benchmarks need the real faster-whisper path (encoder, beam search, timestamp rules, VAD,
batching, word alignment) without downloading a checkpoint. Purely random weights would decode
until ``max_length`` on every window, so the weights are random but *shaped*: a few reserved
residual-stream coordinates carry a designed signal that makes decoding short, deterministic and
structurally Whisper-like:

* The encoder has a "content" detector (spectral roughness of the log-mel frames): exactly 0 on
  the zero padding that faster-whisper appends, close to 1 on audio. ``ln_post`` saturates it.
* The last head of the first decoder cross-attention layer attends uniformly to every frame: it reads
  ``x`` = the fraction of the 30-s window that holds audio.
* Token embeddings carry an orthogonal identity direction plus a "progress" coordinate; the output
  projection turns them into a bigram chain ``<|0.00|> w1 .. w8 <|t|><|t|> w9 .. <|t_end|>``
  ending with ``<|endoftext|>`` once progress exceeds ``x``. Timestamps are placed so that they
  never pass the end of the audio, and a window holds ``2 + 40*x`` words (at most 40).

Everything else (other heads, FFNs, positions, unused tokens) is small Gaussian noise, so the
compute cost is exactly that of a real model of the same shape. The text is gibberish built from
a synthetic byte-level BPE vocabulary with Whisper's layout (special tokens, 99 or 100 languages,
1501 timestamps), so CTranslate2 treats the model as multilingual and language detection runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SHAPES", "WhisperShape", "build_random_whisper_model", "main"]


@dataclass(frozen=True)
class WhisperShape:
    """Dimensions of one Whisper model size."""

    name: str
    d_model: int
    encoder_layers: int
    decoder_layers: int
    heads: int
    n_mels: int
    n_languages: int
    default_quantization: str | None

    @property
    def vocab_size(self) -> int:
        # 50257 text tokens, eot, sot, languages, 6 task/control tokens, 1501 timestamps.
        return 50257 + 2 + self.n_languages + 6 + 1501


SHAPES: dict[str, WhisperShape] = {
    "micro": WhisperShape("micro", 64, 2, 2, 4, 80, 99, None),
    "tiny": WhisperShape("tiny", 384, 4, 4, 6, 80, 99, None),
    "large-v3": WhisperShape("large-v3", 1280, 32, 32, 20, 128, 100, "float16"),
}

# Whisper's language token order (vocabulary ids 50259...); large-v3 appends "yue".
_LANGUAGE_ORDER = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur "
    "hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si "
    "km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln "
    "ha ba jw su yue"
)
_LANGUAGES = tuple(_LANGUAGE_ORDER.split())

N_TEXT_TOKENS = 50257
EOT_ID = 50257
SOT_ID = 50258
N_TIMESTAMPS = 1501
N_AUDIO_FRAMES = 1500  # encoder positions for a 30-s window
N_TEXT_POSITIONS = 448

# Decoding design (see module docstring). Logit levels are in nats.
_CHAIN_WORDS = 40  # words per fully voiced 30-s window
_SEGMENT_WORDS = 8  # a timestamp pair after every 8th word
_EPS0 = 2.0 / _CHAIN_WORDS  # at least two words per window
_TS_MARGIN = 1.5 / _CHAIN_WORDS  # keep timestamps this far (in window fraction) before the audio end
_FEATURE = 4.0  # magnitude of the designed decoder coordinates
_BETA = 40.0  # bigram strength
_BETA_START = 80.0  # task token -> first word (also after <|0.00|>)
_BETA_TS0 = 30.0  # task token -> <|0.00|>
_BASE = 20.0  # level of eot/timestamp decisions after a timestamp
_PAIR_BOOST = 40.0
_ALIGN_NEXT = 10.0
_SLOPE_WORD = 45.0  # logit slopes per unit of (progress - x - eps0)
_SLOPE_TS = 30.0
_SLOPE_EOT = 150.0
# A boundary word's timestamp must win even with the audio far from over (progress - x ~ -1).
_BETA_BOUNDARY = _BETA + 1.2 * (_SLOPE_WORD + _SLOPE_TS)
# After a boundary timestamp, its pair and <|endoftext|> are both lifted clear of every
# other token (the timestamp slope pulls the pair down while the audio is far from over).
_PAIR_LIFT = 1.2 * _SLOPE_TS
# Runner-up tokens that behave like the chosen one, a few nats lower: beam search needs
# plausible alternatives, else <|endoftext|> enters its top candidates and ends it early.
_WORD_ALTERNATES = (2.5, 4.0, 5.5)
_TS_ALTERNATES = (3.0, 5.0)
_LANG_EN = 4.5  # language logit of "en" at <|startoftranscript|>; other languages ~ N(0, 0.5^2)
_ALIGN_SHARPNESS = 300.0  # alignment heads: score = -sharpness * (frame_time - word_time)^2
_TIME_GAIN = 3.0  # time coordinates dominate the encoder output rows (keeps int8 precision)

# Reserved decoder coordinates.
_ONE, _PROG, _CONT, _TSF = -4, -3, -2, -1
_N_RESERVED_DEC = 4
# Reserved encoder coordinates: content indicator, frame time tau (-1 .. 1) and tau^2 - 1/3.
_ENC_CONTENT, _ENC_TIME, _ENC_TIME2 = -3, -2, -1
_N_RESERVED_ENC = 3
_N_DETECTOR_PAIRS = 4
_DETECTOR_GAIN = 400.0
_DETECTOR_CLIP = 8.0  # each unit computes ~clip(gain * roughness, 0, clip); large clip: small overshoot
_DETECTOR_LEVEL = 3.5  # detector maximum before ln_post: in GELU's linear range
_ENC_SPREAD = 2.0  # per-coordinate spread of the encoder positions, dominating each frame

_SMALL = 0.05  # std of what random layers add to the residual stream, per coordinate


# --------------------------------------------------------------------------------------------
# Vocabulary and tokenizer
# --------------------------------------------------------------------------------------------


def _byte_alphabet() -> list[str]:
    """GPT-2's byte-to-unicode table, in vocabulary order (printable bytes first)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = [chr(b) for b in printable]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


@functools.lru_cache(maxsize=1)
def _text_vocabulary() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """50257 byte-level BPE tokens and the merges that form them (fixed, seed-independent).

    Merged tokens are lowercase ASCII pieces, some with a leading space ("Ġ"), so any id decodes
    to readable gibberish and every merge is valid for the `tokenizers` BPE model.
    """
    rng = np.random.default_rng(20240917)
    alphabet = _byte_alphabet()
    tokens = list(alphabet)
    seen = set(tokens)
    merges: list[tuple[str, str]] = []
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    lefts: list[str] = list(letters)
    rights: list[str] = list(letters)  # letter-only pieces of length <= 3

    def add(left: str, right: str) -> None:
        token = left + right
        merges.append((left, right))
        tokens.append(token)
        seen.add(token)
        lefts.append(token)
        if not token.startswith("Ġ") and len(token) <= 3:
            rights.append(token)

    for letter in letters:
        add("Ġ", letter)
    while len(tokens) < N_TEXT_TOKENS - 1:
        batch = 4096
        left_idx = rng.integers(0, len(lefts), batch)
        right_idx = rng.integers(0, len(rights), batch)
        for li, ri in zip(left_idx.tolist(), right_idx.tolist(), strict=True):
            left, right = lefts[li], rights[ri]
            token = left + right
            if len(token) > 9 or token in seen:
                continue
            add(left, right)
            if len(tokens) == N_TEXT_TOKENS - 1:
                break
    # Like Whisper's multilingual vocabulary, id 50256 is the empty string: CTranslate2 >= 4.6
    # decides "multilingual" by the presence of that token.
    tokens.append("")
    return tuple(tokens), tuple(merges)


def _special_tokens(shape: WhisperShape) -> list[str]:
    langs = _LANGUAGES[: shape.n_languages]
    no_speech = "<|nospeech|>" if shape.n_languages >= 100 else "<|nocaptions|>"
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in langs),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        no_speech,
        "<|notimestamps|>",
    ]


def _vocabulary(shape: WhisperShape) -> list[str]:
    text, _ = _text_vocabulary()
    timestamps = [f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMPS)]
    vocab = [*text, *_special_tokens(shape), *timestamps]
    assert len(vocab) == shape.vocab_size
    return vocab


def _tokenizer_json(shape: WhisperShape) -> dict[str, Any]:
    text, merges = _text_vocabulary()
    specials = _special_tokens(shape)
    vocab = {token: i for i, token in enumerate(text)}
    vocab["<|endoftext|>"] = EOT_ID
    added = [
        {
            "id": EOT_ID + i,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, token in enumerate(specials)
    ]
    byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    special = {"<|startoftranscript|>", "<|notimestamps|>", "<|endoftext|>"}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", **byte_level},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<|startoftranscript|>", "type_id": 0}},
                {"SpecialToken": {"id": "<|notimestamps|>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "<|startoftranscript|>", "type_id": 0}},
                {"SpecialToken": {"id": "<|notimestamps|>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": "<|endoftext|>", "type_id": 1}},
            ],
            "special_tokens": {
                tok: {"id": tok, "ids": [EOT_ID + specials.index(tok)], "tokens": [tok]} for tok in special
            },
        },
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [f"{left} {right}" for left, right in merges],
        },
    }


# Symbols Whisper suppresses by default (non-speech annotations); their byte tokens are suppressed.
_NON_SPEECH_SYMBOLS = '"#()*+/:;<=>@[\\]^_`{|}~「」『』♩♪♫♬♭♮♯'


def _suppress_ids(shape: WhisperShape) -> list[int]:
    """Ids Whisper suppresses by default: non-speech symbols and the control tokens."""
    table = _byte_char_table()
    position = {ch: i for i, ch in enumerate(_byte_alphabet())}
    ids = {position[table[symbol.encode("utf-8")[0]]] for symbol in _NON_SPEECH_SYMBOLS}
    specials = _special_tokens(shape)
    for token in (
        "<|startoftranscript|>",
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        specials[-2],
    ):
        ids.add(EOT_ID + specials.index(token))
    return sorted(ids)


@functools.lru_cache(maxsize=1)
def _byte_char_table() -> dict[int, str]:
    alphabet = _byte_alphabet()
    printable = [ord(ch) for ch in alphabet if ord(ch) < 256]
    table = {b: chr(b) for b in printable}
    rest = [b for b in range(256) if b not in table]
    table.update({b: alphabet[len(printable) + j] for j, b in enumerate(rest)})
    return table


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


_POOL_SIZE = 1 << 22  # Gaussian numbers drawn once; big layers are cut from it
_POOL_MIN = 1 << 20  # arrays at least this big come from the pool
_POOL_CHUNK = 1 << 16


class _Weights:
    """Random-number helpers with a fixed storage dtype for the whole model."""

    def __init__(self, seed: int, dtype: type[np.floating[Any]]) -> None:
        self.rng = np.random.default_rng(seed)
        self.dtype = dtype
        self._pools: dict[Any, np.ndarray] = {}  # scaled pools by (dtype, std)

    def normal(self, shape: tuple[int, ...], std: float, *, stored: bool = False) -> np.ndarray:
        """N(0, std^2) numbers: float32, or the model's dtype when ``stored`` (plain layers).

        Big arrays are cut from random offsets of one pool of Gaussian numbers: values only need
        to look random and cost like real weights, and drawing large-v3's 1.5 billion numbers
        one by one takes minutes.
        """
        dtype = self.dtype if stored else np.float32
        size = math.prod(shape)
        if size < _POOL_MIN:
            small = self.rng.standard_normal(shape, dtype=np.float32)
            small *= np.float32(std)
            return small.astype(dtype, copy=False)
        key = (np.dtype(dtype).name, float(std))
        if key not in self._pools:
            if "unit" not in self._pools:
                self._pools["unit"] = self.rng.standard_normal(_POOL_SIZE, dtype=np.float32)
            self._pools[key] = (self._pools["unit"] * np.float32(std)).astype(dtype)
        pool = self._pools[key]
        out = np.empty(size, dtype)
        starts = self.rng.integers(0, _POOL_SIZE - _POOL_CHUNK, -(-size // _POOL_CHUNK))
        for j, start in enumerate(starts.tolist()):
            piece = out[j * _POOL_CHUNK : (j + 1) * _POOL_CHUNK]
            piece[:] = pool[start : start + piece.size]
        return out.reshape(shape)

    def finish(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=self.dtype)


def _residual_safe(weight: np.ndarray, reserved: int) -> np.ndarray:
    """Keep a random layer from writing the reserved coordinates.

    The designed signals live in the last ``reserved`` coordinates of the residual stream;
    layers add only small noise elsewhere.
    """
    weight[-reserved:] = 0.0
    return weight


def _layer_norm(spec: Any, w: _Weights, d: int) -> None:
    spec.gamma = w.finish(np.ones(d, np.float32))
    spec.beta = w.finish(np.zeros(d, np.float32))


def _self_attention(spec: Any, w: _Weights, d: int, reserved: int, small: float = _SMALL) -> None:
    _layer_norm(spec.layer_norm, w, d)
    spec.linear[0].weight = w.finish(w.normal((3 * d, d), 1.0 / math.sqrt(d), stored=True))
    spec.linear[0].bias = w.finish(np.zeros(3 * d, np.float32))
    spec.linear[1].weight = w.finish(
        _residual_safe(w.normal((d, d), small / math.sqrt(d), stored=True), reserved)
    )
    spec.linear[1].bias = w.finish(np.zeros(d, np.float32))


def _ffn(spec: Any, w: _Weights, d: int, reserved: int, small: float = _SMALL) -> None:
    _layer_norm(spec.layer_norm, w, d)
    spec.linear_0.weight = w.finish(w.normal((4 * d, d), 1.0 / math.sqrt(d), stored=True))
    spec.linear_0.bias = w.finish(np.zeros(4 * d, np.float32))
    spec.linear_1.weight = w.finish(
        _residual_safe(w.normal((d, 4 * d), small / math.sqrt(d), stored=True), reserved)
    )
    spec.linear_1.bias = w.finish(np.zeros(d, np.float32))


def _centered_noise(w: _Weights, rows: int, d: int, reserved: int, std: float) -> np.ndarray:
    out = w.normal((rows, d), std)
    out[:, -reserved:] = 0.0
    out[:, :-reserved] -= out[:, :-reserved].mean(axis=1, keepdims=True)
    return out


def _gelu(z: float) -> float:
    return 0.5 * z * (1.0 + math.erf(z / math.sqrt(2.0)))


def _detector_pair_max() -> float:
    """Largest value one +/- detector pair can add (its response is even, 0 at 0, bounded)."""
    clip = _DETECTOR_CLIP

    def unit(z: float) -> float:
        return _gelu(z) - _gelu(z - clip) + _gelu(-clip)

    return max(unit(z) + unit(-z) for z in np.linspace(0.0, 8.0 * clip, 8001).tolist())


def _time_rows(w: _Weights, d: int, reserved: int, rows: int, std: float, *, timed: bool) -> np.ndarray:
    """Position rows with zero mean and exactly ``std`` spread, so layer norms see a fixed scale.

    With ``timed``, the reserved time coordinates hold ``std * tau`` and ``std * (tau^2 - 1/3)``
    for tau running from -1 to 1 over the rows.
    """
    out = np.zeros((rows, d), np.float32)
    n_free = d - reserved
    free = w.normal((rows, n_free), 1.0)
    free -= free.mean(axis=1, keepdims=True)
    free /= np.sqrt((free**2).sum(axis=1, keepdims=True))
    fixed = np.zeros((rows, reserved), np.float32)
    if timed:
        tau = np.linspace(-1.0, 1.0, rows, dtype=np.float32)
        fixed[:, _ENC_TIME] = std * tau
        fixed[:, _ENC_TIME2] = std * (tau**2 - 1.0 / 3.0)
    total = fixed.sum(axis=1)
    scale = np.sqrt(d * std * std - (fixed**2).sum(axis=1) - total**2 / n_free)
    out[:, -reserved:] = fixed
    out[:, :-reserved] = free * scale[:, None] - (total / n_free)[:, None]
    return out


def _fill_encoder(spec: Any, shape: WhisperShape, w: _Weights) -> None:
    d, n_mels = shape.d_model, shape.n_mels
    reserved = _N_RESERVED_ENC
    # conv1: small random channels, plus detector units reading random-sign sums of adjacent
    # mel-bin differences. Zero padding (and digital silence) is flat across bins, so the
    # detector reads exactly 0 there. Units come in (z, z - clip) channel pairs for +z and -z:
    # gelu(z) - gelu(z - clip) is a soft clip, which bounds the detector.
    conv1 = w.normal((d, n_mels, 3), 0.2 / math.sqrt(3 * n_mels))
    conv1_bias = np.zeros(d, np.float32)
    n_units = 2 * _N_DETECTOR_PAIRS
    first = 0
    plain = [first + 2 * u for u in range(n_units)]
    shifted = [first + 2 * u + 1 for u in range(n_units)]
    for pair in range(_N_DETECTOR_PAIRS):
        signs = w.rng.choice(np.array([-1.0, 1.0], np.float32), n_mels - 1)
        kernel = np.zeros(n_mels, np.float32)
        kernel[:-1] += signs
        kernel[1:] -= signs
        kernel *= _DETECTOR_GAIN / math.sqrt(n_mels - 1)
        for polarity, unit in ((1.0, 2 * pair), (-1.0, 2 * pair + 1)):
            for channel in (plain[unit], shifted[unit]):
                conv1[channel] = 0.0
                conv1[channel, :, 1] = polarity * kernel
            conv1_bias[shifted[unit]] = -_DETECTOR_CLIP
    detector = plain + shifted
    conv2 = w.normal((d, d, 3), 0.2 / math.sqrt(3 * d))
    conv2[:, detector] = 0.0
    conv2[-reserved:] = 0.0
    level = _DETECTOR_LEVEL / (_N_DETECTOR_PAIRS * _detector_pair_max())
    conv2[_ENC_CONTENT, plain, 1] = level
    conv2[_ENC_CONTENT, shifted, 1] = -level
    conv2_bias = np.zeros(d, np.float32)
    conv2_bias[_ENC_CONTENT] = level * n_units * _gelu(-_DETECTOR_CLIP)  # exactly 0 on padding
    spec.conv1.weight = w.finish(conv1)
    spec.conv1.bias = w.finish(conv1_bias)
    spec.conv2.weight = w.finish(conv2)
    spec.conv2.bias = w.finish(conv2_bias)
    # Positions dominate each frame's scale, so ln_post keeps the detector and time linear.
    spec.position_encodings.encodings = w.finish(
        _time_rows(w, d, reserved, N_AUDIO_FRAMES, _ENC_SPREAD, timed=True)
    )
    for layer in spec.layer:
        _self_attention(layer.self_attention, w, d, reserved)
        _ffn(layer.ffn, w, d, reserved)
    # ln_post divides by the frame's spread (>= _ENC_SPREAD): this gamma keeps the indicator <= 1;
    # the time coordinates come out as _TIME_GAIN * (tau, tau^2 - 1/3).
    gamma = np.ones(d, np.float32)
    gamma[_ENC_CONTENT] = _ENC_SPREAD / _gelu(_DETECTOR_LEVEL)
    gamma[_ENC_TIME] = gamma[_ENC_TIME2] = _TIME_GAIN
    spec.layer_norm.gamma = w.finish(gamma)
    spec.layer_norm.beta = w.finish(np.zeros(d, np.float32))


@dataclass(frozen=True)
class _Plan:
    """Which tokens the designed decoder emits, and the timestamp each word may end on."""

    words: tuple[int, ...]
    alternates: tuple[tuple[int, ...], ...]  # per word, runner-up tokens behaving the same
    boundaries: frozenset[int]  # 1-based word positions followed by a timestamp pair
    end_timestamp: dict[int, int]  # 1-based word position -> timestamp index (absent: end on eot)


def _plan(rng: np.random.Generator) -> _Plan:
    text, _ = _text_vocabulary()
    candidates = [
        i for i, tok in enumerate(text) if tok.startswith("Ġ") and 4 <= len(tok) <= 8 and tok[1:].isalpha()
    ]
    per_word = 1 + len(_WORD_ALTERNATES)
    chosen = [int(i) for i in rng.choice(candidates, _CHAIN_WORDS * per_word, replace=False)]
    words = tuple(chosen[:_CHAIN_WORDS])
    rest = chosen[_CHAIN_WORDS:]
    alternates = tuple(tuple(rest[j::_CHAIN_WORDS]) for j in range(_CHAIN_WORDS))
    boundaries = frozenset(range(_SEGMENT_WORDS, _CHAIN_WORDS + 1, _SEGMENT_WORDS)) | {_CHAIN_WORDS}
    end_timestamp = {}
    for i in range(1, _CHAIN_WORDS + 1):
        k = math.floor(_end_fraction(i / _CHAIN_WORDS) * (N_TIMESTAMPS - 1))
        if k >= 1:
            end_timestamp[i] = k
    return _Plan(words, alternates, boundaries, end_timestamp)


def _end_fraction(progress: float) -> float:
    """Window fraction a word of this progress may end at, safely before the audio end.

    A word is emitted only while progress <= x + eps0 held one word earlier, so this stays
    below x even when beam search keeps one extra word.
    """
    return progress - _EPS0 - 1.0 / _CHAIN_WORDS - _TS_MARGIN


def _fill_decoder(spec: Any, shape: WhisperShape, w: _Weights) -> None:
    d, heads, n_vocab = shape.d_model, shape.heads, shape.vocab_size
    plan = _plan(w.rng)
    specials = _special_tokens(shape)
    special_id = {tok: EOT_ID + i for i, tok in enumerate(specials)}
    ts_begin = special_id["<|notimestamps|>"] + 1
    boundary_list = sorted(plan.boundaries)

    # Designed coordinates (the last ``reserved`` ones; random layers never write them): one
    # identity coordinate each for start, sot, every word and every boundary pair, then
    # _ONE.._TSF. One-hot identities keep bigram weights as large as the other readouts, so
    # int8 weights (127 levels per row) resolve them on every model size. Every logit is read
    # from the final layer norm's output, so scaling a whole row of h changes no decision.
    n_dirs = 2 + _CHAIN_WORDS + len(boundary_list)
    reserved = n_dirs + _N_RESERVED_DEC
    if d - reserved < 8:
        raise ValueError(f"d_model {d} is too small for the decoding design (needs >= {reserved + 8})")
    first = d - reserved
    start_dir, sot_dir = first, first + 1
    word_dir = {i + 1: first + 2 + i for i in range(_CHAIN_WORDS)}
    pair_dir = {b: first + 2 + _CHAIN_WORDS + j for j, b in enumerate(boundary_list)}
    # Readout unit: a designed coordinate holding _FEATURE, after the final layer norm of a
    # typical designed token (identity, constant, progress, content and balance ~ 5 _FEATURE^2).
    unit = math.sqrt(d / 5.0)

    def prog(progress: float) -> float:
        return (progress - _EPS0) * _FEATURE

    # Token embeddings: random (on the free coordinates) for unused tokens, designed for the
    # chain; every token carries the constant coordinate.
    emb = _centered_noise(w, n_vocab, d, reserved, 1.0)
    emb[:, _ONE] = _FEATURE
    emb[:, _PROG] = prog(0.0)

    def identity(token: int, coord: int, progress: float) -> None:
        emb[token, :first] = 0.0
        emb[token, coord] = _FEATURE
        emb[token, _PROG] = prog(progress)

    for token in ("<|transcribe|>", "<|translate|>", "<|notimestamps|>"):
        identity(special_id[token], start_dir, 0.0)
    identity(SOT_ID, sot_dir, 0.0)
    for i, token in enumerate(plan.words, start=1):
        identity(token, word_dir[i], i / _CHAIN_WORDS)
    emb[ts_begin:, _TSF] = _FEATURE
    identity(ts_begin, start_dir, 0.0)
    for i, k in plan.end_timestamp.items():
        # Only a pair's timestamp weighs "end or go on"; any other timestamp (and the last
        # word's) ends the window. A single timestamp ending makes faster-whisper seek a whole
        # window, as Whisper does on continuous speech; a window never ends on a pair.
        ends = i == _CHAIN_WORDS or i not in plan.boundaries
        coord = pair_dir[i] if i in plan.boundaries else word_dir[i]
        identity(ts_begin + k, coord, 1.3 if ends else i / _CHAIN_WORDS)

    # Output projection: small noise on the free coordinates plus the designed readouts.
    proj = w.normal((n_vocab, d), 0.5 / math.sqrt(d))
    proj[:, first:] = 0.0

    def add(rows: slice | int, coord: int, logit: float) -> None:
        proj[rows, coord] += logit / unit

    def slope(rows: slice | int, per_unit: float) -> None:
        # logit += per_unit * (progress - x - eps0)
        add(rows, _PROG, per_unit)
        add(rows, _CONT, -per_unit)

    word_ids = list(plan.words)
    for token in word_ids:
        slope(token, -_SLOPE_WORD)
        add(token, _TSF, _BASE - _BETA)
    add(word_ids[0], start_dir, _BETA_START)
    for i in range(1, _CHAIN_WORDS):
        if i in plan.boundaries:  # after a pair: always the next word, never <|endoftext|>
            add(word_ids[i], pair_dir[i], _BETA + _PAIR_BOOST)
            # Word alignment scores the text without timestamps: keep the next word likely
            # there, yet well below the pair's timestamp.
            add(word_ids[i], word_dir[i], _ALIGN_NEXT)
        else:
            add(word_ids[i], word_dir[i], _BETA)
    slope(slice(ts_begin, None), _SLOPE_TS)
    add(slice(ts_begin, None), _TSF, _BASE - _BETA)
    add(ts_begin, start_dir, _BETA_TS0)
    for i, k in plan.end_timestamp.items():
        add(ts_begin + k, word_dir[i], _BETA_BOUNDARY if i in plan.boundaries else _BETA)
        if i in plan.boundaries:
            add(ts_begin + k, pair_dir[i], _BETA + _PAIR_LIFT)
    add(EOT_ID, _ONE, _BASE)
    add(EOT_ID, _TSF, _PAIR_LIFT)
    slope(EOT_ID, _SLOPE_EOT)
    for i in range(1, _CHAIN_WORDS + 1):
        if i not in plan.end_timestamp:
            add(EOT_ID, word_dir[i], _BETA - _BASE)
    # Language detection reads the logits at <|startoftranscript|>.
    lang_logits = w.normal((shape.n_languages,), 0.5)
    lang_logits[0] = _LANG_EN
    for j in range(shape.n_languages):
        add(SOT_ID + 1 + j, sot_dir, float(lang_logits[j]))

    # Runner-ups: same embedding and readouts as the token they shadow, a few nats lower.
    def shadow(primary: int, runner_up: int, gap: float) -> None:
        emb[runner_up] = emb[primary]
        proj[runner_up] = proj[primary]
        add(runner_up, _ONE, -gap)

    for i, token in enumerate(word_ids):
        for alt, gap in zip(plan.alternates[i], _WORD_ALTERNATES, strict=True):
            shadow(token, alt, gap)
    for k in [0, *plan.end_timestamp.values()]:
        for j, gap in enumerate(_TS_ALTERNATES, start=1):
            shadow(ts_begin + k, ts_begin + k + j, gap)
    # Zero-mean rows (balanced on the free coordinates): the layer norms then subtract nothing
    # from the designed coordinates.
    emb[:, :first] -= emb.sum(axis=1, keepdims=True) / first

    spec.embeddings.weight = w.finish(emb)
    spec.projection.weight = w.finish(proj)
    # What random layers add must stay small next to the designed coordinates (~5 _FEATURE^2
    # per token), else the final layer norm shrinks every designed logit on deep models.
    writes = 3 * shape.decoder_layers + 1
    small = math.sqrt(0.1 * 5.0 * _FEATURE**2 / first / writes)
    spec.position_encodings.encodings = w.finish(_centered_noise(w, N_TEXT_POSITIONS, d, reserved, small))
    head_dim = d // heads
    uniform = d - head_dim  # first row of the last head
    align_layers = range(shape.decoder_layers // 2, shape.decoder_layers)
    for index, layer in enumerate(spec.layer):
        _self_attention(layer.self_attention, w, d, reserved, small)
        cross = layer.attention
        _layer_norm(cross.layer_norm, w, d)
        query = w.normal((d, d), 1.0 / math.sqrt(d), stored=True)
        query[uniform:] = 0.0  # the last head attends uniformly over the 1500 frames
        kv = w.normal((2 * d, d), 1.0 / math.sqrt(d), stored=True)
        kv[uniform:d] = 0.0
        kv[d + uniform :] = 0.0
        kv[d + uniform, _ENC_CONTENT] = 1.0  # and reads the content indicator
        if index in align_layers:
            # Head 1 peaks on the frame where the word belongs (from its progress): score =
            # -sharpness * (tau - tau_word)^2 + const, so time warping spreads words along the audio.
            # Word i sits at window fraction (i - 1/2) / K * slope, where slope maps the last
            # word onto the last timestamp; tau_word = 2 * fraction - 1 is linear in the progress.
            scale = _ALIGN_SHARPNESS * math.sqrt(head_dim) / _TIME_GAIN / unit
            slope_t = _end_fraction(1.0)
            tau_at_zero = 2.0 * slope_t * (_EPS0 - 0.5 / _CHAIN_WORDS) - 1.0
            query[head_dim : 2 * head_dim] = 0.0
            query[head_dim, _PROG] = 2.0 * scale * 2.0 * slope_t
            query[head_dim, _ONE] = 2.0 * scale * tau_at_zero
            query[head_dim + 1, _ONE] = -scale
            kv[head_dim : 2 * head_dim] = 0.0
            kv[head_dim, _ENC_TIME] = 1.0
            kv[head_dim + 1, _ENC_TIME2] = 1.0
        out = _residual_safe(w.normal((d, d), small / math.sqrt(d), stored=True), reserved)
        out[:, uniform:] = 0.0
        if index == 0:  # x = fraction of frames holding audio (balanced to keep rows zero-mean)
            out[_CONT, uniform] = _FEATURE
            out[:first, uniform] = -_FEATURE / first
        cross.linear[0].weight = w.finish(query)
        cross.linear[0].bias = w.finish(np.zeros(d, np.float32))
        cross.linear[1].weight = w.finish(kv)
        cross.linear[1].bias = w.finish(np.zeros(2 * d, np.float32))
        cross.linear[2].weight = w.finish(out)
        cross.linear[2].bias = w.finish(np.zeros(d, np.float32))
        _ffn(layer.ffn, w, d, reserved, small)
    _layer_norm(spec.layer_norm, w, d)


def _preprocessor_config(shape: WhisperShape) -> dict[str, Any]:
    return {
        "chunk_length": 30,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": shape.n_mels,
        "hop_length": 160,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "WhisperProcessor",
        "return_attention_mask": False,
        "sampling_rate": 16000,
    }


def build_random_whisper_model(
    out_dir: Path,
    *,
    shape: str = "micro",
    seed: int = 0,
    quantization: str | None = None,
) -> Path:
    """Write a loadable random-weight Whisper model (CTranslate2 + tokenizer) into ``out_dir``.

    ``quantization`` is a CTranslate2 weight type (``float16``, ``int8``...); None uses the
    shape's default (float16 for large-v3, float32 otherwise). The folder is written next to
    ``out_dir`` and renamed into place, so a half-built model is never visible. Returns ``out_dir``.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of: {', '.join(SHAPES)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(
            f"{out_dir} already exists and is not an empty folder; remove it or pick another"
        )
    import ctranslate2.specs as ct2_specs

    dims = SHAPES[shape]
    quant = quantization or dims.default_quantization
    dtype = np.float16 if quant in ("float16", "int8_float16") else np.float32
    weights = _Weights(seed, dtype)
    vocab = _vocabulary(dims)

    spec = ct2_specs.WhisperSpec(dims.encoder_layers, dims.heads, dims.decoder_layers, dims.heads)
    _fill_encoder(spec.encoder, dims, weights)
    _fill_decoder(spec.decoder, dims, weights)
    spec.register_vocabulary(vocab)
    specials = _special_tokens(dims)
    config = spec.config
    config.suppress_ids = _suppress_ids(dims)
    config.suppress_ids_begin = [_byte_alphabet().index("Ġ"), EOT_ID]
    config.lang_ids = [SOT_ID + 1 + j for j in range(dims.n_languages)]
    half = dims.decoder_layers // 2
    config.alignment_heads = [[layer, 1] for layer in range(half, dims.decoder_layers)]
    assert specials[0] == "<|endoftext|>"
    spec.validate()
    spec.optimize(quantization=quant)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        spec.save(str(staging))
        (staging / "tokenizer.json").write_text(
            json.dumps(_tokenizer_json(dims), ensure_ascii=False), encoding="utf-8"
        )
        (staging / "preprocessor_config.json").write_text(
            json.dumps(_preprocessor_config(dims), indent=2) + "\n", encoding="utf-8"
        )
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m whisperdesk.devtools.random_model OUT_DIR --shape tiny``."""
    parser = argparse.ArgumentParser(
        prog="python -m whisperdesk.devtools.random_model",
        description="Build a random-weight CTranslate2 Whisper model offline (gibberish output).",
    )
    parser.add_argument("out_dir", type=Path, help="folder to create (must not exist or be empty)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="micro")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quantization", default=None, help="CTranslate2 weight type, e.g. float16, int8")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        path = build_random_whisper_model(
            args.out_dir, shape=args.shape, seed=args.seed, quantization=args.quantization
        )
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in path.iterdir()) / 1e6
    print(f"{args.shape} model written to {path} ({size:.0f} MB, {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
