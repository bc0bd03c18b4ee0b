//! The figures cutrace reports about traces: what the GPUs did (computation,
//! communication, memory traffic, idle), HolisticTraceAnalysis's temporal breakdown
//! and communication-computation overlap, CUDA graphs, and across the traces of a
//! run, each iteration's straggler and the kernels whose time differs most between
//! ranks.
//!
//! [`TraceFigures::from_trace`] measures one trace, through a [`TraceAccumulator`]
//! that takes its events one at a time; [`Figures::new`] compares many. Both give
//! plain, serializable data, every time in integer nanoseconds: the text report,
//! `--format json` and any other rendering are made from the same numbers and
//! compute none of their own.
//!
//! The one choice a reader must know: where HolisticTraceAnalysis defines a figure
//! (`get_temporal_breakdown`, `get_comm_comp_overlap`, its kernel classes), it is
//! computed as HTA computes it, over the events HTA takes for GPU work, so that the
//! two agree on the same traces; cutrace's own breakdown ([`GpuTime`]) counts only
//! the GPU's work. Reading traces is the exporter's job; rendering, the command's.

#![deny(missing_docs)]

mod classify;
mod figures;
mod graphs;
mod intervals;
mod ranks;
mod trace;

pub use classify::WorkClass;
pub use figures::{
    CommCompOverlap, Figures, Gpu, GpuTime, GraphFigures, GraphSource, IterationAcrossRanks,
    IterationGpu, KernelSpread, KernelTotal, KindTimes, RankGpu, RankSource, Recording, Skipped,
    StreamFigures, TemporalBreakdown, Timeline, TraceFigures,
};
pub use trace::{Measured, TIMELINE_BINS, TraceAccumulator, graph_figures, measure, rank_of};
