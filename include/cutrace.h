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
 * nothing to act on does nothing. No function aborts or blocks the host for
 * long; a failure is reported through the return value of cutrace_init or
 * through cutrace_last_error.
 */
#ifndef CUTRACE_H
#define CUTRACE_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Starts the tracer. config_json is the same JSON object as the CUTRACE_CONFIG
 * environment variable (NULL or "" for the defaults plus the CUTRACE_* variables).
 * Returns 0 on success, non-zero on failure (an unknown key, a bad value, no
 * CUPTI, another CUPTI subscriber present); cutrace_last_error then says why, and
 * cutrace_init may be called again.
 */
int cutrace_init(const char *config_json);

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
 * The message of the last failure on the calling thread, "" if there was none.
 * The string belongs to cutrace and stays valid until the next failure on the
 * same thread; never NULL.
 */
const char *cutrace_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* CUTRACE_H */
