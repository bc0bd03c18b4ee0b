//! The sizes and field offsets of the activity records the decoder reads, as the
//! CUDA 13.0 headers give them (`sizeof`/`offsetof` from a C program compiled against
//! the headers of nvidia-cuda-cupti 13.0.85). bindgen's own layout tests only compare
//! the bindings with themselves; these fail when regenerated bindings move a field.
//! The records in CUDA 12.0's headers (Kernel9, Memset4, API, ExternalCorrelation,
//! Marker2, MarkerData, Synchronization, Overhead, Name, Context) have the same
//! numbers for every field listed here that they have.

use std::mem::{offset_of, size_of};

use cupti_sys::sys::*;

/// Asserts the size of a record and the offsets of the listed fields.
macro_rules! assert_layout {
    ($record:ident, $size:expr, { $($field:ident: $offset:expr),* $(,)? }) => {
        assert_eq!(size_of::<$record>(), $size, concat!("size of ", stringify!($record)));
        $(assert_eq!(
            offset_of!($record, $field),
            $offset,
            concat!("offset of ", stringify!($record), ".", stringify!($field))
        );)*
    };
}

#[test]
fn kernel_records() {
    assert_layout!(CUpti_ActivityKernel9, 208, {
        kind: 0, registersPerThread: 6, start: 16, end: 24, completed: 32, deviceId: 40,
        contextId: 44, streamId: 48, gridX: 52, gridY: 56, gridZ: 60, blockX: 64,
        blockY: 68, blockZ: 72, staticSharedMemory: 76, dynamicSharedMemory: 80,
        correlationId: 92, gridId: 96, name: 104, queued: 120, submitted: 128,
        launchType: 136, graphNodeId: 144, graphId: 156, channelID: 168, channelType: 172,
        clusterX: 176, clusterY: 180, clusterZ: 184
    });
}

#[test]
fn memory_records() {
    assert_layout!(CUpti_ActivityMemcpy6, 96, {
        kind: 0, copyKind: 4, srcKind: 5, dstKind: 6, flags: 7, bytes: 8, start: 16,
        end: 24, deviceId: 32, contextId: 36, streamId: 40, correlationId: 44,
        runtimeCorrelationId: 48, graphNodeId: 64, graphId: 72, channelID: 76,
        channelType: 80, isDeviceLaunched: 84, copyCount: 88
    });
    assert_layout!(CUpti_ActivityMemcpyPtoP4, 96, {
        kind: 0, copyKind: 4, srcKind: 5, dstKind: 6, flags: 7, bytes: 8, start: 16,
        end: 24, deviceId: 32, contextId: 36, streamId: 40, srcDeviceId: 44,
        srcContextId: 48, dstDeviceId: 52, dstContextId: 56, correlationId: 60,
        graphNodeId: 72, graphId: 80, channelID: 84, channelType: 88
    });
    assert_layout!(CUpti_ActivityMemset4, 88, {
        kind: 0, value: 4, bytes: 8, start: 16, end: 24, deviceId: 32, contextId: 36,
        streamId: 40, correlationId: 44, flags: 48, memoryKind: 50, graphNodeId: 64,
        graphId: 72, channelID: 76, channelType: 80, isDeviceLaunched: 84
    });
}

#[test]
fn graph_and_api_records() {
    assert_layout!(CUpti_ActivityGraphTrace2, 56, {
        kind: 0, correlationId: 4, start: 8, end: 16, deviceId: 24, graphId: 28,
        contextId: 32, streamId: 36, endDeviceId: 48, endContextId: 52
    });
    assert_layout!(CUpti_ActivityAPI, 40, {
        kind: 0, cbid: 4, start: 8, end: 16, processId: 24, threadId: 28, correlationId: 32,
        returnValue: 36
    });
    assert_layout!(CUpti_ActivityExternalCorrelation, 24, {
        kind: 0, externalKind: 4, externalId: 8, correlationId: 16
    });
    assert_layout!(CUpti_ActivitySynchronization, 40, {
        kind: 0, type_: 4, start: 8, end: 16, correlationId: 24, contextId: 28,
        streamId: 32, cudaEventId: 36
    });
    assert_layout!(CUpti_ActivitySynchronization2, 56, {
        kind: 0, type_: 4, start: 8, end: 16, correlationId: 24, contextId: 28,
        streamId: 32, cudaEventId: 36, cudaEventSyncId: 40, returnValue: 48
    });
}

#[test]
fn marker_records() {
    assert_layout!(CUpti_ActivityMarker2, 56, {
        kind: 0, flags: 4, timestamp: 8, id: 16, objectKind: 20, objectId: 24, name: 40,
        domain: 48
    });
    assert_layout!(CUpti_ActivityMarkerData, 32, {
        kind: 0, flags: 4, id: 8, payloadKind: 12, payload: 16, color: 24, category: 28
    });
    assert_layout!(CUpti_ActivityMarkerData2, 40, {
        kind: 0, flags: 4, id: 8, payloadKind: 12, payload: 16, color: 24, category: 28,
        cuptiDomainId: 32
    });
}

#[test]
fn device_context_name_and_overhead_records() {
    assert_layout!(CUpti_ActivityDevice5, 184, {
        kind: 0, flags: 4, globalMemoryBandwidth: 8, globalMemorySize: 16,
        numThreadsPerWarp: 32, coreClockRate: 36, numMultiprocessors: 44,
        computeCapabilityMajor: 104, computeCapabilityMinor: 108, id: 112, uuid: 120,
        name: 136, isMigEnabled: 145, gpuInstanceId: 152, computeInstanceId: 156,
        migUuid: 160
    });
    assert_layout!(CUpti_ActivityContext, 16, {
        kind: 0, contextId: 4, deviceId: 8, computeApiKind: 12, nullStreamId: 14
    });
    assert_layout!(CUpti_ActivityContext3, 32, {
        kind: 0, contextId: 4, deviceId: 8, computeApiKind: 12, nullStreamId: 14,
        parentContextId: 16, isGreenContext: 20, numMultiprocessors: 22, cigMode: 24
    });
    assert_layout!(CUpti_ActivityName, 32, {
        kind: 0, objectKind: 4, objectId: 8, name: 24
    });
    assert_layout!(CUpti_ActivityOverhead, 40, {
        kind: 0, overheadKind: 4, objectKind: 8, objectId: 12, start: 24, end: 32
    });
    assert_layout!(CUpti_ActivityOverhead3, 56, {
        kind: 0, overheadKind: 4, objectKind: 8, objectId: 12, start: 24, end: 32,
        correlationId: 40, overheadData: 48
    });
}

/// Records only grow: a decoder that reads Kernel9's fields reads a Kernel10 right.
#[test]
fn kernel10_keeps_kernel9s_offsets() {
    assert_eq!(size_of::<CUpti_ActivityKernel10>(), 216);
    assert_eq!(offset_of!(CUpti_ActivityKernel10, isDeviceLaunched), 208);
    macro_rules! same_offsets {
        ($($field:ident),*) => {
            $(assert_eq!(
                offset_of!(CUpti_ActivityKernel10, $field),
                offset_of!(CUpti_ActivityKernel9, $field),
                stringify!($field)
            );)*
        };
    }
    same_offsets! {
        kind, registersPerThread, start, end, completed, deviceId, contextId, streamId,
        gridX, gridY, gridZ, blockX, blockY, blockZ, staticSharedMemory,
        dynamicSharedMemory, correlationId, gridId, name, queued, submitted, launchType,
        graphNodeId, graphId, channelID, channelType, clusterX, clusterY, clusterZ
    }
}
