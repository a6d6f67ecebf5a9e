"""The checks a semantic hit must pass besides the similarity threshold."""

from __future__ import annotations

import pytest

from ragcache.semantic import near_miss_reason, same_context


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("How do I create an index?", "How do I drop an index?", "opposites: create / drop"),
        ("How do I import a CSV file?", "How do I export a CSV file?", "opposites: import / export"),
        ("How do I sum the rows?", "How do I sum the columns?", "opposites: rows / columns"),
        ("Sort a list in ascending order", "Sort a list in descending order", "opposites: ascending / descending"),
        ("Does sorted() change the list?", "Doesn't sorted() change the list?", "a negation on one side only"),
        ("What does json.dump do?", "What does json.dumps do?", "another name or number: json.dump / json.dumps"),
        ("How do I round to 2 decimal places?", "How do I round to 3 decimal places?", "another name or number: 2 / 3"),
        ("Convert a dict to a JSON string", "Convert a JSON string to a dict", "the same words in another order"),
    ],
)
def test_a_near_miss_is_refused_with_its_reason(first, second, reason):
    assert near_miss_reason(first, second) == reason


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("How do I read a whole file into a string?", "What's the way to load an entire file as one string?"),
        ("How can I reverse a list?", "how do i reverse a list"),
        ("What does json.dumps return?", "What is returned by json.dumps?"),
        ("How do I round to 2 decimal places?", "Rounding a number to 2 decimals: how?"),
        ("How do I create an empty set?", "What's the correct way to make a set with no elements in it?"),
        ("How do I keep print from adding a newline?", "How do I keep print() from adding a newline?"),
    ],
)
def test_a_paraphrase_passes(first, second):
    assert near_miss_reason(first, second) is None


def test_two_retrievals_agree_when_they_share_the_best_passage_and_most_of_the_rest():
    assert same_context(["a", "b", "c", "d"], ["a", "c", "b", "e"], overlap=0.5)
    assert not same_context(["a", "b", "c", "d"], ["b", "a", "c", "d"], overlap=0.5)  # another best passage
    assert not same_context(["a", "b", "c", "d"], ["a", "x", "y", "z"], overlap=0.5)
    assert not same_context([], ["a"], overlap=0.5)
