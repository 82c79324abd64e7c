"""The WER scorer the lost-speech tests rely on: it must count dropped words and ignore formatting."""

from __future__ import annotations

from whisperdesk.devtools.wer import edit_distance, missing_sentences, normalise, score, total


def test_normalise_ignores_case_punctuation_and_number_spelling() -> None:
    assert normalise("Forty-two people, at 7:30!") == normalise("forty two People at seven 30")
    assert normalise("It costs 1,000 dollars.") == ["it", "costs", "1000", "dollars"]
    assert normalise("Twenty five percent") == ["25", "%"]
    assert normalise("Dr. Smith's OK") == ["doctor", "smiths", "ok"]


def test_edit_distance_counts_substitutions_deletions_and_insertions() -> None:
    assert edit_distance(["a", "b", "c", "d"], ["a", "x", "c", "d"]) == 1
    assert edit_distance(["a", "b", "c", "d"], ["a", "c", "d"]) == 1
    assert edit_distance(["a", "b", "c", "d"], ["a", "b", "c", "d", "e", "f"]) == 2
    assert edit_distance([], ["a", "b"]) == 2


def test_a_dropped_sentence_raises_the_wer_and_is_reported_missing() -> None:
    sentences = [
        "The office will be closed on Friday because of the public holiday.",
        "The doctor recommended more sleep.",
        "Please send the report before noon.",
    ]
    reference = " ".join(sentences)
    complete = (
        "the office will be closed on friday because of the public holiday. The Doctor recommended more "
    )
    complete += "sleep, please send the report before noon"
    dropped = "The office will be closed on Friday because of the public holiday. Please send the report before noon."
    assert score(reference, complete).errors == 0
    assert score(reference, dropped).errors == 5
    assert missing_sentences(sentences, complete) == []
    assert missing_sentences(sentences, dropped) == [sentences[1]]
    # a misheard word is not a missing sentence
    assert missing_sentences(sentences, complete.replace("sleep", "sheep")) == []


def test_words_scattered_over_a_long_transcript_do_not_hide_a_missing_sentence() -> None:
    sentence = "Fresh snow covered the mountain road and closed the northern pass."
    padding = " ".join(f"item{i}" for i in range(40))
    scattered = f" {padding} ".join(normalise(sentence))  # every word present, but never near the others
    assert missing_sentences([sentence], scattered) == [sentence]
    assert missing_sentences([sentence], f"{padding} {sentence} {padding}") == []


def test_total_pools_errors_over_files() -> None:
    pooled = total([score("a b c d", "a b c d"), score("a b", "a")])
    assert (pooled.errors, pooled.words) == (1, 6)
    assert round(pooled.wer, 2) == 16.67
