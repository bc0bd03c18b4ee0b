//! Running the traced command as a child: signals forwarded to it, and its exit
//! status turned into ours.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, PoisonError};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

/// Spawns `command` and waits for it, passing on SIGINT and SIGTERM sent to this
/// process. Returns the child's status.
///
/// A signal the kernel raised (a terminal's Ctrl-C goes to the whole foreground
/// process group, the child included) is not passed on again: the child would
/// see two interrupts and its clean-up would be cut short by the second.
pub fn run_forwarding_signals(command: &mut Command) -> io::Result<ExitStatus> {
    // Registered before the spawn so that no signal can kill this process while
    // the child runs on unwatched; exec resets the handlers in the child.
    let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM])?;
    let mut child = command.spawn()?;
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
    let status = wait_exited(pid).and_then(|()| {
        *exited.lock().unwrap_or_else(PoisonError::into_inner) = true;
        child.wait()
    });
    handle.close();
    if forwarder.join().is_err() {
        eprintln!("cutrace: the signal forwarding thread failed");
    }
    status.or_else(|e| reap_after_error(&mut child, e))
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

/// Blocks until `pid` has exited, leaving it unreaped.
fn wait_exited(pid: libc::pid_t) -> io::Result<()> {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid out-buffer for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid fills the live out-buffer; WNOWAIT leaves the child
        // waitable for `Child::wait`.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
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
    fn a_missing_program_is_an_error() {
        let err =
            run_forwarding_signals(&mut Command::new("/nonexistent/cutrace-test")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
