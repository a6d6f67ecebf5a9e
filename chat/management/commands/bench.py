"""`make bench`: the same questions uncached and fully cached, side by side, in one run."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test import Client

from chat.pipeline import answer
from documents.models import Collection
from ragcache.client import breaker
from ragcache.invalidation import flush_all, flush_layer
from ragcache.layers import Policy

QUESTIONS = [
    "How do I loop over a list with its indexes?",
    "What does the pass statement do?",
    "How do I create a virtual environment?",
    "What is a lambda expression?",
    "How do I read a file line by line?",
    "What is a list comprehension?",
    "How do I handle exceptions?",
    "What does the with statement do?",
    "How do I define a class?",
    "What are keyword arguments?",
    "How do I format strings?",
    "What is a tuple?",
    "How do I import a module?",
    "How are floating point numbers represented?",
    "What does break do in a loop?",
    "How do I sort a list?",
    "What is a dictionary?",
    "How do I write to a file?",
    "What is a generator?",
    "What is the difference between a list and a tuple?",
]
NO_CACHE = Policy(read=False, write=False)


def _forget_entries() -> None:
    """Drop the cached entries but keep the generation copies, as after TTLs ran out."""
    for layer in ("emb", "ret", "ans", "sem", "doc"):
        flush_layer(layer)


class Command(BaseCommand):
    help = "Benchmark the speed layer on the demo collection: uncached vs fully cached answers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--collection", default="Python 3.11 tutorial")
        parser.add_argument("--demo-dir", type=Path, default=Path("/usr/share/doc/python3.11/html/tutorial"))
        parser.add_argument("--rounds", type=int, default=3, help="Times each question is asked per mode.")
        parser.add_argument("--json", dest="json_path", type=Path, help="Also write the figures to this file.")

    def handle(
        self, *args: Any, collection: str, demo_dir: Path, rounds: int, json_path: Path | None, **options: Any
    ) -> None:
        target = Collection.objects.filter(name=collection).first()
        if target is None or not target.documents.filter(status="ready").exists():
            if not demo_dir.is_dir():
                raise CommandError(f"No collection {collection!r} and no {demo_dir} to load it from.")
            call_command("ingest", str(demo_dir), "--collection", collection)
            target = Collection.objects.get(name=collection)
        ids = [target.pk]
        breaker.reset()
        flush_all()
        answer(question="warm up the model and the connections", collection_ids=ids, cache_policy=NO_CACHE)

        figures: dict[str, list[float]] = {"uncached": [], "cached": [], "miss_with_cache": [], "miss_overhead": []}
        stages: dict[str, list[float]] = {}
        for _ in range(rounds):
            for question in QUESTIONS:
                # Interleaved, so that a noisy moment on the machine hits both modes alike.
                uncached = answer(question=question, collection_ids=ids, cache_policy=NO_CACHE).trace
                figures["uncached"].append(uncached["total_ms"])
                for stage, ms in uncached["stages"].items():
                    stages.setdefault(stage, []).append(ms)
                _forget_entries()
                miss = answer(question=question, collection_ids=ids).trace
                figures["miss_with_cache"].append(miss["total_ms"])
                # The speed layer's own cost on a miss: the whole answer minus the stages it
                # wraps (embedding, search, generation), which the uncached answer also pays.
                figures["miss_overhead"].append(miss["total_ms"] - sum(miss["stages"].values()))
                figures.setdefault("uncached_overhead", []).append(
                    uncached["total_ms"] - sum(uncached["stages"].values())
                )
                cached = answer(question=question, collection_ids=ids).trace
                assert cached["from_cache"], "the second ask must be a full hit"
                figures["cached"].append(cached["total_ms"])

        api = self._api(ids)
        medians = {name: statistics.median(values) for name, values in figures.items()}
        result = {
            "questions": len(QUESTIONS),
            "rounds": rounds,
            "median_ms": medians,
            "speedup": medians["uncached"] / medians["cached"],
            "miss_overhead_ms": medians["miss_overhead"] - medians["uncached_overhead"],
            "uncached_stage_median_ms": {stage: statistics.median(v) for stage, v in stages.items()},
            "api_median_ms": api,
        }
        self.stdout.write(self._table(result))
        if json_path:
            json_path.write_text(json.dumps(result, indent=2))

    def _api(self, ids: list[int]) -> dict[str, float]:
        """Wall time of POST /api/ask in-process (view, scope query, pipeline), both ways."""
        client = Client(HTTP_HOST="localhost")
        timings: dict[str, list[float]] = {"uncached": [], "cached": []}
        for question in QUESTIONS:
            body = json.dumps({"question": question, "collections": ids})
            for mode, header in [("uncached", "no-store"), ("cached", "")]:
                if mode == "cached":  # make sure the entry is there
                    client.post("/api/ask", body, content_type="application/json")
                started = time.perf_counter()
                response = client.post(
                    "/api/ask", body, content_type="application/json", headers={"Cache-Control": header}
                )
                timings[mode].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.content
        return {mode: statistics.median(values) for mode, values in timings.items()}

    def _table(self, result: dict[str, Any]) -> str:
        m = result["median_ms"]
        lines = [
            f"{result['questions']} questions x {result['rounds']} rounds, local providers; server time per answer",
            f"  uncached (no cache read or written)  median {m['uncached']:8.2f} ms",
            f"  complete miss (cache read + written) median {m['miss_with_cache']:8.2f} ms"
            f"   (speed layer on a miss: {result['miss_overhead_ms']:+.2f} ms)",
            f"  fully cached                         median {m['cached']:8.2f} ms",
            f"  speed-up, uncached / cached: {result['speedup']:.1f}x",
            "  uncached stages (median ms): "
            + ", ".join(f"{stage} {ms:.2f}" for stage, ms in result["uncached_stage_median_ms"].items()),
            f"  POST /api/ask in-process (median): uncached {result['api_median_ms']['uncached']:.2f} ms, "
            f"cached {result['api_median_ms']['cached']:.2f} ms",
        ]
        return "\n".join(lines)
