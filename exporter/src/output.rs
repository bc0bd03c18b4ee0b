//! Where an output's bytes go, and how a file is written so that nothing half-made
//! is ever seen at its path: a regular file (new or replaced) is written to a
//! temporary file in its directory and renamed over it once complete, so on error
//! nothing is left behind and `path` is untouched. A symbolic link is followed and
//! its target written that way, the link kept. A FIFO, a device or a terminal
//! (`/dev/stdout`) is written to as a stream. A directory is an error.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::{ExportError, unfinished};

/// Writes an output at `path` with `write`, as the module says; `write` gets the
/// file to write, from its start, and what it returns is returned.
pub fn write_output<T>(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<T>,
) -> Result<T, ExportError> {
    match destination(path)? {
        Destination::Stream => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| ExportError::io(path, e))?;
            write(&mut file)
                .and_then(|value| file.flush().map(|()| value))
                .map_err(|e| ExportError::io(path, e))
        }
        Destination::File(target) => write_file(&target, write),
    }
}

/// Where the bytes for a path go.
enum Destination {
    /// A regular file at this path, new or replaced whole.
    File(PathBuf),
    /// Whatever is open at the path, written in order.
    Stream,
}

/// Follows `path` to where its bytes should go.
fn destination(path: &Path) -> Result<Destination, ExportError> {
    let refuse =
        |message: &str| ExportError::io(path, io::Error::new(io::ErrorKind::InvalidInput, message));
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(refuse("is a directory")),
        Ok(meta) if meta.is_file() => {
            let target = std::fs::canonicalize(path).map_err(|e| ExportError::io(path, e))?;
            Ok(Destination::File(target))
        }
        Ok(_) => Ok(Destination::Stream),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A link to a file yet to be made: make the file where the link points.
            let mut target = path.to_path_buf();
            for _ in 0..40 {
                match std::fs::read_link(&target) {
                    Ok(next) => {
                        target = match target.parent() {
                            Some(dir) => dir.join(next),
                            None => next,
                        };
                    }
                    Err(_) => return Ok(Destination::File(target)),
                }
            }
            Err(refuse("too many levels of symbolic links"))
        }
        Err(e) => Err(ExportError::io(path, e)),
    }
}

/// Writes the regular file `path` through a temporary file beside it.
fn write_file<T>(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<T>,
) -> Result<T, ExportError> {
    let file_name = path.file_name().ok_or_else(|| {
        ExportError::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "path names no file"),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    let prefix = format!(".{}.", file_name.to_string_lossy());
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The final file gets the usual permissions (0666 less the umask) rather
        // than the private 0600 of a temporary file.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let (mut tmp, _listed) =
        unfinished::create_temp(&builder, dir).map_err(|e| ExportError::io(dir, e))?;
    let value = write(tmp.as_file_mut()).map_err(|e| ExportError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| ExportError::io(path, e.error))?;
    Ok(value)
}
