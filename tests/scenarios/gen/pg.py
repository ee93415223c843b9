"""PostgreSQL primary with one streaming replica whose replay falls behind."""
import os
import random
from common import M, N, I, E, write, jitter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..") + "/"
MB = 1024 * 1024


def context():
    return {
        "subject": "postgres",
        "system": "A PostgreSQL primary streaming its write-ahead log to one hot-standby replica; an application writes to the primary and reads from both.",
        "components": [
            {"name": "pg-1", "kind": "member", "description": "primary: accepts writes, streams WAL", "depends_on": []},
            {"name": "pg-2", "kind": "member", "description": "hot standby: receives and replays WAL, serves reads", "depends_on": ["pg-1"]},
            {"name": "pgbench", "kind": "client", "description": "load: 1200 transactions/s", "depends_on": ["pg-1", "pg-2"]},
        ],
        "glossary": [
            {"term": "server down", "meaning": "a PostgreSQL server stopped accepting connections", "class": "node_down"},
            {"term": "standby lag", "meaning": "a standby replays WAL far behind the primary", "class": "lag"},
            {"term": "slow queries", "meaning": "query p99 above 200 ms", "class": "latency_spike"},
            {"term": "disk full", "meaning": "a data directory's free space under 10 %", "class": "capacity_exhausted"},
        ],
    }


def window(variant="lag"):
    rng = random.Random(3 if variant == "lag" else 4)
    t0 = 1765102200000
    step = 500
    polls = 36
    slow_from = t0 + 9 * step + 200  # the standby's replay slows down (its disk is throttled)
    kill_at = t0 + 12 * step + 260  # the primary's postmaster is killed
    frozen = None
    wal = 91_400_000_000.0
    received = wal - 40_000
    replayed = received - 30_000
    xacts = 8_123_000.0
    snaps = []
    for k in range(polls):
        at = t0 + k * step
        events = []
        dead = variant == "down" and at > kill_at
        tps = jitter(rng, 1200, 0.04) if not dead else 0.0
        wal_rate = tps * 7_100  # bytes of WAL per second
        wal += wal_rate * step / 1000
        xacts += tps * step / 1000
        received = wal - rng.uniform(20_000, 60_000) if not dead else max(received, wal - 20_000)
        slow = variant == "lag" and at > slow_from
        replay_rate = jitter(rng, wal_rate, 0.02) if not slow else wal_rate * 0.25
        replayed = min(replayed + replay_rate * step / 1000, received) if not dead else received
        lag_bytes = received - replayed + (wal - received)
        lag_s = lag_bytes / wal_rate if not dead else 0.0
        if dead:
            since = (at - kill_at) / 1000  # last replayed transaction ages while nothing arrives
            lag_s = since
        if variant == "down" and at > kill_at and at - step <= kill_at:
            events.append(E(kill_at + 40, "error", "pg-2: could not receive data from WAL stream: server closed the connection unexpectedly", "pg-1"))
            events.append(E(kill_at + 90, "warn", "pgbench: connection to 10.0.4.21:5432 refused", "pg-1"))
        if variant == "down" and at > kill_at + 5000 and at - step <= kill_at + 5000:
            events.append(E(kill_at + 5000, "warn", "pg-2: could not connect to the primary server: connection refused (retrying every 5 s)", "pg-1"))
        lag_mb = lag_bytes / MB
        await_ms = jitter(rng, 1.4, 0.2) if not slow else jitter(rng, 38, 0.15)
        if slow and (at - step) <= slow_from + 6 * step < at:
            events.append(E(slow_from + 6 * step - 120, "warn", "pg-2: replay is %.0f MB behind the received WAL" % lag_mb, "pg-2"))
        if slow and (at - step) <= slow_from + 14 * step < at:
            events.append(E(slow_from + 14 * step - 70, "warn", "pg-2: canceling statement due to conflict with recovery", "pg-2"))
        if k == 4:
            events.append(E(at - 200, "info", "pg-1: checkpoint complete: wrote 2210 buffers (13.5%)", "pg-1"))
        q99 = jitter(rng, 14, 0.1)
        primary_metrics = [
            M("transactions", float(int(xacts)), "", "counter"),
            M("wal written", float(int(wal)), "B", "counter"),
            M("connections", float(rng.randint(38, 42)), "", "gauge"),
            M("disk free", jitter(rng, 61.2, 0.002), "%", "gauge", "lower"),
        ]
        if dead:
            primary_metrics = frozen
        else:
            frozen = primary_metrics
        nodes = [
            N("pg-1", "primary", "10.0.4.21:5432", "down" if dead else "up", primary_metrics, stale=dead),
            N("pg-2", "standby", "10.0.4.22:5432", "up", [
                M("wal received", float(int(received)), "B", "counter"),
                M("wal replayed", float(int(replayed)), "B", "counter"),
                M("replay lag", round(lag_mb, 2), "MB", "gauge", "higher"),
                M("replay lag time", round(lag_s, 2), "s", "gauge", "higher"),
                M("disk await", await_ms, "ms", "gauge", "higher"),
                M("disk free", jitter(rng, 58.7, 0.002), "%", "gauge", "lower"),
            ], depends_on=["pg-1"]),
        ]
        invs = [
            I("standby replay lag", lag_mb <= 32, "pg-2 replays %.1f MB (%.1f s) behind pg-1" % (lag_mb, lag_s), "lag",
              ["pg-2"], round(lag_mb, 1), 32),
            I("servers accept connections", not dead, "2 of 2 servers accept connections" if not dead else "pg-1 (10.0.4.21:5432) refuses connections", "node_down", ["pg-1"] if dead else [], 1 if dead else 0, 0),
            I("standby streaming", not dead, "pg-2 streams from pg-1" if not dead else "pg-2 has no WAL sender: the primary is gone", "lag", ["pg-2"] if dead else [], 1 if dead else 0, 0)
            if variant == "down" else None,
            I("query p99", q99 <= 200, "query p99 %.0f ms" % q99, "latency_spike", [], round(q99, 1), 200),
            I("disk free", True, "lowest free space 58.7 % (pg-2)", "capacity_exhausted", [], 58.7, 10, "floor"),
        ]
        snaps.append({"at_ms": at, "nodes": nodes,
                      "metrics": [M("tps", tps, "/s", "gauge", "lower"),
                                  M("query p99 latency", q99, "ms", "gauge", "higher"),
                                  M("standbys streaming", 0 if dead else 1, "of 1", "gauge", "lower")],
                      "invariants": [i for i in invs if i is not None], "events": events})
    return snaps


write(OUT + "postgres-replica-lag.json", "postgres-replica-lag",
      "The streaming standby's disk is throttled: it still receives WAL but replays it at a third of the primary's write rate, so its replay lag grows past 32 MB while both servers stay up.",
      {"anomaly": "standby lag", "component": {"kind": "chaos_target"}}, ["pg-2"], context(), window(), min_c=0.6)
write(OUT + "postgres-primary-down.json", "postgres-primary-down",
      "The primary is killed: clients are refused, the standby loses its WAL stream (a lag check of its own breaks as a consequence), the primary's last metrics are kept, marked stale. The primary is unique by role and still a member: a server down, not a dependency.",
      {"anomaly": "server down", "component": {"kind": "chaos_target"}}, ["pg-1"], context(), window("down"), min_c=0.6)
