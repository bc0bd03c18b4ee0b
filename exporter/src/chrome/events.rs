//! Serializing the planned events as Kineto JSON text: the header (top-level keys
//! and metadata events), the `X` events with their flows, and the footer.
//!
//! Names and per-launch kernel arguments are escaped and formatted once up front;
//! each event is then a handful of byte copies and integer conversions, which is
//! what lets millions of events be written in a second or two.

use cutrace_tracer::Trace;
use cutrace_tracer::model::{ApiKind, CopyKind, Device, LaunchConfig, NameId, RangeKind, SyncKind};

use super::json::{push_fixed6, push_float, push_int, push_str, push_time};
use super::occupancy::sm_load;
use super::plan::{Kind, Plan, Slice};
use crate::names::{memcpy_name, memset_name, sync_name};

/// Turns a [`Plan`] of a [`Trace`] into bytes.
pub(crate) struct Serializer<'a> {
    trace: &'a Trace,
    plan: &'a Plan,
    /// Each interned name as a JSON string literal.
    names: Vec<Vec<u8>>,
    /// Device ids in the order of [`Trace::devices`].
    device_ids: Vec<u32>,
    /// Kernel arguments that depend only on the launch configuration and the
    /// device, per (configuration, device slot); the last slot is "unknown device".
    launch_args: Vec<Vec<u8>>,
}

impl<'a> Serializer<'a> {
    /// Prepares the per-name and per-configuration text of `trace`.
    pub(crate) fn new(trace: &'a Trace, plan: &'a Plan) -> Self {
        let names = (0..trace.names.len())
            .map(|i| {
                let mut out = Vec::new();
                push_str(&mut out, trace.names.get(NameId(i as u32)));
                out
            })
            .collect();
        let device_ids: Vec<u32> = trace.devices.iter().map(|d| d.id).collect();
        let slots = device_ids.len() + 1;
        // One more configuration for ids the table does not know (all zero).
        let configs = trace.launch_configs.len() + 1;
        let mut launch_args = Vec::with_capacity(configs * slots);
        for c in 0..configs {
            let config = trace.launch_configs.get(c).copied().unwrap_or_default();
            for slot in 0..slots {
                launch_args.push(launch_args_text(&config, trace.devices.get(slot)));
            }
        }
        Serializer {
            trace,
            plan,
            names,
            device_ids,
            launch_args,
        }
    }

    /// Number of metadata events [`Serializer::header`] writes.
    pub(crate) fn metadata_events(&self) -> usize {
        self.plan.processes.len() * 3 + self.plan.threads.len() * 2
    }

    /// The file up to and including the metadata events, without a trailing comma.
    pub(crate) fn header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\n  \"schemaVersion\": 1,\n");
        self.device_properties(out);
        self.run_metadata(out);
        out.extend_from_slice(b"  \"traceEvents\": [");
        self.metadata_event_list(out);
    }

    /// `"deviceProperties": [...],` with Kineto's keys.
    fn device_properties(&self, out: &mut Vec<u8>) {
        let t = self.trace;
        out.extend_from_slice(b"  \"deviceProperties\": [");
        for (i, d) in t.devices.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n    {" } else { b",\n    {" });
            let mut first = true;
            let mut num = |out: &mut Vec<u8>, key: &str, value: u64| {
                out.extend_from_slice(if first { b"" } else { b", " });
                first = false;
                push_str(out, key);
                out.extend_from_slice(b": ");
                push_int(out, value);
            };
            num(out, "id", d.id.into());
            out.extend_from_slice(b", \"name\": ");
            push_str(out, &d.name);
            num(out, "totalGlobalMem", d.total_global_mem);
            num(out, "computeMajor", d.compute_major.into());
            num(out, "computeMinor", d.compute_minor.into());
            num(out, "maxThreadsPerBlock", d.max_threads_per_block.into());
            num(
                out,
                "maxThreadsPerMultiprocessor",
                d.max_threads_per_multiprocessor.into(),
            );
            num(out, "regsPerBlock", d.regs_per_block.into());
            num(out, "warpSize", d.warp_size.into());
            num(out, "sharedMemPerBlock", d.shared_mem_per_block);
            num(out, "numSms", d.num_sms.into());
            num(
                out,
                "regsPerMultiprocessor",
                d.regs_per_multiprocessor.into(),
            );
            num(out, "sharedMemPerBlockOptin", d.shared_mem_per_block_optin);
            num(
                out,
                "sharedMemPerMultiprocessor",
                d.shared_mem_per_multiprocessor,
            );
            out.push(b'}');
        }
        out.extend_from_slice(if t.devices.is_empty() {
            b"],\n"
        } else {
            b"\n  ],\n"
        });
    }

    /// The metadata keys from `cupti_version` to `baseTimeNanoseconds`.
    fn run_metadata(&self, out: &mut Vec<u8>) {
        let t = self.trace;
        let info = &t.info;
        let top_num = |out: &mut Vec<u8>, key: &str, value: u64| {
            out.extend_from_slice(b"  ");
            push_str(out, key);
            out.extend_from_slice(b": ");
            push_int(out, value);
            out.extend_from_slice(b",\n");
        };
        let top_str = |out: &mut Vec<u8>, key: &str, value: &str| {
            out.extend_from_slice(b"  ");
            push_str(out, key);
            out.extend_from_slice(b": ");
            push_str(out, value);
            out.extend_from_slice(b",\n");
        };
        top_num(out, "cupti_version", info.cupti_version.into());
        top_num(out, "cuda_driver_version", info.cuda_driver_version.into());
        top_num(
            out,
            "cuda_runtime_version",
            info.cuda_runtime_version.into(),
        );
        top_str(out, "host_name", &info.host_name);
        top_num(out, "dropped_records", info.dropped_records);
        top_num(out, "refused_buffers", info.refused_buffers);
        top_num(out, "unknown_records", info.unknown_records);
        top_num(out, "incomplete_records", info.incomplete_records);
        top_num(out, "window", info.window.into());
        out.extend_from_slice(b"  \"iterations\": [");
        for (i, it) in t.iterations.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"" } else { b", " });
            push_int(out, it.number);
        }
        out.extend_from_slice(b"],\n");
        top_str(out, "tracer_version", &info.tracer_version);
        // HTA finds the rank with the regex `"rank":\s+(\d+)`: the space matters.
        out.extend_from_slice(b"  \"distributedInfo\": {\"rank\": ");
        push_int(out, info.rank);
        out.extend_from_slice(b", \"world_size\": ");
        push_int(out, info.world_size);
        out.extend_from_slice(b"},\n  \"displayTimeUnit\": \"ms\",\n  \"baseTimeNanoseconds\": ");
        push_int(out, t.base_time_ns);
        out.extend_from_slice(b",\n");
    }

    /// The `M` events naming and ordering every process, thread and lane.
    fn metadata_event_list(&self, out: &mut Vec<u8>) {
        let info = &self.trace.info;
        let process_name = if info.process_name.is_empty() {
            "unknown"
        } else {
            info.process_name.as_str()
        };
        let mut first = true;
        let mut meta = |out: &mut Vec<u8>, name: &str, pid: u32, tid: u32| {
            out.extend_from_slice(if first {
                b"\n{\"name\":"
            } else {
                b",\n{\"name\":"
            });
            first = false;
            push_str(out, name);
            out.extend_from_slice(b",\"ph\":\"M\",\"pid\":");
            push_int(out, pid);
            out.extend_from_slice(b",\"tid\":");
            push_int(out, tid);
            out.extend_from_slice(b",\"args\":{");
        };
        for p in &self.plan.processes {
            meta(out, "process_name", p.pid, 0);
            out.extend_from_slice(b"\"name\":");
            push_str(out, process_name);
            out.extend_from_slice(b"}}");
            meta(out, "process_labels", p.pid, 0);
            out.extend_from_slice(b"\"labels\":");
            push_str(out, &p.label);
            out.extend_from_slice(b"}}");
            meta(out, "process_sort_index", p.pid, 0);
            out.extend_from_slice(b"\"sort_index\":");
            push_int(out, p.sort_index);
            out.extend_from_slice(b"}}");
        }
        for th in &self.plan.threads {
            meta(out, "thread_name", th.pid, th.tid);
            out.extend_from_slice(b"\"name\":");
            push_str(out, &th.name);
            out.extend_from_slice(b"}}");
            meta(out, "thread_sort_index", th.pid, th.tid);
            out.extend_from_slice(b"\"sort_index\":");
            push_int(out, th.sort_index);
            out.extend_from_slice(b"}}");
        }
    }

    /// The end of the file: closes `traceEvents` and names the trace.
    pub(crate) fn footer(&self, trace_name: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\n  ],\n  \"traceName\": ");
        push_str(out, trace_name);
        out.extend_from_slice(b"\n}\n");
    }

    /// Writes `slices` and their flow endpoints, each event preceded by a comma
    /// unless it is the very first of the file. Returns the number of events.
    pub(crate) fn slices(
        &self,
        slices: impl IntoIterator<Item = Slice>,
        first_in_file: bool,
        out: &mut Vec<u8>,
    ) -> usize {
        let mut events = 0;
        for s in slices {
            let s = &s;
            let mark = out.len();
            out.extend_from_slice(if first_in_file && events == 0 {
                b"\n"
            } else {
                b",\n"
            });
            let written = match s.kind {
                Kind::Kernel => self.kernel(s, out),
                Kind::Api => self.api_call(s, out),
                Kind::Memcpy => self.memcpy(s, out),
                Kind::Memset => self.memset(s, out),
                Kind::Sync => self.sync(s, out),
                Kind::Range => self.range(s, out),
                Kind::Projection => self.projection(s, out),
                Kind::GraphLaunch => self.graph_launch(s, out),
                Kind::Overhead => self.overhead(s, out),
            };
            match written {
                Some(()) => events += 1 + usize::from(s.flow),
                // The plan only points at events that exist; should one not, it is
                // left out rather than written half.
                None => out.truncate(mark),
            }
        }
        events
    }

    fn name(&self, id: NameId) -> &[u8] {
        self.names
            .get(id.0 as usize)
            .map_or(b"\"\"", |n| n.as_slice())
    }

    /// `{"ph":"X","cat":...,"name":...,"pid":..,"tid":..,"ts":..,"dur":..` — the
    /// caller closes the object.
    fn open_slice(&self, s: &Slice, cat: &[u8], name: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"ph\":\"X\",\"cat\":");
        out.extend_from_slice(cat);
        out.extend_from_slice(b",\"name\":");
        out.extend_from_slice(name);
        self.pid_tid_ts(s, s.start, out);
        out.extend_from_slice(b",\"dur\":");
        push_time(out, s.end.saturating_sub(s.start));
    }

    fn pid_tid_ts(&self, s: &Slice, ts: i64, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"pid\":");
        push_int(out, s.pid);
        out.extend_from_slice(b",\"tid\":");
        push_int(out, s.tid);
        out.extend_from_slice(b",\"ts\":");
        push_time(out, ts.saturating_sub(self.trace.base_time_ns));
    }

    /// The flow endpoint that follows slice `s`: `s` on a launch, `f` on GPU work.
    fn flow(&self, s: &Slice, correlation: u64, finish: bool, out: &mut Vec<u8>) {
        if !s.flow {
            return;
        }
        out.extend_from_slice(if finish {
            b",\n{\"ph\":\"f\",\"id\":"
        } else {
            b",\n{\"ph\":\"s\",\"id\":"
        });
        push_int(out, correlation);
        self.pid_tid_ts(s, s.start, out);
        out.extend_from_slice(if finish {
            b",\"cat\":\"ac2g\",\"name\":\"ac2g\",\"bp\":\"e\"}"
        } else {
            b",\"cat\":\"ac2g\",\"name\":\"ac2g\"}"
        });
    }

    fn external_id(&self, s: &Slice, out: &mut Vec<u8>) {
        push_external_id(out, self.plan.external_ids.get(s.kind, s.idx));
    }

    /// `"device":..,"context":..,"stream":..,"correlation":..`
    fn gpu_ids(out: &mut Vec<u8>, device: u32, context: u32, stream: u32, correlation: u64) {
        out.extend_from_slice(b"\"device\":");
        push_int(out, device);
        out.extend_from_slice(b",\"context\":");
        push_int(out, context);
        out.extend_from_slice(b",\"stream\":");
        push_int(out, stream);
        out.extend_from_slice(b",\"correlation\":");
        push_int(out, correlation);
    }

    fn kernel(&self, s: &Slice, out: &mut Vec<u8>) -> Option<()> {
        let k = self.trace.kernels.get(s.idx as usize)?;
        self.open_slice(s, b"\"kernel\"", self.name(k.name), out);
        out.extend_from_slice(b",\"args\":{");
        self.external_id(s, out);
        if k.queued != 0 {
            // Integer microseconds, as Kineto writes it, but on the file's time base.
            out.extend_from_slice(b"\"queued\":");
            push_int(
                out,
                k.queued
                    .saturating_sub(self.trace.base_time_ns)
                    .div_euclid(1000),
            );
            out.push(b',');
        }
        Self::gpu_ids(out, k.device, k.context, k.stream, k.correlation);
        out.push(b',');
        out.extend_from_slice(self.launch_args(k.config.0 as usize, k.device));
        if k.graph_id != 0 {
            out.extend_from_slice(b",\"graph id\":");
            push_int(out, k.graph_id);
        }
        if k.graph_node_id != 0 {
            out.extend_from_slice(b",\"graph node id\":");
            push_int(out, k.graph_node_id);
        }
        out.extend_from_slice(b"}}");
        self.flow(s, k.correlation, true, out);
        Some(())
    }

    fn launch_args(&self, config: usize, device: u32) -> &[u8] {
        let slots = self.device_ids.len() + 1;
        let config = config.min(self.trace.launch_configs.len());
        let slot = self
            .device_ids
            .iter()
            .position(|&d| d == device)
            .unwrap_or(slots - 1);
        self.launch_args
            .get(config * slots + slot)
            .map_or(&[], |a| a.as_slice())
    }

    fn api_call(&self, s: &Slice, out: &mut Vec<u8>) -> Option<()> {
        let a = self.trace.api_calls.get(s.idx as usize)?;
        let cat: &[u8] = match a.kind {
            ApiKind::Runtime => b"\"cuda_runtime\"",
            ApiKind::Driver => b"\"cuda_driver\"",
        };
        self.open_slice(s, cat, self.name(a.name), out);
        out.extend_from_slice(b",\"args\":{");
        push_external_id(out, a.external_id);
        out.extend_from_slice(b"\"cbid\":");
        push_int(out, a.cbid);
        out.extend_from_slice(b",\"correlation\":");
        push_int(out, a.correlation);
        out.extend_from_slice(b"}}");
        self.flow(s, a.correlation, false, out);
        Some(())
    }

    /// Arguments shared by memcpys and memsets after the ids.
    fn transfer_args(out: &mut Vec<u8>, bytes: u64, start: i64, end: i64, graph_node_id: u64) {
        out.extend_from_slice(b",\"bytes\":");
        push_int(out, bytes);
        let dur = end.saturating_sub(start);
        if dur > 0 {
            // Bytes per nanosecond is GB/s.
            out.extend_from_slice(b",\"memory bandwidth (GB/s)\":");
            push_float(out, bytes as f64 / dur as f64);
        }
        if graph_node_id != 0 {
            out.extend_from_slice(b",\"graph node id\":");
            push_int(out, graph_node_id);
        }
    }

    fn memcpy(&self, s: &Slice, out: &mut Vec<u8>) -> Option<()> {
        let m = self.trace.memcpys.get(s.idx as usize)?;
        let mut name = Vec::with_capacity(48);
        push_str(&mut name, &memcpy_name(self.trace, m));
        self.open_slice(s, b"\"gpu_memcpy\"", &name, out);
        out.extend_from_slice(b",\"args\":{");
        self.external_id(s, out);
        Self::gpu_ids(out, m.device, m.context, m.stream, m.correlation);
        if m.kind == CopyKind::PtoP {
            out.extend_from_slice(b",\"fromDevice\":");
            push_int(out, m.src_device);
            out.extend_from_slice(b",\"toDevice\":");
            push_int(out, m.dst_device);
        }
        Self::transfer_args(out, m.bytes, m.start, m.end, m.graph_node_id);
        out.extend_from_slice(b"}}");
        self.flow(s, m.correlation, true, out);
        Some(())
    }

    fn memset(&self, s: &Slice, out: &mut Vec<u8>) -> Option<()> {
        let m = self.trace.memsets.get(s.idx as usize)?;
        let mut name = Vec::with_capacity(32);
        push_str(&mut name, &memset_name(self.trace, m));
        self.open_slice(s, b"\"gpu_memset\"", &name, out);
        out.extend_from_slice(b",\"args\":{");
        self.external_id(s, out);
        Self::gpu_ids(out, m.device, m.context, m.stream, m.correlation);
        Self::transfer_args(out, m.bytes, m.start, m.end, m.graph_node_id);
        out.extend_from_slice(b"}}");
        self.flow(s, m.correlation, true, out);
        Some(())
    }

    fn sync(&self, s: &Slice, out: &mut Vec<u8>) -> Option<()> {
        let y = self.trace.syncs.get(s.idx as usize)?;
        let mut name = Vec::with_capacity(24);
        push_str(&mut name, &sync_name(self.trace, y));
        self.open_slice(s, b"\"cuda_sync\"", &name, out);
        out.extend_from_slice(b",\"args\":{\"cuda_sync_kind\":");
        out.extend_from_slice(&name);
        out.extend_from_slice(b",\"stream\":");
        if y.stream == u32::MAX {
            // No stream (context and event syncs): -1, which HTA reads as "not on a
            // stream", where CUPTI's invalid id would read as stream 4294967295.
            out.extend_from_slice(b"-1");
        } else {
            push_int(out, y.stream);
        }
        out.extend_from_slice(b",\"correlation\":");
        push_int(out, y.correlation);
        out.extend_from_slice(b",\"device\":");
        push_int(out, y.device);
        out.extend_from_slice(b",\"context\":");
        push_int(out, y.context);
        if y.kind == SyncKind::EventSync || y.kind == SyncKind::StreamWaitEvent {
            out.extend_from_slice(b",\"wait_on_cuda_event_id\":");
            push_int(out, y.cuda_event);
        }
        out.extend_from_slice(b"}}");
        Some(())
    }

    fn range(&self, s: &Slice, out: &mut Vec<u8>) -> Option<()> {
        let r = self.trace.ranges.get(s.idx as usize)?;
        let read_category = self.trace.names.get(r.category);
        let cat: &[u8] = match r.kind {
            RangeKind::Annotation | RangeKind::Nvtx => b"\"user_annotation\"",
            _ if !read_category.is_empty() => self.name(r.category),
            RangeKind::CpuOp => b"\"cpu_op\"",
            RangeKind::UserAnnotation | RangeKind::Other => b"\"user_annotation\"",
        };
        self.open_slice(s, cat, self.name(r.name), out);
        push_external_id_args(out, r.external_id);
        out.push(b'}');
        Some(())
    }

    fn projection(&self, s: &Slice, out: &mut Vec<u8>) -> Option<()> {
        let p = self.plan.projections.get(s.idx as usize)?;
        self.open_slice(s, b"\"gpu_user_annotation\"", self.name(p.name), out);
        push_external_id_args(out, p.external_id);
        out.push(b'}');
        Some(())
    }

    fn graph_launch(&self, s: &Slice, out: &mut Vec<u8>) -> Option<()> {
        let g = self.trace.graph_launches.get(s.idx as usize)?;
        let mut name = Vec::with_capacity(24);
        name.extend_from_slice(b"\"Graph ");
        push_int(&mut name, g.graph_id);
        name.push(b'"');
        self.open_slice(s, b"\"cuda_graph\"", &name, out);
        out.extend_from_slice(b",\"args\":{");
        self.external_id(s, out);
        out.extend_from_slice(b"\"graph id\":");
        push_int(out, g.graph_id);
        out.push(b',');
        Self::gpu_ids(out, g.device, g.context, g.stream, g.correlation);
        out.extend_from_slice(b"}}");
        self.flow(s, g.correlation, true, out);
        Some(())
    }

    fn overhead(&self, s: &Slice, out: &mut Vec<u8>) -> Option<()> {
        let o = self.trace.overheads.get(s.idx as usize)?;
        self.open_slice(s, b"\"overhead\"", self.name(o.name), out);
        out.push(b'}');
        Some(())
    }
}

/// The kernel arguments that follow from the launch configuration and the device:
/// registers, shared memory, per-SM figures (when the device is known), grid and
/// block.
fn launch_args_text(config: &LaunchConfig, device: Option<&Device>) -> Vec<u8> {
    let load = device.and_then(|d| sm_load(config, d));
    let mut out = Vec::new();
    push_key(&mut out, "registers per thread");
    push_int(&mut out, config.registers_per_thread);
    push_key(&mut out, "shared memory");
    push_int(
        &mut out,
        u64::from(config.static_shared_memory) + u64::from(config.dynamic_shared_memory),
    );
    if let Some(load) = load {
        push_key(&mut out, "blocks per SM");
        push_fixed6(&mut out, load.blocks_per_sm_micros);
        push_key(&mut out, "warps per SM");
        push_fixed6(&mut out, load.warps_per_sm_micros);
    }
    push_key(&mut out, "grid");
    push_dims(&mut out, config.grid);
    push_key(&mut out, "block");
    push_dims(&mut out, config.block);
    if let Some(load) = load {
        push_key(&mut out, "est. achieved occupancy %");
        push_int(&mut out, load.occupancy_percent);
    }
    out
}

/// Appends `"key":`, after a comma unless `out` is empty.
fn push_key(out: &mut Vec<u8>, key: &str) {
    if !out.is_empty() {
        out.push(b',');
    }
    push_str(out, key);
    out.push(b':');
}

/// Appends `[x,y,z]`.
fn push_dims(out: &mut Vec<u8>, dims: [u32; 3]) {
    out.push(b'[');
    push_int(out, dims[0]);
    out.push(b',');
    push_int(out, dims[1]);
    out.push(b',');
    push_int(out, dims[2]);
    out.push(b']');
}

/// Appends `"External id":<id>,` inside an `args` object; 0 links to nothing and
/// is left out.
fn push_external_id(out: &mut Vec<u8>, id: u64) {
    if id != 0 {
        out.extend_from_slice(b"\"External id\":");
        push_int(out, id);
        out.push(b',');
    }
}

/// Appends `,"args":{"External id":<id>}`, a range's only argument, when `id` is
/// not 0.
fn push_external_id_args(out: &mut Vec<u8>, id: u64) {
    if id != 0 {
        out.extend_from_slice(b",\"args\":{\"External id\":");
        push_int(out, id);
        out.push(b'}');
    }
}
