//! Running the traced command as a child: the signals sent to `cutrace run` passed
//! on to it, its job-control stops mirrored, and its exit status turned into ours.
//!
//! `cutrace run` stands between a terminal or a job manager (a shell, Slurm,
//! Kubernetes, `timeout`) and the command, so whatever they send it is meant for
//! the command, and it never exits while the command lives. Three rules follow:
//!
//! - every signal such senders use ([`FORWARDED`]) is caught and sent on to the
//!   child, unless the kernel raised it: a terminal's Ctrl-C, Ctrl-\, Ctrl-Z or
//!   resize goes to the whole foreground process group, the child included, and a
//!   second copy would, say, cut the child's clean-up after one interrupt short;
//! - catching SIGTSTP, SIGTTIN and SIGTTOU keeps them from stopping us, so we
//!   follow the child instead: when it stops, we stop too (the shell then sees the
//!   job stopped and gets the terminal back), and when we are continued, the
//!   SIGCONT is passed on;
//! - we exit only once the child has: with its exit code, or 128 + N when signal N
//!   killed it, as a shell reports it.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, PoisonError};

use signal_hook::consts::signal::{
    SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2,
    SIGWINCH,
};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

/// The signals passed on to the command: what terminals, shells and job managers
/// send.
pub const FORWARDED: [i32; 11] = [
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGTSTP, SIGTTIN,
    SIGTTOU,
];

/// Why the command did not run to an exit status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It could not be started (not found, not executable...).
    #[error("cannot run {program}")]
    NotStarted {
        /// The program, as given.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// Waiting for it failed.
    #[error("cannot wait for {program}")]
    Wait {
        /// The program, as given.
        program: String,
        /// Why.
        source: io::Error,
    },
}

impl Error {
    /// The exit code a shell gives a command it could not start: 127 when the
    /// program does not exist, 126 when it cannot be run, as `env` and POSIX
    /// shells do. `None` for a failure of cutrace's own.
    pub fn exit_code(&self) -> Option<u8> {
        match self {
            Error::NotStarted { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                Some(127)
            }
            Error::NotStarted { .. } => Some(126),
            Error::Wait { .. } => None,
        }
    }
}

/// Spawns `command` and waits for it, passing on the signals sent to this process
/// and following its stops (see the module doc). Returns the child's status.
pub fn run_forwarding_signals(command: &mut Command) -> Result<ExitStatus, Error> {
    let program = command.get_program().to_string_lossy().into_owned();
    // Registered before the spawn so that no signal can kill or stop this process
    // while the child runs on unwatched; exec resets the handlers in the child.
    let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED).map_err(|source| Error::Wait {
        program: program.clone(),
        source,
    })?;
    let mut child = command.spawn().map_err(|source| Error::NotStarted {
        program: program.clone(),
        source,
    })?;
    let pid = child.id() as libc::pid_t;
    // Set once the child has exited but before it is reaped: until it is reaped
    // its pid cannot be reused, so a forwarded signal can only reach it.
    let exited = Arc::new(Mutex::new(false));
    let handle = signals.handle();
    let forwarder = {
        let exited = Arc::clone(&exited);
        std::thread::spawn(move || {
            for origin in signals.forever() {
                if origin.cause == Cause::Kernel {
                    continue;
                }
                let exited = exited.lock().unwrap_or_else(PoisonError::into_inner);
                if !*exited {
                    // SAFETY: kill has no memory preconditions; the pid is our
                    // unreaped child (see `exited`).
                    unsafe { libc::kill(pid, origin.signal) };
                }
            }
        })
    };
    let status = follow_until_exit(pid).and_then(|()| {
        *exited.lock().unwrap_or_else(PoisonError::into_inner) = true;
        child.wait()
    });
    handle.close();
    if forwarder.join().is_err() {
        eprintln!("cutrace: the signal forwarding thread failed");
    }
    status
        .or_else(|e| reap_after_error(&mut child, e))
        .map_err(|source| Error::Wait { program, source })
}

/// The exit code a shell would report for `status`: the child's own code, or
/// 128 + N when signal N killed it.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => (128 + signal) as u8,
        (None, None) => 1,
    }
}

/// Blocks until `pid` has exited, leaving it unreaped; stops this process each
/// time the child stops, until someone continues it.
fn follow_until_exit(pid: libc::pid_t) -> io::Result<()> {
    loop {
        let code = wait_for(pid, libc::WEXITED | libc::WSTOPPED | libc::WNOWAIT)?;
        if matches!(code, libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED) {
            return Ok(());
        }
        // Take the stop's report (WNOWAIT left it there); none when the child
        // was continued in the meantime.
        if wait_for(pid, libc::WSTOPPED | libc::WNOHANG)? == libc::CLD_STOPPED {
            // SAFETY: raise has no memory preconditions. SIGSTOP cannot be
            // caught: we stay stopped until a SIGCONT, which the forwarder
            // passes on to the child.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
    }
}

/// `waitid` on `pid` with `options`: the `si_code` of the change it reports (0
/// when `WNOHANG` found none), retried when a signal interrupts it.
fn wait_for(pid: libc::pid_t, options: libc::c_int) -> io::Result<libc::c_int> {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid out-buffer for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid fills the live out-buffer.
        let rc = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, options) };
        if rc == 0 {
            return Ok(info.si_code);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Waiting failed; make sure no zombie is left before reporting it.
fn reap_after_error(child: &mut Child, error: io::Error) -> io::Result<ExitStatus> {
    match child.try_wait() {
        Ok(Some(status)) => Ok(status),
        _ => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_pass_through() {
        let status = run_forwarding_signals(Command::new("sh").args(["-c", "exit 7"])).unwrap();
        assert_eq!(exit_code(status), 7);
        let status = run_forwarding_signals(&mut Command::new("true")).unwrap();
        assert_eq!(exit_code(status), 0);
    }

    #[test]
    fn death_by_signal_is_128_plus_the_signal() {
        let status =
            run_forwarding_signals(Command::new("sh").args(["-c", "kill -KILL $$"])).unwrap();
        assert_eq!(exit_code(status), 128 + 9);
    }

    #[test]
    fn a_missing_program_is_127_and_one_that_cannot_run_126() {
        let err =
            run_forwarding_signals(&mut Command::new("/nonexistent/cutrace-test")).unwrap_err();
        assert_eq!(err.exit_code(), Some(127));
        assert_eq!(err.to_string(), "cannot run /nonexistent/cutrace-test");
        let dir = tempfile::tempdir().unwrap();
        let err = run_forwarding_signals(&mut Command::new(dir.path())).unwrap_err();
        assert_eq!(err.exit_code(), Some(126), "{err:?}");
    }
}
