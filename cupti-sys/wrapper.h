/* The headers cupti-sys binds: CUPTI's activity and callback APIs (with the
 * deprecated record layouts the decoder reads, e.g. CUpti_ActivityKernel9) and
 * the NVTX callback ids. */
#include <cupti.h>
#include <cupti_activity_deprecated.h>
