//! What every GPU test needs: the device with the test kernels loaded, a profiler
//! whose windows are kept in memory, and the checks every recorded window must pass.

pub mod nvtx;
pub mod ptx;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, PushKernelArg};
use cudarc::nvrtc::Ptx;
use cutrace_tracer::model::{ApiCall, LaunchConfig, NameId};
use cutrace_tracer::{Activity, GraphMode, Profiler, ProfilerConfig, Trace, TraceSink};

/// Elements in the buffers tests launch kernels over; more than any grid covers.
pub const ELEMENTS: usize = 1 << 16;

/// Serializes the tests: CUPTI and its subscription are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// Device 0 with the test kernels loaded, held by one test at a time.
pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    fill: CudaFunction,
    scale: CudaFunction,
    add: CudaFunction,
    _serial: MutexGuard<'static, ()>,
}

/// Grid and block of a launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub grid: [u32; 3],
    pub block: [u32; 3],
}

impl Shape {
    pub const fn new(grid: [u32; 3], block: [u32; 3]) -> Shape {
        Shape { grid, block }
    }

    /// Whether the trace's launch configuration has this grid and block.
    pub fn matches(self, config: LaunchConfig) -> bool {
        config.grid == self.grid && config.block == self.block
    }

    fn launch(self) -> cudarc::driver::LaunchConfig {
        let [gx, gy, gz] = self.grid;
        let [bx, by, bz] = self.block;
        cudarc::driver::LaunchConfig {
            grid_dim: (gx, gy, gz),
            block_dim: (bx, by, bz),
            shared_mem_bytes: 0,
        }
    }
}

/// The shape most tests launch with.
pub const SMALL: Shape = Shape::new([4, 1, 1], [128, 1, 1]);

impl Gpu {
    /// Opens device 0 and loads the kernels; fails the test without a GPU.
    pub fn open() -> Gpu {
        let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let ctx = CudaContext::new(0).unwrap_or_else(|e| {
            panic!("CUDA device 0 cannot be opened ({e:?}): these tests need a GPU")
        });
        // SAFETY: every test synchronizes the context before it drops a buffer, and
        // a buffer written on one stream is read on another only after a
        // synchronization. Without tracking, cudarc adds no event records and waits
        // of its own, which would show in the traces and break stream capture.
        unsafe { ctx.disable_event_tracking() };
        let module = ctx
            .load_module(Ptx::from_src(ptx::MODULE))
            .expect("the driver compiles the test PTX");
        let function = |name| module.load_function(name).expect("kernel in module");
        Gpu {
            fill: function(ptx::FILL),
            scale: function(ptx::SCALE),
            add: function(ptx::ADD),
            ctx,
            _serial: serial,
        }
    }

    /// A new stream.
    pub fn stream(&self) -> Arc<CudaStream> {
        self.ctx.new_stream().expect("stream")
    }

    /// A device buffer of [`ELEMENTS`] floats, set before any window opens.
    pub fn buffer(&self, stream: &Arc<CudaStream>) -> CudaSlice<f32> {
        let buffer = stream.clone_htod(&vec![1.0f32; ELEMENTS]).expect("buffer");
        stream.synchronize().expect("synchronize");
        buffer
    }

    /// Waits for all work on the device.
    pub fn synchronize(&self) {
        self.ctx.synchronize().expect("synchronize");
    }

    /// Launches `fill(out, value)`.
    pub fn fill(&self, stream: &CudaStream, out: &mut CudaSlice<f32>, value: f32, shape: Shape) {
        let n = elements(out);
        let mut launch = stream.launch_builder(&self.fill);
        launch.arg(out).arg(&value).arg(&n);
        // SAFETY: the arguments match the PTX signature; the kernel stays within `n`.
        unsafe { launch.launch(shape.launch()) }.expect("launch fill");
    }

    /// Launches `scale(out, input, factor)`.
    pub fn scale(
        &self,
        stream: &CudaStream,
        out: &mut CudaSlice<f32>,
        input: &CudaSlice<f32>,
        factor: f32,
        shape: Shape,
    ) {
        let n = elements(out).min(elements(input));
        let mut launch = stream.launch_builder(&self.scale);
        launch.arg(out).arg(input).arg(&factor).arg(&n);
        // SAFETY: as in `fill`.
        unsafe { launch.launch(shape.launch()) }.expect("launch scale");
    }

    /// Launches `add(out, a, b)`.
    pub fn add(
        &self,
        stream: &CudaStream,
        out: &mut CudaSlice<f32>,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        shape: Shape,
    ) {
        let n = elements(out).min(elements(a)).min(elements(b));
        let mut launch = stream.launch_builder(&self.add);
        launch.arg(out).arg(a).arg(b).arg(&n);
        // SAFETY: as in `fill`.
        unsafe { launch.launch(shape.launch()) }.expect("launch add");
    }
}

fn elements(buffer: &CudaSlice<f32>) -> u32 {
    u32::try_from(buffer.len()).expect("buffer fits the kernels' u32 index")
}

/// A sink keeping every finished window.
#[derive(Default)]
pub struct Collect(Mutex<Vec<Trace>>);

impl TraceSink for Collect {
    fn window_finished(
        &self,
        trace: Trace,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(trace);
        Ok(())
    }
}

/// Every activity a test may look at, driver calls included (cudarc uses the driver
/// API), kernels of graphs recorded as `graph_mode` says.
pub fn config(graph_mode: GraphMode) -> ProfilerConfig {
    ProfilerConfig {
        activities: [
            Activity::Kernel,
            Activity::Memcpy,
            Activity::Memset,
            Activity::Runtime,
            Activity::Driver,
            Activity::Sync,
            Activity::Nvtx,
        ]
        .into(),
        graph_mode,
        ..ProfilerConfig::default()
    }
}

/// A profiler on the real libcupti whose windows the returned [`Recording`] keeps;
/// fails the test when tracing is impossible, with CUPTI's reason.
pub fn profiler(config: ProfilerConfig) -> (Profiler, Recording) {
    let sink = Arc::new(Collect::default());
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let keep = warnings.clone();
    let warn = Arc::new(move |w: &str| {
        eprintln!("cutrace: warning: {w}");
        keep.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(w.to_owned());
    });
    let profiler = Profiler::try_new(config, sink.clone(), warn)
        .unwrap_or_else(|e| panic!("tracing is impossible: {e}"));
    (profiler, Recording { sink, warnings })
}

/// What a profiler wrote: its windows and its warnings.
pub struct Recording {
    sink: Arc<Collect>,
    warnings: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    /// Shuts `profiler` down (every window written) and returns the windows, each
    /// checked with [`assert_gpu_after_launch`]; fails on any warning (dropped
    /// records, a failed flush).
    pub fn finish(self, profiler: Profiler) -> Vec<Trace> {
        profiler.shutdown();
        let warnings = self.warnings.lock().unwrap().clone();
        assert!(warnings.is_empty(), "the profiler warned: {warnings:?}");
        let traces = std::mem::take(&mut *self.sink.0.lock().unwrap());
        for trace in &traces {
            assert_gpu_after_launch(trace);
        }
        traces
    }
}

/// Records one window around `work`, which must leave the device idle (synchronize)
/// before it returns.
pub fn record_window(config: ProfilerConfig, work: impl FnOnce(&Profiler)) -> Trace {
    let (profiler, recording) = profiler(config);
    profiler.start();
    work(&profiler);
    profiler.stop();
    let mut traces = recording.finish(profiler);
    assert_eq!(traces.len(), 1, "one start/stop pair, one window");
    traces.remove(0)
}

/// The string behind `id`.
pub fn name(trace: &Trace, id: NameId) -> &str {
    trace.names.get(id)
}

/// The API call of each correlation id.
pub fn calls_by_correlation(trace: &Trace) -> HashMap<u64, &ApiCall> {
    trace
        .api_calls
        .iter()
        .map(|call| (call.correlation, call))
        .collect()
}

/// Every GPU event (kernel, copy, memset, graph launch) has its launch call in the
/// window, and starts no earlier than that call did: one clock for host and GPU.
pub fn assert_gpu_after_launch(trace: &Trace) {
    let calls = calls_by_correlation(trace);
    let gpu = trace
        .kernels
        .iter()
        .map(|k| ("kernel", k.correlation, k.start, k.end))
        .chain(
            trace
                .memcpys
                .iter()
                .map(|m| ("memcpy", m.correlation, m.start, m.end)),
        )
        .chain(
            trace
                .memsets
                .iter()
                .map(|m| ("memset", m.correlation, m.start, m.end)),
        )
        .chain(
            trace
                .graph_launches
                .iter()
                .map(|g| ("graph launch", g.correlation, g.start, g.end)),
        );
    for (kind, correlation, start, end) in gpu {
        let call = calls
            .get(&correlation)
            .unwrap_or_else(|| panic!("{kind} with correlation {correlation} has no API call"));
        assert!(
            start >= call.start,
            "{kind} {correlation} starts at {start}, before its call {} at {}",
            name(trace, call.name),
            call.start
        );
        assert!(end >= start, "{kind} {correlation} ends before it starts");
    }
}
