//! Writes a [`Trace`] as an Apache Parquet file of one row per event, so that
//! fleets of traces can be queried by an engine that reads Parquet (DuckDB, Spark,
//! Polars, ...). `cutrace convert --to parquet` puts one file per trace into a folder
//! partitioned by rank (`rank=<n>/`, the Hive layout those engines read as a
//! column); `docs/parquet.md` has the schema and the queries.
//!
//! The schema is [`SCHEMA`]; every time is in integer nanoseconds on the trace's own
//! clock (CUPTI's, which counts from the Unix epoch, for cutrace's traces). The rank
//! is not a column of the file: the folder gives it, and an engine that reads the
//! folder adds it (Spark refuses a column that is in both).
//!
//! The one design choice: the file is written with the `parquet` crate's column
//! writers, without arrow's in-memory arrays, one row group of at most
//! [`ROW_GROUP_ROWS`] rows at a time, so memory holds one row group whatever the size
//! of the trace. Strings repeat (names, kinds, the host) and are dictionary-encoded;
//! pages are Snappy-compressed. The file appears whole or not at all (a temporary
//! file renamed into place).

mod columns;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cutrace_tracer::Trace;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use self::columns::Columns;

/// The Parquet schema of an event row, in Parquet's message syntax. Optional columns
/// are null where they do not apply (a host call has no stream, a memcpy no grid).
pub const SCHEMA: &str = "
message cutrace_event {
  required binary host (STRING);
  required int64 pid;
  required int64 window;
  optional int64 iteration;
  required binary kind (STRING);
  required binary name (STRING);
  optional int64 device;
  optional int64 stream;
  optional int64 tid;
  required int64 start_ns;
  required int64 duration_ns;
  optional int64 correlation;
  optional int64 graph_id;
  optional int64 graph_node_id;
  optional int64 bytes;
  optional int32 grid_x;
  optional int32 grid_y;
  optional int32 grid_z;
  optional int32 block_x;
  optional int32 block_y;
  optional int32 block_z;
  optional int32 registers_per_thread;
  optional int64 shared_memory_bytes;
}
";

/// Rows per row group: memory holds one group's columns (about 250 bytes a row).
pub const ROW_GROUP_ROWS: usize = 1 << 17;

/// Why a Parquet file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct ParquetError {
    path: PathBuf,
    kind: ErrorKind,
}

/// What went wrong writing a file.
#[derive(Debug, thiserror::Error)]
enum ErrorKind {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// What a Parquet write produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetStats {
    /// Rows (events) written.
    pub rows: u64,
    /// Size of the file.
    pub bytes: u64,
}

/// Writes every event of `trace` to the Parquet file `path`, through a temporary
/// file in the same directory.
pub fn write_parquet(trace: &Trace, path: &Path) -> Result<ParquetStats, ParquetError> {
    let error = |kind: ErrorKind| ParquetError {
        path: path.to_owned(),
        kind,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = tempfile::Builder::new()
        .prefix(".cutrace-")
        .suffix(".parquet.tmp")
        .tempfile_in(dir)
        .map_err(|e| error(e.into()))?;
    let file = temporary
        .as_file()
        .try_clone()
        .map_err(|e| error(e.into()))?;
    let rows = write_to(trace, file, ROW_GROUP_ROWS).map_err(error)?;
    temporary
        .as_file()
        .sync_all()
        .map_err(|e| error(e.into()))?;
    // The temporary file is private; the output is for anyone who reads traces.
    #[cfg(unix)]
    std::fs::set_permissions(
        temporary.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(|e| error(e.into()))?;
    let file = temporary.persist(path).map_err(|e| error(e.error.into()))?;
    let bytes = file.metadata().map_err(|e| error(e.into()))?.len();
    Ok(ParquetStats { rows, bytes })
}

/// Writes the events of `trace` to `file` in row groups of `group_rows` rows.
fn write_to(trace: &Trace, file: File, group_rows: usize) -> Result<u64, ErrorKind> {
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let properties = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("cutrace {}", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    let mut writer = SerializedFileWriter::new(file, schema, properties)?;
    let mut rows = 0u64;
    let mut failed = None;
    columns::events(trace, group_rows, |group: &Columns| {
        if failed.is_none() {
            match group.write(&mut writer) {
                Ok(()) => rows += group.len() as u64,
                Err(e) => failed = Some(e),
            }
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    writer.close()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use cutrace_tracer::model::{
        ApiCall, CopyKind, HostRange, Iteration, Kernel, LaunchConfig, Memcpy, MemoryKind,
        RangeKind, SyncKind, Synchronization,
    };
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    use super::*;

    /// A small trace of every kind of event that matters: a kernel launched in
    /// iteration 1 that ran in iteration 2, a memcpy, a stream sync, a range.
    fn example() -> Trace {
        let mut t = Trace::default();
        t.info.host_name = "node3".into();
        t.info.pid = 77;
        t.info.window = 2;
        let launch = t.names.intern("cudaLaunchKernel");
        let gemm = t.names.intern("gemm");
        let step = t.names.intern("ProfilerStep#1");
        let config = t.intern_config(LaunchConfig {
            grid: [4, 2, 1],
            block: [128, 1, 1],
            registers_per_thread: 32,
            static_shared_memory: 1024,
            dynamic_shared_memory: 512,
        });
        t.iterations = vec![
            Iteration {
                number: 1,
                start: 0,
                end: 1_000,
            },
            Iteration {
                number: 2,
                start: 1_000,
                end: 2_000,
            },
        ];
        t.api_calls.push(ApiCall {
            start: 900,
            end: 950,
            correlation: 5,
            name: launch,
            pid: 77,
            tid: 78,
            ..Default::default()
        });
        t.kernels.push(Kernel {
            start: 1_100,
            end: 1_600,
            correlation: 5,
            name: gemm,
            config,
            stream: 7,
            device: 1,
            graph_id: 3,
            graph_node_id: 9,
            ..Default::default()
        });
        t.memcpys.push(Memcpy {
            start: 1_700,
            end: 1_750,
            bytes: 4096,
            kind: CopyKind::DtoH,
            src_kind: MemoryKind::Device,
            dst_kind: MemoryKind::Pinned,
            device: 1,
            stream: 7,
            ..Default::default()
        });
        t.syncs.push(Synchronization {
            start: 1_800,
            end: 1_900,
            kind: SyncKind::StreamSync,
            stream: 7,
            device: 1,
            pid: 77,
            tid: 78,
            ..Default::default()
        });
        t.ranges.push(HostRange {
            start: 0,
            end: 1_000,
            name: step,
            kind: RangeKind::Annotation,
            pid: 77,
            tid: 78,
            ..Default::default()
        });
        t
    }

    /// Every row of the file at `path`, each as (column, value) text pairs.
    fn rows(path: &Path) -> Vec<Vec<(String, String)>> {
        let reader = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
        reader
            .get_row_iter(None)
            .unwrap()
            .map(|row| {
                row.unwrap()
                    .get_column_iter()
                    .map(|(name, field)| {
                        let value = match field {
                            Field::Null => "null".to_owned(),
                            Field::Str(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (name.clone(), value)
                    })
                    .collect()
            })
            .collect()
    }

    fn column<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
        &row.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn the_schema_parses() {
        let schema = parse_message_type(SCHEMA).unwrap();
        assert_eq!(schema.get_fields().len(), 23);
    }

    #[test]
    fn every_event_is_a_row_with_its_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let stats = write_parquet(&example(), &path).unwrap();
        assert_eq!(stats.rows, 5);
        assert_eq!(stats.bytes, std::fs::metadata(&path).unwrap().len());
        let rows = rows(&path);
        let kinds: Vec<&str> = rows.iter().map(|r| column(r, "kind")).collect();
        assert_eq!(kinds, ["kernel", "memcpy", "runtime", "sync", "annotation"]);
        let kernel = &rows[0];
        let expected = [
            ("host", "node3"),
            ("pid", "77"),
            ("window", "2"),
            // Launched in iteration 1, though it ran in 2.
            ("iteration", "1"),
            ("name", "gemm"),
            ("device", "1"),
            ("stream", "7"),
            ("tid", "null"),
            ("start_ns", "1100"),
            ("duration_ns", "500"),
            ("correlation", "5"),
            ("graph_id", "3"),
            ("graph_node_id", "9"),
            ("bytes", "null"),
            ("grid_x", "4"),
            ("grid_y", "2"),
            ("grid_z", "1"),
            ("block_x", "128"),
            ("registers_per_thread", "32"),
            ("shared_memory_bytes", "1536"),
        ];
        for (name, value) in expected {
            assert_eq!(column(kernel, name), value, "{name}");
        }
        let memcpy = &rows[1];
        assert_eq!(column(memcpy, "name"), "Memcpy DtoH (Device -> Pinned)");
        assert_eq!(column(memcpy, "bytes"), "4096");
        // Its launch is not in the trace: no iteration launched it.
        assert_eq!(column(memcpy, "iteration"), "null");
        assert_eq!(column(memcpy, "grid_x"), "null");
        assert_eq!(column(memcpy, "correlation"), "null");
        let sync = &rows[3];
        assert_eq!(
            (column(sync, "name"), column(sync, "tid")),
            ("Stream Sync", "78")
        );
        assert_eq!((column(sync, "stream"), column(sync, "device")), ("7", "1"));
        let range = &rows[4];
        assert_eq!(
            (column(range, "iteration"), column(range, "stream")),
            ("1", "null")
        );
    }

    #[test]
    fn large_traces_go_in_row_groups_of_bounded_size() {
        let mut trace = example();
        let kernel = trace.kernels[0];
        for i in 0..1_000 {
            trace.kernels.push(Kernel {
                start: 10_000 + i,
                end: 10_001 + i,
                ..kernel
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let file = File::create(&path).unwrap();
        assert_eq!(write_to(&trace, file, 256).unwrap(), 1_005);
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let groups: Vec<i64> = (0..reader.num_row_groups())
            .map(|i| reader.metadata().row_group(i).num_rows())
            .collect();
        assert_eq!(groups, [256, 256, 256, 237]);
        assert_eq!(rows(&path).len(), 1_005);
    }

    #[test]
    fn an_unwritable_place_is_named_and_nothing_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/out.parquet");
        let err = write_parquet(&Trace::default(), &path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: ", path.display())),
            "{err}"
        );
        let empty = dir.path().join("empty.parquet");
        assert_eq!(write_parquet(&Trace::default(), &empty).unwrap().rows, 0);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the empty file: {left:?}");
    }
}
