//! Where to look for libcupti, and in which order.
//!
//! The plan is a pure function of an [`Environment`]: the few variables the search
//! reads and the text of `/proc/self/maps`, captured once. Tests build their own
//! environment around temporary folders instead of changing the process's.
//!
//! The order (see `docs/architecture.md`):
//!
//! 1. `CUTRACE_CUPTI_LIB`, a file path. When set, it is the whole plan.
//! 2. A libcupti this process has already mapped (torch loads its own). When there is
//!    one, it is the whole plan: a second CUPTI beside it would fight over the
//!    driver's callbacks.
//! 3. `$CUDA_HOME/extras/CUPTI/lib64`.
//! 4. `/usr/local/cuda/extras/CUPTI/lib64`.
//! 5. `nvidia/cu13/lib` and `nvidia/cuda_cupti/lib` in each Python site-packages
//!    folder: those of libraries already mapped (the interpreter running this
//!    process), then those of `$VIRTUAL_ENV`, `$CONDA_PREFIX` and `$PYTHONPATH`.
//! 6. The bare names, left to the dynamic linker's own search.
//!
//! In a folder, and in the linker's search, the names are tried in the order of
//! [`LIBRARY_NAMES`].

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The file names of libcupti, newest first.
pub const LIBRARY_NAMES: [&str; 3] = ["libcupti.so.13", "libcupti.so.12", "libcupti.so"];

/// The variable that names the libcupti file to use, overriding the search.
pub const OVERRIDE_VAR: &str = "CUTRACE_CUPTI_LIB";

/// Where a CUDA toolkit keeps CUPTI, below its root.
const CUPTI_IN_TOOLKIT: &str = "extras/CUPTI/lib64";

/// The default CUDA toolkit root.
const DEFAULT_TOOLKIT: &str = "/usr/local/cuda";

/// Where NVIDIA's wheels put libcupti below site-packages: CUDA 13's
/// `nvidia-cuda-cupti`, then CUDA 12's `nvidia-cuda-cupti-cu12`.
const WHEEL_DIRS: [&str; 2] = ["nvidia/cu13/lib", "nvidia/cuda_cupti/lib"];

/// Folder names Python installs packages into (`dist-packages` is Debian's).
const PACKAGE_DIR_NAMES: [&str; 2] = ["site-packages", "dist-packages"];

/// What the search reads from the process, captured once.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `CUTRACE_CUPTI_LIB`.
    pub cupti_lib: Option<PathBuf>,
    /// `CUDA_HOME`.
    pub cuda_home: Option<PathBuf>,
    /// `VIRTUAL_ENV`.
    pub virtual_env: Option<PathBuf>,
    /// `CONDA_PREFIX`.
    pub conda_prefix: Option<PathBuf>,
    /// `PYTHONPATH`, a colon-separated list of folders.
    pub python_path: Option<OsString>,
    /// The text of `/proc/self/maps`.
    pub maps: String,
}

impl Environment {
    /// Captures this process's environment. A variable set to the empty string counts
    /// as unset; an unreadable `/proc/self/maps` as one listing nothing.
    pub fn current() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        Environment {
            cupti_lib: var(OVERRIDE_VAR).map(PathBuf::from),
            cuda_home: var("CUDA_HOME").map(PathBuf::from),
            virtual_env: var("VIRTUAL_ENV").map(PathBuf::from),
            conda_prefix: var("CONDA_PREFIX").map(PathBuf::from),
            python_path: var("PYTHONPATH"),
            maps: std::fs::read_to_string("/proc/self/maps").unwrap_or_default(),
        }
    }
}

/// Which step of the search a library came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The file `CUTRACE_CUPTI_LIB` names.
    Override,
    /// A libcupti this process had already mapped.
    AlreadyLoaded,
    /// `$CUDA_HOME/extras/CUPTI/lib64`.
    CudaHome,
    /// `/usr/local/cuda/extras/CUPTI/lib64`.
    DefaultToolkit,
    /// An NVIDIA wheel in a Python site-packages folder.
    SitePackages,
    /// The dynamic linker's search for a bare library name.
    SystemSearch,
}

impl Origin {
    /// Whether a library from this step must be used or none at all: the user named
    /// it, or it is already in the process.
    pub fn is_decisive(self) -> bool {
        matches!(self, Origin::Override | Origin::AlreadyLoaded)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Override => OVERRIDE_VAR,
            Origin::AlreadyLoaded => "already loaded in this process",
            Origin::CudaHome => "$CUDA_HOME",
            Origin::DefaultToolkit => "default CUDA toolkit",
            Origin::SitePackages => "Python site-packages",
            Origin::SystemSearch => "system library search",
        })
    }
}

/// What one step of the search looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// One file.
    File(PathBuf),
    /// A folder, tried with each of [`LIBRARY_NAMES`].
    Directory(PathBuf),
    /// The dynamic linker's search, with each of [`LIBRARY_NAMES`].
    SystemSearch,
}

/// One step of the search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Why the search looks here.
    pub origin: Origin,
    /// Where it looks.
    pub location: Location,
}

impl Step {
    /// The names to hand to `dlopen`, in order.
    pub fn candidates(&self) -> Vec<PathBuf> {
        match &self.location {
            Location::File(path) => vec![path.clone()],
            Location::Directory(dir) => LIBRARY_NAMES.iter().map(|name| dir.join(name)).collect(),
            Location::SystemSearch => LIBRARY_NAMES.iter().map(PathBuf::from).collect(),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::File(path) | Location::Directory(path) => {
                write!(f, "{} ({})", path.display(), self.origin)
            }
            Location::SystemSearch => write!(f, "{} ({})", LIBRARY_NAMES.join(", "), self.origin),
        }
    }
}

/// The steps of a search, in order. [`SearchPlan::load`] carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPlan {
    steps: Vec<Step>,
}

impl SearchPlan {
    /// The plan for `env`. It looks at the file system only to list the
    /// `lib/python*` folders of `$VIRTUAL_ENV` and `$CONDA_PREFIX`.
    pub fn new(env: &Environment) -> Self {
        if let Some(path) = &env.cupti_lib {
            return SearchPlan::single(Origin::Override, path.clone());
        }
        if let Some(path) = mapped_libcupti(&env.maps) {
            return SearchPlan::single(Origin::AlreadyLoaded, path);
        }

        let mut steps = Vec::new();
        let mut add = |origin, dir: PathBuf| {
            let location = Location::Directory(dir);
            if !steps.iter().any(|step: &Step| step.location == location) {
                steps.push(Step { origin, location });
            }
        };
        if let Some(home) = &env.cuda_home {
            add(Origin::CudaHome, home.join(CUPTI_IN_TOOLKIT));
        }
        add(
            Origin::DefaultToolkit,
            Path::new(DEFAULT_TOOLKIT).join(CUPTI_IN_TOOLKIT),
        );
        for packages in site_packages(env) {
            for wheel_dir in WHEEL_DIRS {
                add(Origin::SitePackages, packages.join(wheel_dir));
            }
        }
        steps.push(Step {
            origin: Origin::SystemSearch,
            location: Location::SystemSearch,
        });
        SearchPlan { steps }
    }

    fn single(origin: Origin, path: PathBuf) -> Self {
        SearchPlan {
            steps: vec![Step {
                origin,
                location: Location::File(path),
            }],
        }
    }

    /// A plan of the given steps, for tests that must not reach the real system.
    #[cfg(test)]
    pub(crate) fn from_steps(steps: Vec<Step>) -> Self {
        SearchPlan { steps }
    }

    /// The steps, in the order they are tried.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

/// The paths of the files mapped into the process, in the order `maps` lists them.
/// Entries for deleted files are left out: they cannot be opened.
fn mapped_files(maps: &str) -> impl Iterator<Item = &Path> {
    // The address, permission, offset, device and inode fields hold no '/', so a
    // line's path starts at its first one (and may itself contain spaces).
    maps.lines()
        .filter_map(|line| line.find('/').map(|start| &line[start..]))
        .filter(|path| !path.ends_with(" (deleted)"))
        .map(Path::new)
}

/// The first mapped file whose name is a libcupti.
fn mapped_libcupti(maps: &str) -> Option<PathBuf> {
    mapped_files(maps)
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("libcupti.so"))
        })
        .map(Path::to_path_buf)
}

/// The site-packages folders to look in, in order, without repeats.
fn site_packages(env: &Environment) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut add = |dir: PathBuf| {
        if !found.contains(&dir) {
            found.push(dir);
        }
    };
    for path in mapped_files(&env.maps) {
        if let Some(packages) = enclosing_package_dir(path) {
            add(packages);
        }
    }
    for prefix in [&env.virtual_env, &env.conda_prefix].into_iter().flatten() {
        for packages in prefix_package_dirs(prefix) {
            add(packages);
        }
    }
    if let Some(python_path) = &env.python_path {
        for dir in std::env::split_paths(python_path).filter(|dir| !dir.as_os_str().is_empty()) {
            add(dir);
        }
    }
    found
}

/// The site-packages folder `path` lies in, if any.
fn enclosing_package_dir(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|dir| {
            dir.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| PACKAGE_DIR_NAMES.contains(&name))
        })
        .map(Path::to_path_buf)
}

/// The `lib/python*/site-packages` folders of a virtualenv or conda prefix, sorted
/// so the plan does not depend on the order the file system lists them in.
fn prefix_package_dirs(prefix: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(prefix.join("lib")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with("python"))
        })
        .map(|entry| entry.path().join("site-packages"))
        .filter(|dir| dir.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    const TORCH_MAPS: &str = "\
7f1c00000000-7f1c00021000 rw-p 00000000 00:00 0 
7f1c2a000000-7f1c2a400000 r-xp 00000000 fd:01 1234   /venv/lib/python3.12/site-packages/torch/lib/libtorch_cuda.so
7f1c2b000000-7f1c2b100000 r--p 00000000 fd:01 5678   /venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcupti.so.13
7f1c2b100000-7f1c2b200000 r-xp 00100000 fd:01 5678   /venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcupti.so.13
7ffd5a000000-7ffd5a021000 rw-p 00000000 00:00 0      [stack]
";

    fn dirs(plan: &SearchPlan) -> Vec<(Origin, PathBuf)> {
        plan.steps()
            .iter()
            .map(|step| match &step.location {
                Location::File(path) | Location::Directory(path) => (step.origin, path.clone()),
                Location::SystemSearch => (step.origin, PathBuf::new()),
            })
            .collect()
    }

    #[test]
    fn the_override_is_the_whole_plan() {
        let env = Environment {
            cupti_lib: Some("/opt/mine/libcupti.so".into()),
            cuda_home: Some("/opt/cuda".into()),
            maps: TORCH_MAPS.into(),
            ..Environment::default()
        };
        let plan = SearchPlan::new(&env);
        assert_eq!(
            dirs(&plan),
            [(Origin::Override, "/opt/mine/libcupti.so".into())]
        );
    }

    #[test]
    fn an_already_mapped_libcupti_is_the_whole_plan_without_override() {
        let env = Environment {
            cuda_home: Some("/opt/cuda".into()),
            maps: TORCH_MAPS.into(),
            ..Environment::default()
        };
        let plan = SearchPlan::new(&env);
        assert_eq!(
            dirs(&plan),
            [(
                Origin::AlreadyLoaded,
                "/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcupti.so.13".into()
            )]
        );
    }

    #[test]
    fn without_override_or_mapped_library_every_place_is_listed_in_order() {
        let prefix = tempfile::tempdir().unwrap();
        let packages = prefix.path().join("lib/python3.11/site-packages");
        std::fs::create_dir_all(&packages).unwrap();
        // Not an interpreter folder: ignored.
        std::fs::create_dir_all(prefix.path().join("lib/pkgconfig/site-packages")).unwrap();
        let maps = "7f00-7f01 r-xp 00000000 fd:01 1 /usr/lib/python3/dist-packages/numpy/core/_multiarray.so\n";
        let env = Environment {
            cuda_home: Some("/opt/cuda".into()),
            virtual_env: Some(prefix.path().into()),
            python_path: Some(format!("/pp/a::/pp/b:{}", packages.display()).into()),
            maps: maps.into(),
            ..Environment::default()
        };
        let plan = SearchPlan::new(&env);
        let expected: Vec<(Origin, PathBuf)> = vec![
            (Origin::CudaHome, "/opt/cuda/extras/CUPTI/lib64".into()),
            (
                Origin::DefaultToolkit,
                "/usr/local/cuda/extras/CUPTI/lib64".into(),
            ),
            (
                Origin::SitePackages,
                "/usr/lib/python3/dist-packages/nvidia/cu13/lib".into(),
            ),
            (
                Origin::SitePackages,
                "/usr/lib/python3/dist-packages/nvidia/cuda_cupti/lib".into(),
            ),
            (Origin::SitePackages, packages.join("nvidia/cu13/lib")),
            (Origin::SitePackages, packages.join("nvidia/cuda_cupti/lib")),
            (Origin::SitePackages, "/pp/a/nvidia/cu13/lib".into()),
            (Origin::SitePackages, "/pp/a/nvidia/cuda_cupti/lib".into()),
            (Origin::SitePackages, "/pp/b/nvidia/cu13/lib".into()),
            (Origin::SitePackages, "/pp/b/nvidia/cuda_cupti/lib".into()),
            (Origin::SystemSearch, PathBuf::new()),
        ];
        assert_eq!(dirs(&plan), expected);
    }

    #[test]
    fn cuda_home_at_the_default_toolkit_is_searched_once() {
        let env = Environment {
            cuda_home: Some("/usr/local/cuda".into()),
            ..Environment::default()
        };
        let plan = SearchPlan::new(&env);
        assert_eq!(
            dirs(&plan),
            [
                (
                    Origin::CudaHome,
                    "/usr/local/cuda/extras/CUPTI/lib64".into()
                ),
                (Origin::SystemSearch, PathBuf::new())
            ]
        );
    }

    #[test]
    fn candidates_try_the_newest_name_first() {
        let dir = Step {
            origin: Origin::CudaHome,
            location: Location::Directory("/c".into()),
        };
        let names: Vec<PathBuf> = ["/c/libcupti.so.13", "/c/libcupti.so.12", "/c/libcupti.so"]
            .map(PathBuf::from)
            .into();
        assert_eq!(dir.candidates(), names);
        let system = Step {
            origin: Origin::SystemSearch,
            location: Location::SystemSearch,
        };
        assert_eq!(system.candidates(), LIBRARY_NAMES.map(PathBuf::from));
    }

    #[test]
    fn maps_paths_with_spaces_are_kept_and_deleted_files_skipped() {
        let maps = "\
1-2 r-xp 0 fd:01 9 /old/libcupti.so.12 (deleted)
3-4 r-xp 0 fd:01 7 /my dir/libcupti.so.13
";
        assert_eq!(
            mapped_libcupti(maps),
            Some(PathBuf::from("/my dir/libcupti.so.13"))
        );
        assert_eq!(
            mapped_libcupti("1-2 r-xp 0 fd:01 7 /lib/libcuptify.so\n"),
            None
        );
    }

    #[test]
    fn steps_display_their_place_and_origin() {
        let env = Environment::default();
        let shown: Vec<String> = SearchPlan::new(&env)
            .steps()
            .iter()
            .map(Step::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "/usr/local/cuda/extras/CUPTI/lib64 (default CUDA toolkit)",
                "libcupti.so.13, libcupti.so.12, libcupti.so (system library search)"
            ]
        );
    }
}
