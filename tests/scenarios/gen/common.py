"""Helpers to write observation windows in the plugin-api 0.2 shape."""
import json
import random


def M(name, value, unit="", kind="gauge", worse="unknown"):
    return {"name": name, "value": round(value, 4), "unit": unit, "kind": kind, "worse": worse}


def N(id, role, address, status, metrics, kind="member", depends_on=(), stale=False):
    return {"id": id, "role": role, "address": address, "status": status, "metrics": metrics,
            "kind": kind, "depends_on": list(depends_on), "stale": stale}


def I(name, ok, detail, klass, components=(), observed=None, bound=None, bound_is="ceiling", unknown=False):
    status = "unknown" if unknown else ("ok" if ok else "violated")
    if not unknown and observed is not None and bound is not None:
        holds = observed <= bound if bound_is == "ceiling" else observed >= bound
        assert holds == ok, (name, observed, bound, bound_is, ok)
    return {"name": name, "status": status, "detail": detail, "since_ms": 0, "class": klass,
            "components": list(components) if not ok else list(components),
            "observed": observed, "bound": bound, "bound_is": bound_is}


def E(at, level, message, component=None):
    return {"at_ms": at, "level": level, "message": message, "component": component}


def finish(snapshots):
    """since_ms, invariant changes, window events, anomaly start."""
    last = {}
    changes = []
    for s in snapshots:
        for inv in s["invariants"]:
            prev = last.get(inv["name"])
            if prev is None:
                inv["since_ms"] = snapshots[0]["at_ms"] - 60000
                frm = "ok"
            else:
                frm = prev[0]
                inv["since_ms"] = prev[1] if prev[0] == inv["status"] else s["at_ms"]
            if frm != inv["status"]:
                changes.append({"at_ms": s["at_ms"], "invariant": inv["name"], "from": frm,
                                "to": inv["status"], "detail": inv["detail"],
                                "components": inv["components"], "class": inv["class"]})
            last[inv["name"]] = (inv["status"], inv["since_ms"])
    events = []
    for s in snapshots:
        for e in s["events"]:
            if e not in events:
                events.append(e)
    events.sort(key=lambda e: e["at_ms"])
    start = next((c["at_ms"] for c in changes if c["to"] == "violated"), None)
    # sanity: ordered polls, counters never fall
    for a, b in zip(snapshots, snapshots[1:]):
        assert a["at_ms"] < b["at_ms"]
        for scope_a, scope_b in [(a["metrics"], b["metrics"])] + [
            (na["metrics"], nb["metrics"]) for na in a["nodes"] for nb in b["nodes"] if na["id"] == nb["id"]
        ]:
            for ma in scope_a:
                for mb in scope_b:
                    if ma["name"] == mb["name"] and ma["kind"] == "counter":
                        assert mb["value"] >= ma["value"], (ma, mb)
    return changes, events, start


def write(path, name, description, expected, targets, context, snapshots, min_c=None, max_c=None):
    changes, events, start = finish(snapshots)
    doc = {"name": name, "description": description, "expected": expected,
           "chaos_targets": targets}
    if min_c is not None:
        doc["min_confidence"] = min_c
    if max_c is not None:
        doc["max_confidence"] = max_c
    doc["window"] = {"subject": context.pop("subject"), "context": context, "snapshots": snapshots,
                     "invariant_changes": changes, "events": events, "anomaly_started_ms": start}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


def jitter(rng, x, rel):
    return x * (1 + rng.uniform(-rel, rel))
