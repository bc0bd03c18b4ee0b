/*
 * cutrace: a CUDA GPU tracer, embedded through a C ABI.
 *
 * Link against libcutrace.so (or dlopen it). A typical worker:
 *
 *     if (cutrace_init("{\"output_dir\": \"traces\", \"max_iters\": 5}") != 0)
 *         fprintf(stderr, "tracing off: %s\n", cutrace_last_error());
 *     cutrace_start();
 *     for (int i = 0; i < n; i++) {
 *         cutrace_range_push("forward");
 *         run_iteration(i);
 *         cutrace_range_pop();
 *         cutrace_step();
 *     }
 *     cutrace_stop();
 *     cutrace_shutdown();
 *
 * Each finished window is written as <worker>.<unix_ns>.pt.trace.json.gz and
 * profiler_out_<rank>.txt into the configured output directory.
 *
 * Every function may be called from any thread and in any state: before
 * cutrace_init, after a failed one, after cutrace_shutdown. A call that has
 * nothing to act on does nothing. No function aborts the host, and none but
 * cutrace_shutdown (bounded), cutrace_report_json (it reads a file) and
 * cutrace_main (it runs a command) blocks it for long; a failure is reported
 * through a return value and cutrace_last_error.
 */
#ifndef CUTRACE_H
#define CUTRACE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every config_json below is a JSON object with the keys of the CUTRACE_CONFIG
 * environment variable, read over the environment: its keys win over
 * CUTRACE_CONFIG and the CUTRACE_* variables, which fill in the keys it leaves
 * out (NULL or "" takes the environment alone). Under `cutrace run`, a program
 * that names no output_dir so writes where `cutrace run -o` says.
 */

/*
 * Starts the tracer for config_json. Returns 0 on success, non-zero on failure
 * (an unknown key, a bad value, no CUPTI, another CUPTI subscriber present, a
 * tracer already installed); cutrace_last_error then says why, and cutrace_init
 * may be called again.
 */
int cutrace_init(const char *config_json);

/*
 * Checks config_json as cutrace_init would, and does nothing else: 0 when it is
 * usable, -1 otherwise (cutrace_last_error names the key or variable and what is
 * wrong).
 */
int cutrace_check_config(const char *config_json);

/*
 * Makes sure the process has its one tracer (CUPTI takes one subscriber per
 * process). Returns 0 when it installed one for config_json; 1 when one was
 * already installed (by the injection of `cutrace run`, or an earlier
 * cutrace_init or cutrace_attach), which then stays as it is: config_json is
 * checked but not used, and the calls below drive that tracer; -1 on failure,
 * as cutrace_init. A tracer installed here first is left alone by the injected
 * library when CUDA initialises later.
 */
int cutrace_attach(const char *config_json);

/* Arms the tracer: iteration 1 begins (windows follow the configured delay_iters,
 * max_iters, warmup_iters and repeat). Ignored while armed. */
void cutrace_start(void);

/* Ends the iteration in progress and begins the next. */
void cutrace_step(void);

/* Ends the iteration in progress and the window being recorded, which is then
 * written in the background. Ignored while not armed. */
void cutrace_stop(void);

/* Opens a named range on the calling thread; it shows in the trace as a
 * user_annotation and as a row of the table. NULL is ignored (and reported
 * through cutrace_last_error). */
void cutrace_range_push(const char *name);

/* Closes the calling thread's innermost open range. */
void cutrace_range_pop(void);

/* Stops, writes what is recorded and releases CUPTI. It waits for the writer at
 * most shutdown_wait_ms (30 s); what is not written by then is written in the
 * background, and cutrace_last_error names it. cutrace_init may be called again
 * afterwards. */
void cutrace_shutdown(void);

/*
 * The windows the process's tracer has written, from the first-th of the
 * process's life on (0 for all), as a JSON array, oldest first:
 *     [{"number": <n, from 0 over the process's life>,
 *       "trace": "<dir>/<worker>.<unix_ns>.pt.trace.json.gz",
 *       "table": "<dir>/profiler_out_<rank>.txt",
 *       "table_text": "<the key-averages table as written>"}, ...]
 * A window appears once its files are written (in the background after the
 * window ends; cutrace_shutdown waits for them). The last 64 windows are kept.
 * The string belongs to cutrace and stays valid until the next call on the same
 * thread of a function that returns JSON; "" on failure.
 */
const char *cutrace_windows_json(size_t first);

/*
 * Reads any trace file (cutrace's or torch.profiler's: Kineto/Chrome JSON, gzip
 * or plain) and returns its key-averages rows as `cutrace report --format json`
 * prints them: sorted by sort_by (NULL for self_cuda_time_total; or
 * cuda_time_total, self_cpu_time_total, cpu_time_total, count), row_limit rows
 * (-1 for all). The string lives as cutrace_windows_json's; "" on failure, with
 * cutrace_last_error saying why.
 */
const char *cutrace_report_json(const char *trace, const char *sort_by, long long row_limit);

/*
 * Runs the `cutrace` command (run, report, convert, doctor) with argv, the
 * program name first, and returns its exit code, as the cutrace executable
 * would exit; 101 if the command failed inside (cutrace_last_error says why).
 * The Python package's `cutrace` console script is this call; `cutrace run` then
 * injects the library it runs in.
 */
int cutrace_main(int argc, const char *const *argv);

/*
 * The message of the last failure on the calling thread, "" if there was none.
 * The string belongs to cutrace and stays valid until the next failure on the
 * same thread; never NULL.
 */
const char *cutrace_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* CUTRACE_H */
