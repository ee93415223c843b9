"""A load balancer with four backends, one of which starts failing; a cache tier whose node runs out of memory."""
import os
import random
from common import M, N, I, E, write, jitter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..") + "/"


def lb_context():
    return {
        "subject": "haproxy",
        "system": "HAProxy spreads HTTP requests round-robin over four identical web backends; a load generator sends about 2000 requests/s.",
        "components": [
            {"name": "haproxy", "kind": "dependency", "description": "load balancer every request goes through", "depends_on": []},
            {"name": "web-1", "kind": "member", "description": "web backend", "depends_on": ["haproxy"]},
            {"name": "web-2", "kind": "member", "description": "web backend", "depends_on": ["haproxy"]},
            {"name": "web-3", "kind": "member", "description": "web backend", "depends_on": ["haproxy"]},
            {"name": "web-4", "kind": "member", "description": "web backend", "depends_on": ["haproxy"]},
            {"name": "loadgen", "kind": "client", "description": "2000 requests/s", "depends_on": ["haproxy"]},
        ],
        "glossary": [
            {"term": "backend 5xx", "meaning": "a backend answers with HTTP 5xx", "class": "error_burst"},
            {"term": "backend down", "meaning": "a backend stopped answering", "class": "node_down"},
            {"term": "balancer down", "meaning": "the load balancer does not answer", "class": "dependency_down"},
            {"term": "slow responses", "meaning": "response p99 above 300 ms", "class": "latency_spike"},
        ],
    }


def lb_window(variant="errors"):
    rng = random.Random(21 if variant == "errors" else 23)
    t0 = 1765104000000
    step = 400
    polls = 30
    bad_from = t0 + 10 * step + 130
    reqs = {b: 3_410_000.0 + 1000 * b for b in range(1, 5)}
    errs = {b: 40.0 + b for b in range(1, 5)}
    snaps = []
    failed_checks = 0
    for k in range(polls):
        at = t0 + k * step
        events = []
        total = jitter(rng, 2000, 0.04)
        bad = at > bad_from
        victim = 3 if variant == "errors" else 2
        marked_down = variant == "down" and failed_checks >= 8
        nodes = [N("haproxy", "balancer", "10.0.6.10:80", "up", [
            M("sessions", float(rng.randint(180, 220)), "", "gauge"),
        ], kind="dependency")]
        all_errs = 0.0
        p99s = []
        if bad:
            failed_checks += 1
        for b in range(1, 5):
            if variant == "down" and marked_down:
                share = 0.0 if b == victim else total / 3 * jitter(rng, 1, 0.03)
            else:
                share = total / 4 * jitter(rng, 1, 0.03)
            reqs[b] += share * step / 1000
            rate = 0.0005 if not (bad and b == victim) else (0.46 if variant == "errors" else 1.0)
            e = share * rate * step / 1000
            errs[b] += e
            all_errs += e
            # failing requests fail fast: 31 ms for a 503 from the backend, 2 ms for a refused connection
            p99 = jitter(rng, 48, 0.1) if not (bad and b == victim) else jitter(rng, 31 if variant == "errors" else 2, 0.1)
            p99s.append(p99)
            if variant == "errors":
                status = "degraded" if bad and b == victim and failed_checks >= 5 else "up"
            else:
                status = "down" if marked_down and b == victim else "up"
            # the balancer's view of each backend: its counters keep counting what it sent there
            metrics = [
                M("requests", float(int(reqs[b])), "", "counter"),
                M("5xx responses", float(int(errs[b])), "", "counter", "higher"),
                M("active connections", 0.0 if status == "down" else float(rng.randint(45, 55)), "", "gauge"),
            ]
            if status != "down":
                metrics.insert(2, M("response p99 latency", p99, "ms", "gauge", "higher"))
            nodes.append(N("web-%d" % b, "backend", "10.0.6.%d:8080" % (10 + b), status, metrics,
                           depends_on=["haproxy"]))
            if variant == "down" and bad and b == victim and failed_checks in (1, 4, 8):
                msg = {1: "haproxy: web-2 health check failed: connection refused (1 of 3 before marking down)",
                       4: "haproxy: web-2 health check failed: connection refused (2 of 3 before marking down)",
                       8: "haproxy: Server be_web/web-2 is DOWN, reason: Layer4 connection problem, 3 active servers left"}[failed_checks]
                events.append(E(at - 60, "warn" if failed_checks < 8 else "error", msg, "web-2"))
            if variant == "errors" and bad and b == victim and failed_checks in (2, 5):
                msg = ("haproxy: health check for web-3 failed: HTTP 503 (1 of 3 before marking down)" if failed_checks == 2
                       else "haproxy: web-3 health checks flapping: 3 of the last 5 failed (HTTP 503), kept in rotation")
                events.append(E(at - 60, "warn", msg, "web-3"))
        if variant == "errors" and bad and k % 4 == 0:
            events.append(E(at - 150, "error", "web-3: upstream pool exhausted: 503 Service Unavailable", "web-3"))
        ratio = 100 * all_errs / (total * step / 1000)
        web3_ratio = 46.0 if bad else 0.05
        invs = [
            I("5xx ratio", ratio <= 1.0, "%.2f %% of responses were 5xx in the last poll" % ratio, "error_burst",
              ["web-%d" % victim] if ratio > 1.0 else [], round(ratio, 2), 1.0),
            (I("backends up", True, "4 of 4 backends answer health checks" if not (bad and failed_checks >= 5) else "4 of 4 backends answer (web-3 checks flapping)", "node_down", [], 0, 0)
             if variant == "errors" else
             I("backends up", not marked_down, "4 of 4 backends up" if not marked_down else "web-2 is DOWN (Layer4 connection problem)", "node_down", ["web-2"] if marked_down else [], 1 if marked_down else 0, 0)),
            I("balancer up", True, "haproxy answers on :80", "dependency_down", [], 0, 0),
            I("response p99", True, "p99 %.0f ms" % max(p99s), "latency_spike", [], round(max(p99s), 1), 300),
        ]
        snaps.append({"at_ms": at, "nodes": nodes,
                      "metrics": [M("request rate", total, "/s", "gauge", "lower"),
                                  M("5xx ratio", ratio, "%", "gauge", "higher"),
                                  M("web-3 error ratio", web3_ratio, "%", "gauge", "higher")][:2],
                      "invariants": invs, "events": events})
    return snaps


def cache_context():
    return {
        "subject": "memcached",
        "system": "Three memcached nodes cache database rows for a web application; keys are spread over them by consistent hashing, misses go to a PostgreSQL database.",
        "components": [
            {"name": "cache-1", "kind": "member", "description": "memcached node, 4 GB", "depends_on": []},
            {"name": "cache-2", "kind": "member", "description": "memcached node, 4 GB", "depends_on": []},
            {"name": "cache-3", "kind": "member", "description": "memcached node, 4 GB", "depends_on": []},
            {"name": "db", "kind": "dependency", "description": "PostgreSQL: the source of truth, serves misses", "depends_on": []},
            {"name": "app", "kind": "client", "description": "web application: 9000 reads/s", "depends_on": ["cache-1", "cache-2", "cache-3", "db"]},
        ],
        "glossary": [
            {"term": "cache full", "meaning": "a cache node evicts live keys because its memory is used up, and its hit ratio falls", "class": "capacity_exhausted"},
            {"term": "cache node down", "meaning": "a cache node stopped answering", "class": "node_down"},
            {"term": "database down", "meaning": "the database does not answer", "class": "dependency_down"},
            {"term": "slow reads", "meaning": "read p99 above 50 ms", "class": "latency_spike"},
        ],
    }


def cache_window():
    rng = random.Random(31)
    t0 = 1765104600000
    step = 500
    polls = 32
    fill_from = t0 + 6 * step + 200  # a batch job starts writing large values to keys on cache-2
    mem = {1: 71.0, 2: 74.0, 3: 70.0}
    evictions = {1: 1200.0, 2: 1450.0, 3: 1100.0}
    gets = {1: 90_000_000.0, 2: 91_000_000.0, 3: 89_500_000.0}
    snaps = []
    for k in range(polls):
        at = t0 + k * step
        events = []
        filling = at > fill_from
        nodes = []
        hits = {}
        for c in (1, 2, 3):
            rate = jitter(rng, 3000, 0.04)
            gets[c] += rate * step / 1000
            if c == 2 and filling:
                mem[c] = min(99.6, mem[c] + rng.uniform(3.5, 4.5))
            else:
                mem[c] = jitter(rng, {1: 71.0, 2: 74.0, 3: 70.0}[c], 0.004)
            evict_rate = jitter(rng, 2, 0.5) if not (c == 2 and mem[c] > 98) else jitter(rng, 2400, 0.1)
            evictions[c] += evict_rate * step / 1000
            if c == 2 and mem[c] > 98:
                hits[c] = max(0.41, hits.get(c, 0.93) - 0.0) if False else jitter(rng, 0.47, 0.06)
            else:
                hits[c] = jitter(rng, 0.94, 0.005)
            nodes.append(N("cache-%d" % c, "memcached", "10.0.7.%d:11211" % (20 + c), "up", [
                M("memory used", mem[c], "%", "gauge", "higher"),
                M("evictions", float(int(evictions[c])), "", "counter", "higher"),
                M("hit ratio", hits[c], "", "gauge", "lower"),
                M("gets", float(int(gets[c])), "", "counter"),
            ]))
        miss = sum(3000 * (1 - h) for h in hits.values())
        db_p99 = 6.0 * (1 + miss / 2500) * jitter(rng, 1, 0.08)
        nodes.append(N("db", "database", "10.0.7.30:5432", "up", [
            M("queries", miss, "/s", "gauge"),
            M("query p99 latency", db_p99, "ms", "gauge", "higher"),
        ], kind="dependency"))
        headroom = 100 - mem[2]
        if filling and mem[2] > 98 and not any(e for s in snaps for e in s["events"] if "evicting" in e["message"]):
            events.append(E(at - 90, "warn", "cache-2: memory limit reached (4096 MB), evicting live items", "cache-2"))
        worst = min(hits, key=lambda c: hits[c])
        read_p99 = 2.0 + (1 - hits[worst]) * db_p99 * jitter(rng, 1, 0.05)
        invs = [
            I("memory headroom", headroom >= 5, "cache-2 has %.1f %% of its memory free" % headroom if headroom < 5 else "every node has at least %.1f %% free" % headroom,
              "capacity_exhausted", ["cache-2"] if headroom < 5 else [], round(headroom, 2), 5, "floor"),
            I("hit ratio", hits[worst] >= 0.85, "lowest hit ratio %.2f (cache-%d)" % (hits[worst], worst), "capacity_exhausted",
              ["cache-%d" % worst] if hits[worst] < 0.85 else [], round(hits[worst], 3), 0.85, "floor"),
            I("cache nodes up", True, "3 of 3 nodes answer", "node_down", [], 0, 0),
            I("database up", True, "db answers", "dependency_down", [], 0, 0),
            I("read p99", read_p99 <= 50, "read p99 %.1f ms" % read_p99, "latency_spike", [], round(read_p99, 2), 50),
        ]
        snaps.append({"at_ms": at, "nodes": nodes,
                      "metrics": [M("read rate", 9000 * jitter(rng, 1, 0.03), "/s", "gauge"),
                                  M("read p99 latency", read_p99, "ms", "gauge", "higher"),
                                  M("overall hit ratio", sum(hits.values()) / 3, "", "gauge", "lower")],
                      "invariants": invs, "events": events})
    return snaps


write(OUT + "haproxy-backend-errors.json", "haproxy-backend-errors",
      "One of four backends exhausts its upstream pool and answers 46 % of its requests with HTTP 503, quickly: the balancer's 5xx ratio passes 1 %, its health checks start failing; latency stays flat.",
      {"anomaly": "backend 5xx", "component": {"kind": "chaos_target"}}, ["web-3"], lb_context(), lb_window(), min_c=0.6)
write(OUT + "memcached-memory-full.json", "memcached-memory-full",
      "A batch job fills one cache node with large values: its memory headroom falls under 5 % (a floor), it evicts live keys and its hit ratio falls under 0.85 (a floor); misses load the database, read p99 rises but stays under its bound.",
      {"anomaly": "cache full", "component": {"kind": "chaos_target"}}, ["cache-2"], cache_context(), cache_window(), min_c=0.6)
write(OUT + "haproxy-backend-down.json", "haproxy-backend-down",
      "A backend's process is killed: the balancer answers its share with 503 until three failed health checks mark it DOWN 3 s later, then spreads the load over the other three and the errors stop. The errors are the first sign of a backend that stopped.",
      {"anomaly": "backend down", "component": {"kind": "chaos_target"}}, ["web-2"], lb_context(), lb_window("down"), min_c=0.5)
