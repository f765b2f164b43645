//! Numeric kernels of the MiniLM forward pass: a bounds-checked matrix product over the `gemm`
//! crate (runtime-dispatched AVX2/FMA or AVX-512 micro-kernels), and elementwise functions
//! (exp, erf, GELU, softmax, layer norm) written as straight-line float code so the compiler
//! vectorizes them instead of calling libm once per element.

/// Where a matrix lives in a slice: element (r, c) is at `off + r * rs + c * cs`.
#[derive(Debug, Clone, Copy)]
pub struct Mat {
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
}

impl Mat {
    /// A row-major matrix of `cols` columns starting at `off`.
    pub fn rows(off: usize, cols: usize) -> Mat {
        Mat { off, rs: cols, cs: 1 }
    }

    /// Index of the last element of a `rows × cols` matrix.
    fn last(&self, rows: usize, cols: usize) -> usize {
        self.off + (rows - 1) * self.rs + (cols - 1) * self.cs
    }
}

/// `dst[m×n] = (accumulate ? dst : 0) + lhs[m×k] · rhs[k×n]`, single-threaded (callers split
/// work across threads themselves).
///
/// Panics if a matrix does not fit its slice: a bug in the caller, never a user input.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    d: Mat,
    lhs: &[f32],
    l: Mat,
    rhs: &[f32],
    r: Mat,
    accumulate: bool,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(
        d.last(m, n) < dst.len() && l.last(m, k) < lhs.len() && r.last(k, n) < rhs.len(),
        "matmul operand out of bounds"
    );
    #[allow(unsafe_code)]
    // SAFETY: every element gemm reads or writes is at `off + i * rs + j * cs` for i, j inside
    // the given shape, which the assertion above keeps inside each slice; `dst` is a unique
    // borrow, so it cannot alias `lhs` or `rhs`; strides are non-negative and fit `isize`
    // because they index allocated slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(d.off),
            d.cs as isize,
            d.rs as isize,
            accumulate,
            lhs.as_ptr().add(l.off),
            l.cs as isize,
            l.rs as isize,
            rhs.as_ptr().add(r.off),
            r.cs as isize,
            r.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// e^x for x in [-87, 88] (clamped outside), relative error about 3e-7.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 × 2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// The error function (Abramowitz and Stegun 7.1.26, absolute error under 1.5e-7).
#[inline(always)]
pub fn erf(z: f32) -> f32 {
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(z)
}

/// GELU (the exact, erf form BERT was trained with), in place.
pub fn gelu(xs: &mut [f32]) {
    for x in xs {
        *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Softmax of `row * scale`, in place.
pub fn softmax(row: &mut [f32], scale: f32) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut sum = 0.0;
    for x in row.iter_mut() {
        *x = exp((*x - max) * scale);
        sum += *x;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|x| *x *= inv);
}

/// Layer normalization of each `gain.len()`-wide row of `xs`, in place.
pub fn layer_norm(xs: &mut [f32], gain: &[f32], bias: &[f32], eps: f32) {
    let w = gain.len();
    for row in xs.chunks_exact_mut(w) {
        let mean = row.iter().sum::<f32>() / w as f32;
        let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / w as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(gain).zip(bias) {
            *x = (*x - mean) * inv * g + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_match_the_standard_library() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let (e, want) = (exp(x), x.exp());
            assert!((e - want).abs() <= want * 1e-6, "exp({x}) = {e}, want {want}");
        }
        // erf from its series, in f64.
        let erf64 = |x: f64| {
            let (mut term, mut sum) = (x, x);
            for n in 1..200 {
                term *= -x * x / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        };
        for i in -300..=300 {
            let x = i as f32 / 100.0;
            assert!((erf(x) as f64 - erf64(x as f64)).abs() < 3e-7, "erf({x})");
        }
    }

    #[test]
    fn matmul_follows_strides_and_accumulates() {
        // lhs 2×3 row-major, rhs 3×2 stored transposed (column-major).
        let lhs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let rhs_t = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let mut dst = vec![10.0; 4];
        let r = Mat { off: 0, rs: 1, cs: 3 };
        matmul(
            (2, 2, 3),
            &mut dst,
            Mat::rows(0, 2),
            &lhs,
            Mat::rows(0, 3),
            &rhs_t,
            r,
            true,
        );
        assert_eq!(dst, vec![14.0, 12.0, 20.0, 15.0]);
        matmul(
            (2, 2, 3),
            &mut dst,
            Mat::rows(0, 2),
            &lhs,
            Mat::rows(0, 3),
            &rhs_t,
            r,
            false,
        );
        assert_eq!(dst, vec![4.0, 2.0, 10.0, 5.0]);
    }

    #[test]
    fn softmax_and_layer_norm_are_normalized() {
        let mut row = vec![1.0, 2.0, 3.0, -100.0];
        softmax(&mut row, 0.5);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[2] > row[1] && row[1] > row[0] && row[3] < 1e-6);
        let mut xs = vec![1.0, 2.0, 3.0, 4.0];
        layer_norm(&mut xs, &[1.0; 4], &[0.0; 4], 1e-12);
        let var = xs.iter().map(|x| x * x).sum::<f32>() / 4.0;
        assert!(xs.iter().sum::<f32>().abs() < 1e-5 && (var - 1.0).abs() < 1e-4);
    }
}
