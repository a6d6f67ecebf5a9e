"""The semantic layer's curve: paraphrases served against wrong answers served, for the
similarity threshold alone and with each check of ragcache.semantic, over the labelled
pairs in eval/pairs/ (a paraphrase: the second question may have the first's answer; a
near miss: it may not)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragcache.semantic import near_miss_reason, same_context

THRESHOLDS = (0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95)
CONTEXT_OVERLAP = 0.5
CHECKS = ("threshold alone", "+ words", "+ context", "+ words and context")


@dataclass(frozen=True)
class PairOutcome:
    same: bool  # a paraphrase: serving the first's answer to the second is right
    similarity: float
    words_pass: bool  # no near-miss reason between the two questions' words
    context_pass: bool  # the two retrievals found the same passages


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
    return PairOutcome(
        same=bool(pair["same"]),
        similarity=similarity,
        words_pass=near_miss_reason(pair["first"], pair["second"]) is None,
        context_pass=same_context(first, second, overlap=CONTEXT_OVERLAP),
    )


def report(semantic: dict[str, Any]) -> list[str]:
    lines = ["## The semantic layer: paraphrases served against wrong answers served", ""]
    for name, found in semantic.items():
        totals = f"{found['paraphrases']} paraphrases, {found['near misses']} near misses"
        lines += [f"### {name} ({found['note']} {totals})", "", "| threshold | " + " | ".join(CHECKS) + " |",
                  "|---|" + "---|" * len(CHECKS)]  # fmt: skip
        for index, threshold in enumerate(THRESHOLDS):
            cells = [f"{found['curve'][c][index][1]} right, {found['curve'][c][index][2]} wrong" for c in CHECKS]
            lines.append(f"| {threshold} | " + " | ".join(cells) + " |")
        if found.get("wrong"):
            lines += ["", f"Near misses served with {CHECKS[-1]} at {THRESHOLDS[0]}:", ""]
            lines += [f"- {line}" for line in found["wrong"]]
        best = found.get("best")
        lines += ["", f"Best setting without a wrong answer: {best[0]} at {best[1]}." if best else
                  "Every setting serves a wrong answer.", ""]  # fmt: skip
    return lines
