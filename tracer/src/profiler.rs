//! [`Profiler`]: the tracer's public face, for a host loop, an injection library or
//! a C ABI.

use std::sync::{Arc, Mutex, MutexGuard};

use cupti_sys::sys::CUpti_ActivityKind;

use crate::annotate::RangeGuard;
use crate::config::{Activity, GraphMode, ProfilerConfig};
use crate::controls::{self, ControlHandler};
use crate::error::Error;
use crate::identity::Identity;
use crate::model::{TraceInfo, TraceSink};
use crate::process;
use crate::session::{Session, SessionOptions, UnwrittenWindow, WarningHook};
use crate::window::{Action, Windows};

/// Records GPU activity in iteration windows and hands each window to a sink.
///
/// It never hurts the host: when CUPTI is missing, fails, or is already taken by
/// another tool (nsys, torch.profiler), [`Profiler::new`] reports one warning and
/// returns an *untraced* profiler, every method of which does nothing. All methods
/// take `&self` and may be called from any thread.
pub struct Profiler {
    session: Option<Session>,
    windows: Mutex<Windows>,
}

impl Profiler {
    /// A profiler for `config` whose windows go to `sink`; untraced, with one warning
    /// on stderr, when tracing is impossible.
    pub fn new(config: ProfilerConfig, sink: Arc<dyn TraceSink>) -> Profiler {
        Self::with_warnings(config, sink, Arc::new(warn_on_stderr))
    }

    /// Like [`Profiler::new`], with warnings (this one and any later one: dropped
    /// records, a sink that failed) going to `warn` instead of stderr.
    pub fn with_warnings(
        config: ProfilerConfig,
        sink: Arc<dyn TraceSink>,
        warn: WarningHook,
    ) -> Profiler {
        let windows = Mutex::new(Windows::new(config.schedule()));
        match Session::new(session_options(&config, warn.clone()), sink) {
            Ok(session) => Profiler {
                session: Some(session),
                windows,
            },
            Err(e) => {
                warn(&untraced_reason(&e));
                Profiler {
                    session: None,
                    windows,
                }
            }
        }
    }

    /// Like [`Profiler::with_warnings`], but returns why tracing is impossible
    /// instead of an untraced profiler.
    pub fn try_new(
        config: ProfilerConfig,
        sink: Arc<dyn TraceSink>,
        warn: WarningHook,
    ) -> Result<Profiler, Error> {
        let session = Session::new(session_options(&config, warn), sink)?;
        Ok(Profiler {
            session: Some(session),
            windows: Mutex::new(Windows::new(config.schedule())),
        })
    }

    /// Whether CUPTI is recording for this profiler (false when untraced).
    pub fn is_traced(&self) -> bool {
        self.session.is_some()
    }

    fn windows(&self) -> MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms the profiler: iteration 1 begins. Ignored while started.
    pub fn start(&self) {
        let mut windows = self.windows();
        if let Ok(actions) = windows.start() {
            self.apply(&actions);
        }
    }

    /// Ends the current iteration (call once per iteration of the host's loop).
    pub fn step(&self) {
        let mut windows = self.windows();
        let actions = windows.step();
        self.apply(&actions);
    }

    /// Stops: a window being recorded ends here and is written in the background;
    /// returns at once. Ignored when not started.
    pub fn stop(&self) {
        let mut windows = self.windows();
        if let Ok(actions) = windows.stop() {
            self.apply(&actions);
        }
    }

    /// Stops, waits until every window is written, and releases CUPTI. Every later
    /// call does nothing. Dropping the profiler does the same.
    pub fn shutdown(&self) {
        let mut windows = self.windows();
        if let Ok(actions) = windows.shutdown() {
            self.apply(&actions);
        }
        if let Some(session) = &self.session {
            session.shutdown();
        }
    }

    /// The windows that began and that the sink has not finished writing yet,
    /// oldest first (none when untraced): what would be lost if the process ended
    /// now.
    pub fn unwritten(&self) -> Vec<UnwrittenWindow> {
        self.session
            .as_ref()
            .map(Session::unwritten)
            .unwrap_or_default()
    }

    /// Whether a window is being recorded.
    pub fn is_recording(&self) -> bool {
        self.session.is_some() && self.windows().is_recording()
    }

    /// Opens a host range named `name` on this thread, closed when the guard drops;
    /// GPU work launched inside it is attributed to it. Records nothing outside a
    /// window.
    pub fn annotate(&self, name: &str) -> RangeGuard<'_> {
        RangeGuard::open(self.session.as_ref(), name)
    }

    /// Lets the application drive the windows (injection mode): `handler` receives
    /// each `cudaProfilerStart/Stop` and, with `nvtx`, each NVTX range end, on the
    /// thread that caused it, and typically calls [`Profiler::start`],
    /// [`Profiler::stop`] or [`Profiler::step`] in turn. Nothing when untraced.
    pub fn follow_application(&self, nvtx: bool, handler: ControlHandler) -> Result<(), Error> {
        let Some(session) = &self.session else {
            return Ok(());
        };
        controls::set_handler(handler);
        session.enable_controls(nvtx)
    }

    /// Carries the window machine's actions out, in order.
    fn apply(&self, actions: &[Action]) {
        let Some(session) = &self.session else {
            return;
        };
        for action in actions {
            match action {
                Action::EnableCollection => session.enable_collection(),
                Action::DisableCollection => session.disable_collection(),
                Action::DiscardCollected => session.discard_collected(),
                Action::BeginWindow { window, .. } => session.begin_window(*window),
                Action::IterationEnd { iteration, .. } => session.iteration_end(*iteration),
                Action::EndWindow { .. } => session.end_window(),
            }
        }
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn warn_on_stderr(message: &str) {
    eprintln!("cutrace: warning: {message}");
}

/// The one warning an untraced profiler gives.
fn untraced_reason(e: &Error) -> String {
    if e.is_multiple_subscribers() {
        "tracing disabled: another CUPTI client (nsys, torch.profiler, ...) is already subscribed in this process".to_owned()
    } else {
        format!("tracing disabled: {}", crate::error::with_causes(e))
    }
}

/// The CUPTI activity kinds that record `activity`.
fn kinds(activity: Activity, graph_mode: GraphMode) -> &'static [CUpti_ActivityKind] {
    use CUpti_ActivityKind as K;
    match (activity, graph_mode) {
        (Activity::Kernel, GraphMode::Node) => &[K::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL],
        // Graph launches become one GRAPH_TRACE record each; kernels launched outside
        // graphs still come as kernels.
        (Activity::Kernel, GraphMode::Graph) => &[
            K::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
            K::CUPTI_ACTIVITY_KIND_GRAPH_TRACE,
        ],
        (Activity::Memcpy, _) => &[
            K::CUPTI_ACTIVITY_KIND_MEMCPY,
            K::CUPTI_ACTIVITY_KIND_MEMCPY2,
        ],
        (Activity::Memset, _) => &[K::CUPTI_ACTIVITY_KIND_MEMSET],
        (Activity::Runtime, _) => &[K::CUPTI_ACTIVITY_KIND_RUNTIME],
        (Activity::Driver, _) => &[K::CUPTI_ACTIVITY_KIND_DRIVER],
        (Activity::Sync, _) => &[K::CUPTI_ACTIVITY_KIND_SYNCHRONIZATION],
        (Activity::Nvtx, _) => &[K::CUPTI_ACTIVITY_KIND_MARKER],
        (Activity::Overhead, _) => &[K::CUPTI_ACTIVITY_KIND_OVERHEAD],
    }
}

fn session_options(config: &ProfilerConfig, warn: WarningHook) -> SessionOptions {
    let mut kinds: Vec<CUpti_ActivityKind> = config
        .activities
        .iter()
        .flat_map(|&a| kinds(a, config.graph_mode).iter().copied())
        .collect();
    if config
        .activities
        .iter()
        .any(|a| matches!(a, Activity::Runtime | Activity::Driver))
    {
        // Links API calls to annotations and framework ops.
        kinds.push(CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
    }
    let identity = Identity::from_config(config);
    SessionOptions {
        kinds,
        buffer_size: usize::try_from(config.buffer_size).unwrap_or(usize::MAX),
        max_buffer_bytes: usize::try_from(config.max_buffer_mb.saturating_mul(1 << 20))
            .unwrap_or(usize::MAX),
        latency_timestamps: config.latency_timestamps,
        info: TraceInfo {
            worker_name: identity.worker_name.clone(),
            host_name: process::host_name(),
            pid: std::process::id(),
            process_name: process::process_name(),
            tracer_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..TraceInfo::default()
        },
        identity,
        warn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Rank;

    #[test]
    fn activities_map_to_cupti_kinds() {
        let mut config = ProfilerConfig {
            activities: [Activity::Kernel, Activity::Driver].into(),
            ..ProfilerConfig::default()
        };
        let options = session_options(&config, Arc::new(|_| {}));
        assert_eq!(
            options.kinds,
            [
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DRIVER,
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
            ]
        );
        config.activities = [Activity::Kernel].into();
        config.graph_mode = GraphMode::Graph;
        let options = session_options(&config, Arc::new(|_| {}));
        assert_eq!(
            options.kinds,
            [
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_GRAPH_TRACE,
            ]
        );
    }

    #[test]
    fn run_facts_fill_the_trace_info() {
        let mut config = ProfilerConfig {
            rank: Some(3),
            world_size: Some(8),
            max_buffer_mb: 16,
            ..ProfilerConfig::default()
        };
        let options = session_options(&config, Arc::new(|_| {}));
        let pid = std::process::id();
        assert_eq!(options.identity.rank, Rank::Given(3));
        assert_eq!(options.identity.place(Some(1)), (3, 8));
        assert_eq!(options.info.pid, pid);
        assert!(options.info.worker_name.ends_with(&format!("_{pid}")));
        assert_eq!(options.max_buffer_bytes, 16 << 20);
        config.worker_name = Some("engine0".into());
        assert_eq!(
            session_options(&config, Arc::new(|_| {})).info.worker_name,
            "engine0"
        );
    }
}
