"""A Kafka-style broker cluster: a consumer group falls behind its topic; and a rebalance blip."""
import os
import random
from common import M, N, I, E, write, jitter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..") + "/"


def context():
    return {
        "subject": "kafka",
        "system": "Three Kafka brokers host the topic orders (12 partitions, replication factor 3); producers write about 1800 messages/s and the consumer group billing reads them.",
        "components": [
            {"name": "kafka-1", "kind": "member", "description": "broker (also the controller)", "depends_on": []},
            {"name": "kafka-2", "kind": "member", "description": "broker", "depends_on": []},
            {"name": "kafka-3", "kind": "member", "description": "broker", "depends_on": []},
            {"name": "orders", "kind": "resource", "description": "topic, 12 partitions", "depends_on": ["kafka-1", "kafka-2", "kafka-3"]},
            {"name": "billing", "kind": "resource", "description": "consumer group of 3 consumers reading orders", "depends_on": ["orders"]},
            {"name": "producers", "kind": "client", "description": "order service producers", "depends_on": ["orders"]},
        ],
        "glossary": [
            {"term": "broker down", "meaning": "a broker left the cluster", "class": "node_down"},
            {"term": "offset lag", "meaning": "a consumer group is far behind the end of its topic", "class": "lag"},
            {"term": "isr shrink", "meaning": "partitions with fewer in-sync replicas than their replication factor", "class": "state_divergence"},
            {"term": "produce failures", "meaning": "producers get errors from the brokers", "class": "error_burst"},
        ],
    }


def window(kind):
    rng = random.Random(5 if kind == "lag" else 9)
    t0 = 1765103400000
    step = 500
    polls = 34 if kind == "lag" else 30
    end = 77_310_400.0
    committed = end - 180
    produced_ok = 41_000_000.0
    slow_from = t0 + 8 * step + 150
    reb_from, reb_to = t0 + 12 * step + 80, t0 + 18 * step + 480
    snaps = []
    consumers = 3
    for k in range(polls):
        at = t0 + k * step
        events = []
        prod = jitter(rng, 1800, 0.05)
        end += prod * step / 1000
        produced_ok += prod * step / 1000
        if kind == "lag":
            cons = jitter(rng, 1800, 0.05) if at <= slow_from else jitter(rng, 620, 0.08)
            if at > slow_from and at - step <= slow_from:
                events.append(E(slow_from + 60, "warn", "billing: consumer billing-2 is processing slowly: 1 batch in 2.1 s (max.poll.interval at 50%)", "billing"))
            if at - step <= slow_from + 9 * step < at:
                events.append(E(slow_from + 9 * step - 100, "warn", "billing: partitions 3, 7, 11 have not committed for 4 s", "billing"))
        else:
            rebalancing = reb_from < at <= reb_to
            cons = 0.0 if rebalancing else (jitter(rng, 3600, 0.04) if at > reb_to and end - committed > 400 else jitter(rng, 1800, 0.05))
            if at - step < reb_from <= at:
                events.append(E(reb_from, "info", "billing: member billing-3 left the group (rolling restart); rebalancing", "billing"))
            if at - step < reb_to <= at:
                events.append(E(reb_to, "info", "billing: rebalance done, 3 members, generation 42", "billing"))
        committed = max(committed, min(committed + cons * step / 1000, end - rng.uniform(120, 320)))
        lag = end - committed
        if kind == "lag":
            ok = lag <= 5000
            status = "up" if ok else "degraded"
        else:
            ok = lag <= 5000
            status = "up" if ok else "degraded"
        group = N("billing", "consumer group", "billing@orders", status, [
            M("lag", float(int(lag)), "messages", "gauge", "higher"),
            M("committed offset", float(int(committed)), "", "counter"),
            M("consume rate", cons, "messages/s", "gauge", "lower"),
            M("members", float(consumers if kind == "lag" or not (reb_from < at <= reb_to) else 2), "", "gauge", "lower"),
        ], kind="resource", depends_on=["orders"])
        topic = N("orders", "topic", "orders", "up", [
            M("end offset", float(int(end)), "", "counter"),
            M("produce rate", prod, "messages/s", "gauge"),
            M("in-sync replicas", 36, "of 36", "gauge", "lower"),
        ], kind="resource", depends_on=["kafka-1", "kafka-2", "kafka-3"])
        brokers = [N("kafka-%d" % b, "controller" if b == 1 else "broker", "10.0.5.%d:9092" % (30 + b), "up", [
            M("request p99 latency", jitter(rng, 6 + b, 0.15), "ms", "gauge", "higher"),
            M("bytes in", jitter(rng, 610_000, 0.06), "B/s", "gauge"),
            M("under-replicated partitions", 0, "", "gauge", "higher"),
        ]) for b in (1, 2, 3)]
        errors = 0.0
        invs = [
            I("consumer lag", ok, "billing is %d messages behind orders (%.1f s at the produce rate)" % (lag, lag / 1800), "lag", ["billing"], float(int(lag)), 5000),
            I("brokers up", True, "3 of 3 brokers registered", "node_down", [], 0, 0),
            I("in-sync replicas", True, "36 of 36 partition replicas in sync", "state_divergence", [], 0, 0),
            I("produce error ratio", True, "0.00 % of produce requests failed", "error_burst", [], errors, 0.5),
        ]
        snaps.append({"at_ms": at, "nodes": brokers + [topic, group],
                      "metrics": [M("produced", float(int(produced_ok)), "messages", "counter"),
                                  M("produce p99 latency", jitter(rng, 11, 0.12), "ms", "gauge", "higher"),
                                  M("produce errors", 0, "", "counter", "higher")],
                      "invariants": invs, "events": events})
    return snaps


write(OUT + "kafka-consumer-lag.json", "kafka-consumer-lag",
      "One consumer of the billing group slows down on a downstream call: the group consumes a third of what is produced, its lag grows past 5000 messages, every broker and the topic stay healthy.",
      {"anomaly": "offset lag", "component": {"kind": "named", "name": "billing"}}, [], context(), window("lag"), min_c=0.6)
write(OUT + "kafka-rebalance-blip.json", "kafka-rebalance-blip",
      "A rolling restart makes the billing group rebalance: it stops consuming for about 3.4 s, lag touches its bound for one poll and drains on its own. Thin evidence: a lag, with low confidence.",
      {"anomaly": "offset lag", "component": {"kind": "any"}}, [], context(), window("blip"), max_c=0.5)
