/*
 * A stand-in for the CUDA driver library (libcuda.so.1) in cutrace's tests, on
 * machines without a GPU. cuInit does what the real driver does when
 * CUDA_INJECTION64_PATH is set: it loads that library and calls its
 * InitializeInjection. The device queries describe FAKE_CUDA_DEVICES GPUs
 * (default 1); with 0, cuInit fails as the driver does on a machine whose GPUs
 * are all hidden. Not a driver: nothing else is implemented.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_NO_DEVICE 100

static int initialized;

static int device_count(void) {
  const char *n = getenv("FAKE_CUDA_DEVICES");
  return n && *n ? atoi(n) : 1;
}

int cuInit(unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (device_count() == 0) return CUDA_ERROR_NO_DEVICE;
  if (!initialized) {
    initialized = 1;
    const char *path = getenv("CUDA_INJECTION64_PATH");
    if (path && *path) {
      void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
      int (*init)(void) = lib ? (int (*)(void))dlsym(lib, "InitializeInjection") : NULL;
      if (init) {
        init();
      } else {
        fprintf(stderr, "fake libcuda: cannot inject %s: %s\n", path, dlerror());
      }
    }
  }
  return CUDA_SUCCESS;
}

int cuDriverGetVersion(int *version) {
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  *version = 13000;
  return CUDA_SUCCESS;
}

int cuDeviceGetCount(int *count) {
  if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
  *count = device_count();
  return CUDA_SUCCESS;
}

int cuDeviceGet(int *device, int ordinal) {
  if (ordinal < 0 || ordinal >= device_count()) return CUDA_ERROR_INVALID_VALUE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

int cuDeviceGetName(char *name, int len, int device) {
  if (len <= 0) return CUDA_ERROR_INVALID_VALUE;
  snprintf(name, (size_t)len, "Fake GPU %d", device);
  return CUDA_SUCCESS;
}

int cuDeviceGetAttribute(int *value, int attribute, int device) {
  (void)device;
  switch (attribute) {
  case 75: *value = 9; return CUDA_SUCCESS; /* compute capability major */
  case 76: *value = 0; return CUDA_SUCCESS; /* compute capability minor */
  default: return CUDA_ERROR_INVALID_VALUE;
  }
}

int cuDeviceTotalMem_v2(size_t *bytes, int device) {
  (void)device;
  *bytes = (size_t)80 << 30;
  return CUDA_SUCCESS;
}

int cuGetErrorString(int error, const char **text) {
  switch (error) {
  case CUDA_ERROR_NO_DEVICE: *text = "no CUDA-capable device is detected"; return CUDA_SUCCESS;
  case CUDA_ERROR_INVALID_VALUE: *text = "invalid argument"; return CUDA_SUCCESS;
  default: *text = NULL; return CUDA_ERROR_INVALID_VALUE;
  }
}
