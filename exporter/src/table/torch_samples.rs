//! Tables printed by torch's own `_build_table` (torch/autograd/profiler_util.py)
//! for hand-made rows, to hold cutrace's table to torch's layout character for
//! character. Each sample is the rows given to torch (as its `FunctionEventAvg`
//! values: times in µs = the nanoseconds here / 1000), the sort key, the row limit,
//! and what torch printed.

use super::*;

fn row(
    name: &str,
    kind: RowKind,
    calls: u64,
    self_cpu_ns: i64,
    cpu_total_ns: i64,
    self_cuda_ns: i64,
    cuda_total_ns: i64,
) -> Row {
    Row {
        name: name.to_owned(),
        kind,
        calls,
        self_cpu_ns,
        cpu_total_ns,
        self_cuda_ns,
        cuda_total_ns,
    }
}

/// torch's `_build_table` output for sample `device`.
const TORCH_DEVICE: &str = r"-------------------------------------------------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  
                                                   Name    Self CPU %      Self CPU   CPU total %     CPU total  CPU time avg     Self CUDA   Self CUDA %    CUDA total  CUDA time avg    # of Calls  
-------------------------------------------------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  
                       Memcpy HtoD (Pageable -> Device)         0.00%       0.000us         0.00%       0.000us       0.000us        1.000s        95.58%        1.000s     333.333ms             3  
void at::native::vectorized_elementwise_kernel<4, at...         0.00%       0.000us         0.00%       0.000us       0.000us      45.000ms         4.30%      45.000ms       6.429ms             7  
                                 ampere_sgemm_128x64_tn         0.00%       0.000us         0.00%       0.000us       0.000us       1.234ms         0.12%       1.234ms     123.400us            10  
                                         ProfilerStep#1         0.12%       1.200ms        24.88%     250.000ms     250.000ms       0.000us         0.00%      61.234ms      61.234ms             1  
                                               aten::mm         0.10%     999.999us         0.10%       1.000ms      50.000us       0.000us         0.00%      45.000ms       2.250ms            20  
                                       cudaLaunchKernel         0.25%       2.500ms         0.25%       2.500ms      75.758us       0.000us         0.00%       0.000us       0.000us            33  
xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...         0.00%       0.005us         0.00%       0.005us       0.003us       0.000us         0.00%       0.000us       0.000us             2  
    yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy         0.00%       0.000us         0.00%       0.000us       0.000us       0.000us         0.00%       0.000us       0.000us             1  
                                             Ünïcödé op        99.53%    1000.000ms        99.53%    1000.000ms     250.000ms       0.000us         0.00%       0.000us       0.000us             4  
-------------------------------------------------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  
Self CPU time total: 1.005s
Self CUDA time total: 1.046s
";

fn sample_device() -> (Vec<Row>, SortKey, Option<usize>) {
    let rows = vec![
        row(
            "ProfilerStep#1",
            RowKind::CpuOp,
            1,
            1200500,
            250000000,
            0,
            61234500,
        ),
        row("aten::mm", RowKind::CpuOp, 20, 999999, 1000000, 0, 45000000),
        row(
            "cudaLaunchKernel",
            RowKind::Runtime,
            33,
            2500000,
            2500000,
            0,
            0,
        ),
        row(
            "ampere_sgemm_128x64_tn",
            RowKind::Kernel,
            10,
            0,
            0,
            1234000,
            1234000,
        ),
        row(
            "void at::native::vectorized_elementwise_kernel<4, at::native::BinaryFunctor<float>>",
            RowKind::Kernel,
            7,
            0,
            0,
            44999999,
            44999999,
        ),
        row(
            "Memcpy HtoD (Pageable -> Device)",
            RowKind::Memcpy,
            3,
            0,
            0,
            1000000000,
            1000000000,
        ),
        row(&"x".repeat(52), RowKind::CpuOp, 2, 5, 5, 0, 0),
        row(&"y".repeat(51), RowKind::CpuOp, 1, 0, 0, 0, 0),
        row("Ünïcödé op", RowKind::CpuOp, 4, 999999999, 999999999, 0, 0),
    ];
    (rows, SortKey::SelfCudaTimeTotal, Some(100))
}

/// torch's `_build_table` output for sample `device_limit3_count`.
const TORCH_DEVICE_LIMIT3_COUNT: &str = r"-------------------------------------------------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  
                                                   Name    Self CPU %      Self CPU   CPU total %     CPU total  CPU time avg     Self CUDA   Self CUDA %    CUDA total  CUDA time avg    # of Calls  
-------------------------------------------------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  
                                       cudaLaunchKernel         0.25%       2.500ms         0.25%       2.500ms      75.758us       0.000us         0.00%       0.000us       0.000us            33  
                                               aten::mm         0.10%     999.999us         0.10%       1.000ms      50.000us       0.000us         0.00%      45.000ms       2.250ms            20  
                                 ampere_sgemm_128x64_tn         0.00%       0.000us         0.00%       0.000us       0.000us       1.234ms         0.12%       1.234ms     123.400us            10  
-------------------------------------------------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  
Self CPU time total: 1.005s
Self CUDA time total: 1.046s
";

fn sample_device_limit3_count() -> (Vec<Row>, SortKey, Option<usize>) {
    let rows = vec![
        row(
            "ProfilerStep#1",
            RowKind::CpuOp,
            1,
            1200500,
            250000000,
            0,
            61234500,
        ),
        row("aten::mm", RowKind::CpuOp, 20, 999999, 1000000, 0, 45000000),
        row(
            "cudaLaunchKernel",
            RowKind::Runtime,
            33,
            2500000,
            2500000,
            0,
            0,
        ),
        row(
            "ampere_sgemm_128x64_tn",
            RowKind::Kernel,
            10,
            0,
            0,
            1234000,
            1234000,
        ),
        row(
            "void at::native::vectorized_elementwise_kernel<4, at::native::BinaryFunctor<float>>",
            RowKind::Kernel,
            7,
            0,
            0,
            44999999,
            44999999,
        ),
        row(
            "Memcpy HtoD (Pageable -> Device)",
            RowKind::Memcpy,
            3,
            0,
            0,
            1000000000,
            1000000000,
        ),
        row(&"x".repeat(52), RowKind::CpuOp, 2, 5, 5, 0, 0),
        row(&"y".repeat(51), RowKind::CpuOp, 1, 0, 0, 0, 0),
        row("Ünïcödé op", RowKind::CpuOp, 4, 999999999, 999999999, 0, 0),
    ];
    (rows, SortKey::Count, Some(3))
}

/// torch's `_build_table` output for sample `cpu_only`.
const TORCH_CPU_ONLY: &str = r"---------------  ------------  ------------  ------------  ------------  ------------  ------------  
           Name    Self CPU %      Self CPU   CPU total %     CPU total  CPU time avg    # of Calls  
---------------  ------------  ------------  ------------  ------------  ------------  ------------  
        forward         8.85%       1.000us    109253.79%      12.346ms      12.346ms             1  
    aten::empty        88.50%      10.000us        88.50%      10.000us       2.000us             5  
---------------  ------------  ------------  ------------  ------------  ------------  ------------  
Self CPU time total: 11.300us
";

fn sample_cpu_only() -> (Vec<Row>, SortKey, Option<usize>) {
    let rows = vec![
        row("aten::add", RowKind::CpuOp, 3, 300, 900, 0, 0),
        row("aten::empty", RowKind::CpuOp, 5, 10000, 10000, 0, 0),
        row("forward", RowKind::CpuOp, 1, 1000, 12345678, 0, 0),
    ];
    (rows, SortKey::CpuTimeTotal, Some(2))
}

/// torch's `_build_table` output for sample `gpu_only`.
const TORCH_GPU_ONLY: &str = r"------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  
  Name    Self CPU %      Self CPU   CPU total %     CPU total  CPU time avg     Self CUDA   Self CUDA %    CUDA total  CUDA time avg    # of Calls  
------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  
    k1           NaN       0.000us           NaN       0.000us       0.000us       1.500us        75.00%       1.500us       0.750us             2  
    k2           NaN       0.000us           NaN       0.000us       0.000us       0.500us        25.00%       0.500us       0.500us             1  
------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  ------------  
Self CPU time total: 0.000us
Self CUDA time total: 2.000us
";

fn sample_gpu_only() -> (Vec<Row>, SortKey, Option<usize>) {
    let rows = vec![
        row("k1", RowKind::Kernel, 2, 0, 0, 1500, 1500),
        row("k2", RowKind::Kernel, 1, 0, 0, 500, 500),
    ];
    (rows, SortKey::SelfCudaTimeTotal, None)
}

fn table_of((rows, sort, limit): (Vec<Row>, SortKey, Option<usize>)) -> String {
    KeyAverages {
        rows,
        dropped_records: 0,
        refused_buffers: 0,
    }
    .table(sort, limit)
}

/// Compares line by line first, so a failure names the line that differs.
fn assert_same_table(ours: &str, torch: &str) {
    for (i, (a, b)) in ours.lines().zip(torch.lines()).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(ours, torch);
}

#[test]
fn device_table_matches_torch() {
    assert_same_table(&table_of(sample_device()), TORCH_DEVICE);
}

#[test]
fn sorted_by_count_and_limited_matches_torch() {
    assert_same_table(
        &table_of(sample_device_limit3_count()),
        TORCH_DEVICE_LIMIT3_COUNT,
    );
}

#[test]
fn cpu_only_table_matches_torch() {
    assert_same_table(&table_of(sample_cpu_only()), TORCH_CPU_ONLY);
}

#[test]
fn gpu_only_table_matches_torch() {
    assert_same_table(&table_of(sample_gpu_only()), TORCH_GPU_ONLY);
}
