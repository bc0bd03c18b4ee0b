//! Opening libcupti: carrying out a [`SearchPlan`], the checks every library must
//! pass, and the one library per process.
//!
//! A library is accepted when it opens, reports CUDA 12.0 or newer, and exports every
//! function the tracer cannot work without. A library from a decisive step
//! ([`Origin::is_decisive`]) is used or the load fails; one from any other step that
//! fails a check is noted and the search goes on.

use std::ffi::{CStr, OsStr, c_int, c_void};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libloading::os::unix::{Library as RawLibrary, RTLD_LAZY, RTLD_LOCAL};

use crate::error::{Attempt, Error, Problem};
use crate::result::query_version;
use crate::search::{Environment, Location, Origin, SearchPlan};
use crate::sys;
use crate::version::CuptiVersion;

/// How libraries are opened. `RTLD_NODELETE` because libcupti must never be
/// unmapped: it leaves threads and exit handlers behind (closing the real one and
/// then exiting crashes the process).
const OPEN_FLAGS: c_int = RTLD_LAZY | RTLD_LOCAL | libc::RTLD_NODELETE;

/// An opened libcupti that passed the checks: the handle the result layer's methods
/// (see [`crate::result`]) are called on.
pub struct Library {
    pub(crate) api: sys::Cupti,
    path: PathBuf,
    origin: Origin,
    version: CuptiVersion,
}

impl Library {
    /// The file the library was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The search step that found it.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Its version, read when it was loaded.
    pub fn version(&self) -> CuptiVersion {
        self.version
    }

    /// Opens `path` and checks it.
    fn open(path: &Path, origin: Origin) -> Result<Library, Problem> {
        if !is_bare_name(path) && !path.exists() {
            return Err(Problem::Absent);
        }
        // SAFETY: opening a library runs its initialisers, and the bindings below call
        // its functions with the signatures of CUPTI's headers. Whatever the search
        // finds is trusted to be libcupti: that trust is what a loader is.
        let raw = unsafe { RawLibrary::open(Some(path), OPEN_FLAGS) }
            .map_err(|error| Problem::Open(error.to_string()))?;
        let handle = raw.into_raw();
        // SAFETY: `handle` comes from `into_raw` just above and is closed only when
        // the rebuilt library is dropped.
        let raw = unsafe { RawLibrary::from_raw(handle) };
        let tagged_cuda12 = tagged_cuda12(handle);
        // SAFETY: `from_library` only looks the symbols up; see the trust note above.
        let api = unsafe { sys::Cupti::from_library(raw) }
            .map_err(|error| Problem::Open(error.to_string()))?;

        // The version first: a library too old for cutrace would also lack functions,
        // and "too old" is the more useful thing to hear.
        if api.cuptiGetVersion.is_err() {
            return Err(Problem::MissingFunctions(missing_required(&api)));
        }
        let api_version = query_version(&api).map_err(|error| Problem::Version(Box::new(error)))?;
        let version = CuptiVersion::new(api_version, tagged_cuda12);
        if !version.is_supported() {
            return Err(Problem::TooOld(version));
        }
        let missing = missing_required(&api);
        if !missing.is_empty() {
            return Err(Problem::MissingFunctions(missing));
        }
        let path = loaded_from(&api).unwrap_or_else(|| path.to_path_buf());
        Ok(Library {
            api,
            path,
            origin,
            version,
        })
    }
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field("origin", &self.origin)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl SearchPlan {
    /// Carries the plan out: the first library that passes the checks, or an error
    /// that says what every step found. Each call opens the library anew; [`load`]
    /// is the process-wide one.
    pub fn load(&self) -> Result<Library, Error> {
        let mut attempts = Vec::new();
        for step in self.steps() {
            let mut refused = Vec::new();
            for candidate in step.candidates() {
                // A folder is expected to lack most names; only present files count.
                if matches!(step.location, Location::Directory(_)) && !candidate.exists() {
                    continue;
                }
                match Library::open(&candidate, step.origin) {
                    Ok(library) => return Ok(library),
                    Err(problem) if step.origin.is_decisive() => {
                        return Err(Error::Unusable {
                            path: candidate,
                            origin: step.origin,
                            problem,
                        });
                    }
                    Err(problem) => refused.push((candidate, problem)),
                }
            }
            attempts.push(Attempt {
                step: step.clone(),
                refused,
            });
        }
        Err(Error::NotFound { attempts })
    }
}

/// The process's libcupti, found by [`SearchPlan::new`] on the process's
/// [`Environment`] the first time and remembered, failure included: CUPTI is
/// process-wide, and a search that failed once would fail again.
pub fn load() -> Result<&'static Library, Error> {
    static LIBRARY: OnceLock<Result<Library, Error>> = OnceLock::new();
    LIBRARY
        .get_or_init(|| SearchPlan::new(&Environment::current()).load())
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether `path` is a bare file name, which `dlopen` looks up in the linker's search
/// path rather than opening as it stands.
fn is_bare_name(path: &Path) -> bool {
    path.parent() == Some(Path::new(""))
}

/// The required functions `api` lacks, in the order of the list below.
fn missing_required(api: &sys::Cupti) -> Vec<&'static str> {
    macro_rules! missing {
        ($($function:ident),* $(,)?) => {{
            let mut missing = Vec::new();
            $(if api.$function.is_err() {
                missing.push(stringify!($function));
            })*
            missing
        }};
    }
    // The functions the tracer cannot work without; every other one is optional and
    // answers `Error::Unsupported` when called.
    missing!(
        cuptiGetVersion,
        cuptiGetResultString,
        cuptiSubscribe,
        cuptiUnsubscribe,
        cuptiEnableCallback,
        cuptiEnableDomain,
        cuptiActivityEnable,
        cuptiActivityDisable,
        cuptiActivityRegisterCallbacks,
        cuptiActivityFlushAll,
        cuptiActivityGetNextRecord,
        cuptiActivityGetNumDroppedRecords,
        cuptiGetTimestamp,
    )
}

/// Whether the library's `cuptiGetVersion` carries the ELF symbol version
/// `libcupti.so.12`, which tells CUDA 12.0 from 11.8 (see [`crate::version`]).
#[cfg(target_env = "gnu")]
fn tagged_cuda12(handle: *mut c_void) -> bool {
    // SAFETY: `handle` is an open dlopen handle and both strings are NUL-terminated.
    let symbol = unsafe {
        libc::dlvsym(
            handle,
            c"cuptiGetVersion".as_ptr(),
            c"libcupti.so.12".as_ptr(),
        )
    };
    !symbol.is_null()
}

/// Without glibc's `dlvsym` the tag cannot be read, so a library reporting 18 counts
/// as CUDA 11.8 and is refused.
#[cfg(not(target_env = "gnu"))]
fn tagged_cuda12(_handle: *mut c_void) -> bool {
    false
}

/// The file the dynamic linker loaded `api` from: for a bare name, where its search
/// found it; for a library already loaded under another name, that name.
fn loaded_from(api: &sys::Cupti) -> Option<PathBuf> {
    let get_version = *api.cuptiGetVersion.as_ref().ok()?;
    // SAFETY: `Dl_info` is plain data, for which all zeroes is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `dladdr` only reads the address and fills `info`.
    let found = unsafe { libc::dladdr(get_version as *const c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: `dladdr` set `dli_fname` to a NUL-terminated string the dynamic linker
    // keeps while the library is loaded, which it is: `api` holds it.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    Some(PathBuf::from(OsStr::from_bytes(name.to_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Step;
    use crate::test_fixture::{CuptiFixture, Symbols};
    use crate::version::CudaRelease;

    fn override_env(path: &Path) -> Environment {
        Environment {
            cupti_lib: Some(path.to_path_buf()),
            ..Environment::default()
        }
    }

    fn unusable(result: Result<Library, Error>) -> (PathBuf, Origin, Problem) {
        match result {
            Err(Error::Unusable {
                path,
                origin,
                problem,
            }) => (path, origin, problem),
            other => panic!("expected an unusable library, got {other:?}"),
        }
    }

    #[test]
    fn a_good_library_in_cuda_home_is_loaded_and_says_where_from() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("extras/CUPTI/lib64");
        let path = CuptiFixture::new(130_001).build(&dir, "libcupti.so.13");
        let env = Environment {
            cuda_home: Some(home.path().into()),
            ..Environment::default()
        };

        let library = SearchPlan::new(&env).load().unwrap();
        assert_eq!(library.path(), path);
        assert_eq!(library.origin(), Origin::CudaHome);
        assert_eq!(library.version().api(), 130_001);
        assert_eq!(library.version().cuda(), CudaRelease::new(13, 0));
    }

    #[test]
    fn the_override_is_used_even_when_unusable() {
        let home = tempfile::tempdir().unwrap();
        CuptiFixture::new(130_001).build(&home.path().join("extras/CUPTI/lib64"), "libcupti.so.13");
        let missing = home.path().join("nowhere/libcupti.so.13");
        let env = Environment {
            cuda_home: Some(home.path().into()),
            ..override_env(&missing)
        };

        let error = SearchPlan::new(&env).load().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot use {} (CUTRACE_CUPTI_LIB): no such file",
                missing.display()
            )
        );
    }

    #[test]
    fn a_mapped_libcupti_wins_over_the_folders() {
        let dir = tempfile::tempdir().unwrap();
        let mapped = CuptiFixture::new(130_001).build(&dir.path().join("torch"), "libcupti.so.13");
        let home = dir.path().join("cuda");
        CuptiFixture::new(130_001).build(&home.join("extras/CUPTI/lib64"), "libcupti.so.13");
        let env = Environment {
            cuda_home: Some(home),
            maps: format!("7f00-7f01 r-xp 00000000 fd:01 42 {}\n", mapped.display()),
            ..Environment::default()
        };

        let library = SearchPlan::new(&env).load().unwrap();
        assert_eq!(
            (library.path(), library.origin()),
            (mapped.as_path(), Origin::AlreadyLoaded)
        );
    }

    #[test]
    fn a_refused_library_in_a_folder_lets_the_search_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("cuda");
        CuptiFixture::new(17).build(&home.join("extras/CUPTI/lib64"), "libcupti.so.13");
        let packages = dir.path().join("site-packages");
        let good =
            CuptiFixture::new(20).build(&packages.join("nvidia/cuda_cupti/lib"), "libcupti.so.12");
        let env = Environment {
            cuda_home: Some(home),
            python_path: Some(packages.into_os_string()),
            ..Environment::default()
        };

        let library = SearchPlan::new(&env).load().unwrap();
        assert_eq!(
            (library.path(), library.origin()),
            (good.as_path(), Origin::SitePackages)
        );
        assert_eq!(library.version().cuda(), CudaRelease::new(12, 2));
    }

    #[test]
    fn in_a_folder_the_newest_name_is_tried_first() {
        let dir = tempfile::tempdir().unwrap();
        let newest = CuptiFixture::new(130_001).build(dir.path(), "libcupti.so.13");
        CuptiFixture::new(20).build(dir.path(), "libcupti.so.12");
        CuptiFixture::new(20).build(dir.path(), "libcupti.so");
        let step = Step {
            origin: Origin::CudaHome,
            location: Location::Directory(dir.path().into()),
        };

        let library = SearchPlan::from_steps(vec![step]).load().unwrap();
        assert_eq!(library.path(), newest);
    }

    #[test]
    fn nothing_found_lists_every_step_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let old_dir = dir.path().join("old");
        let old = CuptiFixture::new(17).build(&old_dir, "libcupti.so.12");
        let plan = SearchPlan::from_steps(vec![
            Step {
                origin: Origin::CudaHome,
                location: Location::Directory(empty.clone()),
            },
            Step {
                origin: Origin::SitePackages,
                location: Location::Directory(old_dir.clone()),
            },
        ]);

        let error = plan.load().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "no usable libcupti found (set CUTRACE_CUPTI_LIB to its path); searched:\n  \
                 {} ($CUDA_HOME): nothing found\n  \
                 {} (Python site-packages): {}: it is CUPTI API version 17 (CUDA 11.6); \
                 cutrace needs CUDA 12.0 or newer",
                empty.display(),
                old_dir.display(),
                old.display()
            )
        );
    }

    #[test]
    fn a_library_lacking_required_functions_is_refused_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let only_version = CuptiFixture::new(130_001)
            .symbols(Symbols::VersionOnly)
            .build(dir.path(), "libcupti.so.13");

        let (path, origin, problem) =
            unusable(SearchPlan::new(&override_env(&only_version)).load());
        assert_eq!(
            (path.as_path(), origin),
            (only_version.as_path(), Origin::Override)
        );
        assert_eq!(
            problem.to_string(),
            "it lacks the required functions cuptiGetResultString, cuptiSubscribe, \
             cuptiUnsubscribe, cuptiEnableCallback, cuptiEnableDomain, cuptiActivityEnable, \
             cuptiActivityDisable, cuptiActivityRegisterCallbacks, cuptiActivityFlushAll, \
             cuptiActivityGetNextRecord, cuptiActivityGetNumDroppedRecords, cuptiGetTimestamp"
        );
    }

    #[test]
    fn a_library_without_cupti_functions_lacks_cupti_get_version_too() {
        let dir = tempfile::tempdir().unwrap();
        let none = CuptiFixture::new(130_001)
            .symbols(Symbols::None)
            .build(dir.path(), "libcupti.so.13");

        let (_, _, problem) = unusable(SearchPlan::new(&override_env(&none)).load());
        let Problem::MissingFunctions(missing) = problem else {
            panic!("{problem:?}")
        };
        assert_eq!(missing.len(), 13);
        assert_eq!(missing[0], "cuptiGetVersion");
    }

    #[test]
    fn a_library_older_than_cuda_12_is_refused_naming_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let old = CuptiFixture::new(17)
            .symbols(Symbols::VersionOnly)
            .build(dir.path(), "libcupti.so.11.6");

        let error = SearchPlan::new(&override_env(&old)).load().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot use {} (CUTRACE_CUPTI_LIB): it is CUPTI API version 17 (CUDA 11.6); \
                 cutrace needs CUDA 12.0 or newer",
                old.display()
            )
        );
    }

    #[test]
    fn version_18_is_cuda_12_only_with_the_libcupti_so_12_symbol_tag() {
        let dir = tempfile::tempdir().unwrap();
        let cuda_12_0 = CuptiFixture::new(18)
            .tag("libcupti.so.12")
            .build(&dir.path().join("12.0"), "libcupti.so.12");
        let cuda_11_8 = CuptiFixture::new(18)
            .tag("libcupti.so.11.8")
            .build(&dir.path().join("11.8"), "libcupti.so.11.8");

        let library = SearchPlan::new(&override_env(&cuda_12_0)).load().unwrap();
        assert_eq!(library.version().cuda(), CudaRelease::new(12, 0));
        let (_, _, problem) = unusable(SearchPlan::new(&override_env(&cuda_11_8)).load());
        assert!(
            matches!(problem, Problem::TooOld(version) if version.cuda() == CudaRelease::new(11, 8))
        );
    }

    #[test]
    fn a_failing_cupti_get_version_is_refused_with_cuptis_text() {
        let dir = tempfile::tempdir().unwrap();
        let broken = CuptiFixture::new(130_001)
            .version_status(999)
            .build(dir.path(), "libcupti.so.13");

        let (_, _, problem) = unusable(SearchPlan::new(&override_env(&broken)).load());
        assert_eq!(
            problem.to_string(),
            "cannot read its version: cuptiGetVersion failed: fixture text for 999 (CUPTI error 999)"
        );
    }

    #[test]
    fn a_file_that_is_no_library_is_refused_with_the_linkers_text() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("libcupti.so.13");
        std::fs::write(&text, "not an ELF file").unwrap();

        let (_, _, problem) = unusable(SearchPlan::new(&override_env(&text)).load());
        let Problem::Open(message) = problem else {
            panic!("{problem:?}")
        };
        assert!(message.contains(&*text.to_string_lossy()), "{message}");
    }
}
