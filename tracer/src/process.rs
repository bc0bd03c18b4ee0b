//! Facts about the traced process: ids, host name, thread names (Linux `/proc`).

use std::cell::Cell;

/// OS id of the calling thread, as CUPTI reports it with system thread ids.
pub fn current_tid() -> u32 {
    thread_local! {
        static TID: Cell<u32> = const { Cell::new(0) };
    }
    TID.with(|tid| {
        if tid.get() == 0 {
            tid.set(read_tid().unwrap_or(0));
        }
        tid.get()
    })
}

/// `/proc/thread-self` links to `<pid>/task/<tid>`.
fn read_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The host's name (`/proc/sys/kernel/hostname`), empty when unknown.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The name of thread `tid` of this process (`/proc/self/task/<tid>/comm`).
pub fn thread_name(tid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// The name of this process (`/proc/self/comm`), empty when unknown.
pub fn process_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_ids_and_names_come_from_proc() {
        let main = current_tid();
        assert_eq!(main, current_tid());
        let (other, name) = std::thread::Builder::new()
            .name("tid-probe".into())
            .spawn(|| (current_tid(), thread_name(current_tid())))
            .unwrap()
            .join()
            .unwrap();
        assert_ne!(main, other);
        assert_ne!(other, 0);
        assert_eq!(name.as_deref(), Some("tid-probe"));
        assert!(!host_name().is_empty());
    }
}
