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
        (
            "How do I get the code point of a character?",
            "How do I get the character for a code point?",
            "the same words in another order",
        ),
        ("How do I register a handler?", "How do I unregister a handler?", "opposites: register / unregister"),
        (
            "How do I activate a virtual environment?",
            "How do I deactivate a virtual environment?",
            "opposites: activate / deactivate",
        ),
        ("What does the 'w' mode do in open()?", "What does the 'a' mode do in open()?", "another literal: w / a"),
        ("How do I sort a list?", "How do I shuffle a list?", "a word in another's place: sort / shuffle"),
        (
            "How do I get the size of a file?",
            "How do I get the last modification time of a file?",
            "a word in another's place: size / last, modification, time",
        ),
        (
            "Can a tuple be used as a key when it holds lists?",
            "Can a tuple be used as a key when it holds no lists?",
            "a negation on one side only",
        ),
    ],
)
def test_a_near_miss_is_refused_with_its_reason(first, second, reason):
    assert near_miss_reason(first, second) == reason


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("How can I reverse a list?", "how do i reverse a list"),
        ("What does json.dumps return?", "What is returned by json.dumps?"),
        ("How do I round to 2 decimal places?", "Rounding to 2 decimal places: how is it done?"),
        ("How do I merge two dictionaries?", "How can I merge two dicts in Python?"),
        ("How do I get today's date?", "How can I get the date of today?"),
        ("How do I keep print from adding a newline?", "How do I keep print() from adding a newline?"),
        ("How do I delete a file?", "How can I delete a file in Python?"),
    ],
)
def test_a_paraphrase_passes(first, second):
    assert near_miss_reason(first, second) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("How do I convert a string to an integer?", "How do I turn a string into an int?"),
        ("How do I create a virtual environment?", "How can I set up a virtual environment for my project?"),
    ],
)
def test_a_paraphrase_that_reads_as_an_edit_is_refused_too(first, second):
    """The price of serving no wrong answer: a word swapped for its synonym looks like a
    word swapped for another's, and the words alone cannot tell which."""
    assert near_miss_reason(first, second).startswith("a word in another's place")


def test_a_reworded_pair_needs_a_high_similarity_and_an_added_clause_is_refused():
    first, reworded = "How do I check if a file exists?", "Which function tells whether a given path points to a file?"
    assert near_miss_reason(first, reworded, 0.9) is None
    assert near_miss_reason(first, reworded, 0.7).startswith("reworded, and not close enough to vouch for")
    narrower = near_miss_reason("How do I sort a list?", "How do I sort a list in descending order?", 0.95)
    assert narrower == "words on one side only: descending, order"


def test_two_retrievals_agree_when_they_share_the_best_passage_and_most_of_the_rest():
    assert same_context(["a", "b", "c", "d"], ["a", "c", "b", "e"], overlap=0.5)
    assert not same_context(["a", "b", "c", "d"], ["b", "a", "c", "d"], overlap=0.5)  # another best passage
    assert not same_context(["a", "b", "c", "d"], ["a", "x", "y", "z"], overlap=0.5)
    assert not same_context([], ["a"], overlap=0.5)
