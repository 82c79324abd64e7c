"""Claim latency of the team queue on a real PostgreSQL with many queued rows.

Starts a throwaway server (whisperdesk.devtools.postgres_server), fills the queue with ``--rows`` queued
jobs from ``--submitters`` people straight in SQL (the queue's own add would hash that many files), then
times ``--claims`` claims of one job each (claim + complete, as a worker does) and prints p50/p95/max and
the claim's plan. Figures depend on the machine and its load: say which when you record them.

    python -m bench.team_queue --rows 20000 --claims 200
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from whisperdesk.core.queue.postgres import CLAIM_SQL, PostgresJobQueue
from whisperdesk.devtools.postgres_server import remove_server, start_server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--submitters", type=int, default=20)
    parser.add_argument("--claims", type=int, default=200)
    args = parser.parse_args()

    server = start_server()
    try:
        queue = PostgresJobQueue(server.dsn, schema="bench")
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO bench.submitters (name) SELECT 'user' || s FROM generate_series(1, %s) AS s",
                (args.submitters,),
            )
            conn.execute(
                "INSERT INTO bench.jobs (source, dedupe_key, fingerprint, size, state, submitter, priority, "
                "changed_seq) SELECT '/share/rec' || i || '.wav', 'k' || i, 'f' || i, 1000, 'queued', "
                "'user' || (i %% %s + 1), CASE WHEN i %% 10 = 0 THEN 0 ELSE 100 END, 1 "
                "FROM generate_series(1, %s) AS i",
                (args.submitters, args.rows),
            )
            conn.execute("ANALYZE bench.jobs")
            conn.execute("SET search_path TO bench")
            with conn.transaction(force_rollback=True):  # EXPLAIN ANALYZE runs the claim: undo it
                plan = conn.execute(
                    "EXPLAIN (ANALYZE, COSTS OFF) " + CLAIM_SQL,
                    {"limit": 1, "depth": 18, "worker": "explain", "lease": 30.0, "seq": 2},
                ).fetchall()
        times = []
        for _ in range(args.claims):
            start = time.perf_counter()
            (lease,) = queue.claim("bench", lease_s=30)
            times.append(time.perf_counter() - start)
            queue.complete(lease)
        queue.close()
    finally:
        remove_server(server)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    print(f"{args.rows} queued rows, {args.submitters} submitters, {args.claims} claims of one job:")
    print(
        f"  claim p50 {statistics.median(times) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms, "
        f"max {times[-1] * 1000:.2f} ms"
    )
    print("plan of one claim (EXPLAIN ANALYZE):")
    for (line,) in plan:
        print("  " + line)


if __name__ == "__main__":
    main()
