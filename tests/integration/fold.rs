//! A report folded while its file is read is the report of the whole trace: on
//! every real trace as torch wrote it and as cutrace rewrites it, and on files
//! made to hold what a one-pass fold must give up on.

use std::path::{Path, PathBuf};

use cutrace_analysis::{GraphSource, graph_figures};
use cutrace_exporter::{
    FoldFiles, FoldedTrace, KeyAverages, TraceStats, fold_trace_noted, read_trace_noted,
    write_trace,
};

use crate::util::shared_traces;

/// The fold of `path`, checked against the whole read: `None` when it gave up.
fn folded_as_whole(path: &Path, files: FoldFiles) -> Option<FoldedTrace> {
    let name = path.display();
    let (whole, whole_notes) = read_trace_noted(path).unwrap_or_else(|e| panic!("{e}"));
    let (folded, notes) = fold_trace_noted(path, files).unwrap_or_else(|e| panic!("{e}"))?;
    assert_eq!(folded.averages, KeyAverages::from_trace(&whole), "{name}");
    assert_eq!(folded.stats, TraceStats::from_trace(&whole), "{name}");
    assert_eq!(graph_figures(&folded.kept), graph_figures(&whole), "{name}");
    assert_eq!(notes, whole_notes, "{name}");
    let kept = &folded.kept;
    assert_eq!(
        (
            kept.base_time_ns,
            &kept.iterations,
            &kept.info,
            &kept.threads
        ),
        (
            whole.base_time_ns,
            &whole.iterations,
            &whole.info,
            &whole.threads
        ),
        "{name}"
    );
    Some(folded)
}

#[test]
fn every_real_trace_folds_as_it_reads_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    for path in shared_traces() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // torch's files are folded only when asked to, and then only where
        // their events come in order.
        assert!(
            fold_trace_noted(&path, FoldFiles::Cutrace)
                .unwrap()
                .is_none()
        );
        folded_as_whole(&path, FoldFiles::Any);

        // cutrace writes its tracks in the order folding needs.
        let (trace, _) = read_trace_noted(&path).unwrap();
        let rewritten = dir.path().join(&name);
        write_trace(&trace, &rewritten).unwrap();
        let folded = folded_as_whole(&rewritten, FoldFiles::Cutrace);
        // Unless torch's graph launches lie in it: work that only its launch
        // call, later in the file, tells for a graph's.
        let by_calls = graph_figures(&trace)
            .iter()
            .any(|g| g.source == GraphSource::LaunchCalls);
        assert_eq!(folded.is_some(), !by_calls, "{name}: rewritten by cutrace");
    }
}

/// A file cutrace could have written (its key `refused_buffers` before the
/// events), with `events`.
fn written(dir: &Path, name: &str, events: &[String]) -> PathBuf {
    let path = dir.join(name);
    let json = format!(
        "{{\"refused_buffers\": 0, \"baseTimeNanoseconds\": 1000000000, \"traceEvents\": [\n{}\n]}}",
        events.join(",\n")
    );
    std::fs::write(&path, json).unwrap();
    path
}

const CPU: &str = r#"{"ph":"M","name":"process_labels","pid":9,"tid":0,"args":{"labels":"CPU"}}"#;
const GEMM: &str = r#"{"ph":"X","cat":"kernel","name":"gemm","pid":0,"tid":7,"ts":5,"dur":2,"args":{"stream":7,"correlation":1}}"#;
const LAUNCH: &str = r#"{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":9,"tid":9,"ts":1,"dur":1,"args":{"correlation":1}}"#;

#[test]
fn what_one_pass_cannot_settle_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let op = |pid: u32, tid: u32, ts: u32, dur: u32| {
        format!(
            r#"{{"ph":"X","cat":"cpu_op","name":"op","pid":{pid},"tid":{tid},"ts":{ts},"dur":{dur}}}"#
        )
    };
    let sync = |tid: u32, ts: u32| {
        format!(
            r#"{{"ph":"X","cat":"cuda_sync","name":"Stream Sync","pid":9,"tid":{tid},"ts":{ts},"dur":1,"args":{{"correlation":3}}}}"#
        )
    };
    let call = |name: &str, tid: u32, ts: u32, correlation: u32| {
        format!(
            r#"{{"ph":"X","cat":"cuda_runtime","name":"{name}","pid":9,"tid":{tid},"ts":{ts},"dur":4,"args":{{"correlation":{correlation}}}}}"#
        )
    };
    let (outer, inner) = (op(9, 9, 0, 10), op(9, 9, 2, 3));
    let sync_call = call("cudaStreamSynchronize", 9, 20, 3);
    let (cpu, gemm, launch) = (CPU.to_owned(), GEMM.to_owned(), LAUNCH.to_owned());
    let cases = [
        // Foldable: the sync inside its call, work before and after its launch.
        (
            "in_order",
            vec![cpu.clone(), gemm.clone(), outer.clone(), launch.clone()]
                .into_iter()
                .chain([inner.clone(), sync_call.clone(), sync(9, 21)])
                .collect::<Vec<_>>(),
        ),
        // A thread's events out of order of start.
        ("out_of_order", vec![cpu.clone(), inner, outer]),
        // A range on pid 0, which its kernel after it shows to be a device's.
        ("device_pid_later", vec![op(0, 1, 0, 10), gemm.clone()]),
        // A sync whose call comes after it, on another thread.
        (
            "sync_before_call",
            vec![cpu.clone(), sync(5, 21), sync_call.clone()],
        ),
        // A sync beside its call, not inside it: on a lane of its own.
        (
            "in_order_sync_beside_call",
            vec![cpu.clone(), sync_call.clone(), sync(5, 22)],
        ),
        // A sync far from its call in the file, on another thread: whole, it
        // moves into the range around its call.
        (
            "sync_far_from_call",
            [cpu.clone(), op(9, 9, 0, 2000), sync_call.clone()]
                .into_iter()
                .chain((0..70).map(|i| call("cudaLaunchKernel", 9, 30 + 5 * i, 100 + i)))
                .chain([sync(5, 1000)])
                .collect(),
        ),
        // Work of a graph launch without its graph's id, which only the call
        // after it tells.
        (
            "graph_by_call",
            vec![cpu, gemm, call("cudaGraphLaunch", 9, 1, 1)],
        ),
    ];
    for (name, events) in cases {
        let path = written(dir, name, &events);
        let folded = folded_as_whole(&path, FoldFiles::Cutrace);
        assert_eq!(folded.is_some(), name.starts_with("in_order"), "{name}");
    }
    // Without the key cutrace writes, only a fold of any file folds it.
    let plain = dir.join("plain.json");
    std::fs::write(&plain, format!("[{CPU}, {GEMM}, {LAUNCH}]")).unwrap();
    assert!(folded_as_whole(&plain, FoldFiles::Cutrace).is_none());
    assert!(folded_as_whole(&plain, FoldFiles::Any).is_some());
}
