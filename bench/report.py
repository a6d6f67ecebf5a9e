"""bench/results/latest.md and latest.png from one run's figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGETS = {
    "p50": 1.5,  # cached p50 at most this times the bare view's
    "throughput": 0.8,  # cached throughput at 32 clients at least this times the bare view's
    "local": 30,  # first ask over repeat, local providers
    "api": 1000,  # and API-shaped
    "miss_overhead_ms": 1.0,
    "semantic_ms": 20,  # a semantic hit at most this much slower than an exact one, local providers
    "ingestion": 0.9,  # chunks per second, against the embedder alone on the same chunks
}


def write(results: dict[str, Any], out: Path) -> None:
    (out / "latest.md").write_text(markdown(results))
    chart(results, out / "latest.png")


def _ms(value: float) -> str:
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def _check(ok: bool) -> str:
    return "met" if ok else "**not met**"


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# How much faster? (`make bench`, {r['started']}{', quick' if r['quick'] else ''})",
        "",
        "Over HTTP against the server `make run` uses (gunicorn, 2 workers x 8 threads), on this",
        f"machine's 2 cores, in one run of {r['seconds']} s. Medians unless said otherwise.",
        "",
        "## A cached answer against a bare Django view",
        "",
        "`GET /healthz` returns constant JSON through the whole middleware stack: the floor. "
        "`POST /api/ask` asks a question whose answer is cached.",
        "",
        "| clients | bare p50 ms | cached p50 ms | ratio | bare p99 | cached p99 | bare req/s | cached req/s "
        "| ratio | errors | PostgreSQL connections (max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["concurrency"]:
        bare, cached = row["bare"], row["cached"]
        lines.append(
            f"| {row['clients']} | {_ms(bare['p50_ms'])} | {_ms(cached['p50_ms'])} | "
            f"{cached['p50_ms'] / bare['p50_ms']:.2f}x | {_ms(bare['p99_ms'])} | {_ms(cached['p99_ms'])} | "
            f"{bare['per_second']:,.0f} | {cached['per_second']:,.0f} | "
            f"{cached['per_second'] / bare['per_second']:.2f}x | {bare['errors'] + cached['errors']} | "
            f"{row['postgres_connections_max']} |"
        )
    lines += ["", "## First ask against its repeat, end to end", ""]
    lines += [
        "| providers | uncached | complete miss (first ask) | fully cached (repeat) | first / repeat | "
        "server time, cached | per-stage (uncached) | avoided per repeat |",
        "|---|---|---|---|---|---|---|---|",
    ]
    setups = [("local: MiniLM, extractive", r.get("local")), ("API-shaped: 300 ms embedding, 1.5 s + 15 ms/token",
              r.get("api")), ("llama.cpp, a small model", r.get("local_llm"))]  # fmt: skip
    for name, data in setups:
        if not data:
            continue
        if "skipped" in data:
            lines.append(f"| {name} | skipped: {data['skipped']} | | | | | | |")
            continue
        http, server = data["http_median_ms"], data["server_median_ms"]
        stages = ", ".join(
            f"{stage} {_ms(ms)}" for stage, ms in data["stage_median_ms"].items() if stage != "normalize"
        )
        avoided = data["avoided_per_repeat"]
        saved = "none: nothing calls a model" if not avoided["prompt_tokens"] else (
            f"{avoided['prompt_tokens'] + avoided['completion_tokens']:,.0f} tokens, ${avoided['cost_usd']:.5f}"
            + (" (estimated)" if avoided.get("estimated") else "")
        )  # fmt: skip
        if "calls" in data:
            saved += f"; calls made on the misses: {data['calls']}, on the repeats: none"
        lines.append(
            f"| {name} | {_ms(http['uncached'])} ms | {_ms(http['miss'])} ms | {_ms(http['cached'])} ms | "
            f"**{data['first_over_repeat']:,.0f}x** | {_ms(server['cached'])} ms | {stages} | {saved} |"
        )
    sem = r.get("semantic")
    if sem:
        http, server = sem["http_median_ms"], sem["server_median_ms"]
        lines += [
            "",
            "## A similar question against a repeated one (local providers)",
            "",
            f"The demo's {sem['pairs']} labelled paraphrases (eval/pairs): the first question asked, asked again, then "
            f"its paraphrase, each pair in a fresh cache; {sem['served']} paraphrases were served from the sem layer "
            "(the others, refused by its checks, were answered afresh and are not timed here).",
            "",
            "| | bare view | complete miss | exact hit | semantic hit | semantic - exact |",
            "|---|---|---|---|---|---|",
            f"| over HTTP, ms | {_ms(http['bare'])} | {_ms(http['miss'])} | {_ms(http['exact'])} | "
            f"{_ms(http['semantic']) if http['semantic'] is not None else '-'} | "
            f"{_ms(sem['semantic_minus_exact_ms']) if sem['semantic_minus_exact_ms'] is not None else '-'} |",
            f"| on the server, ms | | {_ms(server['miss'])} | {_ms(server['exact'])} | "
            f"{_ms(server['semantic']) if server['semantic'] is not None else '-'} | |",
        ]
    compared = r.get("providers")
    if compared:
        http = compared["http_median_ms"]
        lines += [
            "",
            "## An uncached ask, embedded by the onnx provider against torch",
            "",
            f"Two servers at once, one per embedding provider, asked in turn: {compared['asks']} uncached asks "
            "each (no-store, as staff), each beside a bare view; the embed stage is the server's.",
            "",
            "| provider | bare view | uncached ask | its embed stage |",
            "|---|---|---|---|",
            *(f"| {name} | {_ms(http[name]['bare'])} | {_ms(http[name]['uncached'])} | {_ms(http[name]['embed'])} |"
              for name in ("onnx", "torch")),
        ]  # fmt: skip
    elif "providers" in r:
        lines += ["", "The torch extra is not installed (`requirements-torch.txt`): onnx against torch was skipped."]
    ingest = r.get("ingestion")
    if ingest:
        lines += [
            "",
            "## Ingestion against the embedder alone",
            "",
            f"{ingest['documents']} pages of the Python library reference, {ingest['chunks']:,} chunks: ingested "
            f"(parse, chunk, embed, store) as manage.py ingest does, {ingest.get('documents_at_once', 1)} documents "
            "at once, eight pages at a time, each eight followed by the embedder alone on the very chunks they made, "
            "a document's in one call.",
            "",
            "| ingestion | embedder alone | ingestion / embedder |",
            "|---|---|---|",
            f"| {ingest['ingest_chunks_per_s']} chunks/s | {ingest['embedder_chunks_per_s']} chunks/s | "
            f"{ingest['ratio']:.2f}x |",
        ]
    nodes = r.get("cluster")
    if nodes:
        http = nodes["http_median_ms"]
        lines += [
            "",
            "## A cached answer on a Redis Cluster against one Redis (local providers)",
            "",
            f"Two servers at once, one on a single Redis, one on a local three-primary Redis Cluster, asked in "
            f"turn: {nodes['asks']} fully cached asks each, each beside a bare view.",
            "",
            "| Redis | bare view | fully cached | cached / bare |",
            "|---|---|---|---|",
            *(f"| {name} | {_ms(http[name]['bare'])} | {_ms(http[name]['cached'])} | "
              f"{http[name]['cached'] / http[name]['bare']:.2f}x |" for name in ("single", "cluster")),
            "",
            f"Cluster over single, fully cached: {nodes['cluster_over_single']:.2f}x.",
        ]  # fmt: skip
    stale = r["staleness"]
    lines += [
        "",
        "## Stale answers after edits",
        "",
        f"{stale['lockers']} documents state a fact each; between {stale['rounds']} rounds of questions, half the "
        "facts change (uploaded and ingested, as an admin would). An answer is stale when it does not say what "
        "the documents say now.",
        "",
        "| cache | answers served | stale |",
        "|---|---|---|",
        f"| ragsite (generations, content-addressed answers), over HTTP | {stale['asks']['ours']} | "
        f"**{stale['stale']['ours']}** |",
        f"| naive cache-aside (key = hash of the question, TTL only) | {stale['asks']['naive']} | "
        f"{stale['stale']['naive']} |",
        "",
        "## Growth",
        "",
        "Synthetic chunks (the demo's words drawn by their frequency, embeddings scattered around the demo's), "
        "in-process, the scope every collection:",
        "",
        "| chunks | retrieval, hybrid p50 ms | dense p50 ms | hybrid / dense | complete miss p50 ms |",
        "|---|---|---|---|---|",
    ]
    for row in r["growth"]:
        lines.append(
            f"| {row['chunks']:,} | {_ms(row['hybrid_p50_ms'])} | {_ms(row['dense_p50_ms'])} | "
            f"{row['hybrid_p50_ms'] / row['dense_p50_ms']:.2f}x | {_ms(row['miss_p50_ms'])} |"
        )
    overhead = r["miss_overhead"]["miss_overhead_ms"]
    at_32 = next((row for row in r["concurrency"] if row["clients"] == 32), r["concurrency"][-1])
    p50_ratio = r["concurrency"][0]["cached"]["p50_ms"] / r["concurrency"][0]["bare"]["p50_ms"]
    rps_ratio = at_32["cached"]["per_second"] / at_32["bare"]["per_second"]
    errors = sum(row["bare"]["errors"] + row["cached"]["errors"] for row in r["concurrency"])
    lines += [
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| no errors at any concurrency | {errors} errors | {_check(errors == 0)} |",
        f"| cached p50 at most {TARGETS['p50']}x the bare view's (1 client) | {p50_ratio:.2f}x | "
        f"{_check(p50_ratio <= TARGETS['p50'])} |",
        f"| cached throughput at {at_32['clients']} clients at least {TARGETS['throughput']}x the bare view's | "
        f"{rps_ratio:.2f}x | {_check(rps_ratio >= TARGETS['throughput'])} |",
        f"| first ask / repeat, local, at least {TARGETS['local']}x | {r['local']['first_over_repeat']:.0f}x | "
        f"{_check(r['local']['first_over_repeat'] >= TARGETS['local'])} |",
        f"| first ask / repeat, API-shaped, at least {TARGETS['api']:,}x | {r['api']['first_over_repeat']:,.0f}x | "
        f"{_check(r['api']['first_over_repeat'] >= TARGETS['api'])} |",
        f"| the speed layer on a complete miss under {TARGETS['miss_overhead_ms']} ms | {overhead:.2f} ms | "
        f"{_check(overhead < TARGETS['miss_overhead_ms'])} |",
        f"| stale answers after edits: 0 | {stale['stale']['ours']} (naive: {stale['stale']['naive']}) | "
        f"{_check(stale['stale']['ours'] == 0)} |",
        *_semantic_target(sem),
        *_ingestion_target(ingest),
        "",
        "![The same run as a chart](latest.png)",
        "",
    ]
    return "\n".join(lines)


def _ingestion_target(ingest: dict[str, Any] | None) -> list[str]:
    if not ingest:
        return []
    ratio, target = ingest["ratio"], TARGETS["ingestion"]
    return [f"| ingestion at least {target}x the embedder's own rate | {ratio:.2f}x | {_check(ratio >= target)} |"]


def _semantic_target(sem: dict[str, Any] | None) -> list[str]:
    gap = sem.get("semantic_minus_exact_ms") if sem else None
    if gap is None:
        return []
    limit = TARGETS["semantic_ms"]
    return [f"| a semantic hit at most {limit} ms slower than an exact hit | {gap:.2f} ms | {_check(gap <= limit)} |"]


def chart(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.4))
    setups = [(name, r[key]) for name, key in [("local", "local"), ("API-shaped", "api"), ("llama.cpp", "local_llm")]
              if r.get(key) and "skipped" not in r[key]]  # fmt: skip
    modes = [("uncached", "#9e9e9e"), ("miss", "#d08b2c"), ("cached", "#3f8f55")]
    width = 0.26
    for offset, (mode, color) in enumerate(modes):
        left.bar([i + (offset - 1) * width for i in range(len(setups))],
                 [data["http_median_ms"][mode] for _, data in setups], width, label=mode, color=color)  # fmt: skip
    left.set_yscale("log")
    left.set_xticks(range(len(setups)), [name for name, _ in setups])
    left.set_ylabel("ms per answer, over HTTP (log)")
    left.set_title("First ask and its repeat")
    left.legend()

    counts = [row["clients"] for row in r["concurrency"]]
    middle.plot(counts, [row["bare"]["per_second"] for row in r["concurrency"]], "o-", label="bare view",
                color="#9e9e9e")  # fmt: skip
    middle.plot(counts, [row["cached"]["per_second"] for row in r["concurrency"]], "o-", label="cached ask",
                color="#3f8f55")  # fmt: skip
    middle.set_xscale("log", base=2)
    middle.set_xticks(counts, [str(c) for c in counts])
    middle.set_xlabel("concurrent clients")
    middle.set_ylabel("requests per second")
    middle.set_title("Throughput against a bare Django view")
    middle.legend()

    sizes = [row["chunks"] for row in r["growth"]]
    right.plot(sizes, [row["hybrid_p50_ms"] for row in r["growth"]], "o-", label="hybrid", color="#3f6f8f")
    right.plot(sizes, [row["dense_p50_ms"] for row in r["growth"]], "o-", label="dense", color="#9e9e9e")
    right.set_xscale("log")
    right.set_xlabel("chunks")
    right.set_ylabel("retrieval p50, ms")
    right.set_title("Retrieval as the corpus grows")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
