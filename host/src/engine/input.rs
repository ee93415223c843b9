//! UI input that changes only what is shown: help, the subject picker, the
//! log filter and scroll, and backing out of whichever is open.

use super::action::Effect;
use super::state::{Demo, Picker};
use std::path::PathBuf;

pub(super) fn open_picker(demo: &mut Demo, entries: Vec<(String, PathBuf)>) {
    demo.ui.picker = Some(Picker {
        entries,
        selected: 0,
    });
}

pub(super) fn picker_move(demo: &mut Demo, delta: i32) {
    if let Some(p) = demo.ui.picker.as_mut() {
        let n = p.entries.len() as i64;
        if n > 0 {
            p.selected = (p.selected as i64 + delta as i64).rem_euclid(n) as usize;
        }
    }
}

pub(super) fn picker_choose(demo: &mut Demo, fx: &mut Vec<Effect>) {
    if let Some(p) = demo.ui.picker.take() {
        if let Some((_, path)) = p.entries.get(p.selected) {
            fx.push(Effect::Swap(path.clone()));
        }
    }
}

pub(super) fn filter_input(demo: &mut Demo, c: char) {
    if demo.ui.filter_editing {
        demo.ui.filter.push(c);
        demo.ui.log_scroll = 0;
    }
}

pub(super) fn filter_end(demo: &mut Demo, keep: bool) {
    demo.ui.filter_editing = false;
    if !keep {
        demo.ui.filter.clear();
    }
}

pub(super) fn scroll_log(demo: &mut Demo, delta: i32) {
    let max = demo.log.filtered(&demo.ui.filter).count().saturating_sub(1);
    demo.ui.log_scroll = (demo.ui.log_scroll as i64 + delta as i64).clamp(0, max as i64) as usize;
}

/// Esc closes the innermost thing open: help, then the picker, then the filter, then a notice.
pub(super) fn back(demo: &mut Demo) {
    if demo.ui.help {
        demo.ui.help = false;
    } else if demo.ui.picker.is_some() {
        demo.ui.picker = None;
    } else if demo.ui.filter_editing || !demo.ui.filter.is_empty() {
        demo.ui.filter_editing = false;
        demo.ui.filter.clear();
    } else {
        demo.ui.notice = None;
    }
}

pub(super) fn scroll_health(demo: &mut Demo, delta: i32) {
    let max = demo
        .timeline
        .latest()
        .map_or(0, |s| s.nodes.len().saturating_sub(1));
    demo.ui.health_scroll =
        (demo.ui.health_scroll as i64 + delta as i64).clamp(0, max as i64) as usize;
}
