"""`python -m eval`: see eval/__init__.py."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from eval.metrics import Outcome, declines_at, first_hit, summarize, threshold_calibrated
from eval.semantic import report as semantic_report

BASE_DIR = Path(__file__).resolve().parent.parent
QUESTIONS = BASE_DIR / "eval" / "questions"
PAIRS = BASE_DIR / "eval" / "pairs"
RESULTS = BASE_DIR / "eval" / "results"
MODES = ("hybrid", "dense")
# The answerer may wrongly decline at most this share of the answerable questions.
ANSWERABLE_DECLINED_LIMIT = 0.05
SWEEP = [round(0.2 + 0.05 * step, 2) for step in range(9)]
# What the answerer says when the passages do not answer the question (matched in its text).
DECLINE_MARKERS = ("do not answer", "found nothing")


def main() -> int:
    os.environ.setdefault("RAGSITE_DATA_DIR", str(BASE_DIR / ".data" / "eval"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    import django

    import ragsite  # noqa: F401  (starts or attaches to the evaluation's embedded services)

    django.setup()
    from django.conf import settings

    from bench.scenarios import prepare_demo
    from documents.models import Chunk

    chosen = set(sys.argv[1:])  # set names (file stems); all of them when none is given
    paths = [path for path in sorted(QUESTIONS.glob("*.json")) if not chosen or path.stem in chosen]
    if chosen - {path.stem for path in paths}:
        sys.exit(f"No question set named {', '.join(sorted(chosen - {p.stem for p in paths}))} in {QUESTIONS}.")
    sets = [json.loads(path.read_text()) | {"name": path.stem} for path in paths]
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "sets": {}}
    tuned: list[Outcome] = []
    collections: dict[str, int] = {}  # set name without "-heldout" -> its corpus's collection
    for question_set in sets:
        collection = prepare_demo(question_set["source"], question_set["corpus"])
        collections[question_set["name"].removesuffix("-heldout")] = collection.pk
        chunks = Chunk.objects.filter(document__collection=collection)
        modes = {mode: evaluate(question_set["questions"], collection.pk, mode) for mode in MODES}
        results["sets"][question_set["name"]] = {
            "note": question_set["note"], "corpus": question_set["corpus"],
            "pages": collection.documents.count(), "chunks": chunks.count(),
            "modes": {mode: {"figures": found["figures"], "misses": found["misses"]} for mode, found in modes.items()},
        }  # fmt: skip
        if question_set["note"].startswith("Tuned"):
            tuned.extend(modes[settings.RETRIEVAL_MODE]["outcomes"])
        print(f"{question_set['name']}: done", flush=True)
    pair_sets = [json.loads(path.read_text()) | {"name": path.stem} for path in sorted(PAIRS.glob("*.json"))]
    if not chosen and pair_sets:
        results["semantic"] = evaluate_pairs(pair_sets, collections)
    results["calibration"] = {
        "configured": settings.ANSWER_MIN_SIMILARITY,
        "calibrated": threshold_calibrated(tuned, answerable_declined=ANSWERABLE_DECLINED_LIMIT),
        "sweep": [[threshold, *declines_at(tuned, threshold)] for threshold in SWEEP],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "latest.md").write_text(report(results))
    print((RESULTS / "latest.md").read_text())
    return 0


def evaluate(questions: list[dict[str, Any]], collection_id: int, mode: str) -> dict[str, Any]:
    from django.conf import settings
    from django.test import override_settings

    from chat.pipeline import answer, passages_search, question_dense
    from documents.models import Document
    from ragcache.layers import Policy

    pages = dict(Document.objects.filter(collection_id=collection_id).values_list("pk", "original_filename"))
    outcomes, misses = [], []
    for item in questions:
        dense = question_dense(item["question"], [collection_id])
        started = time.perf_counter()
        passages = passages_search(question=item["question"], dense=dense,
                                   k=settings.RETRIEVAL_TOP_K, mode=mode)  # fmt: skip
        ms = (time.perf_counter() - started) * 1000
        with override_settings(RETRIEVAL_MODE=mode):
            result = answer(question=item["question"], collection_ids=[collection_id],
                            cache_policy=Policy(read=False, write=False))  # fmt: skip
        outcome = Outcome(
            expected=tuple(item["pages"]),
            ranked=tuple(dict.fromkeys(pages[p.document_id] for p in passages)),
            cited=tuple(dict.fromkeys(pages.get(c["document_id"], "") for c in result.citations)),
            declined=any(marker in result.text.lower() for marker in DECLINE_MARKERS),
            ms=ms,
            similarity=max((p.similarity or 0.0 for p in passages), default=0.0),
        )
        outcomes.append(outcome)
        if outcome.expected and first_hit(outcome) != 1:
            misses.append({"question": item["question"], "expected": item["pages"], "ranked": list(outcome.ranked)})
    return {"figures": summarize(outcomes), "misses": misses, "outcomes": outcomes}


def evaluate_pairs(pair_sets: list[dict[str, Any]], collections: dict[str, int]) -> dict[str, Any]:
    """Each pair asked as a semantic lookup would see it: the two questions' similarity, and
    what retrieval finds for each in the pair's corpus. The setting is chosen on the tuned
    sets, then shown on every set."""
    import numpy as np
    from django.conf import settings

    from chat.pipeline import passages_search, question_dense
    from eval.semantic import at_setting, best_setting, curve, one_scope, pair_outcome

    found: dict[str, Any] = {}
    outcomes_by_set, asked_by_set = {}, {}
    for pairs in pair_sets:
        outcomes, asked = [], []
        for pair in pairs["pairs"]:
            for question in (pair["first"], pair["second"]):
                dense = question_dense(question, [collections[pair["corpus"]]])
                passages = passages_search(
                    question=question, dense=dense,
                    k=settings.RETRIEVAL_TOP_K, mode=settings.RETRIEVAL_MODE,
                )  # fmt: skip
                vector = dense[0].vector
                assert vector is not None  # one collection, embedded by the configured model
                asked.append((vector / np.linalg.norm(vector), [p.content_hash for p in passages]))
            (first, first_context), (second, second_context) = asked[-2:]
            outcomes.append(pair_outcome(pair, similarity=float(first @ second), first=first_context,
                                         second=second_context))  # fmt: skip
        outcomes_by_set[pairs["name"]], asked_by_set[pairs["name"]] = outcomes, asked
        found[pairs["name"]] = {
            "note": pairs["note"], "paraphrases": sum(1 for o in outcomes if o.same),
            "near misses": sum(1 for o in outcomes if not o.same), "curve": curve(outcomes),
        }  # fmt: skip
    tuned = [o for p in pair_sets if p["note"].startswith("Tuned") for o in outcomes_by_set[p["name"]]]
    chosen = best_setting(curve(tuned)) if tuned else None
    if chosen:
        for pairs in pair_sets:
            name, asked = pairs["name"], asked_by_set[pairs["name"]]
            found[name]["at chosen"] = at_setting(pairs["pairs"], outcomes_by_set[name], chosen)
            firsts, seconds = np.stack([v for v, _ in asked[0::2]]), np.stack([v for v, _ in asked[1::2]])
            contexts = [(first[1], second[1]) for first, second in zip(asked[0::2], asked[1::2], strict=True)]
            found[name]["one scope"] = one_scope(pairs["pairs"], seconds @ firsts.T, contexts, chosen)
    return {"chosen": chosen, "sets": found}


def report(results: dict[str, Any]) -> str:
    lines = [f"# How good are the answers? (`make eval`, {results['started']})", ""]
    for name, question_set in results["sets"].items():
        size = f"{question_set.get('pages', '?')} pages, {question_set.get('chunks', '?')} chunks"
        lines += [f"## {name}: {question_set['corpus']}, {size} ({question_set['note']})", ""]
        modes = question_set["modes"]
        figures = list(next(iter(modes.values()))["figures"])
        lines += ["| | " + " | ".join(MODES) + " |", "|---|" + "---|" * len(MODES)]
        lines += [f"| {figure} | " + " | ".join(str(modes[m]["figures"][figure]) for m in MODES) + " |"
                  for figure in figures]  # fmt: skip
        lines += ["", "Answerable questions whose first page is not an expected one (hybrid):", ""]
        misses = modes["hybrid"]["misses"]
        lines += [miss_line(m) for m in misses] or ["- none"]
        lines.append("")
    if results.get("semantic"):
        lines += semantic_report(results["semantic"])
    calibration = results.get("calibration")
    if calibration:
        lines += [
            "## When the offline answerer declines",
            "",
            "It declines when no passage's cosine similarity to the question reaches ANSWER_MIN_SIMILARITY "
            f"(configured: {calibration['configured']}). Calibrated on the tuned sets, the highest threshold that "
            f"declines at most {ANSWERABLE_DECLINED_LIMIT:.0%} of the answerable questions is "
            f"{calibration['calibrated']}. Shares of the tuned sets' questions declined at each threshold:",
            "",
            "| threshold | unanswerable declined | answerable declined |",
            "|---|---|---|",
        ]
        lines += [f"| {t} | {unanswerable} | {answerable} |" for t, unanswerable, answerable in calibration["sweep"]]
        lines.append("")
    return "\n".join(lines)


def miss_line(miss: dict[str, Any]) -> str:
    got = ", ".join(miss["ranked"][:3]) or "nothing"
    return f"- {miss['question']} — expected {', '.join(miss['expected'])}; got {got}"


if __name__ == "__main__":
    sys.exit(main())
