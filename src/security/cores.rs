//! The cores this process may use, and keeping a thread on one of them
//! (Linux; elsewhere nothing is pinned). Used for the async workers and the
//! password hashing threads when `server.pin_workers` applies.

/// The cores in this process's affinity mask.
pub struct Cores(Vec<usize>);

impl Cores {
    /// None where the mask cannot be read or holds a single core.
    pub fn of_this_process() -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            use nix::sched::{sched_getaffinity, CpuSet};
            let mask = sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
            let cores: Vec<usize> = (0..CpuSet::count())
                .filter(|&c| mask.is_set(c).unwrap_or(false))
                .collect();
            (cores.len() > 1).then_some(Self(cores))
        }
        #[cfg(not(target_os = "linux"))]
        None
    }

    /// Keeps the calling thread on the `turn`-th core (round the list).
    pub fn pin_this_thread(&self, turn: usize, what: &str) {
        let Some(&core) = self.0.get(turn % self.0.len().max(1)) else {
            return;
        };
        #[cfg(target_os = "linux")]
        {
            use nix::sched::{sched_setaffinity, CpuSet};
            let mut one = CpuSet::new();
            let pinned = one
                .set(core)
                .and_then(|()| sched_setaffinity(nix::unistd::Pid::from_raw(0), &one));
            if let Err(e) = pinned {
                tracing::warn!(core, error = %e, "could not keep {what} on its core");
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (core, what);
    }
}
