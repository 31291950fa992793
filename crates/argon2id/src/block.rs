//! Argon2's 1 KiB memory block and its compression function G.

/// 128 words of 64 bits, aligned for 256-bit loads.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Block(pub(crate) [u64; 128]);

impl Default for Block {
    fn default() -> Self {
        Block([0; 128])
    }
}

impl Block {
    /// The block from 1024 bytes, little-endian words.
    pub(crate) fn from_le_bytes(bytes: &[u8; 1024]) -> Self {
        let mut block = Block::default();
        for (word, chunk) in block.0.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(chunk);
            *word = u64::from_le_bytes(le);
        }
        block
    }

    pub(crate) fn to_le_bytes(self) -> [u8; 1024] {
        let mut bytes = [0u8; 1024];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    //! G(X, Y) = P_columns(P_rows(X ⊕ Y)) ⊕ X ⊕ Y (RFC 9106 §3.5–3.6): the
    //! 128 words are 8 rows of 16; P is one BLAKE2b round on 16 words with
    //! BlaMka's multiplication, applied to each row and then to each column
    //! of 2-word cells. One register holds four of P's sixteen words, so a
    //! register quartet (a, b, c, d) is a whole P input and one `quarter`
    //! runs BLAKE2b's four column G functions at once.

    use core::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_mul_epu32, _mm256_permute2x128_si256, _mm256_permute4x64_epi64,
        _mm256_setr_epi8, _mm256_setzero_si256, _mm256_shuffle_epi32, _mm256_shuffle_epi8, _mm256_srli_epi64,
        _mm256_xor_si256,
    };

    use super::Block;

    type Registers = [__m256i; 32];

    /// a + b + 2·lo32(a)·lo32(b) per 64-bit lane.
    #[target_feature(enable = "avx2")]
    fn blamka(a: __m256i, b: __m256i) -> __m256i {
        let product = _mm256_mul_epu32(a, b);
        _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(product, product))
    }

    /// BLAKE2b's G on four columns at once, rotations by 32, 24, 16, 63.
    #[target_feature(enable = "avx2")]
    fn quarter(a: &mut __m256i, b: &mut __m256i, c: &mut __m256i, d: &mut __m256i) {
        // Byte shuffles that rotate each 64-bit lane right by 3 and 2 bytes.
        let right24 = _mm256_setr_epi8(
            3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10,
        );
        let right16 = _mm256_setr_epi8(
            2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9,
        );
        *a = blamka(*a, *b);
        *d = _mm256_shuffle_epi32(_mm256_xor_si256(*d, *a), 0b10_11_00_01);
        *c = blamka(*c, *d);
        *b = _mm256_shuffle_epi8(_mm256_xor_si256(*b, *c), right24);
        *a = blamka(*a, *b);
        *d = _mm256_shuffle_epi8(_mm256_xor_si256(*d, *a), right16);
        *c = blamka(*c, *d);
        // Right by 63 is left by 1: (x + x) ⊕ (x >> 63).
        let x = _mm256_xor_si256(*b, *c);
        *b = _mm256_xor_si256(_mm256_add_epi64(x, x), _mm256_srli_epi64(x, 63));
    }

    /// P on (a, b, c, d) = words 0–3, 4–7, 8–11, 12–15: the column step,
    /// then the diagonal step with b, c, d turned by one, two and three
    /// lanes so the diagonals line up, then turned back.
    #[target_feature(enable = "avx2")]
    fn permute(a: &mut __m256i, b: &mut __m256i, c: &mut __m256i, d: &mut __m256i) {
        quarter(a, b, c, d);
        *b = _mm256_permute4x64_epi64(*b, 0b00_11_10_01);
        *c = _mm256_permute4x64_epi64(*c, 0b01_00_11_10);
        *d = _mm256_permute4x64_epi64(*d, 0b10_01_00_11);
        quarter(a, b, c, d);
        *b = _mm256_permute4x64_epi64(*b, 0b10_01_00_11);
        *c = _mm256_permute4x64_epi64(*c, 0b01_00_11_10);
        *d = _mm256_permute4x64_epi64(*d, 0b00_11_10_01);
    }

    /// G(x, y) into `out`, or XORed into it when `accumulate` (passes after
    /// the first, version 1.3).
    #[target_feature(enable = "avx2")]
    pub(crate) fn compress(x: &Block, y: &Block, out: &mut Block, accumulate: bool) {
        // Block is 64-byte aligned, so the casts cannot fail.
        let x: &Registers = bytemuck::cast_ref(&x.0);
        let y: &Registers = bytemuck::cast_ref(&y.0);
        // R = X ⊕ Y is computed straight into Q and again at the end from X
        // and Y (still in L1), rather than kept: the two 1 KiB copies that
        // keeping it took were 6% of a hash (`perf`).
        // Index loops: iterators over arrays by value copy them too.
        let mut q: Registers = [_mm256_setzero_si256(); 32];
        for i in 0..q.len() {
            q[i] = _mm256_xor_si256(x[i], y[i]);
        }
        // Rows: row i is registers 4i..4i+4.
        for row in q.chunks_exact_mut(4) {
            if let [a, b, c, d] = row {
                permute(a, b, c, d);
            }
        }
        // Columns: column j is words 2j and 2j+1 of every row, i.e. the low
        // (j even) or high (j odd) 128 bits of register 4·row + j/2. The
        // rows pair up into P's registers: a = rows 0–1, b = 2–3, c = 4–5,
        // d = 6–7; columns 2k and 2k+1 come from the same registers.
        for k in 0..4 {
            let low = |q: &Registers, i: usize| _mm256_permute2x128_si256(q[8 * i + k], q[8 * i + 4 + k], 0x20);
            let high = |q: &Registers, i: usize| _mm256_permute2x128_si256(q[8 * i + k], q[8 * i + 4 + k], 0x31);
            let mut even = [low(&q, 0), low(&q, 1), low(&q, 2), low(&q, 3)];
            let mut odd = [high(&q, 0), high(&q, 1), high(&q, 2), high(&q, 3)];
            for p in [&mut even, &mut odd] {
                let [a, b, c, d] = p;
                permute(a, b, c, d);
            }
            for i in 0..4 {
                q[8 * i + k] = _mm256_permute2x128_si256(even[i], odd[i], 0x20);
                q[8 * i + 4 + k] = _mm256_permute2x128_si256(even[i], odd[i], 0x31);
            }
        }
        let out: &mut Registers = bytemuck::cast_mut(&mut out.0);
        for i in 0..q.len() {
            let g = _mm256_xor_si256(q[i], _mm256_xor_si256(x[i], y[i]));
            out[i] = if accumulate { _mm256_xor_si256(out[i], g) } else { g };
        }
    }
}
