//! The files this process is in the middle of writing, so that a process that
//! exits without waiting for its writer leaves none of them behind.
//!
//! The exporter writes every file into a temporary file beside it and renames that
//! into place once it is complete. A writer still running when the process exits
//! would leave its temporary file (a hidden `.<name>.XXXXXX.tmp`, as large as the
//! trace got) for good. So each temporary file is listed here from its creation to
//! its rename or removal, and [`abandon_unfinished_files`] removes every listed
//! one and refuses new ones: a writer still writing then writes into a file that
//! no longer has a name, and its rename fails. The memory ceiling's allocator does
//! the same when it stops the process.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, TryLockError};

use tempfile::NamedTempFile;

/// A list of temporary files being written.
pub(crate) struct Unfinished {
    state: Mutex<State>,
}

struct State {
    files: Vec<PathBuf>,
    abandoned: bool,
}

/// The process's temporary files.
static UNFINISHED: Unfinished = Unfinished::new();

/// Keeps a temporary file on the list until it is dropped (after the file was
/// renamed into place or removed).
pub(crate) struct Listed<'a> {
    list: &'a Unfinished,
    path: PathBuf,
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.list.state().files.retain(|p| *p != self.path);
    }
}

impl Unfinished {
    const fn new() -> Self {
        Unfinished {
            state: Mutex::new(State {
                files: Vec::new(),
                abandoned: false,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a temporary file in `dir` with `builder`, listed until the guard
    /// drops; refused once the files were abandoned. Created under the list's lock,
    /// so that no file appears unlisted while they are being abandoned.
    fn create(
        &self,
        builder: &tempfile::Builder,
        dir: &Path,
    ) -> io::Result<(NamedTempFile, Listed<'_>)> {
        let mut state = self.state();
        if state.abandoned {
            return Err(io::Error::other(
                "the process is exiting without waiting for this file",
            ));
        }
        let file = builder.tempfile_in(dir)?;
        let path = file.path().to_path_buf();
        state.files.push(path.clone());
        Ok((file, Listed { list: self, path }))
    }

    /// Removes every listed file and refuses new ones; the number removed.
    fn abandon(&self) -> usize {
        self.state().abandon()
    }

    /// Abandons the files unless the list is locked: for a process stopping from
    /// inside its allocator, where the lock's holder may be the stopping thread.
    fn abandon_unless_locked(&self) {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        state.abandon();
    }
}

impl State {
    fn abandon(&mut self) -> usize {
        self.abandoned = true;
        self.files
            .drain(..)
            .filter(|path| std::fs::remove_file(path).is_ok())
            .count()
    }
}

/// Creates a temporary file in `dir` with `builder`, listed until the guard drops.
pub(crate) fn create_temp(
    builder: &tempfile::Builder,
    dir: &Path,
) -> io::Result<(NamedTempFile, Listed<'static>)> {
    UNFINISHED.create(builder, dir)
}

/// Removes the temporary file of every trace or table this process is writing, and
/// makes every later write fail: for a process that exits without waiting for its
/// writer. Returns how many files it removed. Only files that were never complete
/// are touched; a written file is never removed.
pub fn abandon_unfinished_files() -> usize {
    UNFINISHED.abandon()
}

/// Abandons the unfinished files from the allocator's stop, unless the list is
/// locked (perhaps by the very thread that stops, in the middle of listing one).
pub(crate) fn abandon_when_stopping() {
    UNFINISHED.abandon_unless_locked();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::names;
    use std::io::Write;

    #[test]
    fn abandoning_removes_the_files_being_written_and_refuses_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let list = Unfinished::new();
        let mut builder = tempfile::Builder::new();
        builder.prefix(".t.pt.trace.json.gz.").suffix(".tmp");
        let (done, listed) = list.create(&builder, dir.path()).unwrap();
        done.persist(dir.path().join("done.json.gz")).unwrap();
        drop(listed);
        let (mut writing, _listed) = list.create(&builder, dir.path()).unwrap();
        writing.write_all(b"half a trace").unwrap();
        assert_eq!(names(dir.path()).len(), 2);

        assert_eq!(list.abandon(), 1);
        assert_eq!(names(dir.path()), ["done.json.gz"]);
        // The writer goes on, into a file without a name, and cannot finish it.
        writing.write_all(b" and the rest").unwrap();
        assert!(writing.persist(dir.path().join("late.json.gz")).is_err());
        let Err(refused) = list.create(&builder, dir.path()) else {
            panic!("a file was created after abandoning");
        };
        assert_eq!(
            refused.to_string(),
            "the process is exiting without waiting for this file"
        );
        assert_eq!(names(dir.path()), ["done.json.gz"]);
    }
}
