//! Text from parties the host does not control, made safe to print and to keep.
//!
//! Plugin strings reach stdout (headless progress, `inspect` tables, error
//! messages); ratatui drops control characters in the TUI, a plain terminal
//! does not, so an escape sequence in a node name could move the cursor,
//! recolour the screen or retitle the window. [`printable`] is the one filter
//! every line printed outside the TUI goes through.

use std::borrow::Cow;

/// `s` without control characters: line breaks and tabs become a space (a
/// table cell or progress line stays one line), every other C0/C1 control,
/// DEL and the bidirectional overrides (which can reorder what is shown) are
/// dropped.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .filter_map(|c| match c {
                '\n' | '\r' | '\t' => Some(' '),
                c if unsafe_char(c) => None,
                c => Some(c),
            })
            .collect(),
    )
}

fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character
/// boundary: cutting a string to a byte limit without splitting a character.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_and_breaks_do_not_reach_the_terminal() {
        assert_eq!(
            printable("node\u{1b}[2J\u{1b}]0;pwned\u{7}-1\nnext\tcol\u{202e}gnp.exe\u{7f}"),
            "node[2J]0;pwned-1 next colgnp.exe"
        );
        assert!(matches!(printable("plain → text"), Cow::Borrowed(_)));
    }

    #[test]
    fn prefix_never_splits_a_character() {
        assert_eq!(prefix("ab→cd", 3), "ab");
        assert_eq!(prefix("ab→cd", 5), "ab→");
        assert_eq!(prefix("abc", 10), "abc");
    }

    proptest! {
        #[test]
        fn printable_output_has_no_control_characters(s in any::<String>()) {
            let p = printable(&s);
            prop_assert!(!p.chars().any(unsafe_char));
            prop_assert_eq!(printable(&p), p.clone(), "idempotent");
        }

        #[test]
        fn prefix_is_a_prefix_within_the_limit(s in any::<String>(), max in 0usize..64) {
            let p = prefix(&s, max);
            prop_assert!(p.len() <= max && s.starts_with(p));
            prop_assert!(p.len() + 4 > max.min(s.len()), "cuts at most one character short");
        }
    }
}
