//! A trace's events as the columns of [`SCHEMA`](super::SCHEMA), one row group at a
//! time.

use crate::names::{memcpy_name, memset_name, sync_name};
use crate::{InIteration, IterationOf, RowKind};
use cutrace_tracer::Trace;
use cutrace_tracer::model::{
    ApiKind, CopyKind, LaunchConfig, Memcpy, MemoryKind, Memset, NameId, SyncKind, Synchronization,
};
use parquet::data_type::{ByteArray, ByteArrayType, DataType, Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::writer::SerializedFileWriter;
use rustc_hash::FxHashMap;

/// One nullable column: the values present and a definition level per row.
#[derive(Default)]
struct Nullable<T> {
    values: Vec<T>,
    levels: Vec<i16>,
}

impl<T> Nullable<T> {
    fn push(&mut self, value: Option<T>) {
        match value {
            Some(v) => {
                self.values.push(v);
                self.levels.push(1);
            }
            None => self.levels.push(0),
        }
    }

    fn clear(&mut self) {
        self.values.clear();
        self.levels.clear();
    }
}

/// The `kind` of CUPTI's own overhead, which has no key-averages row.
const OVERHEAD: &str = "overhead";

/// One event, as a row.
struct Row {
    pid: u32,
    iteration: Option<u64>,
    /// The key-averages row kind (`kernel`, `runtime`, `cpu_op`, ...), or [`OVERHEAD`].
    kind: ByteArray,
    name: ByteArray,
    device: Option<u32>,
    stream: Option<u32>,
    tid: Option<u32>,
    start: i64,
    end: i64,
    correlation: u64,
    graph_id: u32,
    graph_node_id: u64,
    bytes: Option<u64>,
    config: Option<LaunchConfig>,
}

impl Row {
    /// A host event's row, the fields of GPU events empty.
    fn host(kind: ByteArray, name: ByteArray, pid: u32, tid: u32, start: i64, end: i64) -> Row {
        Row {
            pid,
            iteration: None,
            kind,
            name,
            device: None,
            stream: None,
            tid: Some(tid),
            start,
            end,
            correlation: 0,
            graph_id: 0,
            graph_node_id: 0,
            bytes: None,
            config: None,
        }
    }
}

/// The columns of up to one row group.
pub(crate) struct Columns {
    host: ByteArray,
    window: i64,
    pid: Vec<i64>,
    iteration: Nullable<i64>,
    kind: Vec<ByteArray>,
    name: Vec<ByteArray>,
    device: Nullable<i64>,
    stream: Nullable<i64>,
    tid: Nullable<i64>,
    start: Vec<i64>,
    duration: Vec<i64>,
    correlation: Nullable<i64>,
    graph_id: Nullable<i64>,
    graph_node_id: Nullable<i64>,
    bytes: Nullable<i64>,
    /// grid x, y, z, block x, y, z, registers per thread.
    config: [Nullable<i32>; 7],
    shared_memory: Nullable<i64>,
}

/// A count that may not fit a signed column, saturated.
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn signed32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Columns {
    fn new(trace: &Trace, capacity: usize) -> Columns {
        Columns {
            host: ByteArray::from(trace.info.host_name.as_str()),
            window: i64::from(trace.info.window),
            pid: Vec::with_capacity(capacity),
            iteration: Nullable::default(),
            kind: Vec::with_capacity(capacity),
            name: Vec::with_capacity(capacity),
            device: Nullable::default(),
            stream: Nullable::default(),
            tid: Nullable::default(),
            start: Vec::with_capacity(capacity),
            duration: Vec::with_capacity(capacity),
            correlation: Nullable::default(),
            graph_id: Nullable::default(),
            graph_node_id: Nullable::default(),
            bytes: Nullable::default(),
            config: Default::default(),
            shared_memory: Nullable::default(),
        }
    }

    /// Rows held.
    pub(crate) fn len(&self) -> usize {
        self.start.len()
    }

    fn push(&mut self, row: Row) {
        self.pid.push(i64::from(row.pid));
        self.iteration.push(row.iteration.map(signed));
        self.kind.push(row.kind);
        self.name.push(row.name);
        self.device.push(row.device.map(i64::from));
        self.stream.push(row.stream.map(i64::from));
        self.tid.push(row.tid.map(i64::from));
        self.start.push(row.start);
        self.duration.push(row.end.saturating_sub(row.start));
        self.correlation
            .push((row.correlation != 0).then(|| signed(row.correlation)));
        self.graph_id
            .push((row.graph_id != 0).then(|| i64::from(row.graph_id)));
        self.graph_node_id
            .push((row.graph_node_id != 0).then(|| signed(row.graph_node_id)));
        self.bytes.push(row.bytes.map(signed));
        let config = row.config.map(|c| {
            [
                c.grid[0],
                c.grid[1],
                c.grid[2],
                c.block[0],
                c.block[1],
                c.block[2],
                c.registers_per_thread,
            ]
        });
        for (i, column) in self.config.iter_mut().enumerate() {
            column.push(config.map(|c| signed32(c[i])));
        }
        self.shared_memory.push(
            row.config
                .map(|c| i64::from(c.static_shared_memory) + i64::from(c.dynamic_shared_memory)),
        );
    }

    fn clear(&mut self) {
        self.pid.clear();
        self.iteration.clear();
        self.kind.clear();
        self.name.clear();
        self.device.clear();
        self.stream.clear();
        self.tid.clear();
        self.start.clear();
        self.duration.clear();
        self.correlation.clear();
        self.graph_id.clear();
        self.graph_node_id.clear();
        self.bytes.clear();
        for column in &mut self.config {
            column.clear();
        }
        self.shared_memory.clear();
    }

    /// Writes the rows held as one row group, the columns in the schema's order.
    pub(crate) fn write<W: std::io::Write + Send>(
        &self,
        writer: &mut SerializedFileWriter<W>,
    ) -> Result<(), ParquetError> {
        let n = self.len();
        let mut group = writer.next_row_group()?;
        let mut column = |write: &dyn Fn(
            &mut parquet::file::writer::SerializedColumnWriter<'_>,
        ) -> Result<(), ParquetError>|
         -> Result<(), ParquetError> {
            let mut next = group
                .next_column()?
                .ok_or_else(|| ParquetError::General("more columns than the schema".into()))?;
            write(&mut next)?;
            next.close()
        };
        column(&|c| required::<ByteArrayType>(c, &vec![self.host.clone(); n]))?;
        column(&|c| required::<Int64Type>(c, &self.pid))?;
        column(&|c| required::<Int64Type>(c, &vec![self.window; n]))?;
        column(&|c| optional::<Int64Type>(c, &self.iteration))?;
        column(&|c| required::<ByteArrayType>(c, &self.kind))?;
        column(&|c| required::<ByteArrayType>(c, &self.name))?;
        column(&|c| optional::<Int64Type>(c, &self.device))?;
        column(&|c| optional::<Int64Type>(c, &self.stream))?;
        column(&|c| optional::<Int64Type>(c, &self.tid))?;
        column(&|c| required::<Int64Type>(c, &self.start))?;
        column(&|c| required::<Int64Type>(c, &self.duration))?;
        column(&|c| optional::<Int64Type>(c, &self.correlation))?;
        column(&|c| optional::<Int64Type>(c, &self.graph_id))?;
        column(&|c| optional::<Int64Type>(c, &self.graph_node_id))?;
        column(&|c| optional::<Int64Type>(c, &self.bytes))?;
        for config in &self.config {
            column(&|c| optional::<Int32Type>(c, config))?;
        }
        column(&|c| optional::<Int64Type>(c, &self.shared_memory))?;
        group.close()?;
        Ok(())
    }
}

fn required<T: DataType>(
    column: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    values: &[T::T],
) -> Result<(), ParquetError> {
    column.typed::<T>().write_batch(values, None, None)?;
    Ok(())
}

fn optional<T: DataType>(
    column: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    values: &Nullable<T::T>,
) -> Result<(), ParquetError> {
    column
        .typed::<T>()
        .write_batch(&values.values, Some(&values.levels), None)?;
    Ok(())
}

/// Strings made once per distinct value: each row holds a shared reference.
struct Names {
    interned: Vec<ByteArray>,
    made: FxHashMap<Made, ByteArray>,
}

/// A name made from an event's fields rather than interned in the trace: for a
/// copy, memset or synchronization read without a name of its own, the name
/// Kineto builds from CUPTI's kinds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Made {
    Kind(&'static str),
    Memcpy(CopyKind, MemoryKind, MemoryKind),
    Memset(MemoryKind),
    Graph(u32),
    Sync(SyncKind),
}

impl Names {
    fn of(trace: &Trace) -> Names {
        Names {
            interned: (0..trace.names.len())
                .map(|i| ByteArray::from(trace.names.get(NameId(i as u32))))
                .collect(),
            made: FxHashMap::default(),
        }
    }

    fn interned(&self, id: NameId) -> ByteArray {
        self.interned
            .get(id.0 as usize)
            .cloned()
            .unwrap_or_else(|| ByteArray::from(""))
    }

    fn made(&mut self, made: Made, name: impl FnOnce() -> String) -> ByteArray {
        self.made
            .entry(made)
            .or_insert_with(|| ByteArray::from(name().into_bytes()))
            .clone()
    }

    fn memcpy(&mut self, trace: &Trace, m: &Memcpy) -> ByteArray {
        match m.name {
            Some(id) => self.interned(id),
            None => self.made(Made::Memcpy(m.kind, m.src_kind, m.dst_kind), || {
                memcpy_name(trace, m).into_owned()
            }),
        }
    }

    fn memset(&mut self, trace: &Trace, m: &Memset) -> ByteArray {
        match m.name {
            Some(id) => self.interned(id),
            None => self.made(Made::Memset(m.memory_kind), || {
                memset_name(trace, m).into_owned()
            }),
        }
    }

    fn sync(&mut self, trace: &Trace, s: &Synchronization) -> ByteArray {
        match s.name {
            Some(id) => self.interned(id),
            None => self.made(Made::Sync(s.kind), || sync_name(trace, s).into_owned()),
        }
    }

    fn kind(&mut self, kind: &'static str) -> ByteArray {
        self.made(Made::Kind(kind), || kind.to_owned())
    }
}

/// The `kind` strings of the events that are not host ranges.
struct Kinds {
    kernel: ByteArray,
    memcpy: ByteArray,
    memset: ByteArray,
    graph: ByteArray,
    runtime: ByteArray,
    driver: ByteArray,
    sync: ByteArray,
    overhead: ByteArray,
}

/// Hands every event of `trace` to `group`, in row groups of at most `rows` rows:
/// GPU work, then API calls, synchronizations, host ranges and CUPTI's overhead.
pub(crate) fn events(trace: &Trace, rows: usize, mut group: impl FnMut(&Columns)) {
    let mut columns = Columns::new(trace, rows.min(trace.event_count()));
    let iteration_of = IterationOf::new(trace);
    let number = |k: usize| trace.iterations[k].number;
    // GPU work: the iteration that launched it (none when the trace lacks its
    // launch), as "GPU time per iteration" counts it; host events: the one they
    // started in.
    let launched_in = |start: i64, correlation: u64| match iteration_of.of_work(start, correlation)
    {
        Some(InIteration::Launched(k)) => Some(number(k)),
        Some(InIteration::Unlaunched(_)) | None => None,
    };
    let started_in = |start: i64| iteration_of.containing(start).map(number);
    let mut names = Names::of(trace);
    let kinds = Kinds {
        kernel: names.kind(RowKind::Kernel.as_str()),
        memcpy: names.kind(RowKind::Memcpy.as_str()),
        memset: names.kind(RowKind::Memset.as_str()),
        graph: names.kind(RowKind::Graph.as_str()),
        runtime: names.kind(RowKind::Runtime.as_str()),
        driver: names.kind(RowKind::Driver.as_str()),
        sync: names.kind(RowKind::Sync.as_str()),
        overhead: names.kind(OVERHEAD),
    };
    let process = trace.info.pid;
    let mut push = |columns: &mut Columns, row: Row| {
        columns.push(row);
        if columns.len() == rows {
            group(columns);
            columns.clear();
        }
    };
    let gpu = |kind: ByteArray, name, start, end, correlation| Row {
        pid: process,
        iteration: launched_in(start, correlation),
        kind,
        name,
        device: None,
        stream: None,
        tid: None,
        start,
        end,
        correlation,
        graph_id: 0,
        graph_node_id: 0,
        bytes: None,
        config: None,
    };
    for k in &trace.kernels {
        let row = Row {
            device: Some(k.device),
            stream: Some(k.stream),
            graph_id: k.graph_id,
            graph_node_id: k.graph_node_id,
            config: Some(trace.config(k.config)),
            ..gpu(
                kinds.kernel.clone(),
                names.interned(k.name),
                k.start,
                k.end,
                k.correlation,
            )
        };
        push(&mut columns, row);
    }
    for m in &trace.memcpys {
        let name = names.memcpy(trace, m);
        let row = Row {
            device: Some(m.device),
            stream: Some(m.stream),
            graph_node_id: m.graph_node_id,
            bytes: Some(m.bytes),
            ..gpu(kinds.memcpy.clone(), name, m.start, m.end, m.correlation)
        };
        push(&mut columns, row);
    }
    for m in &trace.memsets {
        let name = names.memset(trace, m);
        let row = Row {
            device: Some(m.device),
            stream: Some(m.stream),
            graph_node_id: m.graph_node_id,
            bytes: Some(m.bytes),
            ..gpu(kinds.memset.clone(), name, m.start, m.end, m.correlation)
        };
        push(&mut columns, row);
    }
    for g in &trace.graph_launches {
        let id = g.graph_id;
        let name = names.made(Made::Graph(id), || format!("Graph {id}"));
        let row = Row {
            device: Some(g.device),
            stream: Some(g.stream),
            graph_id: g.graph_id,
            ..gpu(kinds.graph.clone(), name, g.start, g.end, g.correlation)
        };
        push(&mut columns, row);
    }
    for c in &trace.api_calls {
        let kind = match c.kind {
            ApiKind::Runtime => kinds.runtime.clone(),
            ApiKind::Driver => kinds.driver.clone(),
        };
        let row = Row {
            iteration: started_in(c.start),
            correlation: c.correlation,
            ..Row::host(kind, names.interned(c.name), c.pid, c.tid, c.start, c.end)
        };
        push(&mut columns, row);
    }
    for s in &trace.syncs {
        let name = names.sync(trace, s);
        let row = Row {
            iteration: started_in(s.start),
            device: Some(s.device),
            stream: (s.stream != u32::MAX).then_some(s.stream),
            correlation: s.correlation,
            ..Row::host(kinds.sync.clone(), name, s.pid, s.tid, s.start, s.end)
        };
        push(&mut columns, row);
    }
    for r in &trace.ranges {
        let kind = names.kind(RowKind::of_range(r.kind).as_str());
        let row = Row {
            iteration: started_in(r.start),
            ..Row::host(kind, names.interned(r.name), r.pid, r.tid, r.start, r.end)
        };
        push(&mut columns, row);
    }
    for o in &trace.overheads {
        let name = names.interned(o.name);
        let row = Row {
            iteration: started_in(o.start),
            ..Row::host(kinds.overhead.clone(), name, o.pid, o.tid, o.start, o.end)
        };
        push(&mut columns, row);
    }
    if columns.len() > 0 {
        group(&columns);
    }
}
