//! RFC 9106 §3.2–3.4 for Argon2id version 1.3, 32-byte tag, no secret and
//! no associated data.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Blake2b512, Digest};

use crate::block::Block;

/// Argon2id's type number in H0 and the address blocks.
const ARGON2ID: u32 = 2;
const VERSION: u32 = 0x13;
const TAG_BYTES: usize = 32;
/// Slices per pass (RFC 9106: SL = 4).
const SLICES: usize = 4;
/// Reference positions per address block (Argon2i addressing).
const ADDRESSES_PER_BLOCK: usize = 128;

/// The cost parameters: memory in KiB (1 KiB blocks), passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostError;

impl std::fmt::Display for CostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("argon2id needs at least one pass, one lane and 8 KiB per lane")
    }
}

impl std::error::Error for CostError {}

impl Cost {
    /// Blocks per lane: memory rounded down to a multiple of 4 per lane.
    fn lane_blocks(self) -> usize {
        self.memory_kib as usize / (SLICES * self.lanes as usize) * SLICES
    }

    fn check(self) -> Result<(), CostError> {
        let lanes_ok = (1..=0xFF_FFFF).contains(&self.lanes);
        if self.passes == 0 || !lanes_ok || u64::from(self.memory_kib) < 8 * u64::from(self.lanes) {
            return Err(CostError);
        }
        Ok(())
    }
}

/// The AVX2 implementation, present only on a CPU with AVX2.
#[derive(Debug, Clone, Copy)]
pub struct Argon2id {
    /// Private: only [`Argon2id::detect`] makes one, after checking the CPU.
    _avx2: (),
}

impl Argon2id {
    /// The AVX2 implementation if this CPU has AVX2.
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            return Some(Self { _avx2: () });
        }
        None
    }

    /// The 32-byte Argon2id v1.3 tag of `password` and `salt`, computed in
    /// `memory` (resized to the cost's block count and kept by the caller
    /// between hashes).
    pub fn hash(
        self,
        cost: Cost,
        password: &[u8],
        salt: &[u8],
        memory: &mut Vec<Block>,
    ) -> Result<[u8; TAG_BYTES], CostError> {
        self.hash_pausing(cost, password, salt, memory, Pause::never())
    }

    /// [`Self::hash`], calling `pause` after every `pause.every` blocks
    /// computed: a point where the caller may give up the core (the hash
    /// itself holds no lock and makes no system call).
    pub fn hash_pausing(
        self,
        cost: Cost,
        password: &[u8],
        salt: &[u8],
        memory: &mut Vec<Block>,
        mut pause: Pause<'_>,
    ) -> Result<[u8; TAG_BYTES], CostError> {
        cost.check()?;
        let lanes = cost.lanes as usize;
        let lane_blocks = cost.lane_blocks();
        memory.resize(lane_blocks * lanes, Block::default());
        let h0 = initial_hash(cost, password, salt);
        for lane in 0..lanes {
            for column in 0..2u32 {
                let bytes = long_hash_block(&[&h0, &column.to_le_bytes(), &(lane as u32).to_le_bytes()]);
                memory[lane * lane_blocks + column as usize] = Block::from_le_bytes(&bytes);
            }
        }
        let shape = Shape {
            cost,
            lane_blocks,
            segment_blocks: lane_blocks / SLICES,
        };
        for pass in 0..cost.passes {
            for slice in 0..SLICES {
                for lane in 0..lanes {
                    self.fill_segment(&shape, memory, pass, slice, lane, &mut pause);
                }
            }
        }
        let mut last = memory[lane_blocks - 1];
        for lane in 1..lanes {
            let other = &memory[(lane + 1) * lane_blocks - 1];
            for (a, b) in last.0.iter_mut().zip(other.0) {
                *a ^= b;
            }
        }
        let mut tag = Blake2b::<U32>::new();
        tag.update((TAG_BYTES as u32).to_le_bytes());
        tag.update(last.to_le_bytes());
        Ok(tag.finalize().into())
    }

    /// G(x, y) into `out` (XORed into it when `accumulate`).
    #[allow(unsafe_code)]
    fn compress(self, x: &Block, y: &Block, out: &mut Block, accumulate: bool) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `self` exists only if `detect` found AVX2 on this CPU,
        // which is all `compress` requires.
        unsafe {
            crate::block::avx2::compress(x, y, out, accumulate);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (x, y, out, accumulate);
    }

    /// Computes one segment: `segment_blocks` consecutive blocks of `lane`.
    fn fill_segment(
        self,
        shape: &Shape,
        memory: &mut [Block],
        pass: u32,
        slice: usize,
        lane: usize,
        pause: &mut Pause<'_>,
    ) {
        let base = lane * shape.lane_blocks + slice * shape.segment_blocks;
        // The first two blocks of every lane came from H0.
        let first = if pass == 0 && slice == 0 { 2 } else { 0 };
        // Argon2id: data-independent addresses in the first half of the
        // first pass, the previous block's first word everywhere else.
        let mut addresses = (pass == 0 && slice < SLICES / 2).then(|| Addresses::new(shape, pass, slice, lane));
        for index in first..shape.segment_blocks {
            let current = base + index;
            let previous = if index == 0 && slice == 0 {
                current + shape.lane_blocks - 1
            } else {
                current - 1
            };
            let random = match addresses.as_mut() {
                Some(a) => a.next(self, index),
                None => memory[previous].0[0],
            };
            let position = Position {
                pass,
                slice,
                lane,
                index,
            };
            let reference = shape.reference(position, random);
            let Some((out, prev, refd)) = three(memory, current, previous, reference) else {
                return; // cannot happen: the reference is never the current block
            };
            // Version 1.3 XORs into the old block after the first pass.
            self.compress(prev, refd, out, pass > 0);
            pause.block_done();
        }
    }
}

/// A call made every `every` blocks of a hash ([`Argon2id::hash_pausing`]).
pub struct Pause<'a> {
    every: usize,
    left: usize,
    call: Option<&'a mut dyn FnMut()>,
}

impl<'a> Pause<'a> {
    /// Calls `call` after every `every` blocks (at least one).
    pub fn every(every: usize, call: &'a mut dyn FnMut()) -> Self {
        let every = every.max(1);
        Self {
            every,
            left: every,
            call: Some(call),
        }
    }

    /// No call at all: a hash run to its end.
    pub fn never() -> Self {
        Self {
            every: usize::MAX,
            left: usize::MAX,
            call: None,
        }
    }

    fn block_done(&mut self) {
        self.left -= 1;
        if self.left == 0 {
            self.left = self.every;
            if let Some(call) = self.call.as_mut() {
                call();
            }
        }
    }
}

struct Shape {
    cost: Cost,
    lane_blocks: usize,
    segment_blocks: usize,
}

/// The block being computed: pass, slice, lane, and its index in the
/// segment.
#[derive(Clone, Copy)]
struct Position {
    pass: u32,
    slice: usize,
    lane: usize,
    index: usize,
}

impl Shape {
    /// The reference block for `position` from its pseudo-random value
    /// (RFC 9106 §3.4.1.2): J2 picks the lane, J1 the block within the
    /// reference set, biased towards recent blocks.
    fn reference(&self, at: Position, random: u64) -> usize {
        let j1 = random & 0xFFFF_FFFF;
        let j2 = random >> 32;
        let first_slice = at.pass == 0 && at.slice == 0;
        let lane = if first_slice {
            at.lane
        } else {
            (j2 % u64::from(self.cost.lanes)) as usize
        };
        // The reference set: the finished segments this pass can see (all
        // earlier ones in the first pass, the other three later), plus the
        // blocks already made in this segment when in the same lane, never
        // the previous block.
        let finished = if at.pass == 0 { at.slice } else { SLICES - 1 } * self.segment_blocks;
        let size = if lane == at.lane {
            finished + at.index - 1
        } else if at.index == 0 {
            finished - 1
        } else {
            finished
        };
        let x = (j1 * j1) >> 32;
        let y = (size as u64 * x) >> 32;
        let offset = size - 1 - y as usize;
        // Counted from the segment after this one (later passes) or the lane's start.
        let start = if at.pass > 0 && at.slice < SLICES - 1 {
            (at.slice + 1) * self.segment_blocks
        } else {
            0
        };
        lane * self.lane_blocks + (start + offset) % self.lane_blocks
    }
}

/// Argon2i addressing: blocks of 128 pseudo-random values, each G(0, G(0, Z))
/// of the input block Z = (pass, lane, slice, blocks, passes, type, counter).
struct Addresses {
    input: Block,
    values: Block,
}

impl Addresses {
    fn new(shape: &Shape, pass: u32, slice: usize, lane: usize) -> Self {
        let mut input = Block::default();
        let blocks = shape.lane_blocks * shape.cost.lanes as usize;
        input.0[..6].copy_from_slice(&[
            u64::from(pass),
            lane as u64,
            slice as u64,
            blocks as u64,
            u64::from(shape.cost.passes),
            u64::from(ARGON2ID),
        ]);
        Self {
            input,
            values: Block::default(),
        }
    }

    /// The pseudo-random value for the block at `index` in the segment.
    fn next(&mut self, argon: Argon2id, index: usize) -> u64 {
        let slot = index % ADDRESSES_PER_BLOCK;
        // A new block before the first value and every 128 after; the
        // first segment starts at index 2 but still needs its block.
        if slot == 0 || self.input.0[6] == 0 {
            self.input.0[6] += 1;
            let zero = Block::default();
            let mut once = Block::default();
            argon.compress(&zero, &self.input, &mut once, false);
            argon.compress(&zero, &once, &mut self.values, false);
        }
        self.values.0[slot]
    }
}

/// H0 (RFC 9106 §3.2): BLAKE2b-512 over the parameters and inputs.
fn initial_hash(cost: Cost, password: &[u8], salt: &[u8]) -> [u8; 64] {
    let mut h = Blake2b512::new();
    for word in [
        cost.lanes,
        TAG_BYTES as u32,
        cost.memory_kib,
        cost.passes,
        VERSION,
        ARGON2ID,
    ] {
        h.update(word.to_le_bytes());
    }
    for input in [password, salt, &[], &[]] {
        h.update((input.len() as u32).to_le_bytes());
        h.update(input);
    }
    h.finalize().into()
}

/// H' with a 1024-byte output (RFC 9106 §3.3): V1 = H(1024 ‖ inputs),
/// Vi = H(Vi-1), the first halves of V1..V30 and all of V31.
fn long_hash_block(inputs: &[&[u8]]) -> [u8; 1024] {
    let mut out = [0u8; 1024];
    let mut h = Blake2b512::new();
    h.update(1024u32.to_le_bytes());
    for input in inputs {
        h.update(input);
    }
    let mut v: [u8; 64] = h.finalize().into();
    for chunk in out[..960].chunks_exact_mut(32) {
        chunk.copy_from_slice(&v[..32]);
        v = Blake2b512::digest(v).into();
    }
    out[960..].copy_from_slice(&v);
    out
}

/// The block at `current` to write and two others to read.
fn three(memory: &mut [Block], current: usize, a: usize, b: usize) -> Option<(&mut Block, &Block, &Block)> {
    let (before, rest) = memory.split_at_mut(current);
    let (out, after) = rest.split_first_mut()?;
    let read = |i: usize| match i.checked_sub(current + 1) {
        Some(j) => after.get(j),
        None => before.get(i),
    };
    Some((out, read(a)?, read(b)?))
}
