//! Who a traced process is in its run: the worker name its trace files start with,
//! its rank (the `<rank>` of `profiler_out_<rank>.txt` and of the trace's
//! `distributedInfo`) and the world size. These rules live here and nowhere else.
//!
//! - **Worker name**: the configuration's `worker_name`, else torch's default
//!   `<hostname>_<pid>` ([`default_worker_name`]). The pid in it is what lets every
//!   process of a job write into one directory without clashing.
//! - **Rank**: the configuration's `rank`, else the first of the variables
//!   [`RANK_VARIABLES`] that is set: `RANK` and `LOCAL_RANK` (torchrun, vLLM's
//!   launcher), then the launchers' own `SLURM_PROCID`, `OMPI_COMM_WORLD_RANK` and
//!   `PMI_RANK`. Else the CUDA device ordinal of the first context the process
//!   created ([`Rank::FirstDevice`]): a vLLM worker that gets its rank as an
//!   argument, not from its environment, runs on device `k` as rank `k`. Until the
//!   process has created a context, and when no record ever says, that is 0.
//! - **World size**: the configuration's `world_size`, else the first of
//!   [`WORLD_SIZE_VARIABLES`] that is set, else the smallest one the rank fits in
//!   (rank + 1).
//!
//! A variable set to an empty string counts as unset; one that is not a
//! non-negative integer is an [`IdentityError`] naming it.

use std::str::FromStr;

use crate::config::ProfilerConfig;

/// The variables a rank is read from, in order.
pub const RANK_VARIABLES: [&str; 5] = [
    "RANK",
    "LOCAL_RANK",
    "SLURM_PROCID",
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
];

/// The variables a world size is read from, in order.
pub const WORLD_SIZE_VARIABLES: [&str; 4] = [
    "WORLD_SIZE",
    "SLURM_NTASKS",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
];

/// A rank variable that holds something other than a non-negative integer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}={value:?} is not a non-negative integer")]
pub struct IdentityError {
    /// Variable name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// Where a process's rank comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    /// The configuration or a launcher's variable gave it.
    Given(u32),
    /// Nothing gave it: the device ordinal of the first context the process created.
    FirstDevice,
}

/// A traced process's name and place in its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Worker name, the first part of every trace file name.
    pub worker_name: String,
    /// Rank, or where it will come from.
    pub rank: Rank,
    /// World size, when the configuration or a variable gave it.
    pub world_size: Option<u32>,
}

impl Identity {
    /// This process's identity, from `config` and the process environment.
    pub fn of_this_process(config: &ProfilerConfig) -> Result<Identity, IdentityError> {
        Identity::resolve(
            config,
            |name| std::env::var(name).ok(),
            &crate::process::host_name(),
            std::process::id(),
        )
    }

    /// The identity `config` alone gives this process (no environment).
    pub fn from_config(config: &ProfilerConfig) -> Identity {
        Identity::configured(config, &crate::process::host_name(), std::process::id())
    }

    /// The identity given `config`, an environment lookup, the host name and pid.
    pub fn resolve(
        config: &ProfilerConfig,
        env: impl Fn(&str) -> Option<String>,
        host_name: &str,
        pid: u32,
    ) -> Result<Identity, IdentityError> {
        fn first_of<T: FromStr>(
            env: &impl Fn(&str) -> Option<String>,
            names: &[&str],
        ) -> Result<Option<T>, IdentityError> {
            for &name in names {
                match env(name) {
                    Some(v) if !v.trim().is_empty() => {
                        return v.trim().parse().map(Some).map_err(|_| IdentityError {
                            name: name.to_owned(),
                            value: v,
                        });
                    }
                    _ => {}
                }
            }
            Ok(None)
        }
        let mut identity = Identity::configured(config, host_name, pid);
        if identity.rank == Rank::FirstDevice {
            identity.rank = first_of(&env, &RANK_VARIABLES)?.map_or(Rank::FirstDevice, Rank::Given);
        }
        if identity.world_size.is_none() {
            identity.world_size = first_of(&env, &WORLD_SIZE_VARIABLES)?;
        }
        Ok(identity)
    }

    /// What the configuration says, with the defaults for what it leaves out.
    fn configured(config: &ProfilerConfig, host_name: &str, pid: u32) -> Identity {
        let worker_name = match &config.worker_name {
            Some(name) if !name.is_empty() => name.clone(),
            _ => default_worker_name(host_name, pid),
        };
        Identity {
            worker_name,
            rank: config.rank.map_or(Rank::FirstDevice, Rank::Given),
            world_size: config.world_size,
        }
    }

    /// The rank and world size, given the device of the process's first context
    /// (`None` while it has created none).
    pub fn place(&self, first_device: Option<u32>) -> (u32, u32) {
        let rank = match self.rank {
            Rank::Given(rank) => rank,
            Rank::FirstDevice => first_device.unwrap_or(0),
        };
        // Without a world size, the smallest one this rank fits in.
        let world_size = self.world_size.unwrap_or(rank.saturating_add(1));
        (rank, world_size)
    }
}

/// torch's default worker name, `<hostname>_<pid>`; "localhost" stands in for a
/// host name the system will not give, so that the name never starts with `_`.
pub fn default_worker_name(host_name: &str, pid: u32) -> String {
    let host = if host_name.is_empty() {
        "localhost"
    } else {
        host_name
    };
    format!("{host}_{pid}")
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

    fn resolve(config: &ProfilerConfig, vars: &[(&str, &str)]) -> Result<Identity, IdentityError> {
        Identity::resolve(config, env(vars), "gpu7", 4242)
    }

    fn placed(vars: &[(&str, &str)], first_device: Option<u32>) -> (u32, u32) {
        resolve(&ProfilerConfig::default(), vars)
            .unwrap()
            .place(first_device)
    }

    #[test]
    fn defaults_follow_torch_and_the_device() {
        let id = resolve(&ProfilerConfig::default(), &[]).unwrap();
        assert_eq!(
            id,
            Identity {
                worker_name: "gpu7_4242".into(),
                rank: Rank::FirstDevice,
                world_size: None,
            }
        );
        assert_eq!(id.place(None), (0, 1));
        assert_eq!(id.place(Some(3)), (3, 4));
    }

    #[test]
    fn each_rank_variable_counts_in_order() {
        for (i, name) in RANK_VARIABLES.iter().enumerate() {
            let value = (10 + i).to_string();
            let mut vars = vec![(*name, value.as_str())];
            // Every later variable is shadowed by this one.
            vars.extend(RANK_VARIABLES[i + 1..].iter().map(|n| (*n, "99")));
            assert_eq!(placed(&vars, Some(5)).0, 10 + i as u32, "{name}");
        }
        let rank_first = [("LOCAL_RANK", "1"), ("RANK", "5"), ("WORLD_SIZE", "8")];
        assert_eq!(placed(&rank_first, None), (5, 8));
    }

    #[test]
    fn each_world_size_variable_counts_in_order() {
        for (i, name) in WORLD_SIZE_VARIABLES.iter().enumerate() {
            let value = (20 + i).to_string();
            let mut vars = vec![("PMI_RANK", "2"), (*name, value.as_str())];
            vars.extend(WORLD_SIZE_VARIABLES[i + 1..].iter().map(|n| (*n, "99")));
            assert_eq!(placed(&vars, None), (2, 20 + i as u32), "{name}");
        }
    }

    #[test]
    fn the_configuration_wins_over_the_environment_and_the_device() {
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
                rank: Rank::Given(2),
                world_size: Some(4),
            }
        );
        assert_eq!(id.place(Some(7)), (2, 4));
        assert_eq!(Identity::from_config(&config), id.clone());
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        assert_eq!(placed(&[("RANK", ""), ("LOCAL_RANK", "1")], None).0, 1);
        assert_eq!(placed(&[("RANK", " ")], Some(2)).0, 2);
    }

    #[test]
    fn a_bad_variable_is_named() {
        for name in RANK_VARIABLES.iter().chain(&WORLD_SIZE_VARIABLES) {
            let err = resolve(&ProfilerConfig::default(), &[(name, "first")]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("environment variable {name}=\"first\" is not a non-negative integer")
            );
        }
        assert!(resolve(&ProfilerConfig::default(), &[("RANK", "-1")]).is_err());
    }

    #[test]
    fn the_default_worker_name_never_starts_bare() {
        assert_eq!(default_worker_name("node", 7), "node_7");
        assert_eq!(default_worker_name("", 7), "localhost_7");
        let config = ProfilerConfig {
            worker_name: Some(String::new()),
            ..ProfilerConfig::default()
        };
        assert_eq!(resolve(&config, &[]).unwrap().worker_name, "gpu7_4242");
    }
}
