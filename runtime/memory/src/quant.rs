//! Compact embeddings: each unit vector is stored as 384 signed bytes and one f32 scale
//! (388 bytes instead of 1536), and compared with integer dot products.

use crate::embed::DIM;

/// Bytes of one stored embedding.
pub const BLOB_LEN: usize = DIM + 4;

/// A vector quantized to int8 with its scale: `x[i] ≈ q[i] * scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// The int8 codes.
    pub q: Vec<i8>,
    /// Multiplier back to floats.
    pub scale: f32,
}

/// Quantize symmetrically so the largest magnitude maps to 127.
pub fn quantize(v: &[f32]) -> Quantized {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let q = v
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    Quantized { q, scale }
}

impl Quantized {
    /// The stored form: codes then the scale, little-endian.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.q.len() + 4);
        b.extend(self.q.iter().map(|&x| x as u8));
        b.extend_from_slice(&self.scale.to_le_bytes());
        b
    }

    /// Decode a stored embedding; `None` if it is not [`BLOB_LEN`] bytes.
    pub fn from_blob(b: &[u8]) -> Option<Quantized> {
        if b.len() != BLOB_LEN {
            return None;
        }
        let (codes, scale) = b.split_at(DIM);
        let scale = f32::from_le_bytes(scale.try_into().ok()?);
        if !scale.is_finite() {
            return None;
        }
        Some(Quantized {
            q: codes.iter().map(|&x| x as i8).collect(),
            scale,
        })
    }
}

/// Integer dot product of two code vectors of equal length. Written as fixed-width blocks
/// with independent accumulators so the compiler vectorizes it (widening multiply-add).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    const W: usize = 32;
    let mut acc = [0i32; W];
    let (ac, ar) = a.split_at(a.len() - a.len() % W);
    let (bc, br) = b.split_at(ac.len().min(b.len()));
    for (x, y) in ac.chunks_exact(W).zip(bc.chunks_exact(W)) {
        for i in 0..W {
            acc[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    let tail: i32 = ar.iter().zip(br).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
    acc.iter().sum::<i32>() + tail
}

/// [`dot_i8`] of two whole embeddings. With the length fixed, the compiler unrolls it into
/// widening multiply-adds.
#[inline(always)]
pub fn dot_row(a: &[i8; DIM], b: &[i8; DIM]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

/// `out[i]` = [`dot_row`] of `q` and the `i`-th embedding in `codes`, for as many rows as
/// both hold. Compiled for the widest SIMD the CPU has (AVX-512, AVX2, else the baseline),
/// chosen at run time: the default target is plain x86-64, whose SSE2 lacks the widening
/// multiply-adds this loop needs.
pub fn dots(q: &[i8; DIM], codes: &[i8], out: &mut [i32]) {
    pulp::Arch::new().dispatch(Dots { q, codes, out });
}

struct Dots<'a> {
    q: &'a [i8; DIM],
    codes: &'a [i8],
    out: &'a mut [i32],
}

impl pulp::WithSimd for Dots<'_> {
    type Output = ();
    // Inlined into pulp's `#[target_feature]` entry point, so the loop is compiled with it.
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for (o, c) in self.out.iter_mut().zip(self.codes.chunks_exact(DIM)) {
            if let Ok(c) = <&[i8; DIM]>::try_from(c) {
                *o = dot_row(self.q, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        let v: Vec<f32> = (0..DIM)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32) - 0.5
            })
            .collect();
        crate::embed::normalized(v)
    }

    #[test]
    fn blob_round_trips_and_rejects_wrong_lengths() {
        let q = quantize(&unit(7));
        let b = q.to_blob();
        assert_eq!(b.len(), BLOB_LEN);
        assert_eq!(Quantized::from_blob(&b), Some(q));
        assert_eq!(Quantized::from_blob(&b[..100]), None);
    }

    #[test]
    fn quantized_cosine_is_close_to_the_float_one() {
        for s in 1..50 {
            let (a, b) = (unit(s), unit(s + 1000));
            let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let (qa, qb) = (quantize(&a), quantize(&b));
            let approx = dot_i8(&qa.q, &qb.q) as f32 * qa.scale * qb.scale;
            let (ra, rb): (&[i8; DIM], &[i8; DIM]) =
                (qa.q.as_slice().try_into().unwrap(), qb.q.as_slice().try_into().unwrap());
            assert_eq!(dot_row(ra, rb), dot_i8(&qa.q, &qb.q));
            let mut out = [0; 2];
            dots(ra, &[qb.q.clone(), qa.q.clone()].concat(), &mut out);
            assert_eq!(out, [dot_i8(&qa.q, &qb.q), dot_i8(&qa.q, &qa.q)]);
            assert!((exact - approx).abs() < 0.01, "{exact} vs {approx}");
        }
    }
}
