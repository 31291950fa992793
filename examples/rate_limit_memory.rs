//! Memory of the rate limiter under many distinct client keys: feeds N
//! distinct keys (default 5 million) and prints the bucket count and the
//! process RSS along the way. The limiter keeps at most 500 000 buckets, so RSS
//! must level off instead of growing with N.
//!
//! `cargo run --release --example rate_limit_memory -- [N]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use fortfolio::config::Rate;
use fortfolio::state::memory::MemoryState;
use fortfolio::state::{now_us, RateLimitState};

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(fortfolio::store::redb::RedbStore::open(dir.path()).unwrap());
    let state = MemoryState::new(store, Duration::from_secs(60));
    println!("{:>12} {:>12} {:>10}", "keys fed", "buckets", "RSS MiB");
    let step = n / 10;
    for i in 0..n {
        let ip = format!("ip:{}.{}.{}.{}", i >> 24 & 255, i >> 16 & 255, i >> 8 & 255, i & 255);
        state.check("login", &ip, Rate::per_minute(5), now_us()).await.unwrap();
        if (i + 1) % step == 0 {
            println!("{:>12} {:>12} {:>10.1}", i + 1, state.bucket_count(), rss_mib());
        }
    }
}
