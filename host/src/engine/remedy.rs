//! Remediation: the diagnosis proposes one of the subject's declared
//! remedies, the presenter (or a headless policy) approves it, the plugin runs
//! it, and the invariants that were violated decide whether it worked.
//!
//! Rules live here, not in the runtime: which remedy fits a diagnosis, who may
//! approve what, when verification has passed or missed its deadline, and that
//! every lasting change is put back before the demo exits.

use super::action::Effect;
use super::state::Demo;
use crate::diagnosis::Diagnosis;
use crate::plugin::session::CallError;
use plugin_api::{InvariantStatus, Level, ParamValue, RemedyOutcome, RemedyTarget, Risk};
use serde::{Deserialize, Serialize};

/// Who may approve a proposed remedy when no presenter is asked (headless runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Propose, never run.
    #[default]
    Never,
    /// Run low-risk remedies by themselves; propose the rest.
    LowRisk,
    /// Run every proposed remedy.
    Auto,
}

impl Policy {
    fn allows(self, risk: Risk) -> bool {
        match self {
            Policy::Never => false,
            Policy::LowRisk => risk == Risk::Low,
            Policy::Auto => true,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Policy::Never => "never",
            Policy::LowRisk => "low-risk",
            Policy::Auto => "auto",
        }
    }
}

/// Where a proposed remedy is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Waiting for the presenter (or refused by the policy).
    Proposed,
    /// A high-risk remedy approved once: a second approval runs it.
    Confirming,
    /// The plugin's `remediate` call is in flight.
    Running,
    /// It returned; the violated invariants must be ok by `deadline_ms`.
    Verifying {
        deadline_ms: u64,
    },
    /// The invariants are ok; the remedy's probe step is in flight.
    Probing,
    Resolved,
    Failed {
        reason: String,
    },
    Rejected,
    /// The kill switch or the policy refused it.
    Refused {
        reason: String,
    },
}

impl Stage {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Stage::Resolved | Stage::Failed { .. } | Stage::Rejected | Stage::Refused { .. }
        )
    }

    pub fn label(&self) -> &'static str {
        match self {
            Stage::Proposed => "proposed",
            Stage::Confirming => "confirm high risk",
            Stage::Running => "running",
            Stage::Verifying { .. } => "verifying",
            Stage::Probing => "probing",
            Stage::Resolved => "resolved",
            Stage::Failed { .. } => "remedy failed",
            Stage::Rejected => "rejected",
            Stage::Refused { .. } => "refused",
        }
    }
}

/// One proposed remedy over its life: the journal's record and the panel's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemedyRun {
    pub remedy_id: String,
    pub name: String,
    pub risk: Risk,
    /// A component id, or "" for the whole cluster.
    pub target: String,
    pub params: Vec<(String, ParamValue)>,
    pub rationale: String,
    pub chapter: usize,
    /// The invariants violated when it was proposed: all must be ok again.
    pub invariants: Vec<String>,
    pub stage: Stage,
    pub proposed_ms: u64,
    /// "presenter" or "policy <name>".
    pub approved_by: Option<String>,
    pub approved_ms: Option<u64>,
    /// When `remediate` answered, and what it said.
    pub returned_ms: Option<u64>,
    pub summary: Option<String>,
    pub resolved_ms: Option<u64>,
    /// The latest fault's start and the detection of its anomaly, for time-to-resolve.
    pub fault_started_ms: Option<u64>,
    pub detected_ms: Option<u64>,
    pub verify_within_ms: u64,
    pub probe_step: Option<String>,
}

impl RemedyRun {
    /// Time to resolve from the fault's start, from detection and from approval.
    pub fn times_to_resolve(&self) -> (Option<u64>, Option<u64>, Option<u64>) {
        let since =
            |from: Option<u64>| self.resolved_ms.zip(from).map(|(r, f)| r.saturating_sub(f));
        (
            since(self.fault_started_ms),
            since(self.detected_ms),
            since(self.approved_ms),
        )
    }
}

/// Remediation over a run.
#[derive(Debug, Clone, Default)]
pub struct Remediation {
    pub policy: Policy,
    /// Refuses every remedy for the rest of the run.
    pub kill_switch: bool,
    /// Every proposal, the latest last.
    pub runs: Vec<RemedyRun>,
    /// Lasting changes to put back before exit: (leftover record id, undo record).
    pub applied: Vec<(String, String)>,
    /// Undo calls in flight.
    pub undoing: usize,
}

impl Remediation {
    /// The latest proposal, while it is not final.
    pub fn pending(&self) -> Option<&RemedyRun> {
        self.runs.last().filter(|r| !r.stage.is_final())
    }

    fn pending_mut(&mut self) -> Option<&mut RemedyRun> {
        self.runs.last_mut().filter(|r| !r.stage.is_final())
    }

    /// A remediate call in flight: the demo may not exit before it answered.
    pub fn in_flight(&self) -> bool {
        self.runs.last().is_some_and(|r| r.stage == Stage::Running)
    }

    pub fn latest(&self) -> Option<&RemedyRun> {
        self.runs.last()
    }
}

/// After a diagnosis: take up the remedy it proposes, if that is one the
/// subject declares aimed at a component it has, and let the policy approve
/// it in a headless run.
pub(super) fn propose(demo: &mut Demo, d: &Diagnosis, fx: &mut Vec<Effect>) {
    let now = demo.now_ms;
    let Some(proposed) = &d.proposed_remedy else {
        return;
    };
    if demo.remediation.pending().is_some() {
        demo.log.push(
            now,
            Level::Info,
            "remedy",
            format!("{} is proposed again; one fix at a time", proposed.id),
        );
        return;
    }
    let Some(remedy) = demo
        .subject
        .remedies
        .iter()
        .find(|r| r.id == proposed.id)
        .cloned()
    else {
        demo.log.push(
            now,
            Level::Error,
            "remedy",
            format!(
                "the diagnosis proposed `{}`, which the subject does not declare; nothing runs",
                proposed.id
            ),
        );
        return;
    };
    let exists = demo
        .timeline
        .latest()
        .is_some_and(|s| s.nodes.iter().any(|n| n.id == proposed.target));
    if remedy.target == RemedyTarget::Component && !exists {
        demo.log.push(
            now,
            Level::Error,
            "remedy",
            format!(
                "the diagnosis proposed {} on `{}`, a component the subject does not have; nothing runs",
                remedy.name, proposed.target
            ),
        );
        return;
    }
    let target = match remedy.target {
        RemedyTarget::Component => proposed.target.clone(),
        RemedyTarget::Cluster => String::new(),
    };
    let rationale = proposed.rationale.clone();
    let invariants: Vec<String> = demo
        .verdicts
        .iter()
        .filter(|(_, v)| v.status == InvariantStatus::Violated)
        .map(|(name, _)| name.clone())
        .collect();
    let params = proposed.params.clone();
    let run = RemedyRun {
        remedy_id: remedy.id.clone(),
        name: remedy.name.clone(),
        risk: remedy.risk,
        target,
        params,
        rationale,
        chapter: demo.diagnosis_chapter,
        invariants,
        stage: Stage::Proposed,
        proposed_ms: now,
        approved_by: None,
        approved_ms: None,
        returned_ms: None,
        summary: None,
        resolved_ms: None,
        fault_started_ms: demo.chaos.windows.last().map(|w| w.started_ms),
        detected_ms: demo
            .verdicts
            .values()
            .filter(|v| v.status == InvariantStatus::Violated)
            .map(|v| v.since_ms)
            .min(),
        verify_within_ms: remedy.verify_within_ms,
        probe_step: remedy.probe_step.clone(),
    };
    demo.log.push(
        now,
        Level::Info,
        "remedy",
        format!(
            "proposed fix: {} ({} risk)",
            run.rationale,
            run.risk.label()
        ),
    );
    demo.remediation.runs.push(run);
    if demo.remediation.kill_switch {
        refuse(demo, "the kill switch is on");
        return;
    }
    if demo.mode == super::Mode::Headless {
        let policy = demo.remediation.policy;
        if policy.allows(remedy.risk) {
            run_approved(demo, format!("policy {}", policy.label()), fx);
        } else {
            refuse(
                demo,
                &format!(
                    "--remediate {} does not run {} risk remedies",
                    policy.label(),
                    remedy.risk.label()
                ),
            );
        }
    }
}

fn refuse(demo: &mut Demo, reason: &str) {
    let now = demo.now_ms;
    if let Some(run) = demo.remediation.pending_mut() {
        run.stage = Stage::Refused {
            reason: reason.to_string(),
        };
        let msg = format!("not running {}: {reason}", run.name);
        demo.log.push(now, Level::Info, "remedy", msg);
    }
}

/// The presenter pressed approve: a high-risk remedy asks once more.
pub(super) fn approve(demo: &mut Demo, fx: &mut Vec<Effect>) {
    if demo.remediation.kill_switch {
        demo.ui.notice = Some("the kill switch is on: no remedy runs in this run".into());
        return;
    }
    let Some(run) = demo.remediation.pending_mut() else {
        demo.ui.notice = Some("no fix is waiting for approval".into());
        return;
    };
    match run.stage {
        Stage::Proposed if run.risk == Risk::High => {
            run.stage = Stage::Confirming;
            demo.ui.notice = Some(format!(
                "{} is high risk: press a again to run it, c to reject",
                run.name
            ));
        }
        Stage::Proposed | Stage::Confirming => run_approved(demo, "presenter".into(), fx),
        _ => demo.ui.notice = Some("the fix is already running".into()),
    }
}

fn run_approved(demo: &mut Demo, by: String, fx: &mut Vec<Effect>) {
    let now = demo.now_ms;
    let Some(run) = demo.remediation.pending_mut() else {
        return;
    };
    run.stage = Stage::Running;
    run.approved_by = Some(by.clone());
    run.approved_ms = Some(now);
    let effect = Effect::Remediate {
        remedy: run.remedy_id.clone(),
        params: run.params.clone(),
        target: run.target.clone(),
    };
    let msg = format!("approved by {by}: running {}", run.name);
    demo.incidents.remediating(&run.remedy_id, &by, now);
    demo.log.push(now, Level::Warn, "remedy", msg);
    fx.push(effect);
}

pub(super) fn reject(demo: &mut Demo) {
    let now = demo.now_ms;
    match demo.remediation.pending_mut() {
        Some(run) if matches!(run.stage, Stage::Proposed | Stage::Confirming) => {
            run.stage = Stage::Rejected;
            let msg = format!("rejected by presenter: {}", run.name);
            demo.log.push(now, Level::Info, "remedy", msg);
        }
        Some(_) => demo.ui.notice = Some("the fix is already running".into()),
        None => demo.ui.notice = Some("no fix is waiting for approval".into()),
    }
}

/// The kill switch: nothing proposed from now on runs, in this run.
pub(super) fn kill_switch(demo: &mut Demo) {
    if demo.remediation.kill_switch {
        return;
    }
    demo.remediation.kill_switch = true;
    demo.log.push(
        demo.now_ms,
        Level::Warn,
        "remedy",
        "kill switch: every remedy is refused for the rest of this run",
    );
    if demo
        .remediation
        .pending()
        .is_some_and(|r| matches!(r.stage, Stage::Proposed | Stage::Confirming))
    {
        refuse(demo, "the kill switch is on");
    }
}

/// `remediate` answered. A lasting change is kept for undoing at exit; while
/// quitting it is undone at once.
pub(super) fn remediated(
    demo: &mut Demo,
    record: Option<String>,
    result: Result<RemedyOutcome, CallError>,
    fx: &mut Vec<Effect>,
) {
    let now = demo.now_ms;
    let Some(run) = demo
        .remediation
        .runs
        .last_mut()
        .filter(|r| r.stage == Stage::Running)
    else {
        return;
    };
    run.returned_ms = Some(now);
    match result {
        Ok(outcome) => {
            run.summary = Some(outcome.summary.clone());
            run.stage = Stage::Verifying {
                deadline_ms: now + run.verify_within_ms,
            };
            let msg = format!("{}: {}", run.name, outcome.summary);
            demo.log.push(now, Level::Info, "remedy", msg);
            if !outcome.undo.is_empty() {
                let id = record.unwrap_or_default();
                demo.remediation.applied.push((id, outcome.undo));
            }
            if !demo.ui.quitting {
                verify(demo, fx);
            }
        }
        Err(e) => {
            let reason = format!("{} failed: {e}", run.name);
            run.stage = Stage::Failed {
                reason: reason.clone(),
            };
            demo.incidents.remedy_failed();
            demo.log.push(now, Level::Error, "remedy", reason);
        }
    }
    super::faults::exit_if_clean(demo, fx);
}

/// On each poll and tick: resolved once every invariant it was proposed for
/// is ok (and its probe passed); failed at its deadline.
pub(super) fn verify(demo: &mut Demo, fx: &mut Vec<Effect>) {
    let now = demo.now_ms;
    let Some(run) = demo.remediation.pending() else {
        return;
    };
    let Stage::Verifying { deadline_ms } = run.stage else {
        return;
    };
    let still: Vec<&str> = run
        .invariants
        .iter()
        .filter(|name| {
            demo.verdicts
                .get(*name)
                .is_none_or(|v| v.status != InvariantStatus::Ok)
        })
        .map(String::as_str)
        .collect();
    if still.is_empty() {
        let probe = run.probe_step.clone();
        match probe {
            Some(step) => {
                if let Some(run) = demo.remediation.pending_mut() {
                    run.stage = Stage::Probing;
                }
                fx.push(Effect::Probe { step });
            }
            None => resolve(demo),
        }
    } else if now > deadline_ms {
        let reason = format!(
            "still violated {} ms after the remedy returned: {}",
            run.verify_within_ms,
            still.join(", ")
        );
        fail(demo, reason);
    }
}

pub(super) fn probed(demo: &mut Demo, result: Result<String, CallError>) {
    if !demo
        .remediation
        .pending()
        .is_some_and(|r| r.stage == Stage::Probing)
    {
        return;
    }
    match result {
        Ok(said) => {
            demo.log
                .push(demo.now_ms, Level::Info, "remedy", format!("probe: {said}"));
            resolve(demo);
        }
        Err(e) => fail(demo, format!("its probe failed: {e}")),
    }
}

fn resolve(demo: &mut Demo) {
    let now = demo.now_ms;
    if let Some(run) = demo.remediation.pending_mut() {
        run.stage = Stage::Resolved;
        run.resolved_ms = Some(now);
        let after = run
            .approved_ms
            .map(|a| format!(" {} ms after approval", now.saturating_sub(a)))
            .unwrap_or_default();
        let msg = format!("resolved: {}{after}; every invariant is ok", run.name);
        demo.log.push(now, Level::Info, "remedy", msg);
    }
}

fn fail(demo: &mut Demo, reason: String) {
    let now = demo.now_ms;
    if let Some(run) = demo.remediation.pending_mut() {
        let msg = format!("remedy failed: {}: {reason}", run.name);
        run.stage = Stage::Failed { reason };
        demo.incidents.remedy_failed();
        demo.log.push(now, Level::Error, "remedy", msg);
    }
}

/// What a recovery chapter shows while the fixes are put back.
pub(super) const FAILING_BACK: &str = "putting back the fixes";

/// A recovery chapter, once its chaos is recovered: the fixes are put back
/// (a failover failed back), as an operator does after an incident, so the
/// next chapter starts where the demo expects. False when there is none.
pub(super) fn fail_back(demo: &mut Demo, fx: &mut Vec<Effect>) -> bool {
    if demo.remediation.applied.is_empty() {
        return false;
    }
    demo.log.push(
        demo.now_ms,
        Level::Info,
        "remedy",
        format!(
            "the chaos is recovered: putting back {} fix(es)",
            demo.remediation.applied.len()
        ),
    );
    demo.phase = super::state::ChapterPhase::Running {
        what: FAILING_BACK.into(),
    };
    undo_all(demo, fx);
    true
}

/// A proposal nobody approved before its fault ended is withdrawn, so the
/// next fault's diagnosis can propose again.
pub(super) fn withdraw_proposal(demo: &mut Demo, reason: &str) {
    if demo
        .remediation
        .pending()
        .is_some_and(|r| matches!(r.stage, Stage::Proposed | Stage::Confirming))
    {
        refuse(demo, reason);
    }
}

/// Quitting, once the chaos is recovered: every lasting change a remedy made is put back.
pub(super) fn undo_all(demo: &mut Demo, fx: &mut Vec<Effect>) {
    for (record, undo) in std::mem::take(&mut demo.remediation.applied) {
        demo.remediation.undoing += 1;
        fx.push(Effect::UndoRemedy { record, undo });
    }
}

pub(super) fn undone(
    demo: &mut Demo,
    record: String,
    result: Result<(), CallError>,
    fx: &mut Vec<Effect>,
) {
    demo.remediation.undoing = demo.remediation.undoing.saturating_sub(1);
    let (level, msg) = match result {
        Ok(()) => (Level::Info, format!("put back what {record} changed")),
        Err(e) => (
            Level::Error,
            format!("could not put back what {record} changed: {e}; it stays recorded for the next start"),
        ),
    };
    demo.log.push(demo.now_ms, level, "remedy", msg);
    if demo.remediation.undoing == 0
        && matches!(&demo.phase, super::state::ChapterPhase::Running { what } if what == FAILING_BACK)
    {
        demo.phase = super::state::ChapterPhase::Settled {
            since_ms: demo.now_ms,
        };
    }
    super::faults::exit_if_clean(demo, fx);
}
