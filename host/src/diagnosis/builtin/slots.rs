//! Dense slots for what recurs from poll to poll (a node's id, one metric of
//! one node): the same key always gets the same slot, numbered in the order
//! keys first appear. A window of a thousand-node cluster holds over a
//! hundred thousand readings, and a plugin lists its nodes in the same order
//! poll after poll: a key found at the position it had in the poll before
//! costs one comparison, and only the others are hashed.

use rustc_hash::FxHashMap;
use std::hash::Hash;

pub(super) struct Slots<K> {
    /// The key and slot at each position of the poll before.
    at: Vec<(K, usize)>,
    index: FxHashMap<K, usize>,
}

impl<K: Copy + Eq + Hash> Slots<K> {
    pub(super) fn new() -> Self {
        Slots {
            at: Vec::new(),
            index: FxHashMap::default(),
        }
    }

    /// The slot of `key`, found at `position` of the current poll, and
    /// whether it is new (seen here for the first time).
    pub(super) fn slot(&mut self, position: usize, key: K) -> (usize, bool) {
        if let Some(&(k, slot)) = self.at.get(position) {
            if k == key {
                return (slot, false);
            }
        }
        let next = self.index.len();
        let slot = *self.index.entry(key).or_insert(next);
        if position < self.at.len() {
            self.at[position] = (key, slot);
        } else {
            self.at.push((key, slot));
        }
        (slot, slot == next)
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn a_key_keeps_its_slot_wherever_it_appears() {
        let mut s = Slots::new();
        let polls: [&[&str]; 4] = [
            &["a", "b", "c"],
            &["a", "b", "c"],
            &["c", "a"],
            &["b", "d", "a", "c"],
        ];
        let mut got = Vec::new();
        for poll in polls {
            for (i, k) in poll.iter().enumerate() {
                got.push(s.slot(i, *k));
            }
        }
        let want = [
            (0, true),
            (1, true),
            (2, true),
            (0, false),
            (1, false),
            (2, false),
            (2, false),
            (0, false),
            (1, false),
            (3, true),
            (0, false),
            (2, false),
        ];
        assert_eq!(got, want);
    }
}
