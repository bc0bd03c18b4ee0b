//! Per-SM figures of a kernel launch, as Kineto writes them: blocks and warps per SM
//! and an estimate of achieved occupancy from the device's properties.

use cutrace_tracer::model::{Device, LaunchConfig};

/// What a launch asks of each SM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SmLoad {
    /// Blocks per SM, in millionths.
    pub blocks_per_sm_micros: u64,
    /// Warps per SM, in millionths.
    pub warps_per_sm_micros: u64,
    /// Estimated achieved occupancy, percent.
    pub occupancy_percent: u32,
}

/// The per-SM figures of `config` on `device`, or `None` when the device's
/// properties are unknown (zero) and nothing can be computed.
///
/// Like Kineto: blocks per SM = grid size / SMs; warps per SM = blocks per SM ×
/// threads per block / warp size; occupancy = min(blocks per SM, resident blocks
/// per SM) × warps per block / resident warps per SM. Resident blocks are the
/// theoretical limit from threads, registers and shared memory; register and
/// shared-memory allocation granularities beyond 256 registers per warp are
/// ignored, so the occupancy is an estimate (which is what the key says).
pub(crate) fn sm_load(config: &LaunchConfig, device: &Device) -> Option<SmLoad> {
    let sms = u128::from(device.num_sms);
    let warp = u64::from(device.warp_size);
    let max_threads_sm = u64::from(device.max_threads_per_multiprocessor);
    if sms == 0 || warp == 0 || max_threads_sm == 0 {
        return None;
    }
    let blocks: u128 = config.grid.iter().map(|&d| u128::from(d)).product();
    let threads: u64 = config.block.iter().map(|&d| u64::from(d)).product();
    let round_div =
        |num: u128, den: u128| -> u64 { u64::try_from((num + den / 2) / den).unwrap_or(u64::MAX) };
    let blocks_per_sm_micros = round_div(blocks * 1_000_000, sms);
    let warps_per_sm_micros = round_div(
        blocks * u128::from(threads) * 1_000_000,
        sms * u128::from(warp),
    );

    let warps_per_block = threads.div_ceil(warp);
    let max_warps_sm = max_threads_sm / warp;
    let occupancy_percent = if warps_per_block == 0 || max_warps_sm == 0 {
        0
    } else {
        let resident = resident_blocks(config, device, threads, warps_per_block, max_warps_sm);
        let blocks_per_sm = blocks_per_sm_micros as f64 / 1e6;
        let active = blocks_per_sm.min(resident as f64);
        let occupancy = active * warps_per_block as f64 / max_warps_sm as f64;
        (0.5 + occupancy * 100.0) as u32
    };
    Some(SmLoad {
        blocks_per_sm_micros,
        warps_per_sm_micros,
        occupancy_percent,
    })
}

/// Theoretical number of blocks of this launch resident on one SM at once.
fn resident_blocks(
    config: &LaunchConfig,
    device: &Device,
    threads: u64,
    warps_per_block: u64,
    max_warps_sm: u64,
) -> u64 {
    let mut limit = max_warps_sm / warps_per_block;
    limit = limit.min(max_blocks_per_sm(
        device.compute_major,
        device.compute_minor,
    ));

    let regs = u64::from(config.registers_per_thread);
    if regs > 0 {
        if device.regs_per_block > 0 && regs * threads > u64::from(device.regs_per_block) {
            return 0;
        }
        if device.regs_per_multiprocessor > 0 {
            let regs_per_warp = (regs * u64::from(device.warp_size)).next_multiple_of(256);
            let warps = u64::from(device.regs_per_multiprocessor) / regs_per_warp;
            limit = limit.min(warps / warps_per_block);
        }
    }

    let smem = u64::from(config.static_shared_memory) + u64::from(config.dynamic_shared_memory);
    if smem > 0 {
        let per_block_max = device
            .shared_mem_per_block_optin
            .max(device.shared_mem_per_block);
        if per_block_max > 0 && smem > per_block_max {
            return 0;
        }
        if device.shared_mem_per_multiprocessor > 0 {
            limit = limit.min(device.shared_mem_per_multiprocessor / smem);
        }
    }
    limit
}

/// Hardware limit of resident blocks per SM (CUDA Programming Guide, "Technical
/// Specifications per Compute Capability").
fn max_blocks_per_sm(major: u32, minor: u32) -> u64 {
    match (major, minor) {
        (7, 5) | (8, 6) | (8, 7) => 16,
        (8, 9) => 24,
        _ => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v100() -> Device {
        Device {
            name: "Tesla V100-SXM2-32GB".into(),
            compute_major: 7,
            compute_minor: 0,
            max_threads_per_block: 1024,
            max_threads_per_multiprocessor: 2048,
            regs_per_block: 65536,
            warp_size: 32,
            shared_mem_per_block: 49152,
            num_sms: 80,
            regs_per_multiprocessor: 65536,
            shared_mem_per_block_optin: 98304,
            shared_mem_per_multiprocessor: 98304,
            ..Default::default()
        }
    }

    fn launch(grid: [u32; 3], block: [u32; 3], regs: u32, smem: u32) -> LaunchConfig {
        LaunchConfig {
            grid,
            block,
            registers_per_thread: regs,
            static_shared_memory: smem,
            dynamic_shared_memory: 0,
        }
    }

    // Figures from a real Kineto trace on a V100 (ns_resolution.pt.trace.json.gz).
    #[test]
    fn matches_kineto_on_v100_launches() {
        let d = v100();
        let l = sm_load(&launch([4, 106, 1], [128, 1, 1], 30, 0), &d).unwrap();
        assert_eq!(l.blocks_per_sm_micros, 5_300_000);
        assert_eq!(l.warps_per_sm_micros, 21_200_000);
        assert_eq!(l.occupancy_percent, 33);
        let l = sm_load(&launch([1, 53, 1], [128, 1, 1], 30, 0), &d).unwrap();
        assert_eq!(
            (
                l.blocks_per_sm_micros,
                l.warps_per_sm_micros,
                l.occupancy_percent
            ),
            (662_500, 2_650_000, 4)
        );
        let l = sm_load(&launch([50, 1, 1], [256, 1, 1], 16, 0), &d).unwrap();
        assert_eq!(l.occupancy_percent, 8);
    }

    #[test]
    fn resources_limit_the_occupancy() {
        let d = v100();
        // 1000 blocks of 256 threads: 12.5 blocks per SM wanted, 8 fit by threads.
        assert_eq!(
            sm_load(&launch([1000, 1, 1], [256, 1, 1], 0, 0), &d)
                .unwrap()
                .occupancy_percent,
            100
        );
        // 128 registers per thread: 4096 per warp, 16 warps per SM, 2 blocks.
        assert_eq!(
            sm_load(&launch([1000, 1, 1], [256, 1, 1], 128, 0), &d)
                .unwrap()
                .occupancy_percent,
            25
        );
        // 48 KiB of shared memory: 2 blocks per SM.
        assert_eq!(
            sm_load(&launch([1000, 1, 1], [256, 1, 1], 0, 49152), &d)
                .unwrap()
                .occupancy_percent,
            25
        );
        // More shared memory than a block may have: it cannot run at all.
        assert_eq!(
            sm_load(&launch([1000, 1, 1], [256, 1, 1], 0, 200_000), &d)
                .unwrap()
                .occupancy_percent,
            0
        );
    }

    #[test]
    fn unknown_device_gives_nothing() {
        assert_eq!(
            sm_load(&launch([1, 1, 1], [1, 1, 1], 0, 0), &Device::default()),
            None
        );
    }

    #[test]
    fn empty_block_has_zero_occupancy() {
        let l = sm_load(&launch([0, 0, 0], [0, 0, 0], 0, 0), &v100()).unwrap();
        assert_eq!(
            l,
            SmLoad {
                blocks_per_sm_micros: 0,
                warps_per_sm_micros: 0,
                occupancy_percent: 0
            }
        );
    }
}
