//! Raw argon2id throughput with fortfolio's parameters (m=19456 KiB, t=2,
//! p=1): the ceiling that `bench/run.sh` and `bench/compare.sh` compare
//! logins/s against. Like the server's hashing threads, each thread keeps
//! its argon2 working memory and the allocator is the server's.
//!
//! `cargo run --release --example argon2_rate -- [SECONDS] [THREADS]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let threads: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let hash = fortfolio::security::password::hash_blocking("violet-anchor-tundra-41").unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let count = count.clone();
            let hash = hash.clone();
            std::thread::spawn(move || {
                let mut memory = fortfolio::security::password::Memory::default();
                while Instant::now() < deadline {
                    assert!(fortfolio::security::password::verify_with_memory(
                        "violet-anchor-tundra-41",
                        &hash,
                        &mut memory
                    ));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("{rate:.1}");
}
