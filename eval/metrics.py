"""The figures of an evaluation, from ranked pages: plain functions, no database."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One question's result: the pages retrieval ranked, the pages the answer cited, whether
    the answer declined, and the retrieval's milliseconds."""

    expected: tuple[str, ...]  # empty: the corpus cannot answer it
    ranked: tuple[str, ...]
    cited: tuple[str, ...]
    declined: bool
    ms: float
    similarity: float = 0.0  # of the passage closest to the question (what the answerer declines by)


def first_hit(outcome: Outcome) -> int | None:
    """The 1-based rank of the first expected page, or None."""
    return next((rank for rank, page in enumerate(outcome.ranked, 1) if page in outcome.expected), None)


def summarize(outcomes: Sequence[Outcome]) -> dict[str, float | int]:
    """hit@1, hit@5 and MRR over the answerable questions; cited-hit (the answer, not a
    decline, cites an expected page); declined shares of the unanswerable (right) and answerable (wrong)
    questions; retrieval p50."""
    answerable = [o for o in outcomes if o.expected]
    unanswerable = [o for o in outcomes if not o.expected]
    ranks = [first_hit(o) for o in answerable]

    def share(count: int, total: int) -> float:
        return round(count / total, 3) if total else 0.0

    return {
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "hit@1": share(sum(1 for r in ranks if r == 1), len(answerable)),
        "hit@5": share(sum(1 for r in ranks if r is not None and r <= 5), len(answerable)),
        "mrr": round(sum(1 / r for r in ranks if r is not None) / len(answerable), 3) if answerable else 0.0,
        "cited-hit": share(
            sum(1 for o in answerable if not o.declined and set(o.cited) & set(o.expected)), len(answerable)
        ),
        "declined (unanswerable)": share(sum(1 for o in unanswerable if o.declined), len(unanswerable)),
        "declined (answerable)": share(sum(1 for o in answerable if o.declined), len(answerable)),
        "retrieval p50 ms": round(statistics.median(o.ms for o in outcomes), 2) if outcomes else 0.0,
    }


def threshold_calibrated(outcomes: Sequence[Outcome], *, answerable_declined: float) -> float:
    """The highest similarity threshold (to 0.01) below which the answerer may decline while
    declining at most `answerable_declined` of the answerable questions: it declines as many
    unanswerable ones as that allows."""
    similarities = sorted(o.similarity for o in outcomes if o.expected)
    if not similarities:
        return 0.0
    allowed = int(answerable_declined * len(similarities))  # questions below the threshold
    return math.floor(similarities[allowed] * 100) / 100


def declines_at(outcomes: Sequence[Outcome], threshold: float) -> tuple[float, float]:
    """(share of unanswerable, share of answerable) questions whose closest passage is below `threshold`."""
    answerable = [o for o in outcomes if o.expected]
    unanswerable = [o for o in outcomes if not o.expected]

    def below(group: list[Outcome]) -> float:
        return round(sum(1 for o in group if o.similarity < threshold) / len(group), 3) if group else 0.0

    return below(unanswerable), below(answerable)
