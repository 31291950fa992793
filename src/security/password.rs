//! Password hashing with argon2id (OWASP: m=19456 KiB, t=2, p=1) on a pool
//! of one thread per core, scheduled below everything else (see
//! [`HashPriority`]) and with a bounded wait, so a login storm uses the cores
//! nothing else needs and never the latency of other requests.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use crate::config::HashPriority;
use crate::domain::Secret;
use crate::security::cores::Cores;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The job would wait (or waited) longer than `auth.hash_max_wait` for a
    /// hashing thread; worth retrying after `retry_after`.
    #[error("password hashing is at capacity")]
    Overloaded { retry_after: Duration },
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// No password is longer (new passwords are at most 1024 characters), so a
/// longer one is refused unhashed.
pub const MAX_PASSWORD_BYTES: usize = 4096;

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(19_456, 2, 1, None).map_err(|e| HashError::Failed(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes synchronously (for the CLI and start-up).
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    // A random 16-byte salt from the OS.
    let hash: PasswordHash = argon2()?
        .hash_password(password.as_bytes())
        .map_err(|e| HashError::Failed(e.to_string()))?;
    Ok(hash.to_string())
}

pub fn verify_blocking(password: &str, hash: &str) -> bool {
    verify_with_memory(password, hash, &mut Memory::default())
}

/// Argon2's working memory, kept by a hashing thread between checks:
/// allocating and faulting in 19 MiB for every check cost a fifth of a
/// login (page faults and zeroing, measured with `perf`). Empty until the
/// first check.
#[derive(Default)]
pub struct Memory {
    /// For the AVX2 implementation.
    fast: Vec<fortfolio_argon2id::Block>,
    /// For the `argon2` crate, on a CPU without AVX2.
    portable: Vec<Block>,
    /// Gives the core away every [`YIELD_BLOCKS`] blocks (a hashing thread
    /// of lowered priority; AVX2 implementation only).
    yields: bool,
}

/// Blocks computed between two offers of the core (about 150 µs on the
/// machines measured, 0.29 µs a block).
///
/// A hashing thread of lowered priority does not give way to a request by
/// itself. When an async worker wakes on its core, Linux's scheduler
/// (EEVDF, 6.6 and later) runs it at once only if it is owed CPU time; a
/// worker busy with reads often is not, and then the hashing thread, the
/// one other runnable thread, keeps the core until the next timer tick, up
/// to 4 ms at 250 Hz. `perf sched` during a login storm showed workers
/// waiting 1.5–5.7 ms while `argon2-0` ran. A `sched_yield` between blocks
/// lets the scheduler pick again as soon as the worker is due: the p99 of
/// `GET /portfolio` in a storm went from 0.75–2.1 ms to 0.6–0.77 ms
/// (README, Benchmarks), at a cost of a system call every 150 µs.
const YIELD_BLOCKS: usize = 512;

impl Memory {
    /// Blocks held, whichever implementation holds them.
    pub fn blocks(&self) -> usize {
        self.fast.len() + self.portable.len()
    }
}

/// Verifies in a thread's kept `memory`. Hashes with this server's
/// parameters and a 32-byte tag are computed by [`tag_with_memory`];
/// hashes with other parameters are checked the usual way.
pub fn verify_with_memory(password: &str, hash: &str, memory: &mut Memory) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(argon2) = argon2() else {
        return false;
    };
    let std = argon2.params();
    let ours = Params::try_from(&parsed)
        .is_ok_and(|p| (p.m_cost(), p.t_cost(), p.p_cost()) == (std.m_cost(), std.t_cost(), std.p_cost()))
        && parsed.algorithm == Algorithm::Argon2id.ident()
        && parsed.version == Some(Version::V0x13.into())
        && parsed.hash.is_some_and(|h| h.len() == TAG_BYTES);
    let (Some(salt), Some(expected), true) = (&parsed.salt, &parsed.hash, ours) else {
        return argon2.verify_password(password.as_bytes(), &parsed).is_ok();
    };
    tag_with_memory(&argon2, password, salt.as_ref(), memory)
        .is_some_and(|out| bool::from(out.as_slice().ct_eq(expected.as_ref())))
}

/// The tag length of this server's hashes.
const TAG_BYTES: usize = 32;

/// The tag of `password` and `salt` with this server's parameters, in a
/// thread's kept `memory`: by the AVX2 implementation where the CPU has
/// AVX2 (`crates/argon2id`: 1.15–1.2 times the `argon2` crate's rate on
/// this path, README Benchmarks), offering the core away as the memory
/// says, otherwise by the `argon2` crate in the same memory.
fn tag_with_memory(argon2: &Argon2<'_>, password: &str, salt: &[u8], memory: &mut Memory) -> Option<[u8; TAG_BYTES]> {
    let std = argon2.params();
    match fortfolio_argon2id::Argon2id::detect() {
        Some(fast) => {
            let cost = fortfolio_argon2id::Cost {
                memory_kib: std.m_cost(),
                passes: std.t_cost(),
                lanes: std.p_cost(),
            };
            let mut give_way = std::thread::yield_now;
            let pause = if memory.yields {
                fortfolio_argon2id::Pause::every(YIELD_BLOCKS, &mut give_way)
            } else {
                fortfolio_argon2id::Pause::never()
            };
            fast.hash_pausing(cost, password.as_bytes(), salt, &mut memory.fast, pause)
                .ok()
        }
        None => {
            memory.portable.resize(std.block_count(), Block::default());
            let mut out = [0u8; TAG_BYTES];
            argon2
                .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory.portable.as_mut_slice())
                .ok()
                .map(|()| out)
        }
    }
}

/// Hashes a new password in a thread's kept `memory`, as
/// [`hash_blocking`] does (a random 16-byte salt, this server's
/// parameters, a PHC string) but computed like a check
/// ([`tag_with_memory`]): faster where the CPU has AVX2, and giving way to
/// requests like a login's check, which a registration storm otherwise
/// did not.
pub fn hash_with_memory(password: &str, memory: &mut Memory) -> Result<String, HashError> {
    use argon2::password_hash::phc::{Output, ParamsString, Salt};
    use rand::RngCore as _;
    fn failed(e: impl std::fmt::Display) -> HashError {
        HashError::Failed(e.to_string())
    }
    let argon2 = argon2()?;
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let tag = tag_with_memory(&argon2, password, &salt, memory)
        .ok_or_else(|| HashError::Failed("argon2id refused this server's parameters".into()))?;
    // The `argon2` crate's own PHC string, as its `hash_password` builds it.
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(failed)?,
        salt: Some(Salt::new(&salt).map_err(failed)?),
        hash: Some(Output::new(&tag).map_err(failed)?),
    };
    Ok(hash.to_string())
}

/// Puts the calling thread at `priority`. Failure (a platform or sandbox
/// that refuses) leaves it at the default priority and is logged once per
/// thread.
fn lower_this_thread(priority: HashPriority) {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadSchedulePolicy,
        };
        use thread_priority::ThreadPriority;
        let policy = match priority {
            HashPriority::Idle => NormalThreadSchedulePolicy::Idle,
            HashPriority::Low => NormalThreadSchedulePolicy::Other,
            HashPriority::Normal => return,
        };
        // The minimum under SCHED_OTHER is nice 19; SCHED_IDLE has no levels.
        let policy = ThreadSchedulePolicy::Normal(policy);
        if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, policy) {
            tracing::warn!(?priority, error = ?e, "could not lower the password hashing thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = priority;
}

/// A queued hash with the channel its caller waits on.
trait Pending: Send {
    /// The caller is gone (its request ended): the hash can be skipped.
    fn abandoned(&self) -> bool;
    /// Runs with the thread's argon2 working memory.
    fn run(self: Box<Self>, memory: &mut Memory);
    /// Answers the caller that the job waited past the bound.
    fn expire(self: Box<Self>, retry_after: Duration);
}

struct Task<T, F> {
    work: F,
    reply: tokio::sync::oneshot::Sender<Result<T, HashError>>,
}

impl<T: Send, F: FnOnce(&mut Memory) -> T + Send> Pending for Task<T, F> {
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn run(self: Box<Self>, memory: &mut Memory) {
        let _ = self.reply.send(Ok((self.work)(memory)));
    }

    fn expire(self: Box<Self>, retry_after: Duration) {
        let _ = self.reply.send(Err(HashError::Overloaded { retry_after }));
    }
}

struct Job {
    queued_at: Instant,
    task: Box<dyn Pending>,
}

/// What the pool knows of its own load, to refuse a job up front that
/// would wait longer than the bound.
struct Load {
    max_wait: Duration,
    /// Jobs sent and not yet started.
    queued: AtomicUsize,
    /// One per hashing thread.
    threads: Vec<ThreadLoad>,
}

/// One hashing thread's pace.
#[derive(Default)]
struct ThreadLoad {
    /// Standing aside (see [`WorkersBusy`]): takes no jobs now.
    aside: AtomicBool,
    /// Moving average of its jobs' wall time (start to finish), in ns: it
    /// grows when the thread is starved of CPU, which is what the wait
    /// estimate must see. Zero until its first job.
    job_ns: AtomicU64,
}

impl Load {
    fn new(threads: usize, max_wait: Duration) -> Self {
        Self {
            max_wait,
            queued: AtomicUsize::new(0),
            threads: (0..threads).map(|_| ThreadLoad::default()).collect(),
        }
    }

    /// The wait a job sent now should expect before a thread starts it:
    /// the jobs ahead of it over the threads' summed pace. Each thread
    /// counts at its own pace, since one may be starved (its core busy
    /// with requests) while another hashes at full speed; an average over
    /// both once refused every login for a whole storm that was served at
    /// 42 per second.
    fn expected_wait(&self) -> Duration {
        let ahead = self.queued.load(Ordering::Relaxed) as f64;
        // A thread yet to finish a job has no pace: counted only when none has.
        let (mut taking, mut per_second) = (false, 0.0);
        for t in self.threads.iter().filter(|t| !t.aside.load(Ordering::Relaxed)) {
            taking = true;
            match t.job_ns.load(Ordering::Relaxed) {
                0 => {}
                ns => per_second += 1e9 / ns as f64,
            }
        }
        if per_second == 0.0 {
            return if taking { Duration::ZERO } else { Duration::MAX };
        }
        Duration::try_from_secs_f64(ahead / per_second).unwrap_or(Duration::MAX)
    }

    fn record(&self, thread: usize, took: Duration) {
        let Some(t) = self.threads.get(thread) else {
            return;
        };
        // At least 1 ns: zero means "not measured yet".
        let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        let old = t.job_ns.load(Ordering::Relaxed);
        // An exponential moving average over about eight jobs (never below
        // 1 once `old` and `took` are at least 1).
        let new = if old == 0 { took } else { old - old / 8 + took / 8 };
        t.job_ns.store(new, Ordering::Relaxed);
    }

    /// What a refused caller is told to wait: the backlog's drain time,
    /// at least a second.
    fn retry_after(&self) -> Duration {
        self.expected_wait()
            .clamp(Duration::from_secs(1), Duration::from_secs(3600))
    }
}

/// Whether the async workers (every request's work but the hashing) have
/// been busy lately: the share of their time spent running tasks over the
/// last [`Self::WINDOW`], from the runtime's own counters.
///
/// While it is above [`Self::SHARE`], every hashing thread but one waits
/// between jobs. `SCHED_IDLE` gives reads the CPU whenever they ask, but
/// not at once: each wakeup of a reader on a core busy hashing waits for a
/// reschedule interrupt (about 13 µs on this VM, `perf sched`) and then
/// finds the caches full of argon2's memory. With one core left free of
/// hashing, the p99 of `GET /portfolio` during a login storm was 0.75–0.89
/// ms against 0.58–0.81 ms alone; with both hashing, 1.4–1.9 ms (README,
/// Benchmarks). A login-only load keeps the workers a few percent busy, so
/// it still hashes on every core.
struct WorkersBusy {
    runtime: tokio::runtime::Handle,
    /// When last sampled, and the workers' total busy time then.
    sample: std::sync::Mutex<(Instant, Duration)>,
    busy: AtomicBool,
}

impl WorkersBusy {
    const WINDOW: Duration = Duration::from_millis(20);
    const SHARE: f64 = 0.25;

    /// None outside a runtime (nothing to yield to).
    fn of_this_runtime() -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let total = Self::busy_total(&runtime);
        Some(Self {
            runtime,
            sample: std::sync::Mutex::new((Instant::now(), total)),
            busy: AtomicBool::new(false),
        })
    }

    fn busy_total(runtime: &tokio::runtime::Handle) -> Duration {
        let metrics = runtime.metrics();
        (0..metrics.num_workers())
            .map(|w| metrics.worker_total_busy_duration(w))
            .sum()
    }

    /// The verdict, sampled afresh at most once per window.
    fn busy(&self) -> bool {
        let mut sample = self.sample.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (then, before) = *sample;
        let elapsed = then.elapsed();
        if elapsed >= Self::WINDOW {
            let total = Self::busy_total(&self.runtime);
            let workers = self.runtime.metrics().num_workers().max(1) as f64;
            let share = total.saturating_sub(before).as_secs_f64() / (elapsed.as_secs_f64() * workers);
            self.busy.store(share > Self::SHARE, Ordering::Relaxed);
            *sample = (Instant::now(), total);
        }
        self.busy.load(Ordering::Relaxed)
    }

    /// Returns once the workers are quiet, or once the logins waiting
    /// would otherwise wait more than half the bound (refusing them all
    /// with `503` is worse than slower reads: the scaled-mode storm, with
    /// PostgreSQL and Redis on the same two cores, refused 15 190 logins
    /// in 12 s before this), counting this thread out of the pool's
    /// capacity meanwhile.
    fn wait_for_quiet(&self, load: &Load, thread: usize) {
        let Some(me) = load.threads.get(thread) else {
            return;
        };
        let stand_aside = || self.busy() && load.expected_wait() <= load.max_wait / 2;
        if !stand_aside() {
            return;
        }
        me.aside.store(true, Ordering::Relaxed);
        while stand_aside() {
            std::thread::sleep(Self::WINDOW);
        }
        me.aside.store(false, Ordering::Relaxed);
    }
}

/// A pool of one hashing thread per core. Jobs queue in a channel and the
/// threads run them back to back, so a burst of logins keeps every idle core
/// hashing without a round trip through the async scheduler between hashes,
/// and never occupies the async workers.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: std::sync::mpsc::SyncSender<Job>,
    load: Arc<Load>,
    /// Verified against when the account does not exist, so an unknown email
    /// costs the same time as a wrong password.
    dummy_hash: Arc<String>,
}

impl PasswordHasher {
    /// With `pin`, hashing thread *i* stays on the *i*-th core: measured
    /// on the login load, it kept a hash's 19 MiB in one core's caches and
    /// spared the cores idle moments (README, Benchmarks).
    pub fn new(priority: HashPriority, max_wait: Duration, pin: bool) -> Result<Self, HashError> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let cores = pin.then(Cores::of_this_process).flatten().map(Arc::new);
        // Room for far more than can start within any sensible bound; the
        // wait estimate refuses long before the channel fills.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(4096);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let load = Arc::new(Load::new(threads, max_wait));
        let busy = WorkersBusy::of_this_runtime().map(Arc::new);
        for i in 0..threads {
            let rx = rx.clone();
            let load = load.clone();
            // The first thread always hashes; the others step aside while
            // the async workers are busy.
            let busy = busy.clone().filter(|_| i > 0);
            let cores = cores.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_this_thread(priority);
                    if let Some(cores) = cores {
                        cores.pin_this_thread(i, "a password hashing thread");
                    }
                    // 19 MiB once the first password is checked, kept.
                    let mut memory = Memory {
                        yields: priority != HashPriority::Normal,
                        ..Memory::default()
                    };
                    loop {
                        if let Some(busy) = &busy {
                            busy.wait_for_quiet(&load, i);
                        }
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else {
                            return; // every sender dropped: shut down
                        };
                        load.queued.fetch_sub(1, Ordering::Relaxed);
                        if job.task.abandoned() {
                            continue;
                        }
                        if job.queued_at.elapsed() > load.max_wait {
                            job.task.expire(load.retry_after());
                            continue;
                        }
                        let started = Instant::now();
                        job.task.run(&mut memory);
                        load.record(i, started.elapsed());
                    }
                })
                .map_err(|e| HashError::Failed(e.to_string()))?;
        }
        Ok(Self {
            jobs: tx,
            load,
            dummy_hash: Arc::new(hash_blocking(&crate::security::random_token(24))?),
        })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Memory) -> T + Send + 'static) -> Result<T, HashError> {
        if self.load.expected_wait() > self.load.max_wait {
            return Err(HashError::Overloaded {
                retry_after: self.load.retry_after(),
            });
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job {
            queued_at: Instant::now(),
            task: Box::new(Task { work: f, reply }),
        };
        self.load.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.jobs.try_send(job) {
            self.load.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(match e {
                std::sync::mpsc::TrySendError::Full(_) => HashError::Overloaded {
                    retry_after: self.load.retry_after(),
                },
                std::sync::mpsc::TrySendError::Disconnected(_) => HashError::Failed("hashing pool stopped".into()),
            });
        }
        rx.await
            .map_err(|_| HashError::Failed("hashing job was dropped".into()))?
    }

    pub async fn hash(&self, password: &Secret) -> Result<String, HashError> {
        let pw = password.clone();
        self.run(move |memory| hash_with_memory(pw.expose(), memory)).await?
    }

    /// Verifies `password` against `hash`, or against the dummy hash when
    /// there is no account; either way one full argon2id computation. A
    /// password longer than [`MAX_PASSWORD_BYTES`] matches nothing and is
    /// refused without spending a hash on it. Only an overloaded pool is an
    /// error; a hash that cannot be checked is a mismatch.
    pub async fn verify(&self, password: &Secret, hash: Option<&str>) -> Result<bool, HashError> {
        if password.expose().len() > MAX_PASSWORD_BYTES {
            return Ok(false);
        }
        let pw = password.clone();
        let (target, real) = match hash {
            Some(h) => (h.to_string(), true),
            None => (self.dummy_hash.as_str().to_string(), false),
        };
        match self
            .run(move |memory| verify_with_memory(pw.expose(), &target, memory))
            .await
        {
            Ok(ok) => Ok(ok && real),
            Err(e @ HashError::Overloaded { .. }) => Err(e),
            Err(HashError::Failed(_)) => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workers running tasks flat out read as busy within a window or two,
    /// and as quiet again once they idle.
    #[test]
    fn busy_async_workers_are_seen_and_their_quiet_too() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let probe = WorkersBusy::of_this_runtime().unwrap();
            let spin = || {
                // Short polls, as requests make: the runtime counts busy
                // time between polls, not within one.
                tokio::spawn(async {
                    let until = Instant::now() + WorkersBusy::WINDOW * 5;
                    while Instant::now() < until {
                        let poll = Instant::now() + Duration::from_micros(50);
                        while Instant::now() < poll {
                            std::hint::spin_loop();
                        }
                        tokio::task::yield_now().await;
                    }
                })
            };
            let spinning = [spin(), spin()];
            std::thread::sleep(WorkersBusy::WINDOW * 3);
            assert!(probe.busy(), "two workers spinning");
            for s in spinning {
                s.await.unwrap();
            }
            tokio::time::sleep(WorkersBusy::WINDOW * 2).await;
            probe.busy();
            tokio::time::sleep(WorkersBusy::WINDOW * 2).await;
            assert!(!probe.busy(), "idle workers");
        });
    }

    #[test]
    fn hash_uses_owasp_parameters_and_verifies() {
        let h = hash_blocking("violet-anchor-tundra-41").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("violet-anchor-tundra-41", &h));
        assert!(!verify_blocking("violet-anchor-tundra-42", &h));
    }

    /// A new password hashed in a hashing thread's memory is a PHC string
    /// the `argon2` crate parses and verifies on its own, with the
    /// server's parameters and a fresh 16-byte salt each time.
    #[test]
    fn a_hash_made_in_kept_memory_is_the_argon2_crates_own() {
        let mut memory = Memory {
            yields: true,
            ..Memory::default()
        };
        let first = hash_with_memory("violet-anchor-tundra-41", &mut memory).unwrap();
        let second = hash_with_memory("violet-anchor-tundra-41", &mut memory).unwrap();
        assert_ne!(first, second, "each hash has its own salt");
        for h in [&first, &second] {
            assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
            let parsed = PasswordHash::new(h).unwrap();
            assert_eq!(parsed.salt.as_ref().map(|s| s.as_ref().len()), Some(16));
            assert_eq!(parsed.hash.as_ref().map(|t| t.len()), Some(TAG_BYTES));
            let reference = argon2().unwrap();
            assert!(reference.verify_password(b"violet-anchor-tundra-41", &parsed).is_ok());
            assert!(reference.verify_password(b"violet-anchor-tundra-42", &parsed).is_err());
            assert!(verify_with_memory("violet-anchor-tundra-41", h, &mut memory));
            assert!(!verify_with_memory("violet-anchor-tundra-42", h, &mut memory));
        }
    }

    #[test]
    fn kept_memory_verifies_like_a_fresh_check() {
        let mut memory = Memory::default();
        let h = hash_blocking("violet-anchor-tundra-41").unwrap();
        for _ in 0..2 {
            assert!(verify_with_memory("violet-anchor-tundra-41", &h, &mut memory));
            assert!(!verify_with_memory("violet-anchor-tundra-4", &h, &mut memory));
        }
        assert_eq!(memory.blocks(), 19_456);
        // Other parameters (an older or foreign hash) take the usual path.
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 3, 1, None).unwrap(),
        );
        let h: PasswordHash = other.hash_password(b"violet-anchor-tundra-41").unwrap();
        assert!(verify_with_memory(
            "violet-anchor-tundra-41",
            &h.to_string(),
            &mut memory
        ));
        assert!(!verify_with_memory(
            "violet-anchor-tundra-42",
            &h.to_string(),
            &mut memory
        ));
        // A hash cut short or garbled matches nothing.
        let good = hash_blocking("violet-anchor-tundra-41").unwrap();
        assert!(!verify_with_memory(
            "violet-anchor-tundra-41",
            &good[..good.len() - 4],
            &mut memory
        ));
        assert!(!verify_with_memory(
            "violet-anchor-tundra-41",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            &mut memory
        ));
    }

    /// The AVX2 implementation gives the `argon2` crate's tags: other costs
    /// (several lanes and passes, the smallest memory), empty and long
    /// inputs, and memory kept from a larger hash.
    #[test]
    fn the_avx2_argon2id_matches_the_argon2_crate() {
        let Some(fast) = fortfolio_argon2id::Argon2id::detect() else {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        };
        let mut memory = Vec::new();
        let long = [0xA5u8; 300];
        let inputs: [(&[u8], &[u8]); 3] = [
            (b"violet-anchor-tundra-41", b"0123456789abcdef"),
            (b"", b"saltsalt"),
            (&long, &long[..64]),
        ];
        for (m, t, p) in [
            (19_456, 2, 1),
            (4096, 1, 1),
            (1024, 3, 4),
            (24, 4, 3),
            (8, 1, 1),
            (200, 2, 2),
        ] {
            let reference = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(m, t, p, Some(32)).unwrap(),
            );
            for (password, salt) in inputs {
                let mut want = [0u8; 32];
                reference.hash_password_into(password, salt, &mut want).unwrap();
                let cost = fortfolio_argon2id::Cost {
                    memory_kib: m,
                    passes: t,
                    lanes: p,
                };
                let got = fast.hash(cost, password, salt, &mut memory).unwrap();
                assert_eq!(got, want, "m={m} t={t} p={p} password of {} bytes", password.len());
                // Pausing changes nothing but the calls: one per 7 blocks
                // computed (all but the first two of each lane).
                let mut calls = 0;
                let mut count = || calls += 1;
                let pause = fortfolio_argon2id::Pause::every(7, &mut count);
                let paused = fast.hash_pausing(cost, password, salt, &mut memory, pause).unwrap();
                assert_eq!(paused, want, "paused, m={m} t={t} p={p}");
                let computed = (m / (4 * p) * 4 * p) * t - 2 * p;
                assert_eq!(calls, computed / 7, "m={m} t={t} p={p}");
            }
        }
        let bad = fortfolio_argon2id::Cost {
            memory_kib: 15,
            passes: 1,
            lanes: 2,
        };
        assert!(fast.hash(bad, b"x", b"saltsalt", &mut memory).is_err());
    }

    /// The wait is the backlog over the threads' summed pace: a starved
    /// thread slows the estimate only by what it no longer does.
    #[test]
    fn the_expected_wait_counts_each_thread_at_its_own_pace() {
        let load = Load::new(2, Duration::from_secs(2));
        load.queued.store(16, Ordering::Relaxed);
        assert_eq!(load.expected_wait(), Duration::ZERO, "nothing measured yet");
        load.record(0, Duration::from_millis(10));
        // Thread 1 has no pace yet: 16 jobs at 100 per second.
        assert!((load.expected_wait().as_secs_f64() - 0.16).abs() < 1e-3);
        load.record(1, Duration::from_secs(2));
        // 16 jobs at 100 + 0.5 per second.
        let wait = load.expected_wait().as_secs_f64();
        assert!((wait - 16.0 / 100.5).abs() < 1e-3, "{wait}");
        // A thread standing aside takes none of them.
        load.threads[0].aside.store(true, Ordering::Relaxed);
        assert!((load.expected_wait().as_secs_f64() - 32.0).abs() < 1e-3);
        assert_eq!(load.retry_after(), Duration::from_secs_f64(32.0));
        load.threads[1].aside.store(true, Ordering::Relaxed);
        assert_eq!(load.expected_wait(), Duration::MAX, "no thread takes jobs");
        assert_eq!(load.retry_after(), Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn a_backlog_past_the_bound_is_refused_as_overloaded() {
        let bound = Duration::from_millis(200);
        let pool = PasswordHasher::new(HashPriority::Normal, bound, false).unwrap();
        let pw = Secret::new("violet-anchor-tundra-41");
        let h = hash_blocking("violet-anchor-tundra-41").unwrap();
        // Every hashing thread busy for three bounds.
        let started = Arc::new(AtomicUsize::new(0));
        let busy: Vec<_> = (0..pool.load.threads.len())
            .map(|_| {
                let (pool, started) = (pool.clone(), started.clone());
                tokio::spawn(async move {
                    pool.run(move |_| {
                        started.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(bound * 3);
                    })
                    .await
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while started.load(Ordering::Relaxed) < pool.load.threads.len() {
            assert!(Instant::now() < deadline, "the hashing threads never started");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // A check sent now cannot start within the bound: refused, with a
        // retry hint of at least a second.
        match pool.verify(&pw, Some(&h)).await {
            Err(HashError::Overloaded { retry_after }) => assert!(retry_after >= Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        for b in busy {
            b.await.unwrap().unwrap();
        }
        // With the backlog gone, the same check runs.
        assert!(pool.verify(&pw, Some(&h)).await.unwrap());
    }
}
