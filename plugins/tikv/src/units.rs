//! PD's text formats for sizes, durations and timestamps: byte sizes are strings
//! written by go-units (`"1.598TiB"`, `"31.5MiB"`, `"0B"`), timestamps RFC 3339
//! from Go's `time.Time`, durations Go's `time.Duration.String()` (`"1h2m3.5s"`).

const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Parses a PD byte size: a go-units string (binary or decimal suffix) or a plain number.
pub fn parse_bytes(text: &str) -> Option<f64> {
    let t = text.trim();
    let split = t
        .find(|c: char| {
            !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')
        })
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let power = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        "e" => 6,
        _ => return None,
    };
    (value.is_finite() && value >= 0.0).then(|| value * 1024f64.powi(power))
}

/// Writes a byte size the way PD does (go-units `BytesSize`: `%.4g` and a binary suffix).
pub fn format_bytes(bytes: u64) -> String {
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as usize + 1
    };
    let text = format!("{v:.*}", 4usize.saturating_sub(int_digits));
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", UNITS[unit])
}

/// Parses an RFC 3339 timestamp (`2024-05-06T07:08:09.123456789+08:00`) to unix milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let t = text.trim().as_bytes();
    let num = |a: usize, b: usize| -> Option<i64> {
        std::str::from_utf8(t.get(a..b)?).ok()?.parse().ok()
    };
    if t.len() < 20 || t[4] != b'-' || t[7] != b'-' || !matches!(t[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, s) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut i = 19;
    let mut millis = 0i64;
    if t.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while t.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = std::str::from_utf8(&t[start..i]).ok()?;
        let padded = format!("{frac:0<3}");
        millis = padded.get(..3)?.parse().ok()?;
    }
    let offset_s = match t.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let (oh, om) = (num(i + 1, i + 3)?, num(i + 4, i + 6)?);
            let off = oh * 3600 + om * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + s - offset_s) * 1000) + millis)
}

/// Writes unix milliseconds as RFC 3339 in UTC with nanoseconds, as Go marshals `time.Time`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z",
        milli * 1_000_000
    )
}

/// Parses a Go duration string (`"2h3m4.5s"`, `"350ms"`, `"1.5µs"`) to seconds.
pub fn parse_go_duration_s(text: &str) -> Option<f64> {
    let t = text.trim();
    if t == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Some(total)
}

/// Writes seconds as Go's `Duration.String()` does for whole milliseconds (`"1h2m3.5s"`).
pub fn format_go_duration(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as i64;
    let (h, m, s) = (
        ms / 3_600_000,
        ms / 60_000 % 60,
        (ms % 60_000) as f64 / 1000.0,
    );
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

// Howard Hinnant's civil calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_match_pd_and_go_units() {
        // PD's own test: ByteSize(1756821276000) marshals as "1.598TiB".
        assert_eq!(format_bytes(1_756_821_276_000), "1.598TiB");
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(33_030_144), "31.5MiB");
        assert_eq!(format_bytes(1023), "1023B");
        let parsed = parse_bytes("1.598TiB").unwrap();
        assert!((parsed - 1.598 * 1024f64.powi(4)).abs() < 1.0);
        assert_eq!(parse_bytes("256MiB"), Some(256.0 * 1024.0 * 1024.0));
        assert_eq!(parse_bytes("10GB"), Some(10.0 * 1024f64.powi(3)));
        assert_eq!(parse_bytes("1048576"), Some(1_048_576.0));
        assert_eq!(parse_bytes("12yiB"), None);
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn timestamps_round_trip_and_honour_offsets() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:00:00.5+01:00"),
            Some(1_709_204_400_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T11:00:00.500999999Z"),
            Some(1_709_204_400_500)
        );
        let ms = 1_763_856_000_123;
        assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn go_durations_parse_and_format() {
        assert_eq!(parse_go_duration_s("1h2m3.5s"), Some(3723.5));
        assert!((parse_go_duration_s("350ms").unwrap() - 0.35).abs() < 1e-12);
        assert_eq!(parse_go_duration_s("0"), Some(0.0));
        assert_eq!(parse_go_duration_s("3 days"), None);
        assert_eq!(format_go_duration(3723.5), "1h2m3.5s");
        assert_eq!(format_go_duration(4.25), "4.25s");
    }
}
