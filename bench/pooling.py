"""`make bench`'s pooled phase: the log POST and a read through PgBouncer in transaction
mode (docs/deployment.md § Connection pooling), beside the same calls straight to the
server, in the same run.

A second gunicorn serves the product with `DATABASE_POOLER=pgbouncer` and its
DATABASE_URL at a PgBouncer (bench/pgbouncer.py) that this phase starts in front of the
bench's server, one server connection per gunicorn worker. The direct and the pooled
gunicorn take the same calls in alternating rounds, so the ratio survives a noisy
machine; the Celery workers stay on their direct connection (the evaluations the POSTs
enqueue are the same either way). The pooled gunicorn and PgBouncer are stopped before
the phase returns, so nothing measured after it shares the machine with them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg

from bench import reaper
from bench.pgbouncer import PGBOUNCER, pgbouncer


def section(
    cfg: Any, m: dict[str, Any], env: dict[str, str], db_url: str, slots: Iterator[dict[str, str]]
) -> dict[str, Any]:
    """Direct vs pooled: req/s and latency of the log POST, then of the 500-patient
    caseload read; the transactions PgBouncer passed on (proof the calls went through)."""
    from bench import run  # the bench's load tools; run.py calls this module

    if PGBOUNCER is None:
        run.log("pooling: Debian's pgbouncer is not installed (`make pgbouncer`); skipped")
        return {"skipped": "pgbouncer is not installed"}
    with psycopg.connect(db_url, autocommit=True) as conn:
        info = conn.info
        host, port, user, name = info.host, info.port, info.user, info.dbname
    pool_size = max(2, cfg.web_workers)
    with pgbouncer(
        host=host,
        port=port,
        users=[user],
        admin=user,
        pool_size=pool_size,
        max_clients=100,
        name="pgbouncer-bench",
    ) as bouncer:
        pooled_port = run._free_port()
        pooled_env = {
            **env,
            "DATABASE_URL": f"postgres://{user}@127.0.0.1:{bouncer.port}/{name}",
            "DATABASE_POOLER": "pgbouncer",
        }
        out = (run.RESULTS / "gunicorn_pooled.log").open("wb")
        proc = subprocess.Popen(  # noqa: S603 - our own fixed command line
            [str(run.BIN / "gunicorn"), "config.wsgi", "--workers", str(cfg.web_workers),
             "--worker-class", "sync",
             "--bind", f"{run.HOST}:{pooled_port}", "--log-level", "warning"],
            cwd=run.BASE_DIR, env=pooled_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        reaper.track(proc.pid)
        try:
            run.wait_http(pooled_port)
            return _measure(run, cfg, m, db_url, slots, pooled_port, bouncer, name, pool_size)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            out.close()


def _measure(
    run: Any,
    cfg: Any,
    m: dict[str, Any],
    db_url: str,
    slots: Iterator[dict[str, str]],
    pooled_port: int,
    bouncer: Any,
    name: str,
    pool_size: int,
) -> dict[str, Any]:
    ports = {"direct": cfg.port, "pooled": pooled_port}
    # Warm both: connections opened, PgBouncer's server connections too.
    for port in ports.values():
        run.load(port, run.post_calls("product", slots, 20, m), clients=cfg.clients, max_seconds=30)
    before = bouncer.transactions(name)
    rounds = max(cfg.rounds // 2, 1)
    per_round = max(cfg.requests // 2 // rounds, 10)
    totals = {kind: run.Sample() for kind in ports}
    for round_no in range(rounds):
        order = ["direct", "pooled"] if round_no % 2 == 0 else ["pooled", "direct"]
        for kind in order:
            run.wait_drained(db_url)
            calls = run.post_calls("product", slots, per_round, m)
            totals[kind].add(
                run.load(ports[kind], calls, clients=cfg.clients, max_seconds=cfg.phase_seconds)
            )
    post: dict[str, Any] = {kind: run.summary(sample) for kind, sample in totals.items()}
    post["pooled_to_direct"] = round(
        post["pooled"]["throughput_rps"] / max(post["direct"]["throughput_rps"], 0.1), 2
    )
    run.wait_drained(db_url)
    reads: dict[str, Any] = {
        kind: run.get_latency(port, "/api/v1/clinician/patients/", m["clinician_token"], cfg.gets)
        for kind, port in ports.items()
    }
    result = {
        "pool_mode": "transaction",
        "server_connections": pool_size,
        "log_post": post,
        "caseload": reads,
        "transactions_through_pgbouncer": bouncer.transactions(name) - before,
    }
    run.log(
        f"pooled log POST {post['pooled']['throughput_rps']} req/s "
        f"(direct {post['direct']['throughput_rps']}), p99 {post['pooled']['p99_ms']} ms"
    )
    return result


def targets(pooling: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The pooled figures in `make bench`'s table: behind PgBouncer the POST must keep
    its p99 target; req/s is shown beside the direct figure, not judged."""
    if "log_post" not in pooling:
        return []
    post = pooling["log_post"]
    return [
        (
            "log POST through PgBouncer (txn mode) p99 < 50 ms",
            f"{post['pooled']['p99_ms']} ms, {post['pooled']['throughput_rps']} req/s "
            f"({post['pooled_to_direct']}x direct)",
            post["pooled"]["p99_ms"] < 50 and post["pooled"]["ok"] == post["pooled"]["requests"],
        )
    ]


def table_rows(pooling: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The pooled phase's rows for `make bench`'s table, direct and pooled side by side."""
    rows: list[tuple[Any, ...]] = []
    for what, label in (("log_post", "POST product"), ("caseload", "GET caseload")):
        for kind in ("direct", "pooled"):
            figures = pooling.get(what, {}).get(kind)
            if figures:
                rows.append(
                    (
                        f"{label} {kind}",
                        figures["requests"],
                        figures["ok"],
                        figures["throughput_rps"],
                        figures["p50_ms"],
                        figures["p95_ms"],
                        figures["p99_ms"],
                    )
                )
    return rows
