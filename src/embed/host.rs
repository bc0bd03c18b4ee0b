//! The process's one tracer, shared by the injection entry point and the C ABI.
//!
//! CUPTI allows one subscriber per process, so there is at most one tracer; it
//! sits in [`HOST`] between `install` and `shutdown`, and may be installed again
//! after a failed install or a shutdown. Calls with nothing installed do nothing:
//! the C ABI promises that every function is safe in any state.
//!
//! Two things here protect the host process. A forked child inherits the slot but
//! none of the tracer's threads, so the tracer only acts in the process that
//! installed it. And `shutdown` waits a bounded time for the tracer to write what
//! it recorded: at process exit a stuck writer must cost a lost trace, never a
//! hung program, and a lost trace leaves no half-written file behind.
//!
//! Which process this is, is asked on every call (`step()` and ranges run in
//! host loops), so it is not asked of the kernel: `getpid` is a system call, one
//! that costs hundreds of nanoseconds under some sandboxes. A fork handler counts
//! the forks instead, and the slot remembers the count it was installed at.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use cutrace_tracer::UnwrittenWindow;

use crate::error::{Error, OnTimeout};

/// What the host drives; implemented by the real profiler and by tests' fakes.
pub(crate) trait Tracer: Send + Sync {
    /// Arms the tracer.
    fn start(&self);
    /// Ends an iteration.
    fn step(&self);
    /// Ends the window being recorded.
    fn stop(&self);
    /// Opens a named range on the calling thread.
    fn range_push(&self, name: &str);
    /// Closes the calling thread's innermost range.
    fn range_pop(&self);
    /// Stops, writes what was recorded and releases CUPTI; may block.
    fn shutdown(&self);
    /// The windows that began and are not written yet.
    fn unwritten(&self) -> Vec<UnwrittenWindow>;
    /// The process exits without waiting for the writer: removes what it began
    /// to write and refuses anything more.
    fn abandon(&self);
}

/// The slot holding the process's tracer.
pub(crate) struct Host {
    slot: Mutex<Option<Installed>>,
}

struct Installed {
    tracer: Arc<dyn Tracer>,
    /// The fork count when it was installed: the process where its threads exist.
    forks: u64,
    /// How long `shutdown` waits for it (`shutdown_wait_ms`).
    wait: Duration,
}

/// Forks of this process's line: a child's count is its parent's plus one.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_fork() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// The fork count of the calling process, once the handler that keeps it is
/// registered (an error when it cannot be).
fn forks() -> Result<u64, Error> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED.get_or_init(|| {
        // SAFETY: the child handler only adds to an atomic, which is
        // async-signal-safe as a fork handler must be.
        unsafe { libc::pthread_atfork(None, None, Some(count_fork)) == 0 }
    });
    if registered {
        Ok(FORKS.load(Ordering::Relaxed))
    } else {
        Err(Error::AtFork)
    }
}

/// The fork count to compare installs with, without registering anything: no
/// tracer can have been installed before the handler was.
fn current_forks() -> u64 {
    FORKS.load(Ordering::Relaxed)
}

/// The process's tracer slot.
pub(crate) static HOST: Host = Host::new();

impl Host {
    /// An empty slot.
    pub(crate) const fn new() -> Host {
        Host {
            slot: Mutex::new(None),
        }
    }

    /// Makes a tracer with `make` and installs it, unless one is installed;
    /// `shutdown` will wait `wait` for it.
    pub(crate) fn install(
        &self,
        wait: Duration,
        make: impl FnOnce() -> Result<Arc<dyn Tracer>, Error>,
    ) -> Result<(), Error> {
        let forks = forks()?;
        let mut slot = self.lock();
        if slot.as_ref().is_some_and(|i| i.forks == forks) {
            return Err(Error::AlreadyInitialised);
        }
        // What a forked child inherited is not ours to drop: dropping it could
        // join threads that do not exist in this process.
        if let Some(inherited) = slot.take() {
            std::mem::forget(inherited);
        }
        *slot = Some(Installed {
            tracer: make()?,
            forks,
            wait,
        });
        Ok(())
    }

    /// Runs `f` on the installed tracer; nothing when there is none. The slot is
    /// not locked while `f` runs, so a slow call never blocks another thread's.
    pub(crate) fn with(&self, f: impl FnOnce(&dyn Tracer)) {
        let tracer = self.current();
        if let Some(tracer) = tracer {
            f(&*tracer);
        }
    }

    /// Whether a tracer is installed in this process.
    #[cfg(test)]
    pub(crate) fn is_installed(&self) -> bool {
        self.current().is_some()
    }

    /// Removes the tracer and shuts it down, waiting for it as long as it was
    /// installed to be waited for, and past that does what `on_timeout` says with
    /// the windows it has not written. Nothing when none is installed.
    pub(crate) fn shutdown(&self, on_timeout: OnTimeout) -> Result<(), Error> {
        let Some((tracer, wait)) = self.take() else {
            return Ok(());
        };
        let (done, finished) = mpsc::channel();
        let shutting_down = Arc::clone(&tracer);
        let worker = std::thread::Builder::new()
            .name("cutrace-shutdown".into())
            .spawn(move || {
                shutting_down.shutdown();
                // The receiver may have given up waiting; nothing to tell then.
                let _ = done.send(());
            })
            .map_err(|e| Error::Thread {
                name: "shutdown",
                source: e,
            })?;
        match finished.recv_timeout(wait) {
            Ok(()) => {
                // It has sent its last message, so the join is immediate.
                let _ = worker.join();
                Ok(())
            }
            // The thread panicked before sending: the trampoline of the tracer's
            // own callbacks has already reported what went wrong.
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::ShutdownFailed),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Asked first: abandoning makes the writer fail what it is on.
                let unwritten = tracer.unwritten();
                if on_timeout == OnTimeout::Abandon {
                    tracer.abandon();
                }
                Err(Error::ShutdownTimedOut {
                    wait,
                    unwritten,
                    on_timeout,
                })
            }
        }
    }

    fn current(&self) -> Option<Arc<dyn Tracer>> {
        let slot = self.lock();
        slot.as_ref()
            .filter(|i| i.forks == current_forks())
            .map(|i| Arc::clone(&i.tracer))
    }

    fn take(&self) -> Option<(Arc<dyn Tracer>, Duration)> {
        let mut slot = self.lock();
        let installed = slot.take()?;
        if installed.forks == current_forks() {
            Some((installed.tracer, installed.wait))
        } else {
            std::mem::forget(installed);
            None
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Installed>> {
        // A panic while the lock was held left at worst a stale Option in it.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A tracer that records the calls it gets.
    #[derive(Default)]
    pub(crate) struct Recorder {
        pub(crate) calls: Mutex<Vec<String>>,
        /// When set, `shutdown` blocks until the test process ends.
        pub(crate) hang_on_shutdown: AtomicBool,
        /// What `unwritten` answers.
        pub(crate) unwritten: Vec<UnwrittenWindow>,
    }

    impl Recorder {
        pub(crate) fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        fn record(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    impl Tracer for Recorder {
        fn start(&self) {
            self.record("start".into());
        }
        fn step(&self) {
            self.record("step".into());
        }
        fn stop(&self) {
            self.record("stop".into());
        }
        fn range_push(&self, name: &str) {
            self.record(format!("push {name}"));
        }
        fn range_pop(&self) {
            self.record("pop".into());
        }
        fn shutdown(&self) {
            self.record("shutdown".into());
            if self.hang_on_shutdown.load(Ordering::Relaxed) {
                loop {
                    std::thread::park();
                }
            }
        }
        fn unwritten(&self) -> Vec<UnwrittenWindow> {
            self.record("unwritten".into());
            self.unwritten.clone()
        }
        fn abandon(&self) {
            self.record("abandon".into());
        }
    }

    fn installed(host: &Host) -> Arc<Recorder> {
        installed_with(host, Recorder::default())
    }

    fn installed_with(host: &Host, recorder: Recorder) -> Arc<Recorder> {
        let recorder = Arc::new(recorder);
        let tracer: Arc<dyn Tracer> = recorder.clone();
        host.install(WAIT, || Ok(tracer)).unwrap();
        recorder
    }

    /// How long the tests' tracers are waited for.
    const WAIT: Duration = Duration::from_millis(50);

    #[test]
    fn calls_without_a_tracer_do_nothing() {
        let host = Host::new();
        let mut called = false;
        host.with(|_| called = true);
        assert!(!called);
        assert!(!host.is_installed());
        host.shutdown(OnTimeout::Abandon).unwrap();
    }

    #[test]
    fn one_tracer_at_a_time_and_again_after_shutdown() {
        let host = Host::new();
        let first = installed(&host);
        let err = host
            .install(WAIT, || Ok(Arc::new(Recorder::default())))
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyInitialised));
        host.with(|t| t.start());
        host.shutdown(OnTimeout::KeepWriting).unwrap();
        assert_eq!(first.calls(), ["start", "shutdown"]);
        let second = installed(&host);
        host.with(|t| t.step());
        assert_eq!(second.calls(), ["step"]);
    }

    #[test]
    fn a_failed_install_leaves_the_slot_empty() {
        let host = Host::new();
        let err = host
            .install(WAIT, || Err(Error::AlreadyInitialised))
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyInitialised));
        assert!(!host.is_installed());
        installed(&host);
        assert!(host.is_installed());
    }

    #[test]
    fn a_forked_child_leaves_its_parents_tracer_and_may_install_its_own() {
        let host = Host::new();
        let recorder = installed(&host);
        // SAFETY: the child touches only this test's own host (no other thread
        // holds its lock) and glibc's allocator, which is fork-safe, then exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let mut called = false;
            host.with(|_| called = true);
            let own = host
                .install(WAIT, || Ok(Arc::new(Recorder::default())))
                .is_ok();
            let mut drives_own = false;
            host.with(|_| drives_own = true);
            let code = if !called && own && drives_own { 0 } else { 1 };
            // SAFETY: ends the child without running the test harness's exit.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status}"
        );
        host.with(|t| t.step());
        assert_eq!(recorder.calls(), ["step"]);
    }

    fn stuck(unwritten: Vec<UnwrittenWindow>) -> (Host, Arc<Recorder>) {
        let host = Host::new();
        let recorder = installed_with(
            &host,
            Recorder {
                hang_on_shutdown: AtomicBool::new(true),
                unwritten,
                ..Recorder::default()
            },
        );
        (host, recorder)
    }

    fn window(window: u32, events: Option<usize>) -> UnwrittenWindow {
        UnwrittenWindow { window, events }
    }

    #[test]
    fn a_stuck_shutdown_is_given_up_on_and_says_what_is_still_being_written() {
        let (host, recorder) = stuck(vec![window(2, Some(1_500))]);
        let err = host.shutdown(OnTimeout::KeepWriting).unwrap_err();
        assert_eq!(
            err.to_string(),
            "gave up waiting 50ms for the trace writer; still being written: window 2 (1500 events)"
        );
        assert_eq!(recorder.calls(), ["shutdown", "unwritten"]);
        assert!(!host.is_installed());
    }

    #[test]
    fn at_exit_a_stuck_shutdown_abandons_what_it_did_not_write_and_names_it() {
        let (host, recorder) = stuck(vec![window(2, Some(1_500)), window(3, None)]);
        let err = host.shutdown(OnTimeout::Abandon).unwrap_err();
        assert_eq!(
            err.to_string(),
            "gave up waiting 50ms for the trace writer; lost, their unfinished files removed: \
             window 2 (1500 events), window 3 (records not decoded yet)"
        );
        assert_eq!(recorder.calls(), ["shutdown", "unwritten", "abandon"]);
    }

    #[test]
    fn a_shutdown_stuck_with_nothing_left_to_write_says_so() {
        let (host, _) = stuck(Vec::new());
        let err = host.shutdown(OnTimeout::Abandon).unwrap_err();
        assert_eq!(
            err.to_string(),
            "gave up waiting 50ms for the tracer to shut down; nothing was left to write"
        );
    }
}
