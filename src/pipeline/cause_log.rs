//! [`CauseLog`]: log the first occurrence of each cause of a recurring error, count the rest.
//!
//! A camera that keeps sending a bad message at 30 Hz must not flood the log, yet the first
//! report of every distinct problem must be seen. A cause is the message with its numbers
//! blanked (`step 10 < 960` and `step 12 < 960` are one cause).

use std::collections::BTreeMap;

/// Distinct causes remembered; later new causes are counted under [`CauseLog::OVERFLOW`].
const MAX_CAUSES: usize = 64;

/// Per-cause counters of one error stream (one camera's input or processing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CauseLog {
    counts: BTreeMap<String, u64>,
}

impl CauseLog {
    /// The key of causes beyond the remembered ones.
    pub const OVERFLOW: &'static str = "(other causes)";

    /// Count `message`; true when it is the first of its cause (the caller logs it then).
    pub fn record(&mut self, message: &str) -> bool {
        let mut key = cause_of(message);
        if !self.counts.contains_key(&key) && self.counts.len() >= MAX_CAUSES {
            key = Self::OVERFLOW.to_string();
        }
        let n = self.counts.entry(key).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Occurrences per cause.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// Occurrences in total.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// `message` with every run of digits replaced by `#`.
fn cause_of(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_number = false;
    for c in message.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_of_each_cause_is_reported_once() {
        let mut log = CauseLog::default();
        assert!(log.record("/cam: step 10 < width x channels 960"));
        assert!(!log.record("/cam: step 12 < width x channels 960"));
        assert!(log.record("/cam: unknown encoding `rgb9`"));
        assert!(!log.record("/cam: unknown encoding `rgb9`"));
        assert_eq!(log.total(), 4);
        assert_eq!(
            log.counts().get("/cam: step # < width x channels #"),
            Some(&2)
        );
    }

    #[test]
    fn distinct_causes_are_bounded() {
        let mut log = CauseLog::default();
        let first: usize = (0..200)
            .map(|i| log.record(&format!("cause {}", "x".repeat(i))))
            .filter(|&f| f)
            .count();
        assert_eq!(first, MAX_CAUSES + 1); // 64 causes + the overflow bucket's first
        assert_eq!(log.counts().len(), MAX_CAUSES + 1);
        assert_eq!(log.counts()[CauseLog::OVERFLOW], 200 - MAX_CAUSES as u64);
        assert_eq!(log.total(), 200);
    }
}
