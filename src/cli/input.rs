//! What `report` and `convert` share: reading the trace they are given (a file, or
//! standard input for `-`) under the memory ceiling, and telling the user what
//! reading changed.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use clap::Args;
use cutrace_exporter::memory;
use cutrace_exporter::{
    FoldFiles, FoldedTrace, ReadNotes, TimeOrigin, fold_trace_noted, read_trace_from_noted,
    read_trace_noted,
};
use cutrace_tracer::Trace;

/// The memory ceiling of a command that reads a trace.
#[derive(Debug, Args)]
pub struct MemoryArgs {
    /// Stop with an error when memory use reaches SIZE (512MiB, 8GiB, ...), rather
    /// than exhaust the machine on an outsized trace.
    #[arg(long, value_name = "SIZE", default_value = "4GiB", value_parser = parse_size)]
    pub memory_limit: u64,
}

fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::parse_size(s).map_err(|e| format!("'{s}' is not a size ({e})"))
}

/// Sets glibc's allocator up for a command that reads traces: one arena for all
/// its threads, and memory taken from the kernel 64 MiB at a time. Per-thread
/// arenas and small heap steps cost the reader page faults and system time: with
/// these, `report` on 1,000,000 launches takes 5–10% less time in the same
/// peak memory (docs/benchmarks.md). The command's own process only: a library
/// embedded in a host process never touches its allocator.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets parameters of the allocator, which it takes its
    // own lock for; an option it refuses leaves the default.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// The name standard input goes by in messages.
const STDIN: &str = "standard input";

/// Reads the trace at `path` (`-`: standard input) under the ceiling of `memory`.
pub fn read(path: &Path, memory: &MemoryArgs) -> anyhow::Result<(Trace, ReadNotes)> {
    memory::set_limit(memory.memory_limit);
    let read = if path == Path::new("-") {
        read_trace_from_noted(io::stdin(), Path::new(STDIN))
    } else {
        read_trace_noted(path)
    };
    let (trace, notes) = read?;
    note_cuts(path, &notes);
    Ok((trace, notes))
}

/// The report of the trace file at `path`, folded while it is read, under the
/// ceiling of `memory`; `None` for standard input, which cannot be read twice,
/// and for a file whose events cannot be folded: [`read`] it then.
pub fn fold(path: &Path, memory: &MemoryArgs) -> anyhow::Result<Option<(FoldedTrace, ReadNotes)>> {
    if path == Path::new("-") {
        return Ok(None);
    }
    memory::set_limit(memory.memory_limit);
    let folded = fold_trace_noted(path, FoldFiles::Cutrace)?;
    if let Some((_, notes)) = &folded {
        note_cuts(path, notes);
    }
    Ok(folded)
}

fn note_cuts(path: &Path, notes: &ReadNotes) {
    if let Some(cut) = notes.cut() {
        note(&format!("{}: {cut}", shown(path).display()));
    }
}

/// How `path` is named in messages.
pub fn shown(path: &Path) -> &Path {
    if path == Path::new("-") {
        Path::new(STDIN)
    } else {
        path
    }
}

/// Fails once memory use nears the ceiling, naming `path` and what was being done.
pub fn within_ceiling(path: &Path, doing: &str) -> anyhow::Result<()> {
    memory::check()
        .with_context(|| format!("{}: {doing}", shown(path).display()))
        .map_err(|e| anyhow::anyhow!("{e:#} (--memory-limit raises it)"))
}

/// Where the times of `trace` count from, in words.
pub fn origin(trace: &Trace, origin: TimeOrigin) -> String {
    match origin {
        TimeOrigin::BaseTime => format!(
            "the file's baseTimeNanoseconds, {} ns since the epoch",
            trace.base_time_ns
        ),
        TimeOrigin::EarliestEvent => format!(
            "the earliest event (the file has no baseTimeNanoseconds), {} ns since the epoch",
            trace.base_time_ns
        ),
    }
}

/// One line on stderr; nothing is left to do when stderr itself is gone.
pub fn note(line: &str) {
    let _ = writeln!(io::stderr(), "cutrace: note: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(
            parse_size("lots")
                .unwrap_err()
                .starts_with("'lots' is not a size")
        );
    }
}
