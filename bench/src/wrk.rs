//! `wrk` (Debian package `wrk`), the peer load generator: a C client on epoll
//! with fixed keep-alive connections, the same class of tool as
//! `redis-benchmark`, so that a node measured with it pays no more for its
//! generator than Redis does for its own.

use crate::env::run_tool;
use anyhow::Context as _;
use std::path::Path;
use std::process::Command;

/// What one `wrk --latency` run printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Wrk {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses that were not 2xx/3xx (a 429 denial counts here) plus socket errors.
    pub not_ok: u64,
}

/// `conc` connections POSTing `{"key":"<key>"}` to `<url>/check` for `secs`.
pub fn post_checks(
    bin: &Path,
    url: &str,
    key: &str,
    conc: usize,
    secs: u64,
) -> anyhow::Result<Wrk> {
    let script = tempfile::Builder::new().suffix(".lua").tempfile()?;
    std::fs::write(
        script.path(),
        format!("wrk.method = \"POST\"\nwrk.body = '{{\"key\":\"{key}\"}}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"),
    )?;
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(conc);
    run_tool(
        Command::new(bin)
            .args(["--latency", "-t", &threads.to_string()])
            .args(["-c", &conc.to_string(), "-d", &format!("{}s", secs.max(1))])
            .arg("-s")
            .arg(script.path())
            .arg(format!("{url}/check")),
        "wrk",
        parse,
    )
}

/// Reads `Requests/sec:`, the `--latency` distribution and the error lines.
fn parse(text: &str) -> anyhow::Result<Wrk> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
    };
    let rps: f64 = field("Requests/sec:")
        .context("no Requests/sec")?
        .parse()
        .context("Requests/sec does not parse")?;
    let quantile = |q: &str| -> anyhow::Result<f64> {
        duration_ms(field(q).with_context(|| format!("no {q} latency (run with --latency)"))?)
    };
    let non_2xx = field("Non-2xx or 3xx responses:").map_or(Ok(0), str::parse::<u64>)?;
    // `Socket errors: connect 0, read 0, write 0, timeout 0`
    let socket: u64 = field("Socket errors:").map_or(0, |l| {
        l.split(',')
            .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
            .sum()
    });
    Ok(Wrk {
        rps,
        p50_ms: quantile("50%")?,
        p99_ms: quantile("99%")?,
        not_ok: non_2xx + socket,
    })
}

/// `752.00us`, `5.23ms`, `1.02s` in milliseconds.
fn duration_ms(text: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else {
        anyhow::bail!("`{text}` has no unit");
    };
    Ok(number.parse::<f64>().with_context(|| format!("`{text}`"))? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "Running 4s test @ http://127.0.0.1:18101/check
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.21ms    1.90ms  40.11ms   80.10%
    Req/Sec     9.77k     1.66k   14.05k    67.50%
  Latency Distribution
     50%    2.73ms
     75%    3.80ms
     90%    5.10ms
     99%  952.00us
  77812 requests in 4.00s, 21.23MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  19440.08
Transfer/sec:      5.31MB
";

    #[test]
    fn reads_rate_quantiles_and_errors() {
        let w = parse(OUTPUT).unwrap();
        assert_eq!(w.rps, 19440.08);
        assert_eq!(w.p50_ms, 2.73);
        assert!((w.p99_ms - 0.952).abs() < 1e-9);
        assert_eq!(w.not_ok, 8);
        assert!(parse("Running 1s test").is_err());
        assert_eq!(duration_ms("1.5s").unwrap(), 1500.0);
        assert!(duration_ms("12").is_err());
    }
}
