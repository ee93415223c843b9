//! go-ycsb's progress and summary lines, such as
//! `READ   - Takes(s): 10.0, Count: 4987, OPS: 498.7, Avg(us): 1234, Min(us): 500, Max(us): 20000, 50th(us): 1100, 90th(us): 1800, 95th(us): 2100, 99th(us): 4000, 99.9th(us): 9000, 99.99th(us): 15000`.
//! (Java YCSB writes `[READ], 99thPercentileLatency(us), ...` instead; that format is not go-ycsb's.)

/// One operation line of go-ycsb.
#[derive(Debug, Clone, PartialEq)]
pub struct OpStats {
    pub op: String,
    pub takes_s: Option<f64>,
    pub count: Option<u64>,
    pub ops: Option<f64>,
    pub avg_us: Option<f64>,
    pub p99_us: Option<f64>,
}

/// Throughput and latency of the latest report block.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    pub ops_per_s: f64,
    pub p99_ms: Option<f64>,
    pub avg_ms: Option<f64>,
    pub operations: Vec<String>,
}

/// Parses one line; `None` for lines that are not operation statistics.
pub fn parse_line(line: &str) -> Option<OpStats> {
    let (op, rest) = line.split_once(" - ")?;
    let op = op.trim();
    if op.is_empty()
        || !op
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
    {
        return None;
    }
    let mut stats = OpStats {
        op: op.to_string(),
        takes_s: None,
        count: None,
        ops: None,
        avg_us: None,
        p99_us: None,
    };
    let mut any = false;
    for field in rest.split(',') {
        let Some((key, value)) = field.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Takes(s)" => stats.takes_s = value.parse().ok(),
            "Count" => stats.count = value.parse().ok(),
            "OPS" => stats.ops = value.parse().ok(),
            "Avg(us)" => stats.avg_us = value.parse().ok(),
            "99th(us)" => stats.p99_us = value.parse().ok(),
            _ => continue,
        }
        any = true;
    }
    (any && stats.ops.is_some()).then_some(stats)
}

/// The latest block of operation lines in `output` (go-ycsb reports every 10 s, then a summary).
/// `TOTAL` lines are skipped; throughput is the sum and p99 the worst over operations.
pub fn latest(output: &str) -> Option<Throughput> {
    let mut latest: Vec<OpStats> = Vec::new();
    for stats in output.lines().filter_map(parse_line) {
        if stats.op == "TOTAL" || stats.op.ends_with("_ERROR") {
            continue;
        }
        // A repeated operation starts a new report block.
        if latest.iter().any(|s| s.op == stats.op) {
            latest.clear();
        }
        latest.push(stats);
    }
    if latest.is_empty() {
        return None;
    }
    let ops_per_s = latest.iter().filter_map(|s| s.ops).sum();
    let p99_ms = latest
        .iter()
        .filter_map(|s| s.p99_us)
        .reduce(f64::max)
        .map(|us| us / 1000.0);
    let weighted: Vec<(f64, f64)> = latest
        .iter()
        .filter_map(|s| Some((s.avg_us?, s.count? as f64)))
        .collect();
    let count: f64 = weighted.iter().map(|w| w.1).sum();
    let avg_ms =
        (count > 0.0).then(|| weighted.iter().map(|(a, c)| a * c).sum::<f64>() / count / 1000.0);
    Some(Throughput {
        ops_per_s,
        p99_ms,
        avg_ms,
        operations: latest.into_iter().map(|s| s.op).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
***************** properties *****************
\"recordcount\"=\"10000\"
**********************************************
READ   - Takes(s): 10.0, Count: 4000, OPS: 400.0, Avg(us): 1000, Min(us): 400, Max(us): 20000, 50th(us): 900, 90th(us): 1800, 95th(us): 2100, 99th(us): 4000, 99.9th(us): 9000, 99.99th(us): 15000
UPDATE - Takes(s): 10.0, Count: 1000, OPS: 100.0, Avg(us): 3000, Min(us): 900, Max(us): 40000, 50th(us): 2500, 90th(us): 5000, 95th(us): 6000, 99th(us): 12000, 99.9th(us): 30000, 99.99th(us): 39000
TOTAL  - Takes(s): 10.0, Count: 5000, OPS: 500.0, Avg(us): 1400, Min(us): 400, Max(us): 40000, 50th(us): 1000, 90th(us): 2500, 95th(us): 3000, 99th(us): 9000, 99.9th(us): 25000, 99.99th(us): 39000
READ   - Takes(s): 20.0, Count: 9000, OPS: 450.0, Avg(us): 1100, Min(us): 400, Max(us): 20000, 50th(us): 900, 90th(us): 1800, 95th(us): 2100, 99th(us): 5000, 99.9th(us): 9000, 99.99th(us): 15000
UPDATE - Takes(s): 20.0, Count: 2200, OPS: 110.0, Avg(us): 3100, Min(us): 900, Max(us): 40000, 50th(us): 2500, 90th(us): 5000, 95th(us): 6000, 99th(us): 150000, 99.9th(us): 30000, 99.99th(us): 39000
";

    #[test]
    fn reads_the_latest_block_of_go_ycsb_output() {
        let t = latest(OUTPUT).unwrap();
        assert_eq!(t.operations, vec!["READ", "UPDATE"]);
        assert!((t.ops_per_s - 560.0).abs() < 1e-9);
        assert_eq!(t.p99_ms, Some(150.0));
        let avg = (1100.0 * 9000.0 + 3100.0 * 2200.0) / 11200.0 / 1000.0;
        assert!((t.avg_ms.unwrap() - avg).abs() < 1e-9);
    }

    #[test]
    fn java_ycsb_and_noise_are_not_mistaken_for_go_ycsb() {
        assert_eq!(parse_line("[READ], 99thPercentileLatency(us), 4000"), None);
        assert_eq!(
            parse_line("Using request distribution 'zipfian' - a - b"),
            None
        );
        assert_eq!(latest("no statistics yet\n"), None);
        let line =
            parse_line("READ_ERROR - Takes(s): 1.0, Count: 3, OPS: 3.0, Avg(us): 5").unwrap();
        assert_eq!(line.op, "READ_ERROR");
    }
}
