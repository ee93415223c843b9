//! `update(&mut Demo, now, Action) -> Vec<Effect>`: every rule of the demo,
//! dispatched to the module of its concern (chapters, faults, observing
//! health, the diagnosis window, UI input).

use super::action::{Action, Effect};
use super::state::Demo;
use super::{chapters, diagnose, faults, input, observe, remedy};

pub use super::chapters::{enter, HEADLESS_DWELL_MS};
pub use super::diagnose::observation_window;

pub fn update(demo: &mut Demo, now_ms: u64, action: Action) -> Vec<Effect> {
    demo.now_ms = now_ms;
    let mut fx = Vec::new();
    match action {
        Action::Tick => {
            chapters::tick(demo, &mut fx);
            remedy::verify(demo, &mut fx);
        }
        Action::Next => chapters::next(demo, &mut fx),
        Action::Prev => chapters::prev(demo),
        Action::Quit => faults::quit(demo, &mut fx),
        Action::ToggleHelp => demo.ui.help = !demo.ui.help,
        Action::SwitchSubject => fx.push(Effect::Discover),
        Action::OpenPicker(entries) => input::open_picker(demo, entries),
        Action::PickerMove(delta) => input::picker_move(demo, delta),
        Action::PickerChoose => input::picker_choose(demo, &mut fx),
        Action::Reload => fx.push(Effect::Reload),
        Action::RecoverAll => faults::recover_all(demo, &mut fx),
        Action::Diagnose => diagnose::start_diagnosis(demo, &mut fx),
        Action::FilterStart => demo.ui.filter_editing = true,
        Action::FilterInput(c) => input::filter_input(demo, c),
        Action::FilterBackspace => {
            demo.ui.filter.pop();
        }
        Action::FilterEnd { keep } => input::filter_end(demo, keep),
        Action::ScrollLog(delta) => input::scroll_log(demo, delta),
        Action::ScrollHealth(delta) => input::scroll_health(demo, delta),
        Action::ScrollDiagnosis(delta) => {
            demo.ui.diagnosis_scroll = demo
                .ui
                .diagnosis_scroll
                .saturating_add_signed(delta as isize)
        }
        Action::Back => input::back(demo),
        Action::HealthPolled(Ok(snapshot)) => {
            observe::observe(demo, snapshot);
            remedy::verify(demo, &mut fx);
        }
        Action::HealthPolled(Err(e)) => observe::poll_failed(demo, e),
        Action::StepDone { chapter, result } => chapters::step_done(demo, chapter, result),
        Action::Injected {
            chapter,
            action,
            result,
        } => faults::injected(demo, chapter, action, result, &mut fx),
        Action::Recovered { fault_id, result } => {
            faults::recovered(demo, fault_id, result, &mut fx)
        }
        Action::DiagnosisChunk(text) => diagnose::chunk(demo, text),
        Action::DiagnosisDone(result) => diagnose::finish_diagnosis(demo, *result, &mut fx),
        Action::ApproveRemedy => remedy::approve(demo, &mut fx),
        Action::RejectRemedy => remedy::reject(demo),
        Action::KillSwitch => remedy::kill_switch(demo),
        Action::Remediated { record, result } => remedy::remediated(demo, record, result, &mut fx),
        Action::Probed(result) => remedy::probed(demo, result),
        Action::RemedyUndone { record, result } => remedy::undone(demo, record, result, &mut fx),
        Action::Log {
            at_ms,
            level,
            source,
            message,
        } => demo.log.push_unique(at_ms, level, source, message),
    }
    fx
}

/// Enters the first chapter; the runtime calls this once the subject is set up.
pub fn start(demo: &mut Demo) -> Vec<Effect> {
    let mut fx = Vec::new();
    enter(demo, 0, &mut fx);
    fx
}
