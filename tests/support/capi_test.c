/*
 * The C ABI from C, compiled against include/cutrace.h and linked against
 * libcutrace.so, with CUPTI replaced by the test double (CUTRACE_CUPTI_LIB).
 * Usage: capi_test OUTPUT_DIR. Prints "ok" and exits 0 when every check holds;
 * otherwise names the failed check and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
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

/* The string value of "key" in the first object of a flat JSON array, copied
 * into out (paths in the tests hold no escapes); "" when absent. */
static void json_value(const char *json, const char *key, char *out, size_t size) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
  const char *at = strstr(json, pattern);
  out[0] = '\0';
  if (!at) return;
  at += strlen(pattern);
  const char *end = strchr(at, '"');
  size_t len = end ? (size_t)(end - at) : 0;
  if (len >= size) len = size - 1;
  memcpy(out, at, len);
  out[len] = '\0';
}

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

  /* A configuration is checked without starting anything. */
  CHECK(cutrace_check_config("{\"max_iter\": 3}") == -1);
  CHECK(strstr(cutrace_last_error(), "cutrace_check_config: ") == cutrace_last_error());
  CHECK(strstr(cutrace_last_error(), "`max_iter`") != NULL);
  CHECK(cutrace_check_config("{\"max_iters\": 3}") == 0);
  CHECK(cutrace_check_config(NULL) == 0);
  CHECK(strcmp(cutrace_windows_json(0), "[]") == 0);

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

  /* The window's files, and its table as written. */
  const char *windows = cutrace_windows_json(0);
  char trace[2048], table[2048];
  json_value(windows, "trace", trace, sizeof trace);
  json_value(windows, "table", table, sizeof table);
  CHECK(strstr(trace, "/capi.") != NULL);
  CHECK(strstr(trace, ".pt.trace.json.gz") != NULL);
  CHECK(strstr(table, "/profiler_out_0.txt") != NULL);
  CHECK(strstr(windows, "inner") != NULL);
  CHECK(strcmp(cutrace_windows_json(1), "[]") == 0);

  /* The trace read back: the rows of `cutrace report --format json`. */
  const char *rows = cutrace_report_json(trace, NULL, -1);
  CHECK(strstr(rows, "\"name\": \"iteration\"") != NULL);
  CHECK(strstr(cutrace_report_json(trace, "count", 1), "\"name\"") != NULL);
  CHECK(strcmp(cutrace_report_json(trace, "bogus", -1), "") == 0);
  CHECK(strstr(cutrace_last_error(), "unknown sort key 'bogus'") != NULL);
  CHECK(strcmp(cutrace_report_json(trace, NULL, -2), "") == 0);
  CHECK(strcmp(cutrace_report_json("/nonexistent/trace.json.gz", NULL, -1), "") == 0);
  CHECK(strstr(cutrace_last_error(), "/nonexistent/trace.json.gz") != NULL);

  /* After shutdown: safe calls, and a new init works. */
  every_call();
  CHECK(cutrace_init(config) == 0);
  cutrace_shutdown();
  cutrace_shutdown();

  /* attach installs a tracer, or joins the one installed. */
  CHECK(cutrace_attach("{\"max_iter\": 1}") == -1);
  CHECK(cutrace_attach(config) == 0);
  CHECK(cutrace_attach(config) == 1);
  CHECK(cutrace_init(config) != 0);
  cutrace_shutdown();
  CHECK(cutrace_attach(config) == 0);
  cutrace_shutdown();

  /* The cutrace command, with its exit codes. */
  const char *version[] = {"cutrace", "--version"};
  CHECK(cutrace_main(2, version) == 0);
  const char *usage[] = {"cutrace", "report"};
  CHECK(cutrace_main(2, usage) == 2);
  const char *missing[] = {"cutrace", "report", "/nonexistent/trace.json.gz"};
  CHECK(cutrace_main(3, missing) == 1);

  if (failures) return 1;
  printf("ok\n");
  return 0;
}
