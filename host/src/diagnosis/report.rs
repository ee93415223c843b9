//! The structured diagnosis, the JSON schema a model must answer in, and the
//! check that turns a model's JSON into a [`Diagnosis`] or an error.

use super::error::DiagnosisError;
use super::remedy::{ModelRemedy, ProposedRemedy};
use plugin_api::{AnomalyClass, Remedy};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The anomaly name used when the window shows none.
pub const NO_ANOMALY: &str = "no anomaly";

/// A diagnosis as shown in the panel and written to the journal.
///
/// `rule_findings` is what the subject's invariant checks found, filled by the
/// host; every other field is what the backend concluded. The two are shown apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// In the subject's words (a glossary term), or [`NO_ANOMALY`].
    pub anomaly: String,
    /// The generic class concluded, `None` when there is no anomaly.
    pub class: Option<AnomalyClass>,
    pub affected_components: Vec<String>,
    pub timeline: Vec<TimelineEntry>,
    pub metric_readings: Vec<MetricReading>,
    pub evidence: Vec<Evidence>,
    pub alternatives: Vec<Alternative>,
    pub likely_cause: String,
    pub severity: Severity,
    pub recommended_action: String,
    /// 0 (a guess) to 1 (certain).
    pub confidence: f64,
    /// A few sentences for the panel.
    pub narrative: String,
    /// Which backend produced the conclusion (`builtin`, `anthropic:<model>`, ...).
    pub backend: String,
    /// What the invariant checks found, independent of any conclusion.
    pub rule_findings: Vec<String>,
    /// One of the subject's declared remedies, when one fits.
    #[serde(default)]
    pub proposed_remedy: Option<ProposedRemedy>,
    /// A model backend's call: latency and the tokens the API reported (host-filled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_call: Option<super::usage::ModelCall>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineEntry {
    pub at_ms: u64,
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricReading {
    pub metric: String,
    /// The node the metric belongs to, `None` for subject-wide metrics.
    pub component: Option<String>,
    pub before: Option<f64>,
    pub during: Option<f64>,
    pub unit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub at_ms: Option<u64>,
    /// Where it was seen: an invariant, a node, a metric, an event.
    pub source: String,
    /// What was seen, with its values.
    pub observation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    pub hypothesis: String,
    pub supporting: Vec<String>,
    pub contradicting: Vec<String>,
    /// `accepted`, `rejected` or `possible`, with the reason.
    pub conclusion: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::None,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What a model must return: the diagnosis without the host-filled fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelAnswer {
    anomaly: String,
    class: Option<AnomalyClass>,
    affected_components: Vec<String>,
    timeline: Vec<TimelineEntry>,
    metric_readings: Vec<MetricReading>,
    evidence: Vec<Evidence>,
    alternatives: Vec<Alternative>,
    likely_cause: String,
    severity: Severity,
    recommended_action: String,
    confidence: f64,
    narrative: String,
    /// Asked for only when the subject declares remedies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proposed_remedy: Option<ModelRemedy>,
}

/// Name of the tool / JSON schema a model answers with.
pub const ANSWER_NAME: &str = "report_diagnosis";

/// The JSON schema of a model's answer for a subject that declares
/// `remedies`: with a nullable `proposed_remedy` restricted to their ids, or
/// without that property when there are none.
pub fn answer_schema_for(remedies: &[Remedy]) -> Value {
    let mut schema = answer_schema();
    if !remedies.is_empty() {
        schema["properties"]["proposed_remedy"] = super::remedy::schema(remedies);
        if let Some(required) = schema["required"].as_array_mut() {
            required.push(Value::from("proposed_remedy"));
        }
    }
    schema
}

/// The JSON schema of a model's answer. Strict-mode compatible: every object
/// lists all its properties as required and forbids others; optional values are nullable.
pub fn answer_schema() -> Value {
    let classes: Vec<&str> = AnomalyClass::ALL.iter().map(|c| class_key(*c)).collect();
    let severities: Vec<&str> = Severity::ALL.iter().map(|s| s.label()).collect();
    let string = json!({"type": "string"});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let opt_number = json!({"type": ["number", "null"]});
    object(json!({
        "anomaly": {"type": "string", "description": "the anomaly in the subject's own words: the glossary term whose class matches, or \"no anomaly\""},
        "class": {"type": ["string", "null"], "enum": classes.into_iter().map(Value::from).chain([Value::Null]).collect::<Vec<_>>()},
        "affected_components": strings,
        "timeline": {"type": "array", "items": object(json!({"at_ms": {"type": "integer"}, "event": string}))},
        "metric_readings": {"type": "array", "items": object(json!({
            "metric": string, "component": {"type": ["string", "null"]},
            "before": opt_number, "during": opt_number, "unit": string
        }))},
        "evidence": {"type": "array", "items": object(json!({
            "at_ms": {"type": ["integer", "null"]}, "source": string, "observation": string
        }))},
        "alternatives": {"type": "array", "items": object(json!({
            "hypothesis": string, "supporting": strings, "contradicting": strings, "conclusion": string
        }))},
        "likely_cause": string,
        "severity": {"type": "string", "enum": severities},
        "recommended_action": string,
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "narrative": string
    }))
}

fn object(properties: Value) -> Value {
    let required: Vec<Value> = properties
        .as_object()
        .map(|p| p.keys().cloned().map(Value::from).collect())
        .unwrap_or_default();
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// The snake_case name serde uses for a class.
pub fn class_key(class: AnomalyClass) -> &'static str {
    match class {
        AnomalyClass::NodeDown => "node_down",
        AnomalyClass::DependencyDown => "dependency_down",
        AnomalyClass::StateDivergence => "state_divergence",
        AnomalyClass::BoundExceeded => "bound_exceeded",
        AnomalyClass::LatencySpike => "latency_spike",
        AnomalyClass::Imbalance => "imbalance",
        AnomalyClass::CapacityExhausted => "capacity_exhausted",
        AnomalyClass::Accounting => "accounting",
        AnomalyClass::Lag => "lag",
        AnomalyClass::QuorumLoss => "quorum_loss",
        AnomalyClass::ErrorBurst => "error_burst",
        AnomalyClass::Saturation => "saturation",
        AnomalyClass::Other => "other",
    }
}

/// Checks a model's answer text against the schema. Anything that is not
/// exactly one JSON object of the right shape is an error, never a guess.
pub fn parse_answer(
    text: &str,
    backend: String,
    rule_findings: Vec<String>,
) -> Result<Diagnosis, DiagnosisError> {
    parse_answer_value(answer_value(text)?, backend, rule_findings, &[])
}

/// The answer text as JSON, or the error saying it is not.
pub fn answer_value(text: &str) -> Result<Value, DiagnosisError> {
    serde_json::from_str(text.trim()).map_err(|e| {
        DiagnosisError::SchemaMismatch(format!("the answer is not JSON ({e}): {}", excerpt(text)))
    })
}

/// As [`parse_answer`], for an answer that already arrived as JSON (a tool input).
pub fn parse_answer_value(
    value: Value,
    backend: String,
    rule_findings: Vec<String>,
    remedies: &[Remedy],
) -> Result<Diagnosis, DiagnosisError> {
    let a: ModelAnswer = serde_json::from_value(value).map_err(|e| {
        DiagnosisError::SchemaMismatch(format!("the answer does not match the schema: {e}"))
    })?;
    if !(0.0..=1.0).contains(&a.confidence) {
        return Err(DiagnosisError::SchemaMismatch(format!(
            "confidence {} is outside 0..1",
            a.confidence
        )));
    }
    if a.anomaly.trim().is_empty() {
        return Err(DiagnosisError::SchemaMismatch(
            "the answer names no anomaly".into(),
        ));
    }
    let proposed_remedy = a
        .proposed_remedy
        .map(|m| super::remedy::check(m, remedies))
        .transpose()?;
    Ok(Diagnosis {
        anomaly: a.anomaly,
        class: a.class,
        affected_components: a.affected_components,
        timeline: a.timeline,
        metric_readings: a.metric_readings,
        evidence: a.evidence,
        alternatives: a.alternatives,
        likely_cause: a.likely_cause,
        severity: a.severity,
        recommended_action: a.recommended_action,
        confidence: a.confidence,
        narrative: a.narrative,
        backend,
        rule_findings,
        proposed_remedy,
        model_call: None,
    })
}

/// The first characters of a text, for error messages.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    let t = text.trim();
    match t.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

impl Diagnosis {
    /// The diagnosis as the model-facing JSON (no host-filled fields), used by
    /// masking to rewrite names and by tests to produce recorded replies.
    pub fn answer_json(&self) -> Value {
        let a = ModelAnswer {
            anomaly: self.anomaly.clone(),
            class: self.class,
            affected_components: self.affected_components.clone(),
            timeline: self.timeline.clone(),
            metric_readings: self.metric_readings.clone(),
            evidence: self.evidence.clone(),
            alternatives: self.alternatives.clone(),
            likely_cause: self.likely_cause.clone(),
            severity: self.severity,
            recommended_action: self.recommended_action.clone(),
            confidence: self.confidence,
            narrative: self.narrative.clone(),
            proposed_remedy: self
                .proposed_remedy
                .as_ref()
                .map(ModelRemedy::from_proposed),
        };
        serde_json::to_value(a).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Value {
        json!({
            "anomaly": "split views", "class": "state_divergence", "affected_components": ["m-2"],
            "timeline": [{"at_ms": 1, "event": "views split"}],
            "metric_readings": [{"metric": "lag", "component": "m-2", "before": 0, "during": 9, "unit": "ops"}],
            "evidence": [{"at_ms": 1, "source": "invariant views agree", "observation": "lag 9 > 3"}],
            "alternatives": [{"hypothesis": "node down", "supporting": [], "contradicting": ["all up"], "conclusion": "rejected"}],
            "likely_cause": "m-2 missed writes", "severity": "medium", "recommended_action": "reconcile",
            "confidence": 0.7, "narrative": "m-2 fell behind"
        })
    }

    #[test]
    fn a_valid_answer_parses() {
        let d = parse_answer(&valid().to_string(), "x".into(), vec!["rule".into()]).unwrap();
        assert_eq!(d.class, Some(AnomalyClass::StateDivergence));
        assert_eq!(d.rule_findings, vec!["rule".to_string()]);
    }

    #[test]
    fn answers_off_the_schema_are_errors() {
        let mut bad_conf = valid();
        bad_conf["confidence"] = json!(1.5);
        let mut extra = valid();
        extra["mood"] = json!("sure");
        let mut bad_class = valid();
        bad_class["class"] = json!("gremlins");
        for v in [bad_conf, extra, bad_class] {
            let e = parse_answer(&v.to_string(), "x".into(), vec![]).unwrap_err();
            assert!(matches!(e, DiagnosisError::SchemaMismatch(_)), "{e:?}");
        }
        let e = parse_answer("```json\n{}\n```", "x".into(), vec![]).unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
    }

    #[test]
    fn schema_is_strict_mode_compatible() {
        fn check(v: &Value) {
            if v.get("type") == Some(&json!("object")) {
                assert_eq!(v["additionalProperties"], json!(false));
                let props: Vec<&String> = v["properties"].as_object().unwrap().keys().collect();
                let required: Vec<&str> = v["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect();
                assert_eq!(props.len(), required.len());
            }
            match v {
                Value::Object(m) => m.values().for_each(check),
                Value::Array(a) => a.iter().for_each(check),
                _ => {}
            }
        }
        check(&answer_schema());
    }
}
