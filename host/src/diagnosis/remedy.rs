//! The fix a diagnosis proposes: one of the subject's declared remedies,
//! chosen by the builtin from the anomaly and the component, or by a model
//! from the list in its prompt; checked here, so an undeclared remedy or a
//! bad parameter is a schema error and nothing runs.

use super::error::DiagnosisError;
use super::score::{names_component, normalize};
use plugin_api::{ParamValue, Remedy, RemedyTarget};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A declared remedy the diagnosis proposes, for the presenter to approve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedRemedy {
    /// A declared remedy's id.
    pub id: String,
    /// A component id, or "" for a cluster-wide remedy.
    pub target: String,
    pub params: Vec<(String, ParamValue)>,
    /// Why this remedy fits, in a sentence.
    pub rationale: String,
}

/// The builtin's choice: the first declared remedy that addresses the
/// diagnosed anomaly (a glossary term), aimed at the first diagnosed
/// component the subject has, with its parameters' defaults.
pub fn choose(
    remedies: &[Remedy],
    anomaly: &str,
    affected: &[String],
    component_ids: &[String],
) -> Option<ProposedRemedy> {
    let wanted = normalize(anomaly);
    let remedy = remedies.iter().find(|r| {
        r.addresses
            .iter()
            .any(|t| !t.trim().is_empty() && normalize(t) == wanted)
    })?;
    let target = match remedy.target {
        RemedyTarget::Cluster => String::new(),
        RemedyTarget::Component => affected
            .iter()
            .find_map(|c| component_ids.iter().find(|id| names_component(c, id)))?
            .clone(),
    };
    let on = if target.is_empty() {
        "the cluster"
    } else {
        target.as_str()
    };
    Some(ProposedRemedy {
        id: remedy.id.clone(),
        rationale: format!("{} addresses {anomaly}, on {on}", remedy.name),
        target,
        params: remedy
            .params
            .iter()
            .map(|p| (p.name.clone(), p.default.clone()))
            .collect(),
    })
}

/// The `proposed_remedy` property of a model's answer, for a window whose
/// subject declares `remedies` (strict-mode compatible: nullable, every
/// property required, ids restricted to the declared ones).
pub fn schema(remedies: &[Remedy]) -> Value {
    let ids: Vec<Value> = remedies.iter().map(|r| Value::from(r.id.clone())).collect();
    json!({
        "type": ["object", "null"],
        "description": "one of the subject's declared remedies that would fix the anomaly while it lasts, or null",
        "properties": {
            "id": {"type": "string", "enum": ids},
            "target": {"type": "string", "description": "the component to apply it to, named as the window names it; \"\" for a cluster-wide remedy"},
            "params": {"type": "array", "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "value": {"type": ["number", "string", "boolean"]}},
                "required": ["name", "value"],
                "additionalProperties": false
            }},
            "rationale": {"type": "string"}
        },
        "required": ["id", "target", "params", "rationale"],
        "additionalProperties": false
    })
}

/// A model's proposal as it arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRemedy {
    id: String,
    target: String,
    params: Vec<ModelParam>,
    rationale: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelParam {
    name: String,
    value: ParamValue,
}

impl ModelRemedy {
    pub fn from_proposed(p: &ProposedRemedy) -> Self {
        ModelRemedy {
            id: p.id.clone(),
            target: p.target.clone(),
            params: p
                .params
                .iter()
                .map(|(name, value)| ModelParam {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            rationale: p.rationale.clone(),
        }
    }
}

/// Checks a model's proposal against the declared remedies: the id must be
/// declared and the parameters valid for it (defaults filled in).
pub fn check(m: ModelRemedy, remedies: &[Remedy]) -> Result<ProposedRemedy, DiagnosisError> {
    let remedy = remedies.iter().find(|r| r.id == m.id).ok_or_else(|| {
        let known: Vec<&str> = remedies.iter().map(|r| r.id.as_str()).collect();
        DiagnosisError::SchemaMismatch(format!(
            "the answer proposes remedy `{}`, which the subject does not declare (declared: {})",
            m.id,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })?;
    let given: Vec<(String, ParamValue)> =
        m.params.into_iter().map(|p| (p.name, p.value)).collect();
    let params = plugin_api::params::validate(&remedy.params, &given).map_err(|e| {
        DiagnosisError::SchemaMismatch(format!(
            "the answer's parameters for remedy `{}` are not valid: {e}",
            remedy.id
        ))
    })?;
    Ok(ProposedRemedy {
        id: remedy.id.clone(),
        target: m.target,
        params: remedy
            .params
            .iter()
            .filter_map(|p| params.get(&p.name).map(|v| (p.name.clone(), v.clone())))
            .collect(),
        rationale: m.rationale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{ParamKind, ParamSpec, Risk};

    fn remedy(id: &str, addresses: &str, target: RemedyTarget) -> Remedy {
        Remedy {
            id: id.into(),
            name: format!("{id} it"),
            description: String::new(),
            addresses: vec![addresses.into()],
            params: vec![ParamSpec {
                name: "limit".into(),
                description: String::new(),
                kind: ParamKind::Integer,
                default: ParamValue::Int(10),
                min: Some(1.0),
                max: Some(100.0),
                unit: String::new(),
            }],
            target,
            risk: Risk::Low,
            undo: String::new(),
            verify_within_ms: 1000,
            probe_step: None,
        }
    }

    #[test]
    fn the_builtin_chooses_by_anomaly_and_an_existing_component() {
        let remedies = [
            remedy("restart", "node crash", RemedyTarget::Component),
            remedy("failover", "store frozen", RemedyTarget::Cluster),
        ];
        let ids = ["pg-1".to_string(), "pg-10".to_string()];
        let p = choose(&remedies, "Node  Crash", &["pg-10 (primary)".into()], &ids).unwrap();
        assert_eq!((p.id.as_str(), p.target.as_str()), ("restart", "pg-10"));
        assert_eq!(p.params, vec![("limit".to_string(), ParamValue::Int(10))]);
        let p = choose(&remedies, "store frozen", &[], &ids).unwrap();
        assert_eq!((p.id.as_str(), p.target.as_str()), ("failover", ""));
        assert!(choose(&remedies, "node crash", &["pg-2".into()], &ids).is_none());
        assert!(choose(&remedies, "lag", &["pg-1".into()], &ids).is_none());
    }

    #[test]
    fn a_models_proposal_must_name_a_declared_remedy_with_valid_parameters() {
        let remedies = [remedy("restart", "node crash", RemedyTarget::Component)];
        let parse = |v: Value| check(serde_json::from_value(v).unwrap(), &remedies);
        let ok = parse(json!({"id": "restart", "target": "pg-1", "params": [], "rationale": "r"}))
            .unwrap();
        assert_eq!(ok.params, vec![("limit".to_string(), ParamValue::Int(10))]);
        let e = parse(json!({"id": "reboot", "target": "pg-1", "params": [], "rationale": "r"}))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("does not declare (declared: restart)"),
            "{e}"
        );
        let e = parse(json!({"id": "restart", "target": "pg-1", "params": [{"name": "limit", "value": 500}], "rationale": "r"}))
            .unwrap_err();
        assert!(e.to_string().contains("not valid"), "{e}");
        let e = parse(json!({"id": "restart", "target": "pg-1", "params": [{"name": "force", "value": true}], "rationale": "r"}))
            .unwrap_err();
        assert!(matches!(e, DiagnosisError::SchemaMismatch(_)), "{e}");
    }
}
