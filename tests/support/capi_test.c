/*
 * The C ABI from C, compiled against include/cutrace.h and linked against
 * libcutrace.so, with CUPTI replaced by the test double (CUTRACE_CUPTI_LIB).
 * Usage: capi_test OUTPUT_DIR. Prints "ok" and exits 0 when every check holds;
 * otherwise names the failed check and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "cutrace.h"

static int failures;

#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "check failed, line %d: %s\n", __LINE__, #cond); \
      failures++;                                                    \
    }                                                                \
  } while (0)

static void every_call(void) {
  cutrace_start();
  cutrace_range_push("r");
  cutrace_range_pop();
  cutrace_step();
  cutrace_stop();
  cutrace_shutdown();
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: capi_test OUTPUT_DIR\n");
    return 2;
  }
  char config[4096];

  /* Before any init, every call is safe and nothing has failed. */
  CHECK(strcmp(cutrace_last_error(), "") == 0);
  every_call();
  CHECK(strcmp(cutrace_last_error(), "") == 0);

  /* A failed init names the unknown key, and every call is still safe. */
  CHECK(cutrace_init("{\"max_iter\": 3}") != 0);
  CHECK(strstr(cutrace_last_error(), "cutrace_init: ") == cutrace_last_error());
  CHECK(strstr(cutrace_last_error(), "`max_iter`") != NULL);
  every_call();
  CHECK(cutrace_init("not json") != 0);
  CHECK(strstr(cutrace_last_error(), "not a JSON object") != NULL);

  /* A null range name is refused without harm. */
  cutrace_range_push(NULL);
  CHECK(strcmp(cutrace_last_error(), "cutrace_range_push: name is null") == 0);

  /* init may be called again after a failure. */
  snprintf(config, sizeof config,
           "{\"output_dir\": \"%s\", \"max_iters\": 2, \"worker_name\": \"capi\"}", argv[1]);
  CHECK(cutrace_init(config) == 0);
  CHECK(cutrace_init(config) != 0);
  CHECK(strstr(cutrace_last_error(), "already initialised") != NULL);

  /* Three iterations; the window holds the first two (max_iters 2). */
  cutrace_start();
  for (int i = 0; i < 3; i++) {
    cutrace_range_push("iteration");
    cutrace_range_push("inner");
    cutrace_range_pop();
    cutrace_range_pop();
    cutrace_step();
  }
  cutrace_stop();
  cutrace_shutdown();

  /* After shutdown: safe calls, and a new init works. */
  every_call();
  CHECK(cutrace_init(config) == 0);
  cutrace_shutdown();
  cutrace_shutdown();

  if (failures) return 1;
  printf("ok\n");
  return 0;
}
