//! Random sequences of presenter actions and runtime answers: the engine never
//! panics, and after any of them quitting recovers every fault it injected
//! and puts back every lasting change a remedy made.
//!
//! A small simulated runtime answers the engine's effects in any order, with
//! successes and failures, while the presenter presses keys and time passes;
//! `world` is what the subject really has in effect.

use super::fixture::{self, T0};
use super::{start, update, Action, Demo, Effect, Mode};
use crate::diagnosis::Diagnosis;
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
enum Move {
    Press(Box<Action>),
    /// Time passes, then a tick.
    Wait(u64),
    /// A health poll answers (drift, node-3 down), or fails.
    Poll(Option<(bool, bool)>),
    /// The runtime finishes the n-th pending effect (modulo), well or not.
    Answer(usize, bool),
}

fn moves() -> impl Strategy<Value = Vec<Move>> {
    let press = prop_oneof![
        Just(Action::Next),
        Just(Action::Prev),
        Just(Action::Quit),
        Just(Action::RecoverAll),
        Just(Action::Diagnose),
        Just(Action::ToggleHelp),
        Just(Action::Back),
        Just(Action::FilterStart),
        Just(Action::FilterInput('x')),
        Just(Action::FilterBackspace),
        Just(Action::FilterEnd { keep: true }),
        (-5i32..5).prop_map(Action::ScrollLog),
        Just(Action::SwitchSubject),
        (-2i32..3).prop_map(Action::PickerMove),
        Just(Action::PickerChoose),
        Just(Action::Reload),
        Just(Action::ApproveRemedy),
        Just(Action::RejectRemedy),
        Just(Action::KillSwitch),
    ];
    let one = prop_oneof![
        3 => press.prop_map(|a| Move::Press(Box::new(a))),
        3 => (0u64..4000).prop_map(Move::Wait),
        2 => proptest::option::weighted(0.9, (any::<bool>(), any::<bool>())).prop_map(Move::Poll),
        4 => (any::<usize>(), proptest::bool::weighted(0.8)).prop_map(|(i, ok)| Move::Answer(i, ok)),
    ];
    prop::collection::vec(one, 0..80)
}

fn diagnosis() -> Diagnosis {
    serde_json::from_value(serde_json::json!({
        "anomaly": "view drift", "class": "state_divergence", "affected_components": ["store"],
        "timeline": [], "metric_readings": [], "evidence": [], "alternatives": [],
        "likely_cause": "c", "severity": "high", "recommended_action": "a", "confidence": 0.8,
        "narrative": "n", "backend": "test", "rule_findings": []
    }))
    .expect("a diagnosis")
}

/// The runtime side: effects not answered yet, and faults in effect.
struct Sim {
    demo: Demo,
    now: u64,
    pending: Vec<Effect>,
    world: BTreeSet<String>,
    /// Faults whose recovery failed while quitting: the engine gives them up
    /// to leftover recovery by design.
    left_over: BTreeSet<String>,
    injected: usize,
    /// What was still in effect, beyond `left_over`, at each `Exit`.
    exits: Vec<BTreeSet<String>>,
}

impl Sim {
    fn apply(&mut self, action: Action) {
        let fx = update(&mut self.demo, self.now, action);
        self.take(fx);
    }

    fn take(&mut self, fx: Vec<Effect>) {
        for e in fx {
            match e {
                Effect::Exit => self
                    .exits
                    .push(self.world.difference(&self.left_over).cloned().collect()),
                // The loop swaps plugins itself; the engine state is replaced then.
                Effect::Swap(_) | Effect::Reload => {}
                e => self.pending.push(e),
            }
        }
    }

    fn answer(&mut self, index: usize, ok: bool) {
        if self.pending.is_empty() {
            return;
        }
        let effect = self.pending.remove(index % self.pending.len());
        let action = match effect {
            Effect::Inject {
                chapter, action, ..
            } => {
                let result = if ok {
                    self.injected += 1;
                    let id = format!("f{}", self.injected);
                    self.world.insert(id.clone());
                    let expires = (self.injected % 2 == 0).then_some(self.now + 1500);
                    Ok(fixture::fault(&id, self.now, expires))
                } else {
                    Err(failed("inject", "the subject refused"))
                };
                Action::Injected {
                    chapter,
                    action,
                    result,
                }
            }
            Effect::Recover { fault_id } => {
                let result = if ok {
                    self.world.remove(&fault_id);
                    Ok(())
                } else {
                    if self.demo.ui.quitting {
                        self.left_over.insert(fault_id.clone());
                    }
                    Err(failed("recover", "try again"))
                };
                Action::Recovered { fault_id, result }
            }
            Effect::RunStep { chapter, .. } => Action::StepDone {
                chapter,
                result: if ok {
                    Ok("done".into())
                } else {
                    Err(failed("run_step", "no"))
                },
            },
            Effect::Diagnose(_) => Action::DiagnosisDone(Box::new(if ok {
                Ok(diagnosis())
            } else {
                Err(crate::diagnosis::DiagnosisError::Timeout(
                    std::time::Duration::from_secs(60),
                ))
            })),
            Effect::Discover => Action::OpenPicker(vec![("other".into(), "/x.so".into())]),
            Effect::Remediate { .. } => {
                if ok {
                    self.injected += 1;
                    let record = format!("remedy-{}", self.injected);
                    self.world.insert(record.clone());
                    Action::Remediated {
                        record: Some(record.clone()),
                        result: Ok(plugin_api::RemedyOutcome {
                            summary: "resynced".into(),
                            undo: record,
                        }),
                    }
                } else {
                    Action::Remediated {
                        record: None,
                        result: Err(failed("remediate", "no")),
                    }
                }
            }
            Effect::Probe { .. } => Action::Probed(Ok("fine".into())),
            Effect::UndoRemedy { record, .. } => {
                let result = if ok {
                    self.world.remove(&record);
                    Ok(())
                } else {
                    // Stays recorded for the next start, as a fault would.
                    self.left_over.insert(record.clone());
                    Err(failed("recover_leftover", "no"))
                };
                Action::RemedyUndone { record, result }
            }
            Effect::Swap(_) | Effect::Reload | Effect::Exit => return,
        };
        self.apply(action);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_sequence_is_survived_and_quitting_recovers_every_fault(
        mode in prop_oneof![Just(Mode::Interactive), Just(Mode::Headless)],
        script in moves(),
    ) {
        let mut demo = fixture::demo(mode);
        let fx = start(&mut demo);
        let mut sim = Sim {
            demo,
            now: T0,
            pending: Vec::new(),
            world: BTreeSet::new(),
            left_over: BTreeSet::new(),
            injected: 0,
            exits: Vec::new(),
        };
        sim.take(fx);
        for m in script {
            match m {
                Move::Press(a) => sim.apply(*a),
                Move::Wait(ms) => {
                    sim.now += ms;
                    sim.apply(Action::Tick);
                }
                Move::Poll(Some((drift, down))) => {
                    sim.now += 100;
                    let s = fixture::snapshot(sim.now, drift, down);
                    sim.apply(Action::HealthPolled(Ok(s)));
                }
                Move::Poll(None) => sim.apply(Action::HealthPolled(Err(crate::plugin::session::CallError::TimedOut {
                    call: "health",
                    after: std::time::Duration::from_secs(3),
                }))),
                Move::Answer(i, ok) => sim.answer(i, ok),
            }
        }
        // Teardown: quit, and the runtime answers everything, well, in order,
        // until the engine lets it exit (the loop stops at the first `Exit`).
        let before = sim.exits.len();
        sim.apply(Action::Quit);
        for _ in 0..1000 {
            if sim.exits.len() > before {
                break;
            }
            if sim.pending.is_empty() {
                sim.now += 500;
                sim.apply(Action::Tick);
            } else {
                sim.answer(0, true);
            }
        }
        prop_assert!(sim.exits.len() > before, "no exit; pending: {:?}", sim.pending);
        for (i, left) in sim.exits.iter().enumerate() {
            prop_assert!(left.is_empty(), "exit {} left faults in effect: {:?}", i, left);
        }
        prop_assert!(
            !sim.pending.iter().any(|e| matches!(e, Effect::Inject { .. })),
            "exit with an inject call in flight"
        );
        prop_assert!(
            !sim.pending.iter().any(|e| matches!(e, Effect::Remediate { .. })),
            "exit with a remedy call in flight"
        );
    }
}

fn failed(call: &'static str, message: &str) -> crate::plugin::session::CallError {
    crate::plugin::session::CallError::Plugin {
        call,
        err: plugin_api::PluginError::Failed(message.into()),
    }
}
