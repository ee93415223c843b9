//! The config parser takes any text without panicking, and what it accepts
//! round-trips: written back as `key=value` pairs it parses to the same config.

use plugin_api::Config;
use proptest::prelude::*;

/// Text made mostly of the characters the format gives a meaning to.
fn config_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "([a-z_]{0,4}(=[a-z0-9=]{0,4})?[ ,;\n\t]{0,2}){0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_text_parses_or_is_refused_without_panicking(text in config_text()) {
        match Config::parse(&text) {
            Ok(c) => {
                let written: Vec<String> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let again = Config::parse(&written.join(","));
                prop_assert_eq!(again.as_ref().ok(), Some(&c), "{:?} from {:?}", written, text);
                for (k, _) in c.iter() {
                    prop_assert!(!k.is_empty() && !k.contains('='));
                }
            }
            Err(e) => prop_assert!(e.to_string().starts_with("invalid input: config item")),
        }
    }
}
