//! `cutrace doctor`: what a user checks first. Each check says what it found and,
//! when something is wrong, what to do about it; the exit code says whether
//! tracing will work.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

use super::driver;

use super::locate;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Ok,
    /// Tracing works, but a feature will not.
    Warn,
    /// Tracing will not work.
    Fail,
}

/// One line of the doctor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about a problem.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn problem(
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name,
            status,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Runs every check, prints the report and returns 0 when tracing will work.
pub fn run() -> anyhow::Result<u8> {
    let checks = checks();
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(render(&checks).as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")?;
    Ok(if will_trace(&checks) { 0 } else { 1 })
}

/// Whether nothing failed.
pub fn will_trace(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != Status::Fail)
}

/// The report: one aligned line per check, its fix indented below it, and a verdict.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for check in checks {
        let status = match check.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        // Continuation lines of a long finding stay in its column.
        let detail = check
            .detail
            .replace('\n', &format!("\n{:<width$}        ", ""));
        let _ = writeln!(out, "{:<width$}  {status:<4}  {detail}", check.name);
        if let Some(fix) = &check.fix {
            let _ = writeln!(out, "{:<width$}        fix: {fix}", "");
        }
    }
    if will_trace(checks) {
        out.push_str("tracing will work: cutrace run -o DIR -- <command>\n");
    } else {
        out.push_str("tracing will not work until the problems above are fixed\n");
    }
    out
}

fn checks() -> Vec<Check> {
    let mut checks = driver_checks();
    match cupti_sys::load() {
        Ok(library) => {
            checks.push(Check::ok(
                "CUPTI",
                format!(
                    "{} ({}), {}",
                    library.path().display(),
                    library.origin(),
                    library.version()
                ),
            ));
            checks.push(injection_check());
            checks.push(nvtx_check(library.path()));
        }
        Err(error) => {
            checks.push(Check::problem(
                "CUPTI",
                Status::Fail,
                error.to_string(),
                format!(
                    "pip install nvidia-cuda-cupti (or use the CUDA toolkit's extras/CUPTI), or set {} to libcupti.so",
                    cupti_sys::OVERRIDE_VAR
                ),
            ));
            checks.push(injection_check());
        }
    }
    checks
}

/// The driver and the GPUs it sees.
fn driver_checks() -> Vec<Check> {
    let info = match driver::probe() {
        Ok(info) => info,
        Err(error @ driver::Error::NotFound { .. }) => {
            return vec![Check::problem(
                "CUDA driver",
                Status::Fail,
                error.to_string(),
                format!(
                    "install the NVIDIA driver, or set {} to the path of its libcuda.so.1",
                    driver::CUDA_LIB_ENV
                ),
            )];
        }
        Err(error) => {
            return vec![Check::problem(
                "CUDA driver",
                Status::Fail,
                error.to_string(),
                "check that nvidia-smi works and that the driver matches the kernel module",
            )];
        }
    };
    let driver = Check::ok(
        "CUDA driver",
        format!(
            "{}, CUDA {}",
            info.path.display(),
            driver::format_version(info.version)
        ),
    );
    let gpus = if info.gpus.is_empty() {
        Check::problem(
            "GPUs",
            Status::Fail,
            "the driver sees no GPU",
            "check CUDA_VISIBLE_DEVICES and nvidia-smi",
        )
    } else {
        let list: Vec<String> = info
            .gpus
            .iter()
            .map(|gpu| {
                format!(
                    "{}: {} (sm_{}{}, {:.1} GiB)",
                    gpu.index,
                    gpu.name,
                    gpu.compute_capability.0,
                    gpu.compute_capability.1,
                    gpu.total_memory as f64 / (1u64 << 30) as f64
                )
            })
            .collect();
        Check::ok("GPUs", list.join("; "))
    };
    vec![driver, gpus]
}

/// Whether `cutrace run` will find an injection library the driver can use.
fn injection_check() -> Check {
    const NAME: &str = "injection";
    let path = match locate::injection_library() {
        Ok(path) => path,
        Err(error) => {
            return Check::problem(
                NAME,
                Status::Fail,
                format!("{error:#}"),
                format!(
                    "install cutrace with scripts/install.sh, which puts {} in ../lib from the executable",
                    locate::LIB_NAME
                ),
            );
        }
    };
    match exports(&path, "InitializeInjection") {
        Ok(true) => Check::ok(
            NAME,
            format!("{} exports InitializeInjection", path.display()),
        ),
        Ok(false) => Check::problem(
            NAME,
            Status::Fail,
            format!("{} does not export InitializeInjection", path.display()),
            format!(
                "rebuild cutrace, or point {} at its libcutrace.so",
                locate::LIB_ENV
            ),
        ),
        Err(error) => Check::problem(
            NAME,
            Status::Fail,
            format!("cannot load {}: {error}", path.display()),
            format!(
                "rebuild cutrace, or point {} at its libcutrace.so",
                locate::LIB_ENV
            ),
        ),
    }
}

/// Whether NVTX ranges will reach the tracer: NVTX hands them to the library
/// `NVTX_INJECTION64_PATH` names, which `cutrace run` sets to the libcupti in use.
fn nvtx_check(cupti: &Path) -> Check {
    const NAME: &str = "NVTX capture";
    if let Some(set) = std::env::var_os("NVTX_INJECTION64_PATH").filter(|v| !v.is_empty()) {
        let same = std::fs::canonicalize(&set).ok() == std::fs::canonicalize(cupti).ok();
        if !same {
            return Check::problem(
                NAME,
                Status::Warn,
                format!(
                    "NVTX_INJECTION64_PATH={} is not the libcupti in use: NVTX ranges will not reach cutrace",
                    Path::new(&set).display()
                ),
                "unset NVTX_INJECTION64_PATH and let cutrace run set it",
            );
        }
    }
    match exports(cupti, "InitializeInjectionNvtx2") {
        Ok(true) => Check::ok(NAME, format!("NVTX ranges go to {}", cupti.display())),
        Ok(false) => Check::problem(
            NAME,
            Status::Warn,
            format!(
                "{} does not export InitializeInjectionNvtx2: NVTX ranges will not be recorded or mark iterations",
                cupti.display()
            ),
            "use the libcupti of CUDA 12 or newer",
        ),
        Err(error) => Check::problem(
            NAME,
            Status::Warn,
            format!("cannot load {}: {error}", cupti.display()),
            "check the libcupti file",
        ),
    }
}

/// Whether the library at `path` exports `symbol`.
fn exports(path: &Path, symbol: &str) -> Result<bool, libloading::Error> {
    // SAFETY: the libraries checked here (cutrace's own, libcupti) run no
    // initialisers with preconditions on load.
    let library = unsafe { libloading::Library::new(path) }?;
    let mut name = symbol.as_bytes().to_vec();
    name.push(0);
    // SAFETY: the symbol is looked up, never called.
    let found = unsafe { library.get::<*const ()>(&name) }.is_ok();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_aligns_names_and_gives_fixes() {
        let checks = [
            Check::ok("CUDA driver", "libcuda.so.1, CUDA 13.0"),
            Check::problem(
                "NVTX capture",
                Status::Warn,
                "no NVTX entry",
                "use a newer CUPTI",
            ),
        ];
        assert_eq!(
            render(&checks),
            [
                "CUDA driver   ok    libcuda.so.1, CUDA 13.0\n",
                "NVTX capture  warn  no NVTX entry\n",
                "                    fix: use a newer CUPTI\n",
                "tracing will work: cutrace run -o DIR -- <command>\n",
            ]
            .concat()
        );
    }

    #[test]
    fn a_failure_means_tracing_will_not_work() {
        let checks = [
            Check::ok("GPUs", "0: H100"),
            Check::problem("CUPTI", Status::Fail, "not found", "install it"),
        ];
        assert!(!will_trace(&checks));
        assert!(render(&checks).ends_with("until the problems above are fixed\n"));
    }
}
