//! Who this process is in the run: the worker name in its file names and its rank.
//!
//! The rules follow torch: a worker is named `<hostname>_<pid>` unless the
//! configuration names it, and its rank comes from the configuration, else from
//! the `RANK` or `LOCAL_RANK` variables that launchers (torchrun, vLLM) set, else 0;
//! the world size from the configuration, else `WORLD_SIZE`, else rank + 1.
//! Keeping the pid in the default name is what lets every process of one job write
//! into the same directory without clashing.

use cutrace_tracer::ProfilerConfig;

use crate::Error;

/// A traced process's name and place in a distributed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Worker name, the first part of every trace file name.
    pub worker_name: String,
    /// Distributed rank.
    pub rank: u32,
    /// Distributed world size.
    pub world_size: u32,
}

impl Identity {
    /// This process's identity, from `config` and the process environment.
    pub fn of_this_process(config: &ProfilerConfig) -> Result<Identity, Error> {
        Identity::resolve(
            config,
            |name| std::env::var(name).ok(),
            &worker_host_name(),
            std::process::id(),
        )
    }

    /// The identity given `config`, an environment lookup, the host name and pid.
    pub fn resolve(
        config: &ProfilerConfig,
        env: impl Fn(&str) -> Option<String>,
        host_name: &str,
        pid: u32,
    ) -> Result<Identity, Error> {
        let from_env = |name: &str| -> Result<Option<u32>, Error> {
            match env(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| Error::BadEnvironment {
                        name: name.to_owned(),
                        value: v,
                    }),
            }
        };
        let rank = match config.rank {
            Some(rank) => rank,
            None => match from_env("RANK")? {
                Some(rank) => rank,
                None => from_env("LOCAL_RANK")?.unwrap_or(0),
            },
        };
        let world_size = match config.world_size {
            Some(size) => size,
            // Without a world size, the smallest one this rank fits in.
            None => from_env("WORLD_SIZE")?.unwrap_or(rank.saturating_add(1)),
        };
        let worker_name = match &config.worker_name {
            Some(name) if !name.is_empty() => name.clone(),
            _ => format!("{host_name}_{pid}"),
        };
        Ok(Identity {
            worker_name,
            rank,
            world_size,
        })
    }
}

/// This machine's host name for the default worker name; "localhost" when the
/// system will not say, so that the name never starts with a bare `_`.
fn worker_host_name() -> String {
    let name = cutrace_tracer::host_name();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn resolve(config: &ProfilerConfig, vars: &[(&str, &str)]) -> Result<Identity, Error> {
        Identity::resolve(config, env(vars), "gpu7", 4242)
    }

    #[test]
    fn defaults_follow_torch() {
        let id = resolve(&ProfilerConfig::default(), &[]).unwrap();
        assert_eq!(
            id,
            Identity {
                worker_name: "gpu7_4242".into(),
                rank: 0,
                world_size: 1
            }
        );
    }

    #[test]
    fn rank_comes_from_rank_before_local_rank() {
        let id = resolve(
            &ProfilerConfig::default(),
            &[("RANK", "5"), ("LOCAL_RANK", "1"), ("WORLD_SIZE", "8")],
        )
        .unwrap();
        assert_eq!((id.rank, id.world_size), (5, 8));
        assert_eq!(id.worker_name, "gpu7_4242");
        let id = resolve(&ProfilerConfig::default(), &[("LOCAL_RANK", "3")]).unwrap();
        assert_eq!((id.rank, id.world_size), (3, 4));
    }

    #[test]
    fn the_configuration_wins_over_the_environment() {
        let config = ProfilerConfig {
            worker_name: Some("engine".into()),
            rank: Some(2),
            world_size: Some(4),
            ..ProfilerConfig::default()
        };
        let id = resolve(&config, &[("RANK", "5"), ("WORLD_SIZE", "8")]).unwrap();
        assert_eq!(
            id,
            Identity {
                worker_name: "engine".into(),
                rank: 2,
                world_size: 4
            }
        );
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let id = resolve(
            &ProfilerConfig::default(),
            &[("RANK", ""), ("LOCAL_RANK", "1")],
        );
        assert_eq!(id.unwrap().rank, 1);
    }

    #[test]
    fn a_bad_rank_is_named() {
        let err = resolve(&ProfilerConfig::default(), &[("RANK", "first")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable RANK=\"first\" is not a non-negative integer"
        );
    }

    #[test]
    fn host_name_is_not_empty() {
        assert!(!worker_host_name().is_empty());
    }
}
