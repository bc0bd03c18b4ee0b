//! Finding the injection library, `libcutrace.so`, that `cutrace run` hands to the
//! CUDA driver.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, anyhow};

/// Environment variable naming the injection library to use.
pub const LIB_ENV: &str = "CUTRACE_LIB";

/// File name of the injection library.
pub const LIB_NAME: &str = "libcutrace.so";

/// The library the command runs inside, when it runs as `cutrace_main` of a
/// `libcutrace.so` (as the Python package's `cutrace` does).
static RUNNING_IN: OnceLock<PathBuf> = OnceLock::new();

/// Records that the command runs inside the library at `library`, which is then
/// the injection library.
pub fn running_in(library: PathBuf) {
    // Set once per process: a second call names the same library.
    let _ = RUNNING_IN.set(library);
}

/// The injection library: [`LIB_ENV`] when set, else the library the command runs
/// inside (see [`running_in`]), else `libcutrace.so` beside this executable (a
/// build tree) or in `../lib` from it (what `scripts/install.sh` makes:
/// `PREFIX/bin/cutrace`, `PREFIX/lib/libcutrace.so`). The path is absolute,
/// because the traced command may change directory before it initialises CUDA.
pub fn injection_library() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(LIB_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            std::path::absolute(&path).with_context(|| format!("{LIB_ENV}={}", path.display()))
        } else {
            Err(anyhow!("{LIB_ENV}={} is not a file", path.display()))
        };
    }
    if let Some(library) = RUNNING_IN.get() {
        return std::path::absolute(library)
            .with_context(|| format!("the library running cutrace, {}", library.display()));
    }
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    candidates(dir)
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "cannot find {LIB_NAME} beside {} or in ../lib from it (set {LIB_ENV} to its path)",
                exe.display()
            )
        })
}

/// Where to look for the library, given the executable's directory.
fn candidates(exe_dir: &Path) -> [PathBuf; 2] {
    [
        exe_dir.join(LIB_NAME),
        exe_dir.join("../lib").join(LIB_NAME),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beside_the_executable_comes_first() {
        let [beside, lib] = candidates(Path::new("/opt/cutrace/bin"));
        assert_eq!(beside, Path::new("/opt/cutrace/bin/libcutrace.so"));
        assert_eq!(lib, Path::new("/opt/cutrace/bin/../lib/libcutrace.so"));
    }
}
