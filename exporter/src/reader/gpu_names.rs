//! Copy kinds, memory kinds and synchronization kinds recovered from the event names
//! Kineto writes (`Memcpy HtoD (Pageable -> Device)`, `Memset (Device)`,
//! `Stream Sync`), the only place a trace file keeps them.

use cutrace_tracer::model::{CopyKind, MemoryKind, SyncKind};

const COPY_KINDS: [CopyKind; 10] = [
    CopyKind::HtoD,
    CopyKind::DtoH,
    CopyKind::HtoA,
    CopyKind::AtoH,
    CopyKind::AtoA,
    CopyKind::AtoD,
    CopyKind::DtoA,
    CopyKind::DtoD,
    CopyKind::HtoH,
    CopyKind::PtoP,
];

const MEMORY_KINDS: [MemoryKind; 7] = [
    MemoryKind::Pageable,
    MemoryKind::Pinned,
    MemoryKind::Device,
    MemoryKind::Array,
    MemoryKind::Managed,
    MemoryKind::DeviceStatic,
    MemoryKind::ManagedStatic,
];

const SYNC_KINDS: [SyncKind; 4] = [
    SyncKind::EventSync,
    SyncKind::StreamWaitEvent,
    SyncKind::StreamSync,
    SyncKind::ContextSync,
];

fn memory_kind(name: &str) -> MemoryKind {
    let name = name.trim();
    MEMORY_KINDS
        .into_iter()
        .find(|k| k.as_str() == name)
        .unwrap_or(MemoryKind::Unknown)
}

/// The text between the first `(` and the last `)`, if any.
fn parenthesized(name: &str) -> Option<&str> {
    let open = name.find('(')?;
    let close = name.rfind(')')?;
    (open < close).then(|| &name[open + 1..close])
}

/// Direction and memory kinds of `Memcpy <kind> (<src> -> <dst>)`; what the name
/// lacks or this version does not know reads as `Unknown`.
pub(crate) fn parse_memcpy(name: &str) -> (CopyKind, MemoryKind, MemoryKind) {
    let kind = name
        .split_whitespace()
        .nth(1)
        .and_then(|word| COPY_KINDS.into_iter().find(|k| k.as_str() == word))
        .unwrap_or(CopyKind::Unknown);
    let (src, dst) = parenthesized(name)
        .and_then(|inner| inner.split_once("->"))
        .map_or((MemoryKind::Unknown, MemoryKind::Unknown), |(s, d)| {
            (memory_kind(s), memory_kind(d))
        });
    (kind, src, dst)
}

/// Memory kind of `Memset (<kind>)`.
pub(crate) fn parse_memset(name: &str) -> MemoryKind {
    parenthesized(name).map_or(MemoryKind::Unknown, memory_kind)
}

/// Kind of a `cuda_sync` event from its name (`Stream Sync`, `Event Sync`, ...).
pub(crate) fn parse_sync(name: &str) -> SyncKind {
    SYNC_KINDS
        .into_iter()
        .find(|k| k.as_str() == name.trim())
        .unwrap_or(SyncKind::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcpy_names_round_trip() {
        for kind in COPY_KINDS {
            for src in MEMORY_KINDS {
                for dst in MEMORY_KINDS {
                    let name = format!(
                        "Memcpy {} ({} -> {})",
                        kind.as_str(),
                        src.as_str(),
                        dst.as_str()
                    );
                    assert_eq!(parse_memcpy(&name), (kind, src, dst), "{name}");
                }
            }
        }
    }

    #[test]
    fn unknown_parts_read_as_unknown() {
        assert_eq!(
            parse_memcpy("Memcpy HtoD (Host -> Device)"),
            (CopyKind::HtoD, MemoryKind::Unknown, MemoryKind::Device)
        );
        assert_eq!(
            parse_memcpy("Memcpy"),
            (CopyKind::Unknown, MemoryKind::Unknown, MemoryKind::Unknown)
        );
        assert_eq!(parse_memset("Memset (Device)"), MemoryKind::Device);
        assert_eq!(
            parse_memset("Memset (Managed Static)"),
            MemoryKind::ManagedStatic
        );
        assert_eq!(parse_memset("Memset"), MemoryKind::Unknown);
    }

    #[test]
    fn sync_names_round_trip() {
        for kind in SYNC_KINDS {
            assert_eq!(parse_sync(kind.as_str()), kind);
        }
        assert_eq!(parse_sync("Device Sync"), SyncKind::Unknown);
    }
}
