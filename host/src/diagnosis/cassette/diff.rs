//! The first place two JSON request bodies differ, said so a person can find
//! it: the JSON path, and both values shortened around where they part.

use serde_json::Value;

/// Longest value shown on either side of a difference, in characters.
const SHOWN: usize = 80;
/// Characters kept before the first differing one of two long strings.
const LEAD: usize = 24;

/// Where a request departs from its recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// `$.messages[1].content`.
    pub path: String,
    pub expected: String,
    pub got: String,
}

/// The first difference between `expected` and `got`, depth first in key
/// order; `None` when they are equal.
pub fn first_difference(expected: &Value, got: &Value) -> Option<Difference> {
    walk("$".to_string(), Some(expected), Some(got))
}

fn walk(path: String, expected: Option<&Value>, got: Option<&Value>) -> Option<Difference> {
    match (expected, got) {
        (Some(a), Some(b)) if a == b => None,
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .find_map(|k| walk(member(&path, k), a.get(k), b.get(k)))
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            (0..a.len().max(b.len())).find_map(|i| walk(format!("{path}[{i}]"), a.get(i), b.get(i)))
        }
        (Some(Value::String(a)), Some(Value::String(b))) => {
            let (expected, got) = strings(a, b);
            Some(Difference {
                path,
                expected,
                got,
            })
        }
        (a, b) => Some(Difference {
            path,
            expected: shown(a),
            got: shown(b),
        }),
    }
}

fn member(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match plain {
        true => format!("{path}.{key}"),
        false => format!("{path}[{}]", Value::from(key)),
    }
}

fn shown(v: Option<&Value>) -> String {
    match v {
        None => "nothing (the field is absent)".into(),
        Some(v) => shorten(&v.to_string()),
    }
}

/// Two strings shown from a little before the character where they part.
fn strings(a: &str, b: &str) -> (String, String) {
    let at = a
        .chars()
        .zip(b.chars())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.chars().count().min(b.chars().count()));
    let from = at.saturating_sub(LEAD);
    let note = match from {
        0 => String::new(),
        _ => format!(" (from character {at})"),
    };
    let show = |s: &str| {
        let total = s.chars().count();
        let cut: String = s.chars().skip(from).take(SHOWN).collect();
        let head = if from > 0 { "…" } else { "" };
        let tail = if from + SHOWN < total { "…" } else { "" };
        format!("{head}{}{tail}{note}", Value::from(cut))
    };
    (show(a), show(b))
}

/// At most [`SHOWN`] characters of `text`, with `…` where cut.
fn shorten(text: &str) -> String {
    let body: String = text.chars().take(SHOWN).collect();
    match text.chars().count() > SHOWN {
        true => format!("{body}…"),
        false => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_have_no_difference() {
        let v = json!({"a": [1, {"b": "c"}]});
        assert_eq!(first_difference(&v, &v.clone()), None);
    }

    #[test]
    fn names_the_path_of_a_nested_change_an_absent_field_and_an_odd_key() {
        let d = first_difference(
            &json!({"messages": [{"role": "user", "content": "a"}]}),
            &json!({"messages": [{"role": "user", "content": "b"}]}),
        )
        .unwrap();
        assert_eq!(d.path, "$.messages[0].content");
        assert_eq!((d.expected.as_str(), d.got.as_str()), ("\"a\"", "\"b\""));
        let d = first_difference(&json!({"max_tokens": 4096}), &json!({})).unwrap();
        assert_eq!(d.path, "$.max_tokens");
        assert_eq!(d.got, "nothing (the field is absent)");
        let d = first_difference(&json!({"a b": 1}), &json!({"a b": 2})).unwrap();
        assert_eq!(d.path, "$[\"a b\"]");
    }

    #[test]
    fn long_strings_are_shown_around_where_they_part() {
        let a = format!("{}X{}", "p".repeat(500), "s".repeat(500));
        let b = format!("{}Y{}", "p".repeat(500), "s".repeat(500));
        let d = first_difference(&json!(a), &json!(b)).unwrap();
        assert!(
            d.expected.starts_with('…') && d.expected.contains('X'),
            "{}",
            d.expected
        );
        assert!(
            d.got.contains('Y') && d.got.contains("from character 500"),
            "{}",
            d.got
        );
        assert!(d.got.chars().count() < 120, "{}", d.got);
    }
}
