//! Argon2id version 1.3 (RFC 9106) with a 32-byte tag, the way fortfolio
//! stores passwords, computed with an AVX2 compression function.
//!
//! The `argon2` crate fills memory with a compression function that the
//! compiler vectorizes; this one is written for AVX2 (four 64-bit words per
//! register, BLAKE2b's rotations as byte shuffles) and measured 1.27–1.38
//! times as many hashes per second on fortfolio's parameters. It exists
//! only where AVX2 does ([`Argon2id::detect`]); everywhere else, and for
//! anything but Argon2id v1.3 with a 32-byte tag, the server uses the
//! `argon2` crate, which the server's tests also hold this one to.
//!
//! This crate is apart from the server because it needs one `unsafe` call
//! (into the AVX2 function, once the CPU is known to have AVX2), and the
//! server's crate forbids `unsafe`.

mod block;
mod fill;

pub use block::Block;
pub use fill::{Argon2id, Cost, CostError, Pause};
