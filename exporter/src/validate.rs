//! A checker for written trace files: does a file follow `docs/formats.md` §1?
//!
//! It reads the file back (every gzip member) and checks what the writer promises
//! and what Perfetto and HTA need: the order of the top-level keys, the rank in the
//! form HTA's regex finds, metadata for every process and thread used, slices that
//! nest on each track at most [`MAX_DEPTH`] deep, matched `ac2g` flows whose ends
//! lie on slices, pids and tids that fit in 32 bits, and times written as
//! `<int>.<3 digits>`. Nesting is checked on the exact times and on the times
//! readers that parse `ts` and `dur` as doubles see (Perfetto rounds `ts * 1000`
//! to the nanosecond half away from zero, Python half to even), which differ
//! from 2^42 µs on. It reports every violation it finds rather than stopping at
//! the first, so a test failure shows the whole damage.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::ExportError;

/// Deepest nesting Perfetto accepts on one track.
pub const MAX_DEPTH: usize = 512;

const FIRST_KEYS: [&str; 2] = ["schemaVersion", "deviceProperties"];
const LAST_KEYS: [&str; 5] = [
    "distributedInfo",
    "displayTimeUnit",
    "baseTimeNanoseconds",
    "traceEvents",
    "traceName",
];
const METADATA_KEYS: [&str; 4] = [
    "cupti_version",
    "cuda_driver_version",
    "cuda_runtime_version",
    "host_name",
];

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Index of the offending event in `traceEvents`, when the rule is about one.
    pub event: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.event {
            Some(i) => write!(f, "event {i}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// Reads the trace at `path` (gzip, possibly multi-member, or plain JSON) and
/// returns every violation found; an empty list means the file is well formed.
pub fn validate_trace_file(path: &Path) -> Result<Vec<Violation>, ExportError> {
    let raw = std::fs::read(path).map_err(|e| ExportError::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| ExportError::io(path, e))?;
        out
    } else {
        raw
    };
    let text = String::from_utf8(bytes).map_err(|e| ExportError::Malformed {
        path: path.to_owned(),
        reason: format!("not utf-8: {e}"),
    })?;
    Ok(validate_trace_json(&text))
}

/// Checks the JSON text of a trace file; see [`validate_trace_file`].
pub fn validate_trace_json(text: &str) -> Vec<Violation> {
    let mut v = Checker::default();
    let top: TopLevel = match serde_json::from_str(text) {
        Ok(top) => top,
        Err(e) => {
            v.file(format!("not a JSON object: {e}"));
            return v.found;
        }
    };
    v.check_keys(&top);
    let rank = regex_lite::Regex::new(r#""rank":\s+(\d+)"#).map(|re| re.is_match(text));
    if !matches!(rank, Ok(true)) {
        v.file("no \"rank\": N (with a space after the colon) for HTA to find".to_owned());
    }
    match top
        .get("traceEvents")
        .map(|raw| serde_json::from_str::<Vec<&RawValue>>(raw.get()))
    {
        Some(Ok(events)) => v.check_events(&events),
        Some(Err(e)) => v.file(format!("traceEvents is not an array: {e}")),
        None => {}
    }
    v.found
}

/// The top-level object with its keys in file order.
struct TopLevel<'a>(Vec<(String, &'a RawValue)>);

impl<'a> TopLevel<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(TopLevel(entries))
            }
        }
        d.deserialize_map(Keys)
    }
}

/// The fields of an event the rules look at; `ts` and `dur` stay raw text.
#[derive(Deserialize)]
struct Event<'a> {
    ph: Option<String>,
    cat: Option<String>,
    name: Option<String>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    dur: Option<&'a RawValue>,
    pid: Option<Value>,
    tid: Option<Value>,
    id: Option<Value>,
    bp: Option<String>,
}

/// A track: (pid, tid).
type Track = (u32, u32);

/// A slice of a track: start and end in ns, and its event index.
type Span = (i64, i64, usize);

/// One end of a flow.
struct FlowEnd {
    event: usize,
    cat: Option<String>,
    name: Option<String>,
}

#[derive(Default)]
struct Checker {
    found: Vec<Violation>,
}

impl Checker {
    fn file(&mut self, reason: String) {
        self.found.push(Violation {
            event: None,
            reason,
        });
    }

    fn event(&mut self, event: usize, reason: String) {
        self.found.push(Violation {
            event: Some(event),
            reason,
        });
    }

    fn check_keys(&mut self, top: &TopLevel<'_>) {
        let keys: Vec<&str> = top.0.iter().map(|(k, _)| k.as_str()).collect();
        if keys.len() < FIRST_KEYS.len() + LAST_KEYS.len() || keys[..FIRST_KEYS.len()] != FIRST_KEYS
        {
            self.file(format!(
                "top-level keys must start with {FIRST_KEYS:?}, found {keys:?}"
            ));
        }
        if keys.len() < LAST_KEYS.len() || keys[keys.len() - LAST_KEYS.len()..] != LAST_KEYS {
            self.file(format!(
                "top-level keys must end with {LAST_KEYS:?}, found {keys:?}"
            ));
        }
        let middle_end = keys.len().saturating_sub(LAST_KEYS.len());
        let middle = keys
            .get(FIRST_KEYS.len().min(middle_end)..middle_end)
            .unwrap_or(&[]);
        for key in METADATA_KEYS {
            if !middle.contains(&key) {
                self.file(format!(
                    "metadata key {key:?} missing between deviceProperties and distributedInfo"
                ));
            }
        }
        let value = |key| {
            top.get(key)
                .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
        };
        if value("schemaVersion") != Some(Value::from(1)) {
            self.file("schemaVersion is not 1".to_owned());
        }
        if value("displayTimeUnit") != Some(Value::from("ms")) {
            self.file("displayTimeUnit is not \"ms\"".to_owned());
        }
        if !value("baseTimeNanoseconds").is_some_and(|v| v.is_i64() || v.is_u64()) {
            self.file("baseTimeNanoseconds is not an integer".to_owned());
        }
        if !value("traceName").is_some_and(|v| v.is_string()) {
            self.file("traceName is not a string".to_owned());
        }
        let info = value("distributedInfo");
        if !info
            .as_ref()
            .and_then(|i| i.get("rank"))
            .is_some_and(Value::is_u64)
        {
            self.file("distributedInfo has no integer rank".to_owned());
        }
    }

    fn check_events(&mut self, events: &[&RawValue]) {
        let mut process_names = BTreeSet::new();
        let mut thread_names = BTreeSet::new();
        let mut used: BTreeMap<Track, usize> = BTreeMap::new();
        // Per track: (start, end, event index), exact and as doubles read them.
        let mut slices: BTreeMap<Track, Vec<Span>> = BTreeMap::new();
        let mut slices_as_doubles: [BTreeMap<Track, Vec<Span>>; 2] = Default::default();
        // Per track: (ts, event index) of flow ends.
        let mut flow_points: BTreeMap<Track, Vec<(i64, usize)>> = BTreeMap::new();
        let mut flows: BTreeMap<String, (Vec<FlowEnd>, Vec<FlowEnd>)> = BTreeMap::new();

        for (i, raw) in events.iter().enumerate() {
            let e: Event<'_> = match serde_json::from_str(raw.get()) {
                Ok(e) => e,
                Err(err) => {
                    self.event(i, format!("not an event object: {err}"));
                    continue;
                }
            };
            let ph = e.ph.as_deref().unwrap_or("");
            let pid = self.id32(i, "pid", e.pid.as_ref());
            let tid = self.id32(i, "tid", e.tid.as_ref());
            let ts = e.ts.and_then(|t| self.time(i, "ts", t));
            let dur = e.dur.and_then(|d| self.time(i, "dur", d));
            if let Some(d) = dur.filter(|&d| d < 0) {
                self.event(i, format!("negative dur {d} ns"));
            }
            match ph {
                "M" => {
                    let (Some(pid), Some(tid)) = (pid, tid) else {
                        continue;
                    };
                    match e.name.as_deref() {
                        Some("process_name") => {
                            process_names.insert(pid);
                        }
                        Some("thread_name") => {
                            thread_names.insert((pid, tid));
                        }
                        _ => {}
                    }
                }
                "X" | "s" | "f" => {
                    let (Some(pid), Some(tid)) = (pid, tid) else {
                        if e.pid.is_none() || e.tid.is_none() {
                            self.event(i, format!("{ph} event without pid or tid"));
                        }
                        continue;
                    };
                    used.entry((pid, tid)).or_insert(i);
                    let Some(ts) = ts else {
                        if e.ts.is_none() {
                            self.event(i, format!("{ph} event without ts"));
                        }
                        continue;
                    };
                    if ph == "X" {
                        if e.name.is_none() || e.cat.is_none() {
                            self.event(i, "X event without name or cat".to_owned());
                        }
                        match dur {
                            Some(d) => {
                                slices.entry((pid, tid)).or_default().push((
                                    ts,
                                    ts.saturating_add(d.max(0)),
                                    i,
                                ));
                                let rounds: [fn(f64) -> f64; 2] =
                                    [f64::round, f64::round_ties_even];
                                for (list, round) in slices_as_doubles.iter_mut().zip(rounds) {
                                    if let (Some(t), Some(d)) = (
                                        e.ts.and_then(|t| as_double_reads(t.get(), round)),
                                        e.dur.and_then(|d| as_double_reads(d.get(), round)),
                                    ) {
                                        list.entry((pid, tid)).or_default().push((
                                            t,
                                            t.saturating_add(d.max(0)),
                                            i,
                                        ));
                                    }
                                }
                            }
                            None if e.dur.is_none() => {
                                self.event(i, "X event without dur".to_owned())
                            }
                            None => {}
                        }
                        continue;
                    }
                    let Some(id) = e.id.as_ref().map(|id| id.to_string()) else {
                        self.event(i, "flow event without id".to_owned());
                        continue;
                    };
                    if ph == "f" && e.bp.as_deref() != Some("e") {
                        self.event(i, "flow finish without \"bp\":\"e\"".to_owned());
                    }
                    flow_points.entry((pid, tid)).or_default().push((ts, i));
                    let end = FlowEnd {
                        event: i,
                        cat: e.cat,
                        name: e.name,
                    };
                    let pair = flows.entry(id).or_default();
                    if ph == "s" { &mut pair.0 } else { &mut pair.1 }.push(end);
                }
                _ => {}
            }
        }

        for (&(pid, tid), &i) in &used {
            if !process_names.contains(&pid) {
                self.event(i, format!("pid {pid} has no process_name metadata"));
            }
            if !thread_names.contains(&(pid, tid)) {
                self.event(
                    i,
                    format!("pid {pid} tid {tid} has no thread_name metadata"),
                );
            }
        }
        for (track, list) in &mut slices {
            self.check_nesting(*track, list, "");
        }
        // What the exact times break is said once, not again for the doubles.
        for reading in &mut slices_as_doubles {
            let flagged: BTreeSet<usize> = self.found.iter().filter_map(|v| v.event).collect();
            for (track, list) in reading {
                list.retain(|span| !flagged.contains(&span.2));
                self.check_nesting(*track, list, " as read in floating point");
            }
        }
        self.check_flows(&flows);
        for (track, points) in &flow_points {
            let empty = Vec::new();
            let list = slices.get(track).unwrap_or(&empty);
            self.check_flow_points(*track, list, points);
        }
    }

    /// A pid or tid: a JSON integer that fits in 32 bits unsigned.
    fn id32(&mut self, i: usize, key: &str, value: Option<&Value>) -> Option<u32> {
        let value = value?;
        match value.as_u64().map(u32::try_from) {
            Some(Ok(v)) => Some(v),
            _ => {
                self.event(i, format!("{key} {value} is not a uint32"));
                None
            }
        }
    }

    /// A time written as `<int>.<3 digits>`, in nanoseconds.
    fn time(&mut self, i: usize, key: &str, raw: &RawValue) -> Option<i64> {
        let text = raw.get();
        let parsed = parse_time(text);
        if parsed.is_none() {
            self.event(
                i,
                format!("{key} {text} is not written as <int>.<3 digits>"),
            );
        }
        parsed
    }

    /// Slices of one track must nest (closed-open) at most [`MAX_DEPTH`] deep;
    /// `reading` says which reading of the times broke the rule.
    fn check_nesting(&mut self, (pid, tid): Track, list: &mut [Span], reading: &str) {
        list.sort_by(|a, b| (a.0, b.1, a.2).cmp(&(b.0, a.1, b.2)));
        let mut open: Vec<(i64, usize)> = Vec::new();
        for &(start, end, i) in list.iter() {
            while open.last().is_some_and(|&(open_end, _)| open_end <= start) {
                open.pop();
            }
            if let Some(&(open_end, j)) = open.last() {
                if open_end < end {
                    self.event(
                        i,
                        format!("partially overlaps event {j} on pid {pid} tid {tid}{reading}"),
                    );
                }
            }
            open.push((end, i));
            if open.len() > MAX_DEPTH {
                self.event(
                    i,
                    format!("nests deeper than {MAX_DEPTH} on pid {pid} tid {tid}{reading}"),
                );
            }
        }
    }

    /// Each flow id has one start and one finish with equal cat and name.
    fn check_flows(&mut self, flows: &BTreeMap<String, (Vec<FlowEnd>, Vec<FlowEnd>)>) {
        for (id, (starts, finishes)) in flows {
            match (starts.as_slice(), finishes.as_slice()) {
                ([s], [f]) => {
                    if s.cat != f.cat || s.name != f.name {
                        self.event(
                            f.event,
                            format!(
                                "flow {id}: cat/name differ from its start (event {})",
                                s.event
                            ),
                        );
                    }
                }
                _ => {
                    let first = starts.iter().chain(finishes).map(|e| e.event).min();
                    self.found.push(Violation {
                        event: first,
                        reason: format!(
                            "flow {id}: {} start(s) and {} finish(es), expected one of each",
                            starts.len(),
                            finishes.len()
                        ),
                    });
                }
            }
        }
    }

    /// Each flow end lies inside (ends included) a slice of its own track.
    fn check_flow_points(
        &mut self,
        (pid, tid): Track,
        sorted_slices: &[Span],
        points: &[(i64, usize)],
    ) {
        // Sorted by start (check_nesting sorted them); a running maximum of ends
        // tells whether any slice starting at or before `ts` is still open at `ts`.
        let max_end: Vec<i64> = sorted_slices
            .iter()
            .scan(i64::MIN, |m, s| {
                *m = (*m).max(s.1);
                Some(*m)
            })
            .collect();
        for &(ts, i) in points {
            let n = sorted_slices.partition_point(|s| s.0 <= ts);
            if n == 0 || max_end[n - 1] < ts {
                self.event(
                    i,
                    format!("flow end at {ts} ns lies on no slice of pid {pid} tid {tid}"),
                );
            }
        }
    }
}

/// Microseconds as a reader that parses them into a double and rounds `us * 1000`
/// with `round` sees them, in nanoseconds.
fn as_double_reads(text: &str, round: fn(f64) -> f64) -> Option<i64> {
    let us: f64 = text.trim_matches('"').parse().ok()?;
    let ns = round(us * 1000.0);
    ns.is_finite().then_some(ns as i64)
}

/// Parses `-?<digits>.<3 digits>` microseconds into nanoseconds.
fn parse_time(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = unsigned.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.len() != 3 || !digits(frac) {
        return None;
    }
    let abs = int
        .parse::<i64>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(frac.parse::<i64>().ok()?)?;
    Some(if negative { -abs } else { abs })
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{"name":"p"}},
{"name":"thread_name","ph":"M","pid":1,"tid":1,"args":{"name":"thread 1 (p)"}},
{"name":"process_name","ph":"M","pid":0,"tid":0,"args":{"name":"p"}},
{"name":"thread_name","ph":"M","pid":0,"tid":7,"args":{"name":"stream 7 "}}"#;

    /// A well-formed file around `events` (appended after the metadata events).
    fn file_with(events: &str) -> String {
        let sep = if events.is_empty() { "" } else { ",\n" };
        format!(
            r#"{{
  "schemaVersion": 1,
  "deviceProperties": [],
  "cupti_version": 0,
  "cuda_driver_version": 0,
  "cuda_runtime_version": 0,
  "host_name": "h",
  "distributedInfo": {{"rank": 3, "world_size": 4}},
  "displayTimeUnit": "ms",
  "baseTimeNanoseconds": 1700000000000000000,
  "traceEvents": [
{META}{sep}{events}
  ],
  "traceName": "t.pt.trace.json.gz"
}}"#
        )
    }

    const GOOD: &str = r#"{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":1,"tid":1,"ts":0.000,"dur":5.000},
{"ph":"s","id":9,"pid":1,"tid":1,"ts":0.000,"cat":"ac2g","name":"ac2g"},
{"ph":"X","cat":"user_annotation","name":"outer","pid":1,"tid":1,"ts":-1.500,"dur":10.000},
{"ph":"X","cat":"kernel","name":"k","pid":0,"tid":7,"ts":6.000,"dur":0.000},
{"ph":"f","id":9,"pid":0,"tid":7,"ts":6.000,"cat":"ac2g","name":"ac2g","bp":"e"},
{"ph":"X","cat":"kernel","name":"k2","pid":0,"tid":7,"ts":6.000,"dur":2.000}"#;

    fn reasons(text: &str) -> Vec<String> {
        validate_trace_json(text)
            .into_iter()
            .map(|v| v.to_string())
            .collect()
    }

    fn assert_one(text: &str, needle: &str) {
        let got = reasons(text);
        assert!(
            got.len() == 1 && got[0].contains(needle),
            "expected one violation containing {needle:?}, got {got:?}"
        );
    }

    #[test]
    fn a_well_formed_file_passes() {
        assert_eq!(reasons(&file_with(GOOD)), Vec::<String>::new());
        assert_eq!(reasons(&file_with("")), Vec::<String>::new());
    }

    #[test]
    fn catches_key_order() {
        let text = file_with(GOOD).replacen(
            "  \"schemaVersion\": 1,\n  \"deviceProperties\": [],",
            "  \"deviceProperties\": [],\n  \"schemaVersion\": 1,",
            1,
        );
        assert_one(&text, "must start with");
        let text = file_with(GOOD).replacen(
            "  \"displayTimeUnit\": \"ms\",\n  \"baseTimeNanoseconds\": 1700000000000000000,",
            "  \"baseTimeNanoseconds\": 1700000000000000000,\n  \"displayTimeUnit\": \"ms\",",
            1,
        );
        assert_one(&text, "must end with");
        let text = file_with(GOOD).replacen("  \"host_name\": \"h\",\n", "", 1);
        assert_one(&text, "\"host_name\" missing");
    }

    #[test]
    fn catches_a_rank_hta_cannot_find() {
        let text = file_with(GOOD).replacen("\"rank\": 3", "\"rank\":3", 1);
        assert_one(&text, "rank");
    }

    #[test]
    fn catches_missing_metadata() {
        let text =
            file_with(r#"{"ph":"X","cat":"c","name":"n","pid":1,"tid":2,"ts":0.000,"dur":1.000}"#);
        assert_one(&text, "pid 1 tid 2 has no thread_name");
        let text =
            file_with(r#"{"ph":"X","cat":"c","name":"n","pid":5,"tid":1,"ts":0.000,"dur":1.000}"#);
        let got = reasons(&text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].contains("pid 5 has no process_name"), "{got:?}");
    }

    #[test]
    fn catches_partial_overlap_on_a_track() {
        let text = file_with(
            r#"{"ph":"X","cat":"c","name":"a","pid":1,"tid":1,"ts":0.000,"dur":10.000},
{"ph":"X","cat":"c","name":"b","pid":1,"tid":1,"ts":5.000,"dur":10.000}"#,
        );
        assert_one(&text, "event 5: partially overlaps event 4");
        // Touching is fine, and so is the same pair on two different tracks.
        let text = file_with(
            r#"{"ph":"X","cat":"c","name":"a","pid":1,"tid":1,"ts":0.000,"dur":10.000},
{"ph":"X","cat":"c","name":"b","pid":1,"tid":1,"ts":10.000,"dur":10.000},
{"ph":"X","cat":"c","name":"c","pid":0,"tid":7,"ts":5.000,"dur":10.000}"#,
        );
        assert_eq!(reasons(&text), Vec::<String>::new());
    }

    #[test]
    fn catches_overlaps_that_only_double_readers_see() {
        // nccl_data.json.gz converted: exactly, the kernel ends with the range; read
        // as doubles and rounded half to even (Python), the range starts and ends
        // a nanosecond early.
        let text = file_with(
            r#"{"ph":"X","cat":"gpu_user_annotation","name":"a","pid":1,"tid":1,"ts":4458676422880.181,"dur":97916.957},
{"ph":"X","cat":"kernel","name":"b","pid":1,"tid":1,"ts":4458676520793.586,"dur":3.552}"#,
        );
        assert_one(
            &text,
            "event 5: partially overlaps event 4 on pid 1 tid 1 as read in floating point",
        );
        assert_eq!(
            as_double_reads("4458676422880.181", f64::round),
            Some(4_458_676_422_880_181)
        );
        assert_eq!(
            as_double_reads("4458676422880.181", f64::round_ties_even),
            Some(4_458_676_422_880_180)
        );
    }

    #[test]
    fn catches_nesting_too_deep() {
        let events: Vec<String> = (0..=MAX_DEPTH)
            .map(|i| {
                format!(
                    r#"{{"ph":"X","cat":"c","name":"n","pid":1,"tid":1,"ts":{i}.000,"dur":{}.000}}"#,
                    10_000 - 2 * i
                )
            })
            .collect();
        assert_one(&file_with(&events.join(",\n")), "nests deeper than 512");
        assert_eq!(
            reasons(&file_with(&events[..MAX_DEPTH].join(",\n"))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn catches_unmatched_and_mismatched_flows() {
        let text = file_with(&GOOD.replace(r#""ph":"f","id":9"#, r#""ph":"f","id":8"#));
        let got = reasons(&text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got.iter().all(|r| r.contains("expected one of each")),
            "{got:?}"
        );
        let text = file_with(&GOOD.replace(
            r#""ts":6.000,"cat":"ac2g","name":"ac2g","bp":"e""#,
            r#""ts":6.000,"cat":"ac2g","name":"other","bp":"e""#,
        ));
        assert_one(&text, "cat/name differ");
        let text = file_with(&GOOD.replace(r#","bp":"e""#, ""));
        assert_one(&text, "bp");
    }

    #[test]
    fn catches_a_flow_end_outside_any_slice() {
        let text = file_with(&GOOD.replace(
            r#""ph":"f","id":9,"pid":0,"tid":7,"ts":6.000"#,
            r#""ph":"f","id":9,"pid":0,"tid":7,"ts":8.001"#,
        ));
        assert_one(&text, "lies on no slice");
        // Ends are included: a slice's last instant still holds a flow end.
        let text = file_with(&GOOD.replace(
            r#""ph":"f","id":9,"pid":0,"tid":7,"ts":6.000"#,
            r#""ph":"f","id":9,"pid":0,"tid":7,"ts":8.000"#,
        ));
        assert_eq!(reasons(&text), Vec::<String>::new());
    }

    #[test]
    fn catches_ids_beyond_uint32() {
        let text = file_with(&GOOD.replace(
            r#""pid":1,"tid":1,"ts":-1.500"#,
            r#""pid":1,"tid":4294967296,"ts":-1.500"#,
        ));
        assert_one(&text, "tid 4294967296 is not a uint32");
        let text = file_with(&GOOD.replace(
            r#""pid":1,"tid":1,"ts":-1.500"#,
            r#""pid":-1,"tid":1,"ts":-1.500"#,
        ));
        assert_one(&text, "pid -1 is not a uint32");
        let text = file_with(&GOOD.replace(
            r#""pid":1,"tid":1,"ts":-1.500"#,
            r#""pid":"1","tid":1,"ts":-1.500"#,
        ));
        assert_one(&text, "is not a uint32");
    }

    #[test]
    fn catches_times_not_written_with_three_decimals() {
        for bad in ["6", "6.0", "6.0000", "6e3", "\"6.000\"", "-6", "6.000e0"] {
            let text = file_with(&GOOD.replace(
                r#""ts":6.000,"dur":2.000"#,
                &format!(r#""ts":{bad},"dur":2.000"#),
            ));
            let got = reasons(&text);
            assert!(
                got.len() == 1 && got[0].contains("is not written as <int>.<3 digits>"),
                "{bad}: {got:?}"
            );
        }
        let text = file_with(&GOOD.replace(r#""dur":2.000"#, r#""dur":2.5"#));
        assert_one(&text, "dur 2.5 is not written");
    }

    #[test]
    fn catches_negative_durations() {
        let text = file_with(&GOOD.replace(r#""dur":2.000"#, r#""dur":-2.000"#));
        assert_one(&text, "negative dur");
    }

    #[test]
    fn catches_a_file_that_is_not_an_object() {
        assert_one("[]", "not a JSON object");
        assert_one("{\"schemaVersion\": 1", "not a JSON object");
    }

    #[test]
    fn parses_times_exactly() {
        assert_eq!(parse_time("540.100"), Some(540_100));
        assert_eq!(parse_time("-0.500"), Some(-500));
        assert_eq!(
            parse_time("1712195495505582.988"),
            Some(1_712_195_495_505_582_988)
        );
        assert_eq!(parse_time("99999999999999999.000"), None);
        assert_eq!(parse_time("1.5"), None);
    }
}
