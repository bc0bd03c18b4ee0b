//! [`ProfilerConfig`]: what to record, when, and where to write it; read from JSON
//! (vLLM's `--profiler-config '{"max_iters": 10}'` style) or from the environment.
//!
//! Every field has a default, unknown keys are errors, and every error is one line
//! naming the key (or the environment variable) and what is allowed.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::window::Schedule;

/// The environment variable holding a whole configuration as JSON.
pub const CONFIG_VAR: &str = "CUTRACE_CONFIG";

/// Where traces go when nothing says otherwise, relative to the working directory.
pub const DEFAULT_OUTPUT_DIR: &str = "cutrace_traces";

const MIB: u64 = 1024 * 1024;

/// What to record, when, and where to write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfilerConfig {
    /// Iterations after `start()` before recording begins.
    #[serde(deserialize_with = "count")]
    pub delay_iters: u64,
    /// Iterations recorded per window; 0 records until `stop()`.
    #[serde(deserialize_with = "count")]
    pub max_iters: u64,
    /// The last iterations of the delay, during which collection runs and what it
    /// gathers is discarded; at most `delay_iters` of them happen.
    #[serde(deserialize_with = "count")]
    pub warmup_iters: u64,
    /// Windows recorded back to back per `start()`; 0 repeats until `stop()`. More
    /// than 1 needs `max_iters` above 0.
    #[serde(deserialize_with = "count")]
    pub repeat: u64,
    /// What to record.
    pub activities: BTreeSet<Activity>,
    /// How kernels launched from CUDA graphs are recorded.
    pub graph_mode: GraphMode,
    /// Bytes per CUPTI activity buffer; more than 0 and a multiple of 8.
    #[serde(deserialize_with = "count")]
    pub buffer_size: u64,
    /// Memory cap of the buffer pool, MiB; at least one buffer. Records that find no
    /// free buffer are dropped and counted.
    #[serde(deserialize_with = "count")]
    pub max_buffer_mb: u64,
    /// Record when each kernel was queued and submitted, at some cost.
    pub latency_timestamps: bool,
    /// Directory the traces and tables are written to; created when missing.
    pub output_dir: PathBuf,
    /// Worker name in file names; unset means `<hostname>_<pid>`.
    pub worker_name: Option<String>,
    /// Distributed rank; unset: `RANK`, else `LOCAL_RANK`, else 0.
    pub rank: Option<u32>,
    /// Distributed world size; unset: `WORLD_SIZE`, else the rank + 1.
    pub world_size: Option<u32>,
    /// Sort key of the key-averages table.
    pub sort_by: SortKey,
    /// Rows of the key-averages table; -1 prints all.
    pub row_limit: i64,
    /// Where `start()` and `stop()` come from when cutrace is injected into a
    /// program (`cutrace run`); the C ABI and the Rust API call them themselves.
    pub capture_range: CaptureRange,
    /// NVTX ranges whose names match this glob (`*`, `?`, `[...]`) are iterations:
    /// each end of one is a `step()`. Unset: NVTX ranges are only recorded.
    pub nvtx_step: Option<String>,
    /// With `capture_range` `none`: milliseconds after CUDA initialises before
    /// `start()`; not together with `delay_iters`.
    #[serde(deserialize_with = "count")]
    pub delay_ms: u64,
    /// With `capture_range` `none`: milliseconds from `start()` to `stop()`; 0 runs
    /// to the end of the process.
    #[serde(deserialize_with = "count")]
    pub duration_ms: u64,
    /// Milliseconds that the exit of a program cutrace is injected into, and
    /// `cutrace_shutdown`, wait for the last windows to be written. Past that, at
    /// exit they are lost, with a warning naming them, and nothing of them is left
    /// on disk; after `cutrace_shutdown` they are written in the background.
    #[serde(deserialize_with = "count")]
    pub shutdown_wait_ms: u64,
}

/// Where an injected tracer's `start()` and `stop()` come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CaptureRange {
    /// Start when CUDA initialises (after `delay_ms`), stop at exit (or after
    /// `duration_ms`).
    #[default]
    #[serde(rename = "none")]
    None,
    /// The program's `cudaProfilerStart()`/`cudaProfilerStop()` (or `cuProfiler*`),
    /// as `nsys --capture-range=cudaProfilerApi`.
    #[serde(rename = "cudaProfilerApi")]
    CudaProfilerApi,
}

/// A kind of activity CUPTI records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activity {
    /// Kernel executions.
    Kernel,
    /// Memory copies.
    Memcpy,
    /// Memsets.
    Memset,
    /// CUDA runtime API calls.
    Runtime,
    /// CUDA driver API calls.
    Driver,
    /// Host waits on the GPU (synchronizations).
    Sync,
    /// NVTX ranges and markers.
    Nvtx,
    /// CUPTI's own overhead.
    Overhead,
}

impl Activity {
    /// Every activity, in order.
    pub const ALL: [Activity; 8] = [
        Activity::Kernel,
        Activity::Memcpy,
        Activity::Memset,
        Activity::Runtime,
        Activity::Driver,
        Activity::Sync,
        Activity::Nvtx,
        Activity::Overhead,
    ];

    /// Its name in configurations.
    pub fn name(self) -> &'static str {
        match self {
            Activity::Kernel => "kernel",
            Activity::Memcpy => "memcpy",
            Activity::Memset => "memset",
            Activity::Runtime => "runtime",
            Activity::Driver => "driver",
            Activity::Sync => "sync",
            Activity::Nvtx => "nvtx",
            Activity::Overhead => "overhead",
        }
    }
}

/// How kernels launched from CUDA graphs are recorded (CUPTI gives one or the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphMode {
    /// Every kernel of a replayed graph, with its graph and node id.
    #[default]
    Node,
    /// One record per graph launch: far cheaper, no kernel detail.
    Graph,
}

/// Sort key of the key-averages table, as torch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Self CUDA time, descending.
    #[default]
    SelfCudaTimeTotal,
    /// Total CUDA time, descending.
    CudaTimeTotal,
    /// Self CPU time, descending.
    SelfCpuTimeTotal,
    /// Total CPU time, descending.
    CpuTimeTotal,
    /// Number of calls, descending.
    Count,
}

impl SortKey {
    /// Every key, in the order help texts list them.
    pub const ALL: [SortKey; 5] = [
        SortKey::SelfCudaTimeTotal,
        SortKey::CudaTimeTotal,
        SortKey::SelfCpuTimeTotal,
        SortKey::CpuTimeTotal,
        SortKey::Count,
    ];

    /// The key's name as torch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::SelfCudaTimeTotal => "self_cuda_time_total",
            SortKey::CudaTimeTotal => "cuda_time_total",
            SortKey::SelfCpuTimeTotal => "self_cpu_time_total",
            SortKey::CpuTimeTotal => "cpu_time_total",
            SortKey::Count => "count",
        }
    }
}

impl std::fmt::Display for SortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sort key name that is not one of [`SortKey::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown sort key '{0}' (expected one of: self_cuda_time_total, cuda_time_total, self_cpu_time_total, cpu_time_total, count)"
)]
pub struct UnknownSortKey(pub String);

impl std::str::FromStr for SortKey {
    type Err = UnknownSortKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SortKey::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownSortKey(s.to_owned()))
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text is not a JSON object.
    #[error("profiler config is not a JSON object: {0}")]
    NotAnObject(serde_json::Error),
    /// A key is unknown, or its value has the wrong type.
    #[error("invalid profiler config: {key}: {message}")]
    Key {
        /// The key, with its path inside lists (`activities[1]`).
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// Values that cannot work, alone or together.
    #[error("invalid profiler config: {problem}")]
    Invalid {
        /// The fields involved.
        fields: &'static [&'static str],
        /// What is wrong and what is allowed.
        problem: String,
    },
    /// An environment variable (or several) set one of the above.
    #[error("{var}: {error}")]
    Env {
        /// The variable's name; several are joined with `, `.
        var: String,
        /// What is wrong with its value.
        error: Box<ConfigError>,
    },
}

impl ConfigError {
    fn in_var(self, var: &str) -> Self {
        ConfigError::Env {
            var: var.to_string(),
            error: Box::new(self),
        }
    }
}

/// How a field's `CUTRACE_<FIELD>` variable spells its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// A JSON scalar: `10`, `true`, `null`.
    Scalar,
    /// Text taken as it is.
    Text,
    /// Comma-separated names.
    List,
}

/// Every field with the spelling of its `CUTRACE_<FIELD>` variable and, for the two
/// vLLM has its own variables for, their names.
pub const CONFIG_FIELDS: [(&str, Spelling, Option<&str>); 20] = [
    (
        "delay_iters",
        Spelling::Scalar,
        Some("VLLM_PROFILER_DELAY_ITERS"),
    ),
    (
        "max_iters",
        Spelling::Scalar,
        Some("VLLM_PROFILER_MAX_ITERS"),
    ),
    ("warmup_iters", Spelling::Scalar, None),
    ("repeat", Spelling::Scalar, None),
    ("activities", Spelling::List, None),
    ("graph_mode", Spelling::Text, None),
    ("buffer_size", Spelling::Scalar, None),
    ("max_buffer_mb", Spelling::Scalar, None),
    ("latency_timestamps", Spelling::Scalar, None),
    ("output_dir", Spelling::Text, None),
    ("worker_name", Spelling::Text, None),
    ("rank", Spelling::Scalar, None),
    ("world_size", Spelling::Scalar, None),
    ("sort_by", Spelling::Text, None),
    ("row_limit", Spelling::Scalar, None),
    ("capture_range", Spelling::Text, None),
    ("nvtx_step", Spelling::Text, None),
    ("delay_ms", Spelling::Scalar, None),
    ("duration_ms", Spelling::Scalar, None),
    ("shutdown_wait_ms", Spelling::Scalar, None),
];

/// The environment variable that sets `field`: `CUTRACE_<FIELD>`.
pub fn field_var(field: &str) -> String {
    format!("CUTRACE_{}", field.to_ascii_uppercase())
}

impl Spelling {
    fn value(self, raw: &str) -> Value {
        match self {
            // Not JSON: kept as text, so the type error shows what was written.
            Spelling::Scalar => serde_json::from_str(raw).unwrap_or_else(|_| raw.into()),
            Spelling::Text => raw.into(),
            Spelling::List => raw
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(Value::from)
                .collect(),
        }
    }
}

impl Default for ProfilerConfig {
    fn default() -> Self {
        Self {
            delay_iters: 0,
            max_iters: 0,
            warmup_iters: 0,
            repeat: 1,
            activities: BTreeSet::from([
                Activity::Kernel,
                Activity::Memcpy,
                Activity::Memset,
                Activity::Runtime,
                Activity::Sync,
                Activity::Nvtx,
            ]),
            graph_mode: GraphMode::Node,
            buffer_size: 8 * MIB,
            max_buffer_mb: 128,
            latency_timestamps: false,
            output_dir: PathBuf::from(DEFAULT_OUTPUT_DIR),
            worker_name: None,
            rank: None,
            world_size: None,
            sort_by: SortKey::SelfCudaTimeTotal,
            row_limit: 100,
            capture_range: CaptureRange::None,
            nvtx_step: None,
            delay_ms: 0,
            duration_ms: 0,
            shutdown_wait_ms: 30_000,
        }
    }
}

impl ProfilerConfig {
    /// Reads a JSON object such as `{"max_iters": 10}`; missing keys take their defaults.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config = deserialize(parse_object(text)?)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads the process environment; see [`from_env_vars`](Self::from_env_vars).
    /// Values that are not UTF-8 are read lossily.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_vars(|name| {
            std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// Reads the environment that `var` looks variables up in. From lowest to highest
    /// precedence: the defaults, vLLM's `VLLM_PROFILER_DELAY_ITERS` and
    /// `VLLM_PROFILER_MAX_ITERS`, the JSON object in `CUTRACE_CONFIG`, and one
    /// `CUTRACE_<FIELD>` variable per field (`CUTRACE_MAX_ITERS=10`,
    /// `CUTRACE_ACTIVITIES=kernel,memcpy`, `CUTRACE_OUTPUT_DIR=/tmp/traces`). Errors
    /// name the variable. vLLM's variables are left out when `capture_range` is
    /// `cudaProfilerApi`: vLLM has then counted its steps itself before it calls
    /// `cudaProfilerStart`, and counting them again would wait for steps that never
    /// come.
    pub fn from_env_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut fields = Map::new();
        // Which variable set each field, to name it when values do not fit together.
        let mut origin: HashMap<String, String> = HashMap::new();
        if let Some(text) = var(CONFIG_VAR) {
            fields = parse_object(&text).map_err(|e| e.in_var(CONFIG_VAR))?;
            deserialize(fields.clone()).map_err(|e| e.in_var(CONFIG_VAR))?;
            origin.extend(fields.keys().map(|key| (key.clone(), CONFIG_VAR.into())));
        }
        let program_counts = match var(&field_var("capture_range")) {
            Some(raw) => raw == "cudaProfilerApi",
            None => fields.get("capture_range").and_then(Value::as_str) == Some("cudaProfilerApi"),
        };
        for (field, spelling, vllm) in CONFIG_FIELDS {
            let vllm = vllm.filter(|_| !program_counts);
            let ours = field_var(field);
            let found = match var(&ours) {
                Some(raw) => Some((ours, raw)),
                None if fields.contains_key(field) => None,
                None => vllm.and_then(|name| var(name).map(|raw| (name.to_string(), raw))),
            };
            let Some((name, raw)) = found else {
                continue;
            };
            let value = spelling.value(&raw);
            deserialize(Map::from_iter([(field.to_string(), value.clone())]))
                .map_err(|e| e.in_var(&name))?;
            fields.insert(field.to_string(), value);
            origin.insert(field.to_string(), name);
        }
        let config = deserialize(fields)?;
        config.validate().map_err(|error| {
            let mut vars: Vec<&str> = match &error {
                ConfigError::Invalid { fields, .. } => fields
                    .iter()
                    .filter_map(|field| origin.get(*field).map(String::as_str))
                    .collect(),
                _ => Vec::new(),
            };
            vars.dedup();
            if vars.is_empty() {
                error
            } else {
                error.in_var(&vars.join(", "))
            }
        })?;
        Ok(config)
    }

    /// The iteration schedule the window state machine follows.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            delay_iters: self.delay_iters,
            max_iters: self.max_iters,
            warmup_iters: self.warmup_iters,
            repeat: self.repeat,
        }
    }

    /// How long a shutdown waits for the last windows (`shutdown_wait_ms`).
    pub fn shutdown_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.shutdown_wait_ms)
    }

    /// Whether an NVTX range named `name` marks an iteration (see `nvtx_step`).
    pub fn is_nvtx_step(&self, name: &str) -> bool {
        self.nvtx_step
            .as_deref()
            .and_then(|pattern| glob::Pattern::new(pattern).ok())
            .is_some_and(|pattern| pattern.matches(name))
    }

    /// Checks the values that the types let through.
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |fields, problem: String| Err(ConfigError::Invalid { fields, problem });
        if self.repeat > 1 && self.max_iters == 0 {
            return invalid(
                &["repeat", "max_iters"],
                format!(
                    "repeat: {} windows need max_iters above 0 (with 0, the first window lasts until stop); use repeat 1 or 0, or set max_iters",
                    self.repeat
                ),
            );
        }
        if self.activities.is_empty() {
            return invalid(
                &["activities"],
                format!(
                    "activities: empty, nothing would be recorded; allowed: {}",
                    Activity::ALL.map(Activity::name).join(", ")
                ),
            );
        }
        if self.buffer_size == 0 || self.buffer_size % 8 != 0 {
            return invalid(
                &["buffer_size"],
                format!(
                    "buffer_size: {} bytes; CUPTI needs a size above 0 and a multiple of 8",
                    self.buffer_size
                ),
            );
        }
        if self.max_buffer_mb.saturating_mul(MIB) < self.buffer_size {
            return invalid(
                &["max_buffer_mb", "buffer_size"],
                format!(
                    "max_buffer_mb: {} MiB cannot hold one buffer of buffer_size {} bytes; raise max_buffer_mb or lower buffer_size",
                    self.max_buffer_mb, self.buffer_size
                ),
            );
        }
        if self.output_dir.as_os_str().is_empty() {
            return invalid(
                &["output_dir"],
                "output_dir: empty; give a directory".into(),
            );
        }
        if let Some(name) = &self.worker_name {
            if name.is_empty() || name.contains(['/', '\0']) {
                return invalid(
                    &["worker_name"],
                    format!(
                        "worker_name: {name:?}; it goes into file names, so it must be non-empty, without `/` or NUL"
                    ),
                );
            }
        }
        if self.world_size == Some(0) {
            return invalid(
                &["world_size"],
                "world_size: 0; it must be 1 or more".into(),
            );
        }
        if let (Some(rank), Some(world_size)) = (self.rank, self.world_size) {
            if rank >= world_size {
                return invalid(
                    &["rank", "world_size"],
                    format!(
                        "rank: {rank} is not below world_size {world_size}; ranks count from 0"
                    ),
                );
            }
        }
        if let Some(pattern) = &self.nvtx_step {
            if let Err(e) = glob::Pattern::new(pattern) {
                return invalid(
                    &["nvtx_step"],
                    format!("nvtx_step: {pattern:?} is not a glob pattern: {e}"),
                );
            }
        }
        // Which would count from the other's end is a guess either way: refuse both.
        if self.delay_ms > 0 && self.delay_iters > 0 {
            return invalid(
                &["delay_ms", "delay_iters"],
                format!(
                    "delay_ms {} and delay_iters {} both put off the first window; give a time or a number of iterations, not both",
                    self.delay_ms, self.delay_iters
                ),
            );
        }
        if self.capture_range != CaptureRange::None && (self.delay_ms > 0 || self.duration_ms > 0) {
            return invalid(
                &["capture_range", "delay_ms", "duration_ms"],
                "delay_ms and duration_ms time the window of capture_range \"none\"; with \"cudaProfilerApi\" the program's own calls start and stop it".into(),
            );
        }
        if self.row_limit < -1 {
            return invalid(
                &["row_limit"],
                format!(
                    "row_limit: {}; use a row count, or -1 for all rows",
                    self.row_limit
                ),
            );
        }
        Ok(())
    }
}

/// Parses `text` as a JSON object; serde would take an array as a tuple of fields.
fn parse_object(text: &str) -> Result<Map<String, Value>, ConfigError> {
    serde_json::from_str(text).map_err(ConfigError::NotAnObject)
}

/// Builds a configuration from its fields, naming the key any error comes from.
fn deserialize(fields: Map<String, Value>) -> Result<ProfilerConfig, ConfigError> {
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| ConfigError::Key {
        key: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// Reads a count, saying what a count is when the value is not one (serde's own
/// message would say `expected u64`).
fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct Count;
    impl Visitor<'_> for Count {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number, 0 or more")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
    }
    deserializer.deserialize_u64(Count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of the error `text` gives.
    fn error(text: &str) -> String {
        ProfilerConfig::from_json(text).unwrap_err().to_string()
    }

    /// A configuration read from the given variables only.
    fn from_vars(vars: &[(&str, &str)]) -> Result<ProfilerConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProfilerConfig::from_env_vars(|name| vars.get(name).cloned())
    }

    fn env_error(vars: &[(&str, &str)]) -> String {
        from_vars(vars).unwrap_err().to_string()
    }

    #[test]
    fn every_field_has_its_documented_default() {
        let c = ProfilerConfig::from_json("{}").unwrap();
        assert_eq!(c, ProfilerConfig::default());
        assert_eq!(
            (c.delay_iters, c.max_iters, c.warmup_iters, c.repeat),
            (0, 0, 0, 1)
        );
        assert_eq!(
            c.activities.iter().map(|a| a.name()).collect::<Vec<_>>(),
            ["kernel", "memcpy", "memset", "runtime", "sync", "nvtx"]
        );
        assert_eq!(c.graph_mode, GraphMode::Node);
        assert_eq!((c.buffer_size, c.max_buffer_mb), (8 << 20, 128));
        assert!(!c.latency_timestamps);
        assert_eq!(c.output_dir, PathBuf::from("cutrace_traces"));
        assert_eq!((&c.worker_name, c.rank, c.world_size), (&None, None, None));
        assert_eq!((c.sort_by, c.row_limit), (SortKey::SelfCudaTimeTotal, 100));
        assert_eq!(c.shutdown_wait_ms, 30_000);
        assert_eq!(c.schedule(), Schedule::default());
    }

    #[test]
    fn every_field_is_read_from_json() {
        let c = ProfilerConfig::from_json(
            r#"{"delay_iters": 5, "max_iters": 3, "warmup_iters": 2, "repeat": 2,
                "activities": ["driver", "kernel", "overhead", "kernel"], "graph_mode": "graph",
                "buffer_size": 1048576, "max_buffer_mb": 16, "latency_timestamps": true,
                "output_dir": "/tmp/t", "worker_name": "w0", "rank": 1, "world_size": 2,
                "sort_by": "count", "row_limit": -1, "capture_range": "cudaProfilerApi",
                "nvtx_step": "step*", "shutdown_wait_ms": 500}"#,
        )
        .unwrap();
        let expected = ProfilerConfig {
            delay_iters: 5,
            max_iters: 3,
            warmup_iters: 2,
            repeat: 2,
            activities: BTreeSet::from([Activity::Kernel, Activity::Driver, Activity::Overhead]),
            graph_mode: GraphMode::Graph,
            buffer_size: 1 << 20,
            max_buffer_mb: 16,
            latency_timestamps: true,
            output_dir: "/tmp/t".into(),
            worker_name: Some("w0".into()),
            rank: Some(1),
            world_size: Some(2),
            sort_by: SortKey::Count,
            row_limit: -1,
            capture_range: CaptureRange::CudaProfilerApi,
            nvtx_step: Some("step*".into()),
            delay_ms: 0,
            duration_ms: 0,
            shutdown_wait_ms: 500,
        };
        assert_eq!(c, expected);
        assert_eq!(
            c.schedule(),
            Schedule {
                delay_iters: 5,
                max_iters: 3,
                warmup_iters: 2,
                repeat: 2
            }
        );
    }

    #[test]
    fn capture_settings_are_read_and_checked() {
        let c = ProfilerConfig::from_json(r#"{"delay_ms": 1500, "duration_ms": 2000}"#).unwrap();
        assert_eq!(
            (c.capture_range, c.delay_ms, c.duration_ms),
            (CaptureRange::None, 1500, 2000)
        );
        let message = error(r#"{"capture_range": "nvtx"}"#);
        assert!(
            message.contains("capture_range: unknown variant `nvtx`"),
            "{message}"
        );
        let message = error(r#"{"capture_range": "cudaProfilerApi", "duration_ms": 5}"#);
        assert!(
            message.contains("time the window of capture_range"),
            "{message}"
        );
        let message = error(r#"{"nvtx_step": "step[" }"#);
        assert!(
            message.contains("nvtx_step: \"step[\" is not a glob pattern"),
            "{message}"
        );
    }

    #[test]
    fn nvtx_steps_match_the_glob() {
        let c = ProfilerConfig::from_json(r#"{"nvtx_step": "execute_model*"}"#).unwrap();
        assert!(c.is_nvtx_step("execute_model"));
        assert!(c.is_nvtx_step("execute_model_3"));
        assert!(!c.is_nvtx_step("prepare_inputs"));
        assert!(!ProfilerConfig::default().is_nvtx_step("execute_model"));
    }

    #[test]
    fn field_table_matches_the_struct() {
        let Value::Object(fields) = serde_json::to_value(ProfilerConfig::default()).unwrap() else {
            panic!("not an object");
        };
        let names: BTreeSet<&str> = CONFIG_FIELDS.iter().map(|(name, ..)| *name).collect();
        assert_eq!(names.len(), CONFIG_FIELDS.len());
        assert_eq!(
            fields.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            names
        );
    }

    #[test]
    fn sort_keys_and_activities_have_their_torch_names() {
        for (key, name) in [
            (SortKey::SelfCudaTimeTotal, "self_cuda_time_total"),
            (SortKey::CudaTimeTotal, "cuda_time_total"),
            (SortKey::SelfCpuTimeTotal, "self_cpu_time_total"),
            (SortKey::CpuTimeTotal, "cpu_time_total"),
            (SortKey::Count, "count"),
        ] {
            assert_eq!(serde_json::to_value(key).unwrap(), name);
        }
        for activity in Activity::ALL {
            assert_eq!(serde_json::to_value(activity).unwrap(), activity.name());
        }
    }

    #[test]
    fn unknown_key_is_named_with_the_allowed_ones() {
        let message = error(r#"{"max_iter": 10}"#);
        assert!(message.contains("`max_iter`"), "{message}");
        for (field, ..) in CONFIG_FIELDS {
            assert!(message.contains(&format!("`{field}`")), "{message}");
        }
    }

    #[test]
    fn wrong_types_name_the_key_and_what_is_allowed() {
        let message = error(r#"{"max_iters": -1}"#);
        assert!(
            message.contains(
                "max_iters: invalid value: integer `-1`, expected a whole number, 0 or more"
            ),
            "{message}"
        );
        let message = error(r#"{"delay_iters": "10"}"#);
        assert!(
            message.contains("delay_iters: invalid type: string \"10\", expected a whole number"),
            "{message}"
        );
        let message = error(r#"{"repeat": 1.5}"#);
        assert!(
            message.contains("repeat:") && message.contains("whole number"),
            "{message}"
        );
        let message = error(r#"{"latency_timestamps": 1}"#);
        assert!(
            message.contains("latency_timestamps:") && message.contains("expected a boolean"),
            "{message}"
        );
        let message = error(r#"{"rank": -2}"#);
        assert!(
            message.contains("rank:") && message.contains("u32"),
            "{message}"
        );
    }

    #[test]
    fn unknown_names_list_the_allowed_ones() {
        let message = error(r#"{"activities": ["kernel", "gpu"]}"#);
        assert!(
            message.contains("activities[1]") && message.contains("`gpu`"),
            "{message}"
        );
        for activity in Activity::ALL {
            assert!(
                message.contains(&format!("`{}`", activity.name())),
                "{message}"
            );
        }
        let message = error(r#"{"graph_mode": "nodes"}"#);
        assert!(
            message.contains("graph_mode") && message.contains("`node` or `graph`"),
            "{message}"
        );
        let message = error(r#"{"sort_by": "self_cuda_time"}"#);
        assert!(
            message.contains("sort_by") && message.contains("`cpu_time_total`"),
            "{message}"
        );
    }

    #[test]
    fn only_a_json_object_is_a_config() {
        for text in ["[5, 3]", "\"x\"", "{\"max_iters\": 1", ""] {
            assert!(
                error(text).starts_with("profiler config is not a JSON object: "),
                "{text}"
            );
        }
    }

    #[test]
    fn impossible_values_say_what_is_allowed() {
        for (text, expected) in [
            (
                r#"{"buffer_size": 0}"#,
                "buffer_size: 0 bytes; CUPTI needs a size above 0 and a multiple of 8",
            ),
            (
                r#"{"buffer_size": 1001}"#,
                "buffer_size: 1001 bytes; CUPTI needs",
            ),
            (
                r#"{"max_buffer_mb": 4}"#,
                "max_buffer_mb: 4 MiB cannot hold one buffer of buffer_size 8388608 bytes",
            ),
            (
                r#"{"max_buffer_mb": 0}"#,
                "max_buffer_mb: 0 MiB cannot hold",
            ),
            (
                r#"{"repeat": 2}"#,
                "repeat: 2 windows need max_iters above 0",
            ),
            (
                r#"{"activities": []}"#,
                "activities: empty, nothing would be recorded; allowed: kernel, memcpy, memset, runtime, driver, sync, nvtx, overhead",
            ),
            (r#"{"output_dir": ""}"#, "output_dir: empty"),
            (r#"{"worker_name": ""}"#, "worker_name: \"\""),
            (
                r#"{"worker_name": "a/b"}"#,
                "worker_name: \"a/b\"; it goes into file names",
            ),
            (
                r#"{"world_size": 0}"#,
                "world_size: 0; it must be 1 or more",
            ),
            (
                r#"{"rank": 2, "world_size": 2}"#,
                "rank: 2 is not below world_size 2",
            ),
            (
                r#"{"row_limit": -2}"#,
                "row_limit: -2; use a row count, or -1 for all rows",
            ),
            (
                r#"{"delay_ms": 20000, "delay_iters": 10}"#,
                "delay_ms 20000 and delay_iters 10 both put off the first window",
            ),
        ] {
            let message = error(text);
            assert!(
                message.starts_with("invalid profiler config: "),
                "{message}"
            );
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    #[test]
    fn limits_themselves_are_allowed() {
        for text in [
            r#"{"repeat": 0}"#,
            r#"{"repeat": 2, "max_iters": 1}"#,
            r#"{"buffer_size": 8, "max_buffer_mb": 1}"#,
            r#"{"buffer_size": 1048576, "max_buffer_mb": 1}"#,
            r#"{"rank": 1, "world_size": 2}"#,
            r#"{"rank": 7}"#,
            r#"{"row_limit": 0}"#,
            r#"{"warmup_iters": 5}"#,
            r#"{"delay_ms": 1, "delay_iters": 0, "max_iters": 3}"#,
            r#"{"worker_name": null}"#,
        ] {
            assert!(ProfilerConfig::from_json(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn no_variables_give_the_defaults() {
        assert_eq!(from_vars(&[]).unwrap(), ProfilerConfig::default());
    }

    #[test]
    fn field_variables_override_the_json_variable() {
        let c = from_vars(&[
            (
                "CUTRACE_CONFIG",
                r#"{"max_iters": 10, "delay_iters": 2, "rank": 0}"#,
            ),
            ("CUTRACE_MAX_ITERS", "4"),
            ("CUTRACE_ACTIVITIES", "kernel, memcpy,"),
            ("CUTRACE_OUTPUT_DIR", "/tmp/out"),
            ("CUTRACE_WORKER_NAME", "123"),
            ("CUTRACE_LATENCY_TIMESTAMPS", "true"),
            ("CUTRACE_SORT_BY", "cpu_time_total"),
            ("CUTRACE_ROW_LIMIT", "-1"),
            ("CUTRACE_WORLD_SIZE", "8"),
        ])
        .unwrap();
        assert_eq!((c.max_iters, c.delay_iters), (4, 2));
        assert_eq!(
            c.activities,
            BTreeSet::from([Activity::Kernel, Activity::Memcpy])
        );
        assert_eq!(c.output_dir, PathBuf::from("/tmp/out"));
        assert_eq!(c.worker_name.as_deref(), Some("123"));
        assert!(c.latency_timestamps);
        assert_eq!((c.sort_by, c.row_limit), (SortKey::CpuTimeTotal, -1));
        assert_eq!((c.rank, c.world_size), (Some(0), Some(8)));
    }

    #[test]
    fn vllm_variables_count_only_when_ours_are_unset() {
        let vllm = [
            ("VLLM_PROFILER_DELAY_ITERS", "3"),
            ("VLLM_PROFILER_MAX_ITERS", "7"),
        ];
        let c = from_vars(&vllm).unwrap();
        assert_eq!((c.delay_iters, c.max_iters), (3, 7));

        let c = from_vars(&[vllm[0], vllm[1], ("CUTRACE_MAX_ITERS", "2")]).unwrap();
        assert_eq!((c.delay_iters, c.max_iters), (3, 2));

        let c = from_vars(&[
            vllm[0],
            vllm[1],
            ("CUTRACE_CONFIG", r#"{"delay_iters": 0}"#),
        ])
        .unwrap();
        assert_eq!((c.delay_iters, c.max_iters), (0, 7));

        // Under cudaProfilerApi vLLM has counted before its cudaProfilerStart.
        for capture in [
            ("CUTRACE_CAPTURE_RANGE", "cudaProfilerApi"),
            ("CUTRACE_CONFIG", r#"{"capture_range": "cudaProfilerApi"}"#),
        ] {
            let c = from_vars(&[vllm[0], vllm[1], capture]).unwrap();
            assert_eq!((c.delay_iters, c.max_iters), (0, 0), "{capture:?}");
            let c = from_vars(&[vllm[0], ("CUTRACE_MAX_ITERS", "2"), capture]).unwrap();
            assert_eq!((c.delay_iters, c.max_iters), (0, 2), "{capture:?}");
        }
        let none = ("CUTRACE_CAPTURE_RANGE", "none");
        let c = from_vars(&[vllm[0], vllm[1], none]).unwrap();
        assert_eq!((c.delay_iters, c.max_iters), (3, 7));
    }

    #[test]
    fn variable_errors_name_the_variable() {
        for (vars, expected) in [
            (
                &[("CUTRACE_MAX_ITERS", "ten")][..],
                "CUTRACE_MAX_ITERS: invalid profiler config: max_iters: invalid type: string \"ten\", expected a whole number, 0 or more",
            ),
            (
                &[("VLLM_PROFILER_DELAY_ITERS", "-1")],
                "VLLM_PROFILER_DELAY_ITERS: invalid profiler config: delay_iters: invalid value: integer `-1`",
            ),
            (
                &[("CUTRACE_ACTIVITIES", "kernel,gpu")],
                "CUTRACE_ACTIVITIES: invalid profiler config: activities[1]: unknown variant `gpu`",
            ),
            (
                &[("CUTRACE_ACTIVITIES", "")],
                "CUTRACE_ACTIVITIES: invalid profiler config: activities: empty",
            ),
            (
                &[("CUTRACE_LATENCY_TIMESTAMPS", "yes")],
                "CUTRACE_LATENCY_TIMESTAMPS: invalid profiler config: latency_timestamps: invalid type: string \"yes\", expected a boolean",
            ),
            (
                &[("CUTRACE_CONFIG", "{max_iters: 1}")],
                "CUTRACE_CONFIG: profiler config is not a JSON object: key must be a string",
            ),
            (
                &[("CUTRACE_CONFIG", r#"{"max_iters": 1, "delay": 2}"#)],
                "CUTRACE_CONFIG: invalid profiler config: delay: unknown field `delay`",
            ),
            (
                &[("CUTRACE_BUFFER_SIZE", "12")],
                "CUTRACE_BUFFER_SIZE: invalid profiler config: buffer_size: 12 bytes",
            ),
            (
                &[("CUTRACE_CONFIG", r#"{"repeat": 3}"#)],
                "CUTRACE_CONFIG: invalid profiler config: repeat: 3 windows need max_iters above 0",
            ),
            (
                &[
                    ("CUTRACE_CONFIG", r#"{"repeat": 3}"#),
                    ("CUTRACE_MAX_ITERS", "0"),
                ],
                "CUTRACE_CONFIG, CUTRACE_MAX_ITERS: invalid profiler config: repeat: 3 windows",
            ),
            (
                &[("CUTRACE_DELAY_MS", "500"), ("CUTRACE_DELAY_ITERS", "2")],
                "CUTRACE_DELAY_MS, CUTRACE_DELAY_ITERS: invalid profiler config: delay_ms 500 and delay_iters 2",
            ),
            (
                &[("CUTRACE_BUFFER_SIZE", "268435456")],
                "CUTRACE_BUFFER_SIZE: invalid profiler config: max_buffer_mb: 128 MiB cannot hold one buffer",
            ),
        ] {
            let message = env_error(vars);
            assert!(message.starts_with(expected), "{vars:?}: {message}");
        }
    }
}
