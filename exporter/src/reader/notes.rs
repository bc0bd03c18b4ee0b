//! What reading a trace left out of the [`Trace`](cutrace_tracer::Trace), so that
//! the tools can say so rather than drop it silently.

use std::collections::BTreeMap;

use super::scan::MAX_STRING;

/// Where the times of a read trace count from: the origin of `cutrace report`'s
/// iteration times and of `cutrace convert`'s `--from-us`/`--to-us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeOrigin {
    /// The file's `baseTimeNanoseconds`.
    #[default]
    BaseTime,
    /// The file has no base: its earliest event, rounded down to the microsecond.
    EarliestEvent,
}

/// What the model has no place for, counted while reading.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadNotes {
    /// Where the trace's times count from.
    pub origin: TimeOrigin,
    /// Strings longer than 64 KiB, cut to their first 64 KiB.
    pub cut_strings: u64,
    /// Events left out, by what they are (`"flow events"`, `"instant events"`).
    pub dropped_events: BTreeMap<String, u64>,
    /// Top-level keys left out, in file order (`"INFO"`, `"distributedInfo.backend"`).
    pub dropped_keys: Vec<String>,
}

impl ReadNotes {
    /// Counts one event of the kind `what` left out.
    pub(crate) fn drop_event(&mut self, what: &str) {
        match self.dropped_events.get_mut(what) {
            Some(n) => *n += 1,
            None => {
                self.dropped_events.insert(what.to_owned(), 1);
            }
        }
    }

    /// One line saying what was left out, `None` when nothing was.
    pub fn dropped(&self) -> Option<String> {
        let mut parts: Vec<String> = self
            .dropped_events
            .iter()
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
        if !self.dropped_keys.is_empty() {
            let keys: Vec<String> = self.dropped_keys.iter().map(|k| format!("{k:?}")).collect();
            let noun = if keys.len() == 1 { "key" } else { "keys" };
            parts.push(format!("top-level {noun} {}", keys.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// One line about cut strings, `None` when none was cut.
    pub fn cut(&self) -> Option<String> {
        match self.cut_strings {
            0 => None,
            1 => Some(format!(
                "1 string longer than {} KiB was cut to its first {} KiB",
                MAX_STRING / 1024,
                MAX_STRING / 1024
            )),
            n => Some(format!(
                "{n} strings longer than {} KiB were cut to their first {} KiB",
                MAX_STRING / 1024,
                MAX_STRING / 1024
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_read_as_one_line_each() {
        let mut notes = ReadNotes::default();
        assert_eq!((notes.dropped(), notes.cut()), (None, None));
        notes.drop_event("flow events");
        notes.drop_event("flow events");
        notes.drop_event("instant events");
        notes.dropped_keys.push("INFO".to_owned());
        assert_eq!(
            notes.dropped().unwrap(),
            "2 flow events, 1 instant events, top-level key \"INFO\""
        );
        notes.cut_strings = 3;
        assert_eq!(
            notes.cut().unwrap(),
            "3 strings longer than 64 KiB were cut to their first 64 KiB"
        );
    }
}
