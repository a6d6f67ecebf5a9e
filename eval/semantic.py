"""The semantic layer's curve: paraphrases served against wrong answers served, for the
similarity threshold alone and with each check of ragcache.semantic, over the labelled
pairs in eval/pairs/ (a paraphrase: the second question may have the first's answer; a
near miss: it may not). The setting is chosen on the tuned pairs; the held-out pairs
show what it does on questions it was not chosen on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragcache.conf import DEFAULTS
from ragcache.semantic import CONTEXT_OVERLAP, context_ids, near_miss_reason, same_context

THRESHOLDS = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95)
CHECKS = ("threshold alone", "+ words", "+ context", "+ words and context")


@dataclass(frozen=True)
class PairOutcome:
    same: bool  # a paraphrase: serving the first's answer to the second is right
    similarity: float
    words_pass: bool  # no near-miss reason between the two questions' words
    context_pass: bool  # the two retrievals found the same passages
    kind: str = ""


def passes(outcome: PairOutcome, check: str, threshold: float) -> bool:
    """Whether the second question would be served the first's answer."""
    if not outcome.similarity >= threshold:
        return False
    if check in ("+ words", "+ words and context") and not outcome.words_pass:
        return False
    return not (check in ("+ context", "+ words and context") and not outcome.context_pass)


def curve(outcomes: Sequence[PairOutcome]) -> dict[str, list[list[Any]]]:
    """For each check, [threshold, paraphrases served, near misses served (wrong)] rows."""
    return {
        check: [
            [threshold, sum(1 for o in outcomes if o.same and passes(o, check, threshold)),
             sum(1 for o in outcomes if not o.same and passes(o, check, threshold))]
            for threshold in THRESHOLDS
        ]
        for check in CHECKS
    }  # fmt: skip


def best_setting(rows: dict[str, list[list[Any]]]) -> tuple[str, float] | None:
    """The check and threshold serving the most paraphrases with no wrong answer (on a tie
    the higher threshold, then the fewer checks), or None if every setting serves a wrong one."""
    safe = [(served, threshold, check) for check, table in rows.items() for threshold, served, wrong in table
            if wrong == 0 and served > 0]  # fmt: skip
    if not safe:
        return None
    _, threshold, check = max(safe, key=lambda row: (row[0], row[1]))
    return check, threshold


def pair_outcome(
    pair: dict[str, Any], *, similarity: float, first: Sequence[str], second: Sequence[str]
) -> PairOutcome:
    """`first` and `second`: the content hashes of what retrieval finds for each question."""
    return PairOutcome(
        same=bool(pair["same"]),
        similarity=similarity,
        words_pass=near_miss_reason(pair["first"], pair["second"], similarity) is None,
        context_pass=same_context(context_ids(first), context_ids(second), overlap=CONTEXT_OVERLAP),
        kind=str(pair.get("kind", "")),
    )


def at_setting(
    pairs: Sequence[dict[str, Any]], outcomes: Sequence[PairOutcome], setting: tuple[str, float]
) -> dict[str, Any]:
    """What one setting serves: paraphrases by kind, and the near misses it lets through."""
    check, threshold = setting
    served = [(p, o) for p, o in zip(pairs, outcomes, strict=True) if passes(o, check, threshold)]
    kinds = sorted({o.kind for o in outcomes if o.same})
    return {
        "check": check,
        "threshold": threshold,
        "paraphrases": {kind: [sum(1 for _, o in served if o.same and o.kind == kind),
                               sum(1 for o in outcomes if o.same and o.kind == kind)] for kind in kinds},
        "wrong": [pair_line(p, o) for p, o in served if not o.same],
    }  # fmt: skip


def one_scope(
    pairs: Sequence[dict[str, Any]],
    similarities: Any,  # [second question i][first question j]
    contexts: Sequence[tuple[Sequence[str], Sequence[str]]],  # per pair: what retrieval finds for first, second
    setting: tuple[str, float],
) -> dict[str, Any]:
    """The pairs as a busy scope sees them: every first question of a corpus cached
    together, then each second question served from the most similar one that passes the
    setting, as the sem layer does (SEM_CANDIDATES tried). A paraphrase served from its
    own first question is right; a near miss served from its own is wrong; anything served
    from another pair's question is listed, to be judged by reading it."""
    check, threshold = setting
    right, wrong, elsewhere = 0, [], []
    for i, pair in enumerate(pairs):
        above = [(float(similarities[i][j]), j) for j, other in enumerate(pairs)
                 if other["corpus"] == pair["corpus"] and similarities[i][j] >= threshold]  # fmt: skip
        for similarity, j in sorted(above, reverse=True)[: DEFAULTS["SEM_CANDIDATES"]]:
            outcome = PairOutcome(
                same=bool(pair["same"]), similarity=similarity,
                words_pass=near_miss_reason(pairs[j]["first"], pair["second"], similarity) is None,
                context_pass=same_context(context_ids(contexts[j][0]), context_ids(contexts[i][1]),
                                          overlap=CONTEXT_OVERLAP),
            )  # fmt: skip
            if not passes(outcome, check, threshold):
                continue
            line = f"{pairs[j]['first']} / {pair['second']} ({similarity:.2f})"
            if pairs[j]["first"] != pair["first"]:
                elsewhere.append(line)
            elif pair["same"]:
                right += 1
            else:
                wrong.append(line)
            break
    return {"right": right, "wrong": wrong, "elsewhere": elsewhere}


def pair_line(pair: dict[str, Any], outcome: PairOutcome) -> str:
    return f"{pair['first']} / {pair['second']} ({outcome.similarity:.2f})"


def report(semantic: dict[str, Any]) -> list[str]:
    lines = ["## The semantic layer: paraphrases served against wrong answers served", ""]
    chosen = semantic.get("chosen")
    lines += [
        f"Chosen on the tuned pairs (the most paraphrases with no wrong answer): {chosen[0]} at {chosen[1]}."
        if chosen else "No setting serves the tuned pairs without a wrong answer.", ""
    ]  # fmt: skip
    for name, found in semantic["sets"].items():
        totals = f"{found['paraphrases']} paraphrases, {found['near misses']} near misses"
        lines += [f"### {name} ({found['note']} {totals})", "", "| threshold | " + " | ".join(CHECKS) + " |",
                  "|---|" + "---|" * len(CHECKS)]  # fmt: skip
        for index, threshold in enumerate(THRESHOLDS):
            cells = [f"{found['curve'][c][index][1]} right, {found['curve'][c][index][2]} wrong" for c in CHECKS]
            lines.append(f"| {threshold} | " + " | ".join(cells) + " |")
        chosen_here = found.get("at chosen")
        if chosen_here:
            kinds = ", ".join(f"{kind}s {right} of {total}" for kind, (right, total) in
                              chosen_here["paraphrases"].items())  # fmt: skip
            wrong = chosen_here["wrong"]
            lines += ["", f"At the chosen setting: {kinds} served; {len(wrong)} wrong answers."]
            lines += ["", "Near misses it serves:", ""] + [f"- {line}" for line in wrong] if wrong else []
        scope = found.get("one scope")
        if scope:
            lines += ["", f"In one scope holding every first question of the set: {scope['right']} paraphrases served "
                      f"from their own, {len(scope['wrong'])} near misses served; served from another pair's question "
                      f"(read them to judge): {len(scope['elsewhere'])}."]  # fmt: skip
            lines += [f"- {line}" for line in scope["wrong"] + scope["elsewhere"]]
        lines.append("")
    return lines
