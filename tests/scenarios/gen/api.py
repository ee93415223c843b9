"""Two API instances with bounded worker pools behind a gateway: a traffic surge saturates them, they shed load."""
import os
import random
from common import M, N, I, E, write, jitter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..") + "/"


def context():
    return {
        "subject": "checkout-api",
        "system": "Two instances of an HTTP API, each with a pool of 64 workers and a queue of 256 requests; what does not fit is refused with HTTP 429. A client pool drives the traffic.",
        "components": [
            {"name": "api-a", "kind": "member", "description": "API instance, 64 workers, a bounded request queue", "depends_on": ["orders-db"]},
            {"name": "api-b", "kind": "member", "description": "API instance, 64 workers, a bounded request queue", "depends_on": ["orders-db"]},
            {"name": "orders-db", "kind": "dependency", "description": "database behind both instances", "depends_on": []},
            {"name": "clients", "kind": "client", "description": "client pool", "depends_on": ["api-a", "api-b"]},
        ],
        "glossary": [
            {"term": "overload", "meaning": "the instances have more requests than workers and queue room, and refuse the rest", "class": "saturation"},
            {"term": "instance down", "meaning": "an API instance stopped answering", "class": "node_down"},
            {"term": "database down", "meaning": "the database does not answer", "class": "dependency_down"},
            {"term": "slow checkout", "meaning": "p99 above 800 ms", "class": "latency_spike"},
        ],
    }


def window(variant="queue"):
    rng = random.Random(41 if variant == "queue" else 43)
    t0 = 1765105200000
    step = 300
    polls = 36
    surge_at = t0 + 12 * step + 70
    served = {"api-a": 5_120_000.0, "api-b": 5_090_000.0}
    shed = {"api-a": 310.0, "api-b": 296.0}
    snaps = []
    queue = {"api-a": 3.0, "api-b": 2.0}
    shed_seen = False
    for k in range(polls):
        at = t0 + k * step
        events = []
        surging = at > surge_at
        offered = jitter(rng, 1400, 0.04) if not surging else jitter(rng, 4300, 0.04)
        nodes = []
        tot_shed = 0.0
        tot_served = 0.0
        p99s = []
        for nid in ("api-a", "api-b"):
            want = offered / 2
            capacity = 64 / 0.045  # 45 ms per request: about 1420/s per instance
            ran = min(want, capacity * jitter(rng, 1, 0.01))
            backlog = (want - ran) * step / 1000
            qmax = 256.0 if variant == "queue" else 1024.0
            queue[nid] = min(qmax, max(jitter(rng, 2.5, 0.4), queue[nid] + backlog if surging else jitter(rng, 2.5, 0.4)))
            refused = 0.0 if queue[nid] < qmax else max(0.0, want - ran)
            served[nid] += ran * step / 1000
            shed[nid] += refused * step / 1000
            tot_shed += refused
            tot_served += ran
            busy = min(64.0, ran * 0.045)
            p99 = 45 * 1.6 + queue[nid] / capacity * 1000 * jitter(rng, 1, 0.05)
            p99s.append(p99)
            nodes.append(N(nid, "api", "10.0.8.%d:8443" % (11 if nid == "api-a" else 12), "up", [
                M("busy workers", busy, "of 64", "gauge", "higher"),
                M("queued requests", queue[nid], "of %d" % qmax, "gauge", "higher"),
                M("served", float(int(served[nid])), "", "counter"),
                M("refused (429)", float(int(shed[nid])), "", "counter", "higher"),
                M("request p99 latency", p99, "ms", "gauge", "higher"),
            ], depends_on=["orders-db"]))
        if tot_shed > 0 and not shed_seen:
            shed_seen = True
            events.append(E(at - 40, "warn", "api-a: request queue full (%d), refusing with 429" % qmax, "api-a"))
            events.append(E(at - 25, "warn", "api-b: request queue full (%d), refusing with 429" % qmax, "api-b"))
        nodes.append(N("orders-db", "database", "10.0.8.20:5432", "up", [
            M("active connections", min(40, 18 + tot_served / 200) * jitter(rng, 1, 0.03), "of 100", "gauge", "higher"),
            M("query p99 latency", jitter(rng, 7, 0.1), "ms", "gauge", "higher"),
        ], kind="dependency"))
        shed_pct = 100 * tot_shed / offered
        util = max(n["metrics"][1]["value"] for n in nodes[:2]) / qmax
        lat_bound = 800 if variant == "queue" else 500
        invs = [
            I("refused requests", shed_pct <= 1, "%.1f %% of requests refused with 429" % shed_pct, "saturation",
              ["api-a", "api-b"] if shed_pct > 1 else [], round(shed_pct, 2), 1),
            I("queue room", util <= 0.8, "fullest queue at %.0f %%" % (100 * util), "saturation",
              [nid for nid, n in zip(("api-a", "api-b"), nodes) if n["metrics"][1]["value"] / qmax > 0.8], round(util, 3), 0.8),
            I("p99 latency", max(p99s) <= lat_bound, "p99 %.0f ms" % max(p99s), "latency_spike", [], round(max(p99s), 1), lat_bound),
            I("instances up", True, "2 of 2 instances answer /health", "node_down", [], 0, 0),
            I("database up", True, "orders-db answers", "dependency_down", [], 0, 0),
        ]
        snaps.append({"at_ms": at, "nodes": nodes,
                      "metrics": [M("offered load", offered, "/s", "gauge", "higher"),
                                  M("refused share", shed_pct, "%", "gauge", "higher")],
                      "invariants": invs if variant == "queue" else [i for i in invs if i["name"] != "queue room"], "events": events})
    return snaps


write(OUT + "api-overload.json", "api-overload",
      "Offered load triples: both instances run every worker, their queues fill to the bound and they refuse the rest with 429; latency rises with the queue; nothing is down.",
      {"anomaly": "overload", "component": {"kind": "one_of", "name": ["api-a", "api-b"]}}, ["api-a", "api-b"], context(), window(), min_c=0.6)

write(OUT + "api-overload-latency-first.json", "api-overload-latency-first",
      "The same surge against instances with a deeper queue (1024) and no queue-room check: the queue fills over a few seconds, so p99 passes its bound before any request is refused; then both instances refuse with 429. Latency is the symptom of the overload.",
      {"anomaly": "overload", "component": {"kind": "one_of", "name": ["api-a", "api-b"]}}, ["api-a", "api-b"], context(), window("deep"), min_c=0.5)
