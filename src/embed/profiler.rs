//! The real tracer behind [`Tracer`]: a [`cutrace_tracer::Profiler`] writing
//! through the exporter's [`ExportSink`], following the application's
//! `cudaProfilerStart/Stop` and NVTX ranges as the configuration says.

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use cutrace_exporter::{ExportSink, RunLog};
use cutrace_tracer::{
    CaptureRange, Control, Identity, Profiler, ProfilerConfig, RangeGuard, Rank, UnwrittenWindow,
    WarningHook,
};

use crate::Error;
use crate::host::{HOST, Tracer};
use crate::written::LoggingSink;

/// A profiler for embedding cutrace in a Rust program: every window it records is
/// written to `config.output_dir` as a trace and a key-averages table.
///
/// The worker name and rank come from `config`, else from `RANK`, `LOCAL_RANK` or a
/// launcher's variable, else torch's `<hostname>_<pid>` and the device of the
/// process's first CUDA context ([`identity`](crate::identity) has the rules).
/// Without a usable CUPTI the profiler warns once on stderr and records nothing;
/// only a bad `RANK`-style variable is an error.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = cutrace::ProfilerConfig::from_json(r#"{"delay_iters": 10, "max_iters": 3}"#)?;
/// let profiler = cutrace::profiler(&config)?;
/// profiler.start();
/// for _ in 0..20 {
///     let _range = profiler.annotate("forward");
///     // ... launch GPU work ...
///     drop(_range);
///     profiler.step();
/// }
/// profiler.shutdown(); // waits until the files are written
/// # Ok(())
/// # }
/// ```
pub fn profiler(config: &ProfilerConfig) -> Result<Profiler, Error> {
    let (config, sink) = with_identity(config)?;
    let profiler = Profiler::with_warnings(config, Arc::new(sink), warn_on_stderr());
    if profiler.is_traced() {
        note_traced();
    }
    Ok(profiler)
}

/// `config` with what the environment says of this process's worker name, rank and
/// world size filled in, and the sink writing its trace and table files.
fn with_identity(config: &ProfilerConfig) -> Result<(ProfilerConfig, ExportSink), Error> {
    let identity = Identity::of_this_process(config)?;
    let config = ProfilerConfig {
        worker_name: Some(identity.worker_name),
        rank: match identity.rank {
            Rank::Given(rank) => Some(rank),
            // The tracer finds it once the process has made a context.
            Rank::FirstDevice => None,
        },
        world_size: identity.world_size,
        ..config.clone()
    };
    let sink = export_sink(&config);
    Ok((config, sink))
}

/// The sink writing `config`'s trace and table files, noting them in the log of
/// the `cutrace run` this process belongs to, if any.
fn export_sink(config: &ProfilerConfig) -> ExportSink {
    let row_limit = usize::try_from(config.row_limit).ok();
    let sink = ExportSink::new(&config.output_dir)
        .with_table(config.sort_by, row_limit)
        .with_warnings(warn_on_stderr());
    match RunLog::from_env() {
        Some(log) => sink.with_run_log(log),
        None => sink,
    }
}

/// Notes in the log of the `cutrace run` this process belongs to, if any, that it
/// is traced. A log that cannot be written costs only the run's summary.
fn note_traced() {
    if let Some(log) = RunLog::from_env() {
        let _ = log.traced(std::process::id());
    }
}

fn warn_on_stderr() -> WarningHook {
    Arc::new(|message: &str| eprintln!("cutrace: warning: {message}"))
}

/// Makes the process's tracer for `config`: its identity resolved, CUPTI
/// subscribed, the application's calls followed when `capture_range` or
/// `nvtx_step` ask, and what each window writes noted in the process's log.
pub(crate) fn make(config: &ProfilerConfig) -> Result<Arc<dyn Tracer>, Error> {
    let (config, export) = with_identity(config)?;
    let sink = Arc::new(LoggingSink { export });
    let profiler = Arc::new(Profiler::try_new(config.clone(), sink, warn_on_stderr())?);
    let follow_api = config.capture_range == CaptureRange::CudaProfilerApi;
    let follow_nvtx = config.nvtx_step.is_some();
    if follow_api || follow_nvtx {
        // The handler goes through the slot rather than holding the profiler: the
        // tracer's callback table is global and would keep it alive forever.
        let handler = move |control: Control| match control_call(&config, &control) {
            Some(Call::Start) => HOST.with(|t| t.start()),
            Some(Call::Stop) => HOST.with(|t| t.stop()),
            Some(Call::Step) => HOST.with(|t| t.step()),
            None => {}
        };
        profiler.follow_application(follow_nvtx, Arc::new(handler))?;
    }
    note_traced();
    Ok(Arc::new(Traced { profiler }))
}

/// What an application's call makes the tracer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Start,
    Stop,
    Step,
}

/// The call `control` stands for under `config`, if any.
fn control_call(config: &ProfilerConfig, control: &Control) -> Option<Call> {
    let follow_api = config.capture_range == CaptureRange::CudaProfilerApi;
    match control {
        Control::ProfilerStart if follow_api => Some(Call::Start),
        Control::ProfilerStop if follow_api => Some(Call::Stop),
        Control::RangeEnd(name) if config.is_nvtx_step(name) => Some(Call::Step),
        _ => None,
    }
}

/// A profiler as the host drives it.
struct Traced {
    profiler: Arc<Profiler>,
}

thread_local! {
    /// The C ABI's open ranges on this thread, innermost last.
    static RANGES: RefCell<Vec<OpenRange>> = const { RefCell::new(Vec::new()) };
}

/// A range opened with `cutrace_range_push`, with the profiler it borrows from.
struct OpenRange {
    // Declared before `profiler` and dropped first, by hand: the guard borrows
    // from the profiler the Arc keeps alive.
    guard: ManuallyDrop<RangeGuard<'static>>,
    _profiler: Arc<Profiler>,
}

impl OpenRange {
    fn open(profiler: &Arc<Profiler>, name: &str) -> OpenRange {
        let profiler = Arc::clone(profiler);
        let guard = profiler.annotate(name);
        // SAFETY: the guard borrows the profiler inside the Arc, whose heap address
        // never changes and which `_profiler` keeps alive until after the guard is
        // dropped (see Drop); the guard never leaves this thread (it lives in a
        // thread-local), as RangeGuard requires.
        let guard = unsafe { std::mem::transmute::<RangeGuard<'_>, RangeGuard<'static>>(guard) };
        OpenRange {
            guard: ManuallyDrop::new(guard),
            _profiler: profiler,
        }
    }
}

impl Drop for OpenRange {
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here, while `_profiler` is still alive.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
    }
}

impl Tracer for Traced {
    fn start(&self) {
        self.profiler.start();
    }

    fn step(&self) {
        self.profiler.step();
    }

    fn stop(&self) {
        self.profiler.stop();
    }

    fn range_push(&self, name: &str) {
        let range = OpenRange::open(&self.profiler, name);
        RANGES.with(|ranges| ranges.borrow_mut().push(range));
    }

    fn range_pop(&self) {
        // Taken out before it is dropped: closing the range must not run while
        // the thread-local is borrowed.
        let range = RANGES.with(|ranges| ranges.borrow_mut().pop());
        drop(range);
    }

    fn shutdown(&self) {
        self.profiler.shutdown();
    }

    fn unwritten(&self) -> Vec<UnwrittenWindow> {
        self.profiler.unwritten()
    }

    fn abandon(&self) {
        // The sink writes through the exporter, whose files these are.
        cutrace_exporter::abandon_unfinished_files();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profiler_api_starts_and_stops_only_when_asked_to() {
        let mut config = ProfilerConfig::default();
        assert_eq!(control_call(&config, &Control::ProfilerStart), None);
        config.capture_range = CaptureRange::CudaProfilerApi;
        assert_eq!(
            control_call(&config, &Control::ProfilerStart),
            Some(Call::Start)
        );
        assert_eq!(
            control_call(&config, &Control::ProfilerStop),
            Some(Call::Stop)
        );
    }

    #[test]
    fn matching_nvtx_range_ends_are_steps() {
        let config = ProfilerConfig {
            nvtx_step: Some("step_*".into()),
            ..Default::default()
        };
        assert_eq!(
            control_call(&config, &Control::RangeEnd("step_3".into())),
            Some(Call::Step)
        );
        assert_eq!(
            control_call(&config, &Control::RangeEnd("forward".into())),
            None
        );
        assert_eq!(control_call(&config, &Control::ProfilerStop), None);
    }
}
