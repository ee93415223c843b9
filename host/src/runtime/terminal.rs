//! Entering and leaving the alternate screen on every exit path.
//!
//! `ratatui::init` installs a panic hook that restores the terminal; the guard
//! restores it on the normal path; and an `atexit` handler restores it when
//! something calls `exit` behind our back (a plugin's abi_stable abort guard
//! calls `exit(1)`, skipping destructors).

use ratatui::DefaultTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static ACTIVE: AtomicBool = AtomicBool::new(false);

pub struct TerminalGuard;

impl TerminalGuard {
    pub fn enter() -> (DefaultTerminal, TerminalGuard) {
        static AT_EXIT: Once = Once::new();
        AT_EXIT.call_once(|| {
            // SAFETY: registers a plain extern "C" function without captured state.
            unsafe {
                libc::atexit(restore_at_exit);
            }
        });
        let terminal = ratatui::init();
        ACTIVE.store(true, Ordering::SeqCst);
        (terminal, TerminalGuard)
    }
}

/// Restores the terminal if this process put it in raw mode and has not restored it yet.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        ratatui::restore();
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

extern "C" fn restore_at_exit() {
    restore();
}
