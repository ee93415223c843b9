//! Validation of chaos action parameters against their specs, shared by host and plugins.

use crate::error::PluginError;
use crate::model::{ParamKind, ParamSpec, ParamValue};

/// Resolved parameters: every spec'd parameter with its validated value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Params(pub Vec<(String, ParamValue)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn f64(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(ParamValue::as_f64)
    }

    pub fn u64(&self, name: &str) -> Option<u64> {
        self.f64(name).map(|v| v.max(0.0) as u64)
    }
}

/// Fills defaults and checks type and range of every given value.
/// Unknown names and wrong types are errors that name the parameter and what it takes.
pub fn validate(
    specs: &[ParamSpec],
    given: &[(String, ParamValue)],
) -> Result<Params, PluginError> {
    for (name, _) in given {
        if !specs.iter().any(|s| &s.name == name) {
            let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            return Err(PluginError::invalid(format!(
                "unknown parameter `{name}`; this action takes: {}",
                if known.is_empty() {
                    "no parameters".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let value = given
            .iter()
            .rev()
            .find(|(n, _)| n == &spec.name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| spec.default.clone());
        out.push((spec.name.clone(), check(spec, value)?));
    }
    Ok(Params(out))
}

fn check(spec: &ParamSpec, value: ParamValue) -> Result<ParamValue, PluginError> {
    let wrong_type = |v: &ParamValue| {
        PluginError::invalid(format!(
            "parameter `{}` takes {}, got `{v}`",
            spec.name,
            kind_name(spec.kind)
        ))
    };
    let value = match (spec.kind, value) {
        (ParamKind::Bool, v @ ParamValue::Bool(_)) => v,
        (ParamKind::Text, v @ ParamValue::Text(_)) => v,
        (ParamKind::Integer | ParamKind::DurationMs, ParamValue::Int(i)) => ParamValue::Int(i),
        (ParamKind::Integer | ParamKind::DurationMs, ParamValue::Float(f)) if f.fract() == 0.0 => {
            ParamValue::Int(f as i64)
        }
        (ParamKind::Float, ParamValue::Float(f)) => ParamValue::Float(f),
        (ParamKind::Float, ParamValue::Int(i)) => ParamValue::Float(i as f64),
        (kind, ParamValue::Text(s)) if kind != ParamKind::Text => {
            parse(kind, &s).ok_or_else(|| wrong_type(&ParamValue::Text(s.clone())))?
        }
        (_, v) => return Err(wrong_type(&v)),
    };
    if let Some(x) = value.as_f64() {
        if !x.is_finite() {
            return Err(PluginError::invalid(format!(
                "parameter `{}` must be a finite number",
                spec.name
            )));
        }
        let below = spec.min.is_some_and(|m| x < m);
        let above = spec.max.is_some_and(|m| x > m);
        if below || above {
            return Err(PluginError::invalid(format!(
                "parameter `{}` = {x}{} is out of range: it takes {} to {}{}",
                spec.name,
                spec.unit,
                spec.min.map_or("-inf".to_string(), |m| m.to_string()),
                spec.max.map_or("inf".to_string(), |m| m.to_string()),
                spec.unit
            )));
        }
    }
    Ok(value)
}

/// Parses a value typed on a command line (`duration_ms=5000`).
pub fn parse(kind: ParamKind, text: &str) -> Option<ParamValue> {
    let t = text.trim();
    match kind {
        ParamKind::Bool => t.parse().ok().map(ParamValue::Bool),
        ParamKind::Integer | ParamKind::DurationMs => t.parse().ok().map(ParamValue::Int),
        ParamKind::Float => t.parse().ok().map(ParamValue::Float),
        ParamKind::Text => Some(ParamValue::Text(t.to_string())),
    }
}

fn kind_name(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Integer => "a whole number",
        ParamKind::Float => "a number",
        ParamKind::DurationMs => "a duration in milliseconds (whole number)",
        ParamKind::Bool => "true or false",
        ParamKind::Text => "text",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Vec<ParamSpec> {
        vec![
            ParamSpec {
                name: "duration_ms".into(),
                description: "how long".into(),
                kind: ParamKind::DurationMs,
                default: ParamValue::Int(5000),
                min: Some(100.0),
                max: Some(60_000.0),
                unit: "ms".into(),
            },
            ParamSpec {
                name: "multiplier".into(),
                description: "times the limit".into(),
                kind: ParamKind::Float,
                default: ParamValue::Float(2.0),
                min: Some(1.0),
                max: Some(10.0),
                unit: "x".into(),
            },
        ]
    }

    #[test]
    fn defaults_fill_missing_values() {
        let p = validate(&spec(), &[]).unwrap();
        assert_eq!(p.u64("duration_ms"), Some(5000));
        assert_eq!(p.f64("multiplier"), Some(2.0));
    }

    #[test]
    fn text_values_are_parsed_and_ranges_checked() {
        let p = validate(
            &spec(),
            &[("multiplier".into(), ParamValue::Text("3".into()))],
        )
        .unwrap();
        assert_eq!(p.f64("multiplier"), Some(3.0));
        let err = validate(&spec(), &[("duration_ms".into(), ParamValue::Int(5))]).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        assert!(err.to_string().contains("100 to 60000ms"), "{err}");
    }

    #[test]
    fn unknown_and_mistyped_parameters_are_named() {
        let err = validate(&spec(), &[("speed".into(), ParamValue::Int(1))]).unwrap_err();
        assert!(
            err.to_string().contains("unknown parameter `speed`"),
            "{err}"
        );
        assert!(err.to_string().contains("duration_ms, multiplier"), "{err}");
        let err = validate(
            &spec(),
            &[("multiplier".into(), ParamValue::Text("lots".into()))],
        )
        .unwrap_err();
        assert!(err.to_string().contains("takes a number"), "{err}");
        let err = validate(&spec(), &[("duration_ms".into(), ParamValue::Float(1.5))]).unwrap_err();
        assert!(err.to_string().contains("whole number"), "{err}");
    }
}
