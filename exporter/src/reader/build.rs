//! Turns events and top-level keys, as parsed, into a [`Trace`].
//!
//! Times are kept as read (nanoseconds on the file's own scale) until the whole file
//! is seen, because `baseTimeNanoseconds` may come after `traceEvents`;
//! [`Builder::finish`] then makes them absolute.

use std::collections::{BTreeMap, HashMap, HashSet};

use cutrace_tracer::model::{
    ApiCall, ApiKind, ConfigId, Device, GraphLaunch, HostRange, Iteration, Kernel, LaunchConfig,
    Memcpy, Memset, Names, Overhead, RangeKind, Synchronization, ThreadName, Trace,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::ReadErrorKind;
use super::event::{Args, Id, Number, OwnedText, Parsed, RawEvent, micros_to_ns};
use super::folding::{FoldedTrace, Folding, Unfoldable};
use super::gpu_names::{parse_memcpy, parse_memset, parse_sync};
use super::notes::{ReadNotes, TimeOrigin};
use super::scan::strip_trailing_commas;

/// What an `X` event's category makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Kernel,
    Memcpy,
    Memset,
    Runtime,
    Driver,
    Sync,
    CpuOp,
    UserAnnotation,
    GraphLaunch,
    Overhead,
    /// Data a writer derives from other events (GPU projections of host ranges).
    Derived,
    /// Device-side work of another accelerator (MTIA's command processor events):
    /// never host time.
    OtherDevice,
    /// Any other host slice.
    Other,
}

/// Categories by name, compared without case: older Kineto versions wrote
/// `Kernel`, `Memcpy`, `Runtime`, `Operator`.
const CATEGORIES: [(&str, Category); 18] = [
    ("kernel", Category::Kernel),
    ("gpu_memcpy", Category::Memcpy),
    ("memcpy", Category::Memcpy),
    ("gpu_memset", Category::Memset),
    ("memset", Category::Memset),
    ("cuda_runtime", Category::Runtime),
    ("runtime", Category::Runtime),
    ("cuda_driver", Category::Driver),
    ("driver", Category::Driver),
    ("cuda_sync", Category::Sync),
    ("cpu_op", Category::CpuOp),
    ("operator", Category::CpuOp),
    ("user_annotation", Category::UserAnnotation),
    ("cuda_graph", Category::GraphLaunch),
    ("overhead", Category::Overhead),
    ("gpu_user_annotation", Category::Derived),
    ("ac2g", Category::Derived),
    ("mtia_ccp_events", Category::OtherDevice),
];

fn category(cat: &str) -> Category {
    CATEGORIES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(cat))
        .map_or(Category::Other, |&(_, c)| c)
}

/// Top-level keys the writer writes anew from the model.
const REBUILT_KEYS: [&str; 5] = [
    "schemaVersion",
    "displayTimeUnit",
    "traceName",
    "traceEvents",
    "iterations",
];

/// Top-level keys whose values the model keeps: Kineto's, then those cutrace's
/// writer adds.
const WANTED_KEYS: [&str; 13] = [
    "baseTimeNanoseconds",
    "deviceProperties",
    "distributedInfo",
    "cupti_version",
    "cuda_driver_version",
    "cuda_runtime_version",
    "host_name",
    "dropped_records",
    "refused_buffers",
    "unknown_records",
    "incomplete_records",
    "window",
    "tracer_version",
];

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawDevice {
    id: Number,
    name: OwnedText,
    total_global_mem: Number,
    compute_major: Number,
    compute_minor: Number,
    max_threads_per_block: Number,
    max_threads_per_multiprocessor: Number,
    regs_per_block: Number,
    warp_size: Number,
    shared_mem_per_block: Number,
    num_sms: Number,
    regs_per_multiprocessor: Number,
    shared_mem_per_block_optin: Number,
    shared_mem_per_multiprocessor: Number,
}

impl RawDevice {
    fn into_device(self) -> Device {
        let u32_of = |n: Number| n.as_u32().unwrap_or(0);
        let u64_of = |n: Number| n.as_u64().unwrap_or(0);
        Device {
            id: u32_of(self.id),
            name: self.name.0.unwrap_or_default(),
            total_global_mem: u64_of(self.total_global_mem),
            compute_major: u32_of(self.compute_major),
            compute_minor: u32_of(self.compute_minor),
            max_threads_per_block: u32_of(self.max_threads_per_block),
            max_threads_per_multiprocessor: u32_of(self.max_threads_per_multiprocessor),
            regs_per_block: u32_of(self.regs_per_block),
            warp_size: u32_of(self.warp_size),
            shared_mem_per_block: u64_of(self.shared_mem_per_block),
            num_sms: u32_of(self.num_sms),
            regs_per_multiprocessor: u32_of(self.regs_per_multiprocessor),
            shared_mem_per_block_optin: u64_of(self.shared_mem_per_block_optin),
            shared_mem_per_multiprocessor: u64_of(self.shared_mem_per_multiprocessor),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawDistributedInfo {
    rank: Number,
    world_size: Number,
    /// What the model has no place for (`backend`, `pg_config`, ...).
    #[serde(flatten)]
    others: BTreeMap<String, serde::de::IgnoredAny>,
}

/// Parses `json`, retrying once without trailing commas.
fn parse_lenient<T: DeserializeOwned>(json: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(json).or_else(|err| {
        let fixed = strip_trailing_commas(json);
        if fixed.len() == json.len() {
            return Err(err);
        }
        serde_json::from_slice(&fixed).map_err(|_| err)
    })
}

/// Why the builder refused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The event is malformed: what is wrong with it.
    Malformed(String),
    /// It cannot be folded where it comes.
    Unfoldable,
}

impl From<String> for Refused {
    fn from(message: String) -> Self {
        Refused::Malformed(message)
    }
}

impl From<&str> for Refused {
    fn from(message: &str) -> Self {
        Refused::Malformed(message.to_owned())
    }
}

impl From<Unfoldable> for Refused {
    fn from(_: Unfoldable) -> Self {
        Refused::Unfoldable
    }
}

/// What the builder does with the events it takes.
#[derive(Debug, Default)]
enum Events {
    /// Keeps them in the trace.
    #[default]
    Kept,
    /// Folds them from the first one on, if the file is one cutrace wrote or
    /// `any_file` says any will do.
    ToFold { any_file: bool },
    /// Folds them, keeping in the trace only what the graph figures need.
    Folded(Box<Folding>),
}

/// The top-level key only cutrace's writer writes, before the events: the mark
/// of a file whose tracks come in the order folding needs.
const CUTRACE_KEY: &str = "refused_buffers";

/// Accumulates one file's events into a [`Trace`], or folds them into its report.
#[derive(Default)]
pub(crate) struct Builder {
    trace: Trace,
    events: Events,
    /// Whether the key only cutrace writes came before the events.
    written_by_cutrace: bool,
    base_time_ns: Option<i64>,
    min_ts: Option<i64>,
    /// The latest end of a kept event, on the file's scale.
    max_end: Option<i64>,
    configs: HashMap<LaunchConfig, ConfigId>,
    process_labels: HashMap<u32, String>,
    process_names: HashMap<u32, String>,
    thread_names: Vec<ThreadName>,
    gpu_pids: HashSet<u32>,
    /// Numbers handed to pids and tids that are not numbers, counting down from
    /// `u32::MAX` so they stay clear of real ones.
    synthetic_ids: HashMap<String, u32>,
    /// What was left out.
    notes: ReadNotes,
}

impl Builder {
    /// A builder for a trace whose worker name is `worker_name`.
    pub(crate) fn new(worker_name: String) -> Self {
        let mut builder = Builder::default();
        builder.trace.info.worker_name = worker_name;
        let t = &mut builder.trace;
        (t.kernels, t.memcpys, t.memsets) = (events(), events(), events());
        (t.api_calls, t.syncs, t.ranges) = (events(), events(), events());
        (t.graph_launches, t.overheads) = (events(), events());
        builder
    }

    /// A builder that folds the events into the report instead of keeping them,
    /// when the file is one cutrace wrote or `any_file` says any will do.
    pub(crate) fn folding(worker_name: String, any_file: bool) -> Self {
        Builder {
            events: Events::ToFold { any_file },
            ..Builder::new(worker_name)
        }
    }

    /// Whether the top-level key `key` holds something the model keeps.
    pub(crate) fn wants(key: &str) -> bool {
        WANTED_KEYS.contains(&key)
    }

    /// Whether the writer writes the top-level key `key` anew from the model.
    pub(crate) fn rebuilds(key: &str) -> bool {
        REBUILT_KEYS.contains(&key)
    }

    /// Notes a top-level key the model has no place for.
    pub(crate) fn skipped_key(&mut self, key: String) {
        self.notes.dropped_keys.push(key);
    }

    /// Takes the value of a wanted top-level key.
    pub(crate) fn top_level(&mut self, key: &str, json: &[u8]) -> Result<(), String> {
        let number = |json: &[u8]| parse_lenient::<Number>(json).map_err(|e| e.to_string());
        self.written_by_cutrace |= key == CUTRACE_KEY;
        let info = &mut self.trace.info;
        match key {
            "baseTimeNanoseconds" => {
                let base = number(json)?.as_i64();
                self.base_time_ns = Some(base.ok_or("not an integer number of nanoseconds")?);
            }
            "deviceProperties" => {
                let devices: Vec<RawDevice> = parse_lenient(json).map_err(|e| e.to_string())?;
                self.trace.devices = devices.into_iter().map(RawDevice::into_device).collect();
            }
            "distributedInfo" => {
                let dist: RawDistributedInfo = parse_lenient(json).map_err(|e| e.to_string())?;
                info.rank_known = dist.rank.as_u32().is_some();
                info.rank = dist.rank.as_u32().unwrap_or(0);
                info.world_size = dist.world_size.as_u32().unwrap_or(0);
                for other in dist.others.into_keys() {
                    self.notes
                        .dropped_keys
                        .push(format!("distributedInfo.{other}"));
                }
            }
            "cupti_version" => info.cupti_version = number(json)?.as_u32().unwrap_or(0),
            "cuda_driver_version" => info.cuda_driver_version = number(json)?.as_u32().unwrap_or(0),
            "cuda_runtime_version" => {
                info.cuda_runtime_version = number(json)?.as_u32().unwrap_or(0);
            }
            "host_name" | "tracer_version" => {
                let text: OwnedText = parse_lenient(json).map_err(|e| e.to_string())?;
                let text = text.0.unwrap_or_default();
                if key == "host_name" {
                    info.host_name = text;
                } else {
                    info.tracer_version = text;
                }
            }
            "dropped_records" => info.dropped_records = number(json)?.as_u64().unwrap_or(0),
            "refused_buffers" => info.refused_buffers = number(json)?.as_u64().unwrap_or(0),
            "unknown_records" => info.unknown_records = number(json)?.as_u64().unwrap_or(0),
            "incomplete_records" => info.incomplete_records = number(json)?.as_u64().unwrap_or(0),
            "window" => info.window = number(json)?.as_u32().unwrap_or(0),
            _ => {}
        }
        Ok(())
    }

    /// Takes one event as parsed, in file order.
    pub(crate) fn take(&mut self, parsed: &Parsed) -> Result<(), Refused> {
        if let Events::ToFold { any_file } = self.events {
            self.events = Events::Folded(self.start_folding(any_file)?);
        }
        match parsed {
            Parsed::Event(event) => self.add(event),
            Parsed::Fixed(json) => {
                let event = serde_json::from_slice::<RawEvent>(json).map_err(|e| e.to_string())?;
                self.add(&event)
            }
            Parsed::Failed(message) => Err(Refused::Malformed(message.clone())),
        }
    }

    /// The fold of a file whose events begin now: refused unless the file is one
    /// cutrace wrote or `any_file`.
    fn start_folding(&self, any_file: bool) -> Result<Box<Folding>, Unfoldable> {
        if any_file || self.written_by_cutrace {
            Ok(Box::new(Folding::new()))
        } else {
            Err(Unfoldable)
        }
    }

    /// Folds an event when folding, with `fold`, which says whether the trace
    /// keeps it too; every event is kept otherwise.
    fn keeps(
        &mut self,
        fold: impl FnOnce(&mut Folding, &Names) -> Result<bool, Unfoldable>,
    ) -> Result<bool, Unfoldable> {
        match &mut self.events {
            Events::Folded(folding) => fold(folding, &self.trace.names),
            Events::Kept | Events::ToFold { .. } => Ok(true),
        }
    }

    /// Whether `pid` is a device's, as far as the file has shown: a pid with GPU
    /// work or a label other than `CPU` (`GPU 0`, `MTIA 0`); nothing on it is
    /// host time.
    fn is_device(&self, pid: u32) -> bool {
        let label = self.process_labels.get(&pid).map_or("", String::as_str);
        !label.starts_with("CPU") && (self.gpu_pids.contains(&pid) || !label.is_empty())
    }

    // Events are taken by reference: at some 450 bytes each, moving them cost more
    // than anything the builder does with them.
    fn add(&mut self, event: &RawEvent) -> Result<(), Refused> {
        let what = match event.ph.as_str() {
            "X" => return self.complete(event),
            "M" => {
                self.metadata(event);
                return Ok(());
            }
            // The writer draws its own flows from launches to their GPU work.
            "s" | "f" | "t" if event.cat.as_str() == "ac2g" => return Ok(()),
            "s" | "f" | "t" => "flow events",
            "i" | "I" | "n" => "instant events",
            "C" => "counter events",
            "B" | "E" => "begin/end events",
            "b" | "e" => "async events",
            "P" => "sample events",
            "N" | "O" | "D" => "object events",
            _ => "events of other phases",
        };
        self.notes.drop_event(what);
        Ok(())
    }

    fn metadata(&mut self, event: &RawEvent) {
        let Some(pid) = event.pid.as_ref().and_then(Id::as_u32) else {
            return;
        };
        let none = Args::default();
        let args = event.args.as_ref().unwrap_or(&none);
        let value = args.name.as_str().to_owned();
        match event.name.as_str() {
            "process_name" => {
                self.process_names.insert(pid, value);
            }
            "process_labels" => {
                self.process_labels
                    .insert(pid, args.labels.as_str().to_owned());
            }
            "thread_name" => {
                if let Some(tid) = event.tid.as_ref().and_then(Id::as_u32) {
                    self.thread_names.push(ThreadName {
                        pid,
                        tid,
                        name: value,
                    });
                }
            }
            // The writer sorts processes and threads its own way.
            "process_sort_index" | "thread_sort_index" => {}
            _ => self.notes.drop_event("metadata events"),
        }
    }

    fn complete(&mut self, event: &RawEvent) -> Result<(), Refused> {
        let start = time(event.ts, "ts")?.ok_or("a complete event (\"ph\": \"X\") without ts")?;
        let dur = time(event.dur, "dur")?.unwrap_or(0).max(0);
        let end = start.saturating_add(dur);
        let cat = event.cat.as_str();
        let category = category(cat);
        let none = Args::default();
        let args = event.args.as_ref().unwrap_or(&none);
        let pid = event.pid.as_ref();
        let tid = event.tid.as_ref();
        let name = event.name.as_str();
        match category {
            Category::Kernel => {
                let config = LaunchConfig {
                    grid: args.grid.0,
                    block: args.block.0,
                    registers_per_thread: args.registers_per_thread.as_u32().unwrap_or(0),
                    // Kineto writes static plus dynamic as one number.
                    static_shared_memory: args.shared_memory.as_u32().unwrap_or(0),
                    dynamic_shared_memory: 0,
                };
                let config = self.config_id(config);
                let kernel = Kernel {
                    start,
                    end,
                    // Microseconds on the file's time scale, like `ts`; 0 is unknown.
                    queued: args.queued.micros_to_ns().unwrap_or(0),
                    graph_node_id: args.graph_node_id.as_u64().unwrap_or(0),
                    correlation: args.correlation.as_u64().unwrap_or(0),
                    name: self.trace.names.intern(name),
                    config,
                    stream: stream(args, tid),
                    context: args.context.as_u32().unwrap_or(0),
                    graph_id: args.graph_id.as_u32().unwrap_or(0),
                    device: self.device(args, pid),
                };
                if self.keeps(|f, names| f.kernel(&kernel, names))? {
                    self.trace.kernels.push(kernel);
                }
            }
            Category::Memcpy => {
                let (kind, src_kind, dst_kind) = parse_memcpy(name);
                let device = self.device(args, pid);
                let memcpy = Memcpy {
                    start,
                    end,
                    bytes: args.bytes.as_u64().unwrap_or(0),
                    correlation: args.correlation.as_u64().unwrap_or(0),
                    kind,
                    src_kind,
                    dst_kind,
                    device,
                    src_device: device,
                    dst_device: device,
                    context: args.context.as_u32().unwrap_or(0),
                    stream: stream(args, tid),
                    graph_node_id: args.graph_node_id.as_u64().unwrap_or(0),
                    name: Some(self.trace.names.intern(name)),
                };
                if self.keeps(|f, names| f.memcpy(&memcpy, names))? {
                    self.trace.memcpys.push(memcpy);
                }
            }
            Category::Memset => {
                let memset = Memset {
                    start,
                    end,
                    bytes: args.bytes.as_u64().unwrap_or(0),
                    correlation: args.correlation.as_u64().unwrap_or(0),
                    memory_kind: parse_memset(name),
                    device: self.device(args, pid),
                    context: args.context.as_u32().unwrap_or(0),
                    stream: stream(args, tid),
                    graph_node_id: args.graph_node_id.as_u64().unwrap_or(0),
                    name: Some(self.trace.names.intern(name)),
                };
                if self.keeps(|f, names| f.memset(&memset, names))? {
                    self.trace.memsets.push(memset);
                }
            }
            Category::Runtime | Category::Driver => {
                let pid = self.host_pid(pid);
                let call = ApiCall {
                    start,
                    end,
                    correlation: args.correlation.as_u64().unwrap_or(0),
                    external_id: args.external_id.as_u64().unwrap_or(0),
                    name: self.trace.names.intern(name),
                    kind: if category == Category::Runtime {
                        ApiKind::Runtime
                    } else {
                        ApiKind::Driver
                    },
                    cbid: args.cbid.as_u32().unwrap_or(0),
                    pid,
                    tid: self.host_tid(pid, tid),
                };
                if self.keeps(|f, names| f.call(&call, names))? {
                    self.trace.api_calls.push(call);
                }
            }
            Category::Sync => {
                // Kineto puts syncs on the device's track; `finish` moves each to the
                // thread of the API call that waited.
                let sync = Synchronization {
                    start,
                    end,
                    correlation: args.correlation.as_u64().unwrap_or(0),
                    kind: parse_sync(name),
                    stream: args.stream.as_u32().unwrap_or(u32::MAX),
                    context: args.context.as_u32().unwrap_or(0),
                    device: args
                        .device
                        .as_u32()
                        .or_else(|| pid.and_then(Id::as_u32))
                        .unwrap_or(0),
                    cuda_event: args.wait_on_cuda_event_id.as_u32().unwrap_or(0),
                    pid: pid.and_then(Id::as_u32).unwrap_or(0),
                    tid: tid.and_then(Id::as_u32).unwrap_or(0),
                    name: Some(self.trace.names.intern(name)),
                };
                if self.keeps(|f, names| f.sync(&sync, names))? {
                    self.trace.syncs.push(sync);
                }
            }
            Category::CpuOp | Category::UserAnnotation | Category::Other => {
                let kind = match category {
                    Category::CpuOp => RangeKind::CpuOp,
                    Category::UserAnnotation => RangeKind::UserAnnotation,
                    _ => RangeKind::Other,
                };
                // Other slices on a pid that is no number are the profiler's own
                // spans (`"pid": "Spans"`), not host work.
                if kind == RangeKind::Other && pid.and_then(Id::as_u32).is_none() {
                    self.notes.drop_event("profiler spans");
                    return Ok(());
                }
                // torch marks iterations as user annotations; PyTorch 1.8 and 1.9
                // wrote them as `Operator`s.
                if matches!(kind, RangeKind::UserAnnotation | RangeKind::CpuOp) {
                    if let Some(number) = name
                        .strip_prefix("ProfilerStep#")
                        .and_then(|n| n.parse().ok())
                    {
                        self.trace.iterations.push(Iteration { number, start, end });
                    }
                }
                let pid = self.host_pid(pid);
                let range = HostRange {
                    start,
                    end,
                    name: self.trace.names.intern(name),
                    category: self.trace.names.intern(cat),
                    kind,
                    external_id: args.external_id.as_u64().unwrap_or(0),
                    pid,
                    tid: self.host_tid(pid, tid),
                };
                let on_device = self.is_device(pid);
                if self.keeps(|f, names| f.range(&range, on_device, names))? {
                    self.trace.ranges.push(range);
                }
            }
            Category::GraphLaunch => {
                let launch = GraphLaunch {
                    start,
                    end,
                    correlation: args.correlation.as_u64().unwrap_or(0),
                    graph_id: args.graph_id.as_u32().unwrap_or(0),
                    device: self.device(args, pid),
                    context: args.context.as_u32().unwrap_or(0),
                    stream: stream(args, tid),
                };
                if self.keeps(|f, names| f.graph_launch(&launch, names))? {
                    self.trace.graph_launches.push(launch);
                }
            }
            Category::Overhead => {
                let pid = self.host_pid(pid);
                let overhead = Overhead {
                    start,
                    end,
                    name: self.trace.names.intern(name),
                    pid,
                    tid: self.host_tid(pid, tid),
                };
                self.trace.overheads.push(overhead);
            }
            Category::Derived => return Ok(()),
            Category::OtherDevice => {
                if let Some(pid) = pid.and_then(Id::as_u32) {
                    self.gpu_pids.insert(pid);
                }
                self.notes.drop_event("device events of other accelerators");
                return Ok(());
            }
        }
        self.min_ts = Some(self.min_ts.map_or(start, |t| t.min(start)));
        self.max_end = Some(self.max_end.map_or(end, |t| t.max(end)));
        Ok(())
    }

    fn config_id(&mut self, config: LaunchConfig) -> ConfigId {
        let trace = &mut self.trace;
        *self
            .configs
            .entry(config)
            .or_insert_with(|| trace.intern_config(config))
    }

    /// Device of a GPU event: `args.device`, else the pid (Kineto's device track).
    fn device(&mut self, args: &Args, pid: Option<&Id>) -> u32 {
        let pid = pid.and_then(Id::as_u32);
        if let Some(pid) = pid {
            self.gpu_pids.insert(pid);
        }
        args.device.as_u32().or(pid).unwrap_or(0)
    }

    fn synthetic_id(&mut self, text: String) -> (u32, bool) {
        let next = u32::MAX - u32::try_from(self.synthetic_ids.len()).unwrap_or(u32::MAX);
        let mut fresh = false;
        let id = *self.synthetic_ids.entry(text).or_insert_with(|| {
            fresh = true;
            next
        });
        (id, fresh)
    }

    fn host_pid(&mut self, pid: Option<&Id>) -> u32 {
        match pid {
            None => 0,
            Some(id) => match id.as_u32() {
                Some(n) => n,
                None => self.synthetic_id(format!("pid {}", id.to_text())).0,
            },
        }
    }

    /// A host thread id; one that is not a `u32` gets a stand-in number and keeps its
    /// text as the thread's name.
    fn host_tid(&mut self, pid: u32, tid: Option<&Id>) -> u32 {
        match tid {
            None => 0,
            Some(id) => match id.as_u32() {
                Some(n) => n,
                None => {
                    let text = id.to_text();
                    let (tid, fresh) = self.synthetic_id(format!("tid {pid} {text}"));
                    if fresh {
                        self.thread_names.push(ThreadName {
                            pid,
                            tid,
                            name: text,
                        });
                    }
                    tid
                }
            },
        }
    }

    /// The finished trace, with absolute times; an error when the base moves an
    /// event beyond the times an `i64` of nanoseconds holds.
    pub(crate) fn finish(self) -> Result<(Trace, ReadNotes), ReadErrorKind> {
        let settled = self.settle()?;
        Ok((settled.trace, settled.notes))
    }

    /// The report folded from the events, with what the trace kept of them;
    /// [`ReadErrorKind::Unfoldable`] when they could not be folded.
    pub(crate) fn finish_folded(mut self) -> Result<(FoldedTrace, ReadNotes), ReadErrorKind> {
        if let Events::ToFold { any_file } = self.events {
            // A file without events.
            let folding = self.start_folding(any_file);
            self.events = Events::Folded(folding.map_err(|_| ReadErrorKind::Unfoldable)?);
        }
        let Settled {
            trace,
            notes,
            folding,
            offset,
            device_pids,
        } = self.settle()?;
        let folding = folding.ok_or(ReadErrorKind::Unfoldable)?;
        let folded = folding.finish(trace, offset, |pid| device_pids.contains(&pid));
        Ok((folded.map_err(|_| ReadErrorKind::Unfoldable)?, notes))
    }

    /// The trace with absolute times, and what the fold needs to finish.
    fn settle(mut self) -> Result<Settled, ReadErrorKind> {
        let (offset, base) = match self.base_time_ns {
            Some(base) => (base, base),
            None => {
                self.notes.origin = TimeOrigin::EarliestEvent;
                (0, self.min_ts.map_or(0, |t| t.div_euclid(1000) * 1000))
            }
        };
        for time in [self.min_ts, self.max_end].into_iter().flatten() {
            if offset.checked_add(time).is_none() {
                return Err(ReadErrorKind::TimeOutOfRange { base: offset, time });
            }
        }
        self.trace.base_time_ns = base;
        if offset != 0 {
            shift_times(&mut self.trace, offset);
        }

        // A sync waits on the thread of the call that shares its correlation (the
        // last such call); only the syncs' correlations are looked for, not every
        // call's.
        let mut waiting_threads: HashMap<u64, Option<(u32, u32)>> = self
            .trace
            .syncs
            .iter()
            .filter(|s| s.correlation != 0)
            .map(|s| (s.correlation, None))
            .collect();
        if !waiting_threads.is_empty() {
            for c in &self.trace.api_calls {
                if let Some(thread) = waiting_threads.get_mut(&c.correlation) {
                    *thread = Some((c.pid, c.tid));
                }
            }
        }
        for sync in &mut self.trace.syncs {
            if let Some(&Some((pid, tid))) = waiting_threads.get(&sync.correlation) {
                sync.pid = pid;
                sync.tid = tid;
            }
        }

        let device_pids: HashSet<u32> = self
            .gpu_pids
            .iter()
            .chain(self.process_labels.keys())
            .copied()
            .filter(|&pid| self.is_device(pid))
            .collect();
        let host_slices = self.trace.ranges.len() + self.trace.overheads.len();
        self.trace.ranges.retain(|r| !device_pids.contains(&r.pid));
        self.trace
            .overheads
            .retain(|o| !device_pids.contains(&o.pid));
        let folding = match self.events {
            Events::Folded(folding) => Some(folding),
            Events::Kept | Events::ToFold { .. } => None,
        };
        let folded_out = folding.as_ref().map_or(0, |f| f.on_devices) as usize;
        let on_devices =
            host_slices + folded_out - self.trace.ranges.len() - self.trace.overheads.len();
        if on_devices > 0 {
            *self
                .notes
                .dropped_events
                .entry("host slices on device tracks".to_owned())
                .or_default() += on_devices as u64;
        }

        let mut seen = HashSet::new();
        for thread in self.thread_names {
            if device_pids.contains(&thread.pid) || !seen.insert((thread.pid, thread.tid)) {
                continue;
            }
            let name = strip_thread_label(thread.tid, &thread.name).to_owned();
            self.trace.threads.push(ThreadName { name, ..thread });
        }

        let host_pid = self
            .process_labels
            .iter()
            .filter(|(_, label)| label.as_str() == "CPU")
            .map(|(&pid, _)| pid)
            .min()
            .or_else(|| match &folding {
                Some(f) => f.first_call_pid.or(f.first_range_pid),
                None => (self.trace.api_calls.first().map(|c| c.pid))
                    .or_else(|| self.trace.ranges.first().map(|r| r.pid)),
            });
        if let Some(pid) = host_pid {
            self.trace.info.pid = pid;
            if let Some(name) = self.process_names.remove(&pid) {
                self.trace.info.process_name = name;
            }
        }
        self.trace.iterations.sort_by_key(|i| (i.start, i.number));
        Ok(Settled {
            trace: self.trace,
            notes: self.notes,
            folding,
            offset,
            device_pids,
        })
    }
}

/// A builder's trace with absolute times, and what a fold needs to finish.
struct Settled {
    trace: Trace,
    notes: ReadNotes,
    folding: Option<Box<Folding>>,
    /// What made the times absolute.
    offset: i64,
    device_pids: HashSet<u32>,
}

/// The nanoseconds of an optional `ts`/`dur` field.
/// Bytes each vector of events starts with. glibc maps a block of this size
/// apart from its heap while its threshold is still the initial 128 KiB, as it is
/// before reading frees anything, and a mapped block grows by remapping. Grown
/// from nothing, a vector would grow in place at the top of the heap until
/// something took the space above it, then move out and leave the heap holding
/// those pages: 30 MB more at the peak of a 1,000,000-launch report.
const FIRST_EVENTS_BYTES: usize = 256 << 10;

/// An empty vector of events with its first room: a power of two of them, as a
/// vector grown from nothing holds, so that doubling ends at the same capacity.
fn events<T>() -> Vec<T> {
    Vec::with_capacity((FIRST_EVENTS_BYTES / std::mem::size_of::<T>().max(1)).next_power_of_two())
}

fn time(value: Option<&RawValue>, field: &str) -> Result<Option<i64>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.get() == "null" {
        return Ok(None);
    }
    micros_to_ns(value.get())
        .map(Some)
        .ok_or_else(|| format!("{field} {} is not a number of microseconds", value.get()))
}

/// Stream of a GPU event: `args.stream`, else the tid (`7` or `"stream 7"`).
fn stream(args: &Args, tid: Option<&Id>) -> u32 {
    args.stream
        .as_u32()
        .or_else(|| {
            let tid = tid?;
            tid.as_u32().or_else(|| match tid {
                Id::Text(text) => text.split_whitespace().last()?.parse().ok(),
                Id::Int(_) => None,
            })
        })
        .unwrap_or(0)
}

/// Kineto names host threads `thread <tid> (<name>)`; the model keeps `<name>`.
fn strip_thread_label(tid: u32, name: &str) -> &str {
    name.strip_prefix("thread ")
        .and_then(|rest| rest.strip_prefix(tid.to_string().as_str()))
        .and_then(|rest| rest.strip_prefix(" ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or(name)
}

fn shift_times(trace: &mut Trace, offset: i64) {
    let shift = |t: &mut i64| *t = t.saturating_add(offset);
    for k in &mut trace.kernels {
        shift(&mut k.start);
        shift(&mut k.end);
        if k.queued != 0 {
            shift(&mut k.queued);
        }
    }
    for m in &mut trace.memcpys {
        shift(&mut m.start);
        shift(&mut m.end);
    }
    for m in &mut trace.memsets {
        shift(&mut m.start);
        shift(&mut m.end);
    }
    for c in &mut trace.api_calls {
        shift(&mut c.start);
        shift(&mut c.end);
    }
    for s in &mut trace.syncs {
        shift(&mut s.start);
        shift(&mut s.end);
    }
    for r in &mut trace.ranges {
        shift(&mut r.start);
        shift(&mut r.end);
    }
    for g in &mut trace.graph_launches {
        shift(&mut g.start);
        shift(&mut g.end);
    }
    for o in &mut trace.overheads {
        shift(&mut o.start);
        shift(&mut o.end);
    }
    for i in &mut trace.iterations {
        shift(&mut i.start);
        shift(&mut i.end);
    }
}
