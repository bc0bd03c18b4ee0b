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
//! hung program.
//!
//! Which process this is, is asked on every call (`step()` and ranges run in
//! host loops), so it is not asked of the kernel: `getpid` is a system call, one
//! that costs hundreds of nanoseconds under some sandboxes. A fork handler counts
//! the forks instead, and the slot remembers the count it was installed at.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use crate::Error;

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
}

/// How long `shutdown` waits for the tracer to write its last window.
pub(crate) const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// The slot holding the process's tracer.
pub(crate) struct Host {
    slot: Mutex<Option<Installed>>,
}

struct Installed {
    tracer: Arc<dyn Tracer>,
    /// The fork count when it was installed: the process where its threads exist.
    forks: u64,
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

    /// Makes a tracer with `make` and installs it, unless one is installed.
    pub(crate) fn install(
        &self,
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

    /// Removes the tracer and shuts it down, waiting at most `wait` for it.
    /// Nothing when none is installed.
    pub(crate) fn shutdown(&self, wait: Duration) -> Result<(), Error> {
        let Some(tracer) = self.take() else {
            return Ok(());
        };
        let (done, finished) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("cutrace-shutdown".into())
            .spawn(move || {
                tracer.shutdown();
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
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::ShutdownTimedOut(wait)),
        }
    }

    fn current(&self) -> Option<Arc<dyn Tracer>> {
        let slot = self.lock();
        slot.as_ref()
            .filter(|i| i.forks == current_forks())
            .map(|i| Arc::clone(&i.tracer))
    }

    fn take(&self) -> Option<Arc<dyn Tracer>> {
        let mut slot = self.lock();
        let installed = slot.take()?;
        if installed.forks == current_forks() {
            Some(installed.tracer)
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
    }

    fn installed(host: &Host) -> Arc<Recorder> {
        let recorder = Arc::new(Recorder::default());
        let tracer: Arc<dyn Tracer> = recorder.clone();
        host.install(|| Ok(tracer)).unwrap();
        recorder
    }

    #[test]
    fn calls_without_a_tracer_do_nothing() {
        let host = Host::new();
        let mut called = false;
        host.with(|_| called = true);
        assert!(!called);
        assert!(!host.is_installed());
        host.shutdown(SHUTDOWN_WAIT).unwrap();
    }

    #[test]
    fn one_tracer_at_a_time_and_again_after_shutdown() {
        let host = Host::new();
        let first = installed(&host);
        let err = host
            .install(|| Ok(Arc::new(Recorder::default())))
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyInitialised));
        host.with(|t| t.start());
        host.shutdown(SHUTDOWN_WAIT).unwrap();
        assert_eq!(first.calls(), ["start", "shutdown"]);
        let second = installed(&host);
        host.with(|t| t.step());
        assert_eq!(second.calls(), ["step"]);
    }

    #[test]
    fn a_failed_install_leaves_the_slot_empty() {
        let host = Host::new();
        let err = host.install(|| Err(Error::AlreadyInitialised)).unwrap_err();
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
            let own = host.install(|| Ok(Arc::new(Recorder::default()))).is_ok();
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

    #[test]
    fn a_stuck_shutdown_is_given_up_on() {
        let host = Host::new();
        let recorder = installed(&host);
        recorder.hang_on_shutdown.store(true, Ordering::Relaxed);
        let err = host.shutdown(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::ShutdownTimedOut(_)), "{err}");
        assert_eq!(recorder.calls(), ["shutdown"]);
        assert!(!host.is_installed());
    }
}
