"""`python -m eval`: see eval/__init__.py."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
QUESTIONS = BASE_DIR / "eval" / "questions"
RESULTS = BASE_DIR / "eval" / "results"
MODES = ("hybrid", "dense")
# What the answerer says when the passages do not answer the question (matched in its text).
DECLINE_MARKERS = ("do not answer", "found nothing")


def main() -> int:
    os.environ.setdefault("RAGSITE_DATA_DIR", str(BASE_DIR / ".data" / "eval"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    import django

    import ragsite  # noqa: F401  (starts or attaches to the evaluation's embedded services)

    django.setup()
    from bench.scenarios import prepare_demo

    sets = [json.loads(path.read_text()) | {"name": path.stem} for path in sorted(QUESTIONS.glob("*.json"))]
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "sets": {}}
    for question_set in sets:
        collection = prepare_demo(question_set["source"], question_set["corpus"])
        results["sets"][question_set["name"]] = {
            "note": question_set["note"], "corpus": question_set["corpus"],
            "modes": {mode: evaluate(question_set["questions"], collection.pk, mode) for mode in MODES},
        }  # fmt: skip
        print(f"{question_set['name']}: done", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "latest.md").write_text(report(results))
    print((RESULTS / "latest.md").read_text())
    return 0


def evaluate(questions: list[dict[str, Any]], collection_id: int, mode: str) -> dict[str, Any]:
    from django.test import override_settings

    from chat.pipeline import answer, passages_search, question_embedding
    from documents.models import Document
    from eval.metrics import Outcome, first_hit, summarize
    from ragcache.layers import Policy

    pages = dict(Document.objects.filter(collection_id=collection_id).values_list("pk", "original_filename"))
    outcomes, misses = [], []
    for item in questions:
        embedding = question_embedding(item["question"])
        started = time.perf_counter()
        passages = passages_search(question=item["question"], embedding=embedding, collection_ids=[collection_id],
                                   k=5, mode=mode)  # fmt: skip
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
        )
        outcomes.append(outcome)
        if outcome.expected and first_hit(outcome) != 1:
            misses.append({"question": item["question"], "expected": item["pages"], "ranked": list(outcome.ranked)})
    return {"figures": summarize(outcomes), "misses": misses}


def report(results: dict[str, Any]) -> str:
    lines = [f"# How good are the answers? (`make eval`, {results['started']})", ""]
    for name, question_set in results["sets"].items():
        lines += [f"## {name}: {question_set['corpus']} ({question_set['note']})", ""]
        modes = question_set["modes"]
        figures = list(next(iter(modes.values()))["figures"])
        lines += ["| | " + " | ".join(MODES) + " |", "|---|" + "---|" * len(MODES)]
        lines += [f"| {figure} | " + " | ".join(str(modes[m]["figures"][figure]) for m in MODES) + " |"
                  for figure in figures]  # fmt: skip
        lines += ["", "Answerable questions whose first page is not an expected one (hybrid):", ""]
        misses = modes["hybrid"]["misses"]
        lines += [miss_line(m) for m in misses] or ["- none"]
        lines.append("")
    return "\n".join(lines)


def miss_line(miss: dict[str, Any]) -> str:
    got = ", ".join(miss["ranked"][:3]) or "nothing"
    return f"- {miss['question']} — expected {', '.join(miss['expected'])}; got {got}"


if __name__ == "__main__":
    sys.exit(main())
