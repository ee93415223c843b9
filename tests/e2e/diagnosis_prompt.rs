//! The prompt the host sends to a model contains no subject-specific words
//! except those the plugin supplied: checked with the real example plugin's
//! vocabulary and a live health snapshot.

use demo_host::diagnosis::mask::Masker;
use demo_host::diagnosis::prompt::system_prompt;
use demo_host::diagnosis::{answer_schema, build_prompt, ObservationWindow};
use demo_host::scenario::ScenarioFile;
use plugin_api::{AnomalyClass, Config, InstanceContext, Logger, Subject};
use std::collections::BTreeSet;
use subject_example::ExampleSubject;

fn example_window() -> ObservationWindow {
    let desc = ExampleSubject::describe();
    let subject = ExampleSubject::create(InstanceContext {
        config: Config::parse("").expect("empty config"),
        raw_config: String::new(),
        library_dir: std::env::temp_dir(),
        log: Logger::discard(),
    })
    .expect("create");
    let snapshots = (0..3).map(|_| subject.health().expect("health")).collect();
    ObservationWindow::from_snapshots(desc.info.name, desc.diagnosis, snapshots)
}

fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().any(char::is_alphabetic))
        .map(str::to_lowercase)
        .collect()
}

/// Vocabulary of the other subjects, taken from their recorded windows.
fn other_subjects_words() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut out: BTreeSet<String> = [
        "redis",
        "tikv",
        "store",
        "stores",
        "pd",
        "ratelimiter",
        "region",
        "leader",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for s in ScenarioFile::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
        if !s
            .path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("example-"))
        {
            let context = &s.window.context;
            out.extend(context.components.iter().map(|c| c.name.to_lowercase()));
            for g in &context.glossary {
                out.extend(words(&g.term));
            }
        }
    }
    // Generic words that happen to be in some glossary term: the class names
    // and a few plain words the generic prompt explains the classes with.
    let mut generic = words("down node lost full nearly disk");
    for class in AnomalyClass::ALL {
        generic.extend(words(class.label()));
        generic.extend(words(&serde_json::to_string(&class).expect("class json")));
    }
    out.retain(|w| !generic.contains(w));
    out
}

#[test]
fn prompt_uses_only_generic_words_and_the_plugins_own() {
    let window = example_window();
    let prompt = build_prompt(&window);
    let full = format!("{}\n{}", prompt.system, prompt.user).to_lowercase();
    for phrase in ["rate limit", "counter drift", "ghost allowing", "key-value"] {
        assert!(
            !full.contains(phrase),
            "`{phrase}` is subject-specific and the plugin did not supply it"
        );
    }
    let supplied = words(&serde_json::to_string(&window).expect("window json"));
    let forbidden = other_subjects_words();
    let leaked: Vec<String> = words(&full)
        .into_iter()
        .filter(|w| forbidden.contains(w) && !supplied.contains(w))
        .collect();
    assert!(
        leaked.is_empty(),
        "words of other subjects in the prompt: {leaked:?}"
    );

    let generic = words(&system_prompt());
    let framing = words("Subject: Observation window (JSON): Diagnose the anomaly in this window.");
    let unexplained: Vec<String> = words(&prompt.user)
        .into_iter()
        .filter(|w| !supplied.contains(w) && !generic.contains(w) && !framing.contains(w))
        .collect();
    assert!(
        unexplained.is_empty(),
        "words neither generic nor supplied by the plugin: {unexplained:?}"
    );
}

#[test]
fn system_prompt_and_schema_carry_no_subject_vocabulary() {
    let forbidden = other_subjects_words();
    let mut text = system_prompt();
    text.push_str(&answer_schema().to_string());
    let example_terms = words("replica replicas crash counter writer");
    let leaked: Vec<String> = words(&text)
        .into_iter()
        .filter(|w| forbidden.contains(w) || example_terms.contains(w))
        .collect();
    assert!(
        leaked.is_empty(),
        "subject words in the generic prompt or schema: {leaked:?}"
    );
}

#[test]
fn masked_prompt_hides_node_names_and_addresses() {
    let window = example_window();
    let masker = Masker::for_window(&window);
    let prompt = build_prompt(&masker.mask_window(&window));
    for node in &window.snapshots[0].nodes {
        assert!(!prompt.user.contains(&node.id), "{} leaked", node.id);
        assert!(
            !prompt.user.contains(&node.address),
            "{} leaked",
            node.address
        );
    }
    assert!(prompt.user.contains("MASKED_NODE_1"));
}

/// Prompts stay small enough for a local model's context (about 8k tokens),
/// whatever the window's length, and still carry every invariant change.
#[test]
fn prompts_fit_a_small_context() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for s in ScenarioFile::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
        let (path, w) = (&s.path, &s.window);
        let p = build_prompt(w);
        let size = p.system.len() + p.user.len();
        println!("{}: {size} bytes", s.name);
        assert!(
            size < 32 * 1024,
            "{}: prompt of {size} bytes",
            path.display()
        );
        for c in &w.invariant_changes {
            assert!(
                p.user.contains(&format!("\"at_ms\":{}", c.at_ms)),
                "{}: change at {} lost",
                path.display(),
                c.at_ms
            );
        }
    }
}
