"""A 3-member etcd (Raft) group: the leader is killed; and a healthy window with a planned leader transfer."""
import os
import random
from common import M, N, I, E, write, jitter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..") + "/"


def context():
    return {
        "subject": "etcd",
        "system": "An etcd cluster: three members replicate a key-value store with Raft; one member leads and orders every write, a benchmark client writes through any member.",
        "components": [
            {"name": "etcd-1", "kind": "member", "description": "etcd member (Raft voter)", "depends_on": []},
            {"name": "etcd-2", "kind": "member", "description": "etcd member (Raft voter)", "depends_on": []},
            {"name": "etcd-3", "kind": "member", "description": "etcd member (Raft voter)", "depends_on": []},
            {"name": "bench", "kind": "client", "description": "benchmark client writing 300 keys/s", "depends_on": ["etcd-1", "etcd-2", "etcd-3"]},
        ],
        "glossary": [
            {"term": "peer down", "meaning": "an etcd member stopped answering its peers and clients", "class": "node_down"},
            {"term": "leaderless", "meaning": "the Raft group has no leader and cannot commit writes", "class": "quorum_loss"},
            {"term": "slow commits", "meaning": "write p99 above 100 ms", "class": "latency_spike"},
            {"term": "db size alarm", "meaning": "backend database above its quota", "class": "capacity_exhausted"},
        ],
    }


def window(kind):
    rng = random.Random({"down": 7, "healthy": 11, "quorum": 13}[kind])
    t0 = 1765101600000
    step = 250
    polls = 26
    applied = 481200.0
    failed = 12.0
    fsync = {"etcd-1": 2.1, "etcd-2": 2.6, "etcd-3": 2.3}
    leader, term = "etcd-1", 7
    kill_at = t0 + 10 * step + 90  # between polls 10 and 11
    kill2_at = t0 + 13 * step + 40 if kind == "quorum" else None
    elected_at = t0 + 15 * step - 60
    transfer_at = t0 + 12 * step - 100
    snaps = []
    stale = {}
    for k in range(polls):
        at = t0 + k * step
        events = []
        down = kind in ("down", "quorum") and at > kill_at
        down2 = kill2_at is not None and at > kill2_at
        electing = (kind == "down" and kill_at < at < elected_at) or (kind == "quorum" and at > kill_at)
        if kind == "down" and at >= elected_at and leader == "etcd-1":
            leader, term = "etcd-2", 8
            events.append(E(elected_at, "info", "etcd-2 became leader at term 8", "etcd-2"))
        if kind == "healthy" and at >= transfer_at and leader == "etcd-1":
            leader, term = "etcd-3", 8
            events.append(E(transfer_at - 40, "info", "etcd-1: leadership transfer to etcd-3 requested (maintenance)", "etcd-1"))
            events.append(E(transfer_at, "info", "etcd-3 became leader at term 8", "etcd-3"))
        if kind in ("down", "quorum") and at > kill_at and at - step <= kill_at:
            events.append(E(kill_at + 110, "warn", "etcd-2: lost the leader etcd-1 at term 7: connection refused", "etcd-1"))
            events.append(E(kill_at + 130, "warn", "etcd-3: peer etcd-1 unreachable (dial tcp 10.0.3.11:2380: connection refused)", "etcd-1"))
        if kind == "quorum" and at > kill2_at and at - step <= kill2_at:
            events.append(E(kill2_at + 60, "warn", "etcd-2: peer etcd-3 unreachable (dial tcp 10.0.3.13:2380: connection refused)", "etcd-3"))
        if kind == "quorum" and k % 4 == 0 and at > kill_at + 1500:
            events.append(E(at - 30, "warn", "etcd-2: election at term %d lost: 1 of 3 votes, no quorum" % (8 + max(0, (at - 30 - kill_at - 1000)) // 1000), "etcd-2"))
        if kind == "down" and at - step <= elected_at - 400 < at:
            events.append(E(elected_at - 400, "info", "etcd-2 is starting a new election at term 8", "etcd-2"))
        # writes: ~300/s, stalled while electing, a catch-up burst after
        rate = 0.0 if electing else (jitter(rng, 300, 0.05) if not (kind == "down" and elected_at <= at < elected_at + 2 * step) else 520.0)
        if kind == "healthy" and transfer_at <= at < transfer_at + step:
            rate = jitter(rng, 250, 0.05)
        applied += rate * step / 1000
        if electing:
            failed += rng.randint(20, 30)
        p99 = jitter(rng, 9.5, 0.12)
        if electing:
            p99 = min(1000.0 + (at - kill_at) * 0.4, 1400)
        elif kind == "down" and elected_at <= at < elected_at + 2 * step:
            p99 = jitter(rng, 160, 0.1)
        elif kind == "healthy" and transfer_at <= at < transfer_at + step:
            p99 = jitter(rng, 24, 0.1)
        nodes = []
        for i, nid in enumerate(["etcd-1", "etcd-2", "etcd-3"]):
            is_down = (down and nid == "etcd-1") or (down2 and nid == "etcd-3")
            if is_down:
                metrics = stale[nid]
            else:
                metrics = [
                    M("raft term", term if not (electing and nid == "etcd-2" and at > elected_at - 400) else (8 if kind == "down" else 8 + max(0, (at - kill_at - 1000)) // 1000)),
                    M("is leader", 1 if nid == leader and not electing else 0),
                    M("applied index", float(int(applied)), "", "counter"),
                    M("wal fsync p99", jitter(rng, fsync[nid], 0.15), "ms", "gauge", "higher"),
                    M("peers reachable", 2 - down - down2, "of 2", "gauge", "lower"),
                ]
                stale[nid] = metrics
            nodes.append(N(nid, "leader" if nid == leader and not (electing) else "follower",
                           "10.0.3.%d:2379" % (11 + i), "down" if is_down else "up", metrics,
                           stale=is_down))
        has_leader = not electing
        members_down = int(down) + int(down2)
        invs = [
            I("has leader", has_leader, "etcd-%s leads at term %d" % (leader[-1], term) if has_leader else ("no leader since etcd-1 (term 7) stopped answering" if not down2 else "no leader: 1 of 3 members reachable, a quorum needs 2"),
              "quorum_loss", [] if has_leader else (["etcd-1"] if not down2 else ["etcd-1", "etcd-3"]), 1 if has_leader else 0, 1, "floor"),
            I("members healthy", members_down == 0, "3 of 3 members answer" if members_down == 0 else ("etcd-1 (10.0.3.11:2379) does not answer: connection refused" if members_down == 1 else "etcd-1, etcd-3 do not answer: connection refused"),
              "node_down", ["etcd-1", "etcd-3"][:members_down], members_down, 0),
            I("commit p99", p99 <= 100, "write p99 %.0f ms (bound 100 ms)" % p99, "latency_spike", [], round(p99, 1), 100),
            I("db size", True, "db 38 MB of 2048 MB quota", "capacity_exhausted", [], 38, 2048),
        ]
        snaps.append({"at_ms": at, "nodes": nodes,
                      "metrics": [M("writes", rate, "ops/s", "gauge", "lower"),
                                  M("write p99 latency", p99, "ms", "gauge", "higher"),
                                  M("failed proposals", failed, "", "counter", "higher"),
                                  M("members up", 3 - members_down, "of 3", "gauge", "lower")],
                      "invariants": invs, "events": events})
    return snaps


write(OUT + "etcd-leader-down.json", "etcd-leader-down",
      "The Raft leader of a 3-member etcd group was killed: writes stall until a follower wins the election at a new term; the old leader stays down (its last metrics kept, marked stale).",
      {"anomaly": "peer down", "component": {"kind": "chaos_target"}}, ["etcd-1"], context(), window("down"), min_c=0.6)
write(OUT + "etcd-healthy-leader-transfer.json", "etcd-healthy-leader-transfer",
      "A planned leadership transfer: the leader moves and the term grows, every member stays up and every invariant holds.",
      {"anomaly": "no anomaly", "component": {"kind": "any"}}, [], context(), window("healthy"), min_c=0.7)
write(OUT + "etcd-quorum-loss.json", "etcd-quorum-loss",
      "The leader of a 3-member etcd group is killed, and before a new leader is elected a second member is killed too: the last member keeps calling elections it cannot win; no write commits.",
      {"anomaly": "leaderless", "component": {"kind": "one_of", "name": ["etcd-1", "etcd-3"]}}, ["etcd-1", "etcd-3"], context(), window("quorum"), min_c=0.5)
