//! The memory ceiling's hard stop, in a child process since it ends the process:
//! an allocation far past the ceiling while a file is being written exits with
//! status 1 and one line, removing the temporary file and leaving the file that
//! was at the path as it was.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use cutrace_exporter::memory::{self, Ceiling};
use cutrace_exporter::write_output;

#[global_allocator]
static ALLOCATOR: Ceiling = Ceiling;

/// Set in the child to the directory it writes in.
const CHILD_DIR: &str = "CUTRACE_TEST_CEILING_STOP_DIR";
const TEST: &str = "an_allocation_far_past_the_ceiling_stops_and_leaves_no_temporary_file";

#[test]
fn an_allocation_far_past_the_ceiling_stops_and_leaves_no_temporary_file() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        write_past_the_ceiling(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.json");
    std::fs::write(&trace, "the trace from before").unwrap();

    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&child.stderr);
    assert_eq!(child.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cutrace: error: memory use reached the ceiling of "),
        "{stderr}"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["trace.json"]);
    assert_eq!(
        std::fs::read_to_string(&trace).unwrap(),
        "the trace from before"
    );
}

/// Starts writing `dir/trace.json`, then allocates far past a ceiling just above
/// what is in use: the allocator ends the process before this returns.
fn write_past_the_ceiling(dir: &Path) -> ! {
    let path = dir.join("trace.json");
    let written = write_output(&path, |file| {
        file.write_all(b"half a trace")?;
        memory::set_limit(memory::in_use() + (1 << 20));
        let far_past = vec![1u8; 64 << 20];
        file.write_all(&far_past)
    });
    eprintln!("the write ended without a stop: {written:?}");
    std::process::exit(2)
}
