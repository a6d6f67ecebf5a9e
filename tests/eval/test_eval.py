from __future__ import annotations

import json
from pathlib import Path

from eval.__main__ import report
from eval.metrics import Outcome, declines_at, first_hit, summarize, threshold_calibrated

QUESTIONS = Path(__file__).resolve().parents[2] / "eval" / "questions"


def outcome(expected: tuple[str, ...], ranked: tuple[str, ...], cited: tuple[str, ...] = (), *, declined: bool = False,
            ms: float = 10.0, similarity: float = 0.5) -> Outcome:  # fmt: skip
    return Outcome(expected=expected, ranked=ranked, cited=cited, declined=declined, ms=ms, similarity=similarity)


def test_the_figures_count_ranks_citations_and_declines():
    outcomes = [
        outcome(("a.html",), ("a.html", "b.html"), ("a.html",), ms=10),  # first
        outcome(("a.html", "c.html"), ("b.html", "c.html"), ("b.html",), ms=20),  # second, cites the wrong page
        outcome(("a.html",), ("b.html", "c.html", "d.html", "e.html", "f.html", "a.html"), declined=True, ms=30),
        outcome((), ("b.html",), declined=True, ms=40),  # unanswerable, declined: right
        outcome((), ("b.html",), ms=50),  # unanswerable, answered: wrong
    ]
    assert [first_hit(o) for o in outcomes[:3]] == [1, 2, 6]
    figures = summarize(outcomes)
    assert figures["answerable"] == 3 and figures["unanswerable"] == 2
    assert figures["hit@1"] == 0.333 and figures["hit@5"] == 0.667
    assert figures["mrr"] == round((1 + 1 / 2 + 1 / 6) / 3, 3)
    assert figures["cited-hit"] == 0.333
    assert figures["declined (unanswerable)"] == 0.5 and figures["declined (answerable)"] == 0.333
    assert figures["retrieval p50 ms"] == 30


def test_a_decline_that_cites_the_right_page_is_no_cited_hit():
    figures = summarize([outcome(("a.html",), ("a.html",), ("a.html",), declined=True)])
    assert figures["cited-hit"] == 0.0 and figures["declined (answerable)"] == 1.0


def test_the_calibrated_threshold_declines_the_most_unanswerable_within_the_limit():
    answerable = [outcome(("a.html",), ("a.html",), similarity=s) for s in (0.30, 0.45, 0.5, 0.6, 0.7)]
    unanswerable = [outcome((), ("a.html",), similarity=s) for s in (0.2, 0.35, 0.44, 0.52)]
    outcomes = answerable + unanswerable
    # 20% may be declined: the one answerable question at 0.30 falls below, the next (0.45) must not.
    assert threshold_calibrated(outcomes, answerable_declined=0.2) == 0.45
    assert declines_at(outcomes, 0.45) == (0.75, 0.2)
    assert threshold_calibrated(outcomes, answerable_declined=0.0) == 0.3
    assert declines_at(outcomes, 0.3) == (0.25, 0.0)


def test_the_question_sets_are_well_formed_and_the_held_out_one_apart():
    sets = {path.stem: json.loads(path.read_text()) for path in QUESTIONS.glob("*.json")}
    assert {"tutorial", "tutorial-heldout", "library", "library-heldout"} <= set(sets)
    every = [q for question_set in sets.values() for q in question_set["questions"]]
    assert len(every) >= 80 and sum(1 for q in every if not q["pages"]) >= 15
    assert len({question_set["source"] for question_set in sets.values()}) >= 2
    for question_set in sets.values():
        questions = [q["question"] for q in question_set["questions"]]
        assert len(questions) == len(set(questions))
        assert all(
            q["question"].strip() and all(p.endswith(".html") for p in q["pages"]) for q in question_set["questions"]
        )
    for corpus in ("tutorial", "library"):
        tuned = {q["question"].casefold() for q in sets[corpus]["questions"]}
        held_out = {q["question"].casefold() for q in sets[f"{corpus}-heldout"]["questions"]}
        assert not tuned & held_out and sets[f"{corpus}-heldout"]["note"].startswith("Held aside")
    assert sum(1 for q in sets["tutorial"]["questions"] if not q["pages"]) >= 15


def test_the_report_has_a_table_per_set_and_lists_the_misses():
    figures = summarize([outcome(("a.html",), ("b.html", "a.html"))])
    results = {"started": "now", "sets": {"tutorial": {"note": "Tuned on.", "corpus": "Tutorial", "modes": {
        mode: {"figures": figures, "misses": [{"question": "Q?", "expected": ["a.html"], "ranked": ["b.html"]}]}
        for mode in ("hybrid", "dense")}}}}  # fmt: skip
    results["calibration"] = {"configured": 0.4, "calibrated": 0.41, "sweep": [[0.4, 0.9, 0.05]]}
    text = report(results)
    assert "| hit@5 | 1.0 | 1.0 |" in text and "- Q? — expected a.html; got b.html" in text
    assert "(configured: 0.4)" in text and "is 0.41" in text and "| 0.4 | 0.9 | 0.05 |" in text


def test_the_semantic_curve_counts_right_and_wrong_hits_per_check_and_picks_a_safe_setting():
    from eval.semantic import PairOutcome, best_setting, curve

    outcomes = [
        PairOutcome(same=True, similarity=0.93, words_pass=True, context_pass=True),
        PairOutcome(same=True, similarity=0.86, words_pass=True, context_pass=False),
        PairOutcome(same=False, similarity=0.94, words_pass=False, context_pass=True),  # create/drop
        PairOutcome(same=False, similarity=0.89, words_pass=True, context_pass=False),
    ]
    rows = curve(outcomes)
    by_threshold = {check: {t: (right, wrong) for t, right, wrong in table} for check, table in rows.items()}
    assert by_threshold["threshold alone"][0.85] == (2, 2)
    assert by_threshold["+ words"][0.85] == (2, 1)
    assert by_threshold["+ context"][0.85] == (1, 1)
    assert by_threshold["+ words and context"][0.85] == (1, 0)
    assert by_threshold["threshold alone"][0.95] == (0, 0)
    # The most paraphrases with no wrong answer; on a tie the higher threshold, then the fewer checks.
    assert best_setting(rows) == ("+ words", 0.9)


def test_the_chosen_setting_is_shown_on_each_set_with_the_near_misses_it_serves():
    from eval.semantic import PairOutcome, at_setting, report

    pairs = [{"first": f"q{n}", "second": f"r{n}"} for n in range(3)]
    outcomes = [
        PairOutcome(same=True, similarity=0.93, words_pass=True, context_pass=True, kind="light paraphrase"),
        PairOutcome(same=True, similarity=0.61, words_pass=True, context_pass=True, kind="paraphrase"),
        PairOutcome(same=False, similarity=0.97, words_pass=True, context_pass=True, kind="opposite"),
    ]
    found = at_setting(pairs, outcomes, ("+ words", 0.7))
    assert found["paraphrases"] == {"light paraphrase": [1, 1], "paraphrase": [0, 1]}
    assert found["wrong"] == ["q2 / r2 (0.97)"]
    text = "\n".join(report({"chosen": ("+ words", 0.7), "sets": {"held": {
        "note": "Held aside.", "paraphrases": 2, "near misses": 1, "at chosen": found,
        "curve": {check: [[0.5, 0, 0]] * 10 for check in ("threshold alone", "+ words", "+ context",
                                                            "+ words and context")}}}}))  # fmt: skip
    assert "Chosen on the tuned pairs (the most paraphrases with no wrong answer): + words at 0.7." in text
    assert "light paraphrases 1 of 1, paraphrases 0 of 1 served; 1 wrong answers." in text
    assert "- q2 / r2 (0.97)" in text


def test_the_labelled_pairs_are_half_paraphrases_and_the_held_out_ones_apart():
    pairs_dir = QUESTIONS.parent / "pairs"
    sets = {path.stem: json.loads(path.read_text())["pairs"] for path in pairs_dir.glob("*.json")}
    assert set(sets) == {"pairs", "pairs-heldout", "pairs-heldout-2"}
    every = [pair for pairs in sets.values() for pair in pairs]
    assert len(every) >= 100
    assert sum(1 for p in every if p["same"]) * 2 == len(every)
    assert all(p["corpus"] in {"tutorial", "library"} and p["first"] != p["second"] for p in every)
    assert all(p["same"] == (p["kind"] in {"paraphrase", "light paraphrase"}) for p in every)
    tuned = {q.casefold() for p in sets["pairs"] for q in (p["first"], p["second"])}
    for held_out in ("pairs-heldout", "pairs-heldout-2"):
        assert not tuned & {q.casefold() for p in sets[held_out] for q in (p["first"], p["second"])}


def test_in_one_scope_a_question_may_be_served_from_another_pair_and_that_is_listed():
    from eval.semantic import one_scope

    pairs = [
        {"first": "How do I delete a file?", "second": "How can I delete a file in Python?", "same": True,
         "corpus": "library"},
        {"first": "How do I create an empty directory?", "second": "How do I remove an empty directory?",
         "same": False, "corpus": "library"},
        {"first": "How do I copy a file?", "second": "How can I delete a file?", "same": True, "corpus": "library"},
    ]  # fmt: skip
    # [second i][first j]: the third pair's second question is nearest to the first pair's question.
    similarities = [[0.90, 0.20, 0.60], [0.30, 0.95, 0.20], [0.92, 0.10, 0.80]]
    contexts = [(["a"], ["a"]), (["b"], ["b"]), (["c"], ["c"])]
    found = one_scope(pairs, similarities, contexts, ("+ words", 0.7))
    assert found["right"] == 1  # the first paraphrase, from its own question
    assert found["wrong"] == []  # create/remove: refused by the words
    assert found["elsewhere"] == ["How do I delete a file? / How can I delete a file? (0.92)"]
