/* The headers cupti-sys binds: CUPTI's activity and callback APIs (with the
 * deprecated record layouts the decoder reads, e.g. CUpti_ActivityKernel9), the
 * NVTX callback ids, and the NVTX parameter structs those callbacks pass (with
 * nvtxEventAttributes_t, from the NVTX headers). */
#include <cupti.h>
#include <cupti_activity_deprecated.h>
#include <generated_nvtx_meta.h>
