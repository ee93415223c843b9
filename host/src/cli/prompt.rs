//! Yes/no questions on the terminal, before the TUI starts.

use std::io::Write;

/// Asks on stderr and reads a line from stdin; an empty answer is yes.
pub fn confirm(prompt: &str) -> std::io::Result<bool> {
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let answer = line.trim().to_lowercase();
    Ok(answer.is_empty() || answer == "y" || answer == "yes")
}
