//! What kind of work a GPU event is, by HolisticTraceAnalysis's rules on its name
//! (`get_kernel_type` in `hta/utils/utils.py`), so that the breakdowns built on it
//! equal HTA's on the same traces.

use serde::Serialize;

/// A kind of GPU work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkClass {
    /// Collective communication: NCCL's kernels (RCCL keeps their names).
    Communication,
    /// Memory copies and sets, and DMA.
    Memory,
    /// Everything that computes.
    Computation,
    /// What HTA counts as neither: names holding `Memcpy` or `Sync` that are no
    /// copies (synchronizations, copy kernels of other libraries).
    Other,
}

impl WorkClass {
    /// The class of GPU work named `name`.
    ///
    /// HTA's patterns, applied with Python's `re.match` (anchored at the start):
    /// communication is `^nccl.*Kernel`; memory is `(^Memcpy)|(^Memset)|(^dma)`;
    /// computation is whatever `(^nccl.*Kernel)|(.*(Memcpy)|(Memset))|(.*Sync)` does
    /// not match: no `Memcpy` or `Sync` anywhere, no `Memset` at the start.
    pub fn of(name: &str) -> WorkClass {
        let communication = name
            .strip_prefix("nccl")
            .is_some_and(|rest| rest.contains("Kernel"));
        if communication {
            WorkClass::Communication
        } else if ["Memcpy", "Memset", "dma"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            WorkClass::Memory
        } else if name.contains("Memcpy") || name.contains("Sync") {
            WorkClass::Other
        } else {
            WorkClass::Computation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classed_as_hta_classes_them() {
        let cases = [
            (
                "ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)",
                WorkClass::Communication,
            ),
            (
                "ncclDevKernel_AllGather_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
                WorkClass::Communication,
            ),
            // No `Kernel` after the prefix: not communication, and it computes.
            ("ncclReduceScatter", WorkClass::Computation),
            ("nccKernel", WorkClass::Computation),
            ("Memcpy HtoD (Pageable -> Device)", WorkClass::Memory),
            ("Memset (Device)", WorkClass::Memory),
            ("dma_copy", WorkClass::Memory),
            (
                "void at::native::vectorized_elementwise_kernel<4>",
                WorkClass::Computation,
            ),
            ("Graph 3", WorkClass::Computation),
            ("Stream Sync", WorkClass::Other),
            ("Event Sync", WorkClass::Other),
            ("Context Sync", WorkClass::Other),
            // HTA's patterns see no `Sync` in it, so it computes.
            ("Stream Wait Event", WorkClass::Computation),
            ("cutlass_MemcpyKernel", WorkClass::Other),
            ("fused_Memset_kernel", WorkClass::Computation),
            ("", WorkClass::Computation),
        ];
        for (name, class) in cases {
            assert_eq!(WorkClass::of(name), class, "{name}");
        }
    }
}
