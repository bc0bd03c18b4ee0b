//! The names GPU copies, memsets and synchronizations are shown under, in the
//! trace file and in the table alike: the name an event was read with, as written,
//! else Kineto's name built from CUPTI's kinds (`Memcpy HtoD (Pageable -> Device)`,
//! `Memset (Device)`, `Stream Sync`).

use std::borrow::Cow;

use cutrace_tracer::Trace;
use cutrace_tracer::model::{Memcpy, Memset, Synchronization};

/// The name of `m`.
pub(crate) fn memcpy_name<'a>(trace: &'a Trace, m: &Memcpy) -> Cow<'a, str> {
    match m.name {
        Some(id) => Cow::Borrowed(trace.names.get(id)),
        None => Cow::Owned(format!(
            "Memcpy {} ({} -> {})",
            m.kind.as_str(),
            m.src_kind.as_str(),
            m.dst_kind.as_str()
        )),
    }
}

/// The name of `m`.
pub(crate) fn memset_name<'a>(trace: &'a Trace, m: &Memset) -> Cow<'a, str> {
    match m.name {
        Some(id) => Cow::Borrowed(trace.names.get(id)),
        None => Cow::Owned(format!("Memset ({})", m.memory_kind.as_str())),
    }
}

/// The name of `s`.
pub(crate) fn sync_name<'a>(trace: &'a Trace, s: &Synchronization) -> Cow<'a, str> {
    match s.name {
        Some(id) => Cow::Borrowed(trace.names.get(id)),
        None => Cow::Borrowed(s.kind.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use cutrace_tracer::model::{CopyKind, MemoryKind, SyncKind};

    use super::*;

    #[test]
    fn names_as_read_win_over_names_from_kinds() {
        let mut trace = Trace::default();
        let mut m = Memcpy {
            kind: CopyKind::HtoD,
            src_kind: MemoryKind::Pinned,
            dst_kind: MemoryKind::Device,
            ..Default::default()
        };
        assert_eq!(memcpy_name(&trace, &m), "Memcpy HtoD (Pinned -> Device)");
        m.name = Some(trace.names.intern("Memcpy HtoD (Host -> Device)"));
        assert_eq!(memcpy_name(&trace, &m), "Memcpy HtoD (Host -> Device)");

        let mut set = Memset {
            memory_kind: MemoryKind::Managed,
            ..Default::default()
        };
        assert_eq!(memset_name(&trace, &set), "Memset (Managed)");
        set.name = Some(trace.names.intern("Memset (Host)"));
        assert_eq!(memset_name(&trace, &set), "Memset (Host)");

        let mut sync = Synchronization {
            kind: SyncKind::EventSync,
            ..Default::default()
        };
        assert_eq!(sync_name(&trace, &sync), "Event Sync");
        sync.name = Some(trace.names.intern("Device Sync"));
        assert_eq!(sync_name(&trace, &sync), "Device Sync");
    }
}
