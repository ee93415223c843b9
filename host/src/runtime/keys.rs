//! Key bindings, k9s/kdash style: one key per verb, `?` for help, `/` to filter, esc to back out.

use crate::engine::state::UiState;
use crate::engine::Action;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key press means in the current input mode. `Ctrl-C` is handled by the loop.
pub fn map(ui: &UiState, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if ui.filter_editing {
        return match key.code {
            KeyCode::Enter => Some(Action::FilterEnd { keep: true }),
            KeyCode::Esc => Some(Action::FilterEnd { keep: false }),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                Some(Action::FilterInput(c))
            }
            _ => None,
        };
    }
    if ui.picker.is_some() {
        return match key.code {
            KeyCode::Up | KeyCode::Char('k') => Some(Action::PickerMove(-1)),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::PickerMove(1)),
            KeyCode::Enter => Some(Action::PickerChoose),
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('s') => Some(Action::Back),
            _ => None,
        };
    }
    match key.code {
        KeyCode::Char(' ') | KeyCode::Enter | KeyCode::Right | KeyCode::Char('n') => {
            Some(Action::Next)
        }
        KeyCode::Backspace | KeyCode::Left | KeyCode::Char('p') => Some(Action::Prev),
        KeyCode::Char('q') => Some(Action::Quit),
        KeyCode::Char('?') => Some(Action::ToggleHelp),
        KeyCode::Char('r') => Some(Action::Reload),
        KeyCode::Char('s') => Some(Action::SwitchSubject),
        KeyCode::Char('x') => Some(Action::RecoverAll),
        KeyCode::Char('d') => Some(Action::Diagnose),
        KeyCode::Char('a') => Some(Action::ApproveRemedy),
        KeyCode::Char('c') => Some(Action::RejectRemedy),
        KeyCode::Char('K') => Some(Action::KillSwitch),
        KeyCode::Char('/') => Some(Action::FilterStart),
        KeyCode::Esc => Some(Action::Back),
        KeyCode::Up | KeyCode::Char('k') => Some(Action::ScrollLog(1)),
        KeyCode::Down | KeyCode::Char('j') => Some(Action::ScrollLog(-1)),
        KeyCode::PageUp => Some(Action::ScrollLog(10)),
        KeyCode::PageDown => Some(Action::ScrollLog(-10)),
        KeyCode::Char(']') => Some(Action::ScrollHealth(10)),
        KeyCode::Char('}') => Some(Action::ScrollDiagnosis(3)),
        KeyCode::Char('{') => Some(Action::ScrollDiagnosis(-3)),
        KeyCode::Char('[') => Some(Action::ScrollHealth(-10)),
        _ => None,
    }
}

/// True for the key that interrupts (raw mode turns Ctrl-C into a key press).
pub fn is_interrupt(key: &KeyEvent) -> bool {
    key.kind != KeyEventKind::Release
        && key.modifiers.contains(KeyModifiers::CONTROL)
        && key.code == KeyCode::Char('c')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_mean_different_things_per_mode() {
        let mut ui = UiState::default();
        assert!(matches!(
            map(&ui, key(KeyCode::Char(' '))),
            Some(Action::Next)
        ));
        assert!(matches!(
            map(&ui, key(KeyCode::Char('q'))),
            Some(Action::Quit)
        ));
        assert!(matches!(
            map(&ui, key(KeyCode::Char('/'))),
            Some(Action::FilterStart)
        ));
        ui.filter_editing = true;
        assert!(matches!(
            map(&ui, key(KeyCode::Char('q'))),
            Some(Action::FilterInput('q'))
        ));
        assert!(matches!(
            map(&ui, key(KeyCode::Esc)),
            Some(Action::FilterEnd { keep: false })
        ));
        ui.filter_editing = false;
        ui.picker = Some(crate::engine::state::Picker {
            entries: vec![],
            selected: 0,
        });
        assert!(matches!(
            map(&ui, key(KeyCode::Char('j'))),
            Some(Action::PickerMove(1))
        ));
        assert!(matches!(
            map(&ui, key(KeyCode::Char('q'))),
            Some(Action::Back)
        ));
        assert!(is_interrupt(&KeyEvent::new(
            KeyCode::Char('c'),
            KeyModifiers::CONTROL
        )));
        assert!(!is_interrupt(&key(KeyCode::Char('c'))));
    }
}
