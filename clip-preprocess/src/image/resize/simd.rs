//! Vectorised kernels for the 8-bit passes, byte-identical to the scalar oracle.
//!
//! The sums are integers (`i32` samples × fixed-point weights), so any evaluation
//! order gives the same result as Pillow's loop: exactness does not depend on
//! the vector width. Dispatch is decided at run time from the CPU's features;
//! unsupported CPUs run the scalar code.
#![allow(unsafe_code)]

use std::ops::Range;

use super::{horizontal_scalar, vertical_scalar, Coeffs, Kernels};

/// The kernels chosen for this call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KernelSet {
    avx2: bool,
    /// AVX-VNNI's `vpdpwssd` (multiply pairs and accumulate in one instruction) in the
    /// RGB(A) horizontal pass; only with `avx2`.
    vnni: bool,
}

/// Picks the kernels: `Scalar` always gives the oracle.
pub(crate) fn select(kernels: Kernels) -> KernelSet {
    let avx2 = kernels == Kernels::Auto && avx2_available();
    KernelSet {
        avx2,
        vnni: avx2 && vnni_available(),
    }
}

/// Whether the AVX2 kernels can run on this CPU.
pub(crate) fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the CPU has AVX-VNNI (256-bit `vpdpwssd`), used beside AVX2.
pub(crate) fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl KernelSet {
    /// Horizontal pass; same contract as [`horizontal_scalar`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn horizontal(
        self,
        src: &[u8],
        stride: usize,
        c: usize,
        row0: usize,
        nrows: usize,
        coeffs: &Coeffs,
        cols: Range<usize>,
        col0: usize,
        out: &mut [u8],
    ) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is only set when the CPU reports AVX2, `vnni` only when it
            // also reports AVX-VNNI (`select`).
            unsafe {
                x86::horizontal_avx2(
                    src, stride, c, row0, nrows, coeffs, cols, col0, out, self.vnni,
                )
            };
            return;
        }
        horizontal_scalar(src, stride, c, row0, nrows, coeffs, cols, col0, out);
    }

    /// Vertical pass; same contract as [`vertical_scalar`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn vertical(
        self,
        src: &[u8],
        stride: usize,
        x0: usize,
        width: usize,
        row0: usize,
        coeffs: &Coeffs,
        rows: Range<usize>,
        out: &mut [u8],
    ) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is only set when the CPU reports AVX2 (`select`).
            unsafe { x86::vertical_avx2(src, stride, x0, width, row0, coeffs, rows, out) };
            return;
        }
        vertical_scalar(src, stride, x0, width, row0, coeffs, rows, out);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::ops::Range;

    use super::super::{clip8, horizontal_scalar, vertical_scalar, Coeffs, HALF, PRECISION_BITS};

    /// The vertical pass compiled for AVX2: the scalar body is a row-wise
    /// multiply-accumulate that LLVM vectorises to `vpmulld`/`vpaddd` once
    /// AVX2 is enabled (SSE2, the x86_64 baseline, has no 32-bit multiply).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn vertical_avx2(
        src: &[u8],
        stride: usize,
        x0: usize,
        width: usize,
        row0: usize,
        coeffs: &Coeffs,
        rows: Range<usize>,
        out: &mut [u8],
    ) {
        vertical_scalar(src, stride, x0, width, row0, coeffs, rows, out);
    }

    /// Horizontal pass with AVX2 for 1, 3 and 4 channels (other channel counts
    /// run the scalar body compiled for AVX2): [`horizontal_madd`] for RGB(A) (with
    /// `vnni`, [`horizontal_madd_vnni`]), [`horizontal_c`] for one channel.
    ///
    /// # Safety
    /// The CPU must support AVX2, and AVX-VNNI if `vnni`.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn horizontal_avx2(
        src: &[u8],
        stride: usize,
        c: usize,
        row0: usize,
        nrows: usize,
        coeffs: &Coeffs,
        cols: Range<usize>,
        col0: usize,
        out: &mut [u8],
        vnni: bool,
    ) {
        // SAFETY (all): AVX2 is enabled in this function, AVX-VNNI is reported by the CPU
        // when `vnni` is set (the caller's contract), as the callees require.
        match (c, vnni) {
            (1, _) => unsafe {
                horizontal_c::<1>(src, stride, row0, nrows, coeffs, cols, col0, out)
            },
            (3, false) => unsafe {
                horizontal_madd::<3>(src, stride, row0, nrows, coeffs, cols, col0, out)
            },
            (4, false) => unsafe {
                horizontal_madd::<4>(src, stride, row0, nrows, coeffs, cols, col0, out)
            },
            (3, true) => unsafe {
                horizontal_madd_vnni::<3>(src, stride, row0, nrows, coeffs, cols, col0, out)
            },
            (4, true) => unsafe {
                horizontal_madd_vnni::<4>(src, stride, row0, nrows, coeffs, cols, col0, out)
            },
            _ => horizontal_scalar(src, stride, c, row0, nrows, coeffs, cols, col0, out),
        }
    }

    /// [`horizontal_avx2`] for `C` channels (1, 3 or 4).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn horizontal_c<const C: usize>(
        src: &[u8],
        stride: usize,
        row0: usize,
        nrows: usize,
        coeffs: &Coeffs,
        cols: Range<usize>,
        col0: usize,
        out: &mut [u8],
    ) {
        // Taps per group and i32 lanes per tap: 8 gray taps fill 8 lanes; RGB(A)
        // uses 4 lanes per tap (the 4th is zero for RGB), 2 taps per 256 bits.
        let (group, lanes) = if C == 1 { (8, 1) } else { (4, 4) };
        // Bytes one group load touches.
        let load = if C == 1 { 8 } else { 16 };
        let step = group * C;
        let ncols = cols.len();
        let kpad = coeffs.ksize.div_ceil(group) * group;
        // Weights, zero-padded to `kpad` taps, each repeated `lanes` times, and
        // per column: first source byte offset in a row, number of groups.
        let mut wide = vec![0i32; ncols * kpad * lanes];
        let mut plan = Vec::with_capacity(ncols);
        for (j, xx) in cols.clone().enumerate() {
            let (xmin, n) = coeffs.bounds[xx];
            let k = &coeffs.fixed[xx * coeffs.ksize..xx * coeffs.ksize + n];
            for (t, &w) in k.iter().enumerate() {
                let at = (j * kpad + t) * lanes;
                wide[at..at + lanes].fill(w);
            }
            plan.push(((xmin - col0) * C, n.div_ceil(group), xx));
        }
        for r in 0..nrows {
            let line_start = (row0 + r) * stride;
            let out_row = &mut out[r * ncols * C..(r + 1) * ncols * C];
            for (j, (&(offset, groups, xx), dst)) in
                plan.iter().zip(out_row.chunks_exact_mut(C)).enumerate()
            {
                let base = line_start + offset;
                if groups == 0 || base + (groups - 1) * step + load > src.len() {
                    scalar_pixel::<C>(src, base, coeffs, xx, dst);
                    continue;
                }
                // SAFETY: AVX2 is enabled here. Group `g < groups` reads `load`
                // bytes from `base + g * step`, all below `src.len()` (checked
                // just above), and `group * lanes` i32 weights from
                // `(j * kpad + g * group) * lanes`, inside `wide` because
                // `groups * group <= kpad`.
                let px = unsafe {
                    pixel::<C>(
                        src.as_ptr().add(base),
                        wide.as_ptr().add(j * kpad * lanes),
                        groups,
                    )
                };
                dst.copy_from_slice(&px.to_le_bytes()[..C]);
            }
        }
    }

    /// One output pixel the scalar way (identical arithmetic): the fallback of the
    /// vector kernels for pixels whose last group would read past the end of `src`.
    #[inline(never)]
    fn scalar_pixel<const C: usize>(
        src: &[u8],
        base: usize,
        coeffs: &Coeffs,
        xx: usize,
        dst: &mut [u8],
    ) {
        let (_, n) = coeffs.bounds[xx];
        let k = &coeffs.fixed[xx * coeffs.ksize..xx * coeffs.ksize + n];
        for (ch, d) in dst.iter_mut().enumerate() {
            let mut ss = HALF;
            for (i, &w) in k.iter().enumerate() {
                ss = ss.wrapping_add(i32::from(src[base + i * C + ch]).wrapping_mul(w));
            }
            *d = clip8(ss);
        }
    }

    /// Number of low bits of each weight in the `lo` half of the split (see
    /// [`horizontal_madd`]).
    const SPLIT_BITS: i32 = 11;

    /// Bytes one group load of [`horizontal_madd`] touches (4 taps of up to 4 channels).
    const LOAD: usize = 16;

    /// `i16` weights per group of [`horizontal_madd`]: 16 `hi`, then 16 `lo`.
    const LANES: usize = 32;

    /// The horizontal pass for RGB (`C = 3`) and RGBA (`C = 4`) with `vpmaddwd`
    /// (16-bit products summed in pairs into 32 bits: one µop for 16 products,
    /// where `vpmulld` needs two for 8).
    ///
    /// Pillow's weights are 32-bit fixed point (22 fractional bits), too wide for
    /// 16-bit lanes, so each is split exactly: `w = hi · 2^11 + lo` with
    /// `lo = w & 0x7ff ∈ [0, 2047]` and `hi = w >> 11` (|hi| < 2^13 for Pillow's
    /// bicubic weights, whose magnitude stays below ~1.3 · 2^22). Then
    /// `Σ p·w = 2^11 · Σ p·hi + Σ p·lo` is the same integer (every partial sum fits
    /// `i32`: |Σ p·w| ≤ 255 · Σ|w| < 2^31, as in Pillow), so the result is the
    /// scalar one bit for bit, whatever the order of the additions.
    ///
    /// Per output pixel, groups of 4 taps: the 16 bytes at the group are loaded
    /// once, broadcast to both 128-bit halves and shuffled to `u16` lanes
    /// `[R0 R1 G0 G1 B0 B1 A0 A1 | R2 R3 G2 G3 B2 B3 A2 A3]` (A zero for RGB), against
    /// weights `[w0 w1 ×4 | w2 w3 ×4]`. Weights past a pixel's tap count are zero,
    /// so the extra bytes a group reads add exactly 0. A pixel whose last group
    /// would read past the end of `src` takes the scalar path.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn horizontal_madd<const C: usize>(
        src: &[u8],
        stride: usize,
        row0: usize,
        nrows: usize,
        coeffs: &Coeffs,
        cols: Range<usize>,
        col0: usize,
        out: &mut [u8],
    ) {
        // SAFETY: AVX2 is enabled here, all that the body needs without VNNI.
        unsafe {
            horizontal_madd_body::<C, false>(src, stride, row0, nrows, coeffs, cols, col0, out)
        }
    }

    /// [`horizontal_madd`] with AVX-VNNI: each `vpmaddwd` + `vpaddd` pair of the inner
    /// loop becomes one `vpdpwssd`, which computes the same wrapping `i32` sum (the
    /// non-saturating form; a pair of products of a byte and an `i16` cannot overflow).
    ///
    /// # Safety
    /// The CPU must support AVX2 and AVX-VNNI.
    #[target_feature(enable = "avx2,avxvnni")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn horizontal_madd_vnni<const C: usize>(
        src: &[u8],
        stride: usize,
        row0: usize,
        nrows: usize,
        coeffs: &Coeffs,
        cols: Range<usize>,
        col0: usize,
        out: &mut [u8],
    ) {
        // SAFETY: AVX2 and AVX-VNNI are enabled here, all that the body needs.
        unsafe {
            horizontal_madd_body::<C, true>(src, stride, row0, nrows, coeffs, cols, col0, out)
        }
    }

    /// `acc + Σ pairs (v · k)` in `i32` lanes: `vpdpwssd` with `VNNI`, else `vpmaddwd`
    /// then `vpaddd` (the same wrapping sum).
    ///
    /// # Safety
    /// The CPU must support AVX2, and AVX-VNNI if `VNNI`; inlined into callers that
    /// enable those features.
    #[inline(always)]
    unsafe fn madd_acc<const VNNI: bool>(
        acc: std::arch::x86_64::__m256i,
        v: std::arch::x86_64::__m256i,
        k: std::arch::x86_64::__m256i,
    ) -> std::arch::x86_64::__m256i {
        use std::arch::x86_64::*;
        // SAFETY: the features each branch needs are the caller's contract.
        unsafe {
            if VNNI {
                _mm256_dpwssd_avx_epi32(acc, v, k)
            } else {
                _mm256_add_epi32(acc, _mm256_madd_epi16(v, k))
            }
        }
    }

    /// The body of [`horizontal_madd`] and [`horizontal_madd_vnni`], inlined into each so
    /// that it is compiled with their target features.
    ///
    /// # Safety
    /// The CPU must support AVX2, and AVX-VNNI if `VNNI`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn horizontal_madd_body<const C: usize, const VNNI: bool>(
        src: &[u8],
        stride: usize,
        row0: usize,
        nrows: usize,
        coeffs: &Coeffs,
        cols: Range<usize>,
        col0: usize,
        out: &mut [u8],
    ) {
        use std::arch::x86_64::*;
        if !coeffs
            .fixed
            .iter()
            .all(|&w| i16::try_from(w >> SPLIT_BITS).is_ok())
        {
            // Not reachable with Pillow's normalised bicubic weights (|w| < 2.5 · 2^22),
            // kept so that the split can never be inexact.
            // SAFETY: AVX2 is enabled here, as `horizontal_c` requires.
            return unsafe { horizontal_c::<C>(src, stride, row0, nrows, coeffs, cols, col0, out) };
        }
        const GROUP: usize = 4; // taps per group
        let step = GROUP * C;
        let ncols = cols.len();
        let gmax = coeffs.ksize.div_ceil(GROUP);
        let mut wide = vec![0i16; ncols * gmax * LANES];
        let mut plan = Vec::with_capacity(ncols);
        for (j, xx) in cols.clone().enumerate() {
            let (xmin, n) = coeffs.bounds[xx];
            let k = &coeffs.fixed[xx * coeffs.ksize..xx * coeffs.ksize + n];
            for (t, &w) in k.iter().enumerate() {
                // `hi` fits i16 (checked above) and 0 <= lo < 2^11: both casts are exact.
                let (hi, lo) = (
                    (w >> SPLIT_BITS) as i16,
                    (w & ((1 << SPLIT_BITS) - 1)) as i16,
                );
                let g = t / GROUP;
                let (half, pos) = ((t % GROUP) / 2, t % 2);
                let at = (j * gmax + g) * LANES + half * 8 + pos;
                for ch in 0..4 {
                    wide[at + ch * 2] = hi;
                    wide[at + 16 + ch * 2] = lo;
                }
            }
            plan.push(((xmin - col0) * C, n.div_ceil(GROUP), xx));
        }
        // Byte shuffle of one group: i16 lane 2·ch + pos of half h takes byte
        // (2h + pos)·C + ch; the high byte of each lane and the A lanes of RGB are zero.
        let mut control = [-1i8; 32];
        for h in 0..2 {
            for ch in 0..C {
                for pos in 0..2 {
                    // < 16: a valid byte index of the 16 loaded bytes.
                    control[h * 16 + (ch * 2 + pos) * 2] = ((2 * h + pos) * C + ch) as i8;
                }
            }
        }
        // SAFETY: AVX2 is enabled here; `control` is 32 bytes.
        let control = unsafe { _mm256_loadu_si256(control.as_ptr() as *const __m256i) };
        let row_bytes = ncols * C;
        let pass = MaddPass {
            src,
            stride,
            coeffs,
            plan: &plan,
            wide: &wide,
            gmax,
            step,
            control,
            row_bytes,
        };
        // Blocks of ROWS rows share each weight load (the weights of one output column
        // are the same for every row, and for strong downscales they do not fit in L1:
        // 224 columns × 55 taps × 16 bytes for a 4032-wide photo), then one pack
        // finishes the ROWS pixels together. The rows left over go one at a time.
        const ROWS: usize = 4;
        for (b, out_rows) in out[..nrows * row_bytes]
            .chunks_mut(ROWS * row_bytes)
            .enumerate()
        {
            let first_line = (row0 + b * ROWS) * stride;
            if out_rows.len() == ROWS * row_bytes {
                // SAFETY: the features are this body's contract.
                unsafe { pass.rows::<C, VNNI, ROWS>(first_line, out_rows) };
            } else {
                for (i, out_row) in out_rows.chunks_exact_mut(row_bytes).enumerate() {
                    // SAFETY: as above.
                    unsafe { pass.rows::<C, VNNI, 1>(first_line + i * stride, out_row) };
                }
            }
        }
    }

    /// What [`horizontal_madd_body`] prepared for one call: the source, the per-column
    /// plan `(first byte offset in a row, groups, output column)`, the split weights
    /// (`gmax` groups of LANES i16 per column) and the byte shuffle of one group.
    struct MaddPass<'a> {
        src: &'a [u8],
        stride: usize,
        coeffs: &'a Coeffs,
        plan: &'a [(usize, usize, usize)],
        wide: &'a [i16],
        gmax: usize,
        step: usize,
        control: std::arch::x86_64::__m256i,
        row_bytes: usize,
    }

    impl MaddPass<'_> {
        /// Every output pixel of the `R` (1 to 4) consecutive source rows starting at byte
        /// `first_line` of `src`, into `out_rows` (`R` output rows of `row_bytes`).
        ///
        /// # Safety
        /// The CPU must support AVX2, and AVX-VNNI if `VNNI`; inlined into
        /// [`horizontal_madd_body`]'s callers, which enable those features.
        #[inline(always)]
        unsafe fn rows<const C: usize, const VNNI: bool, const R: usize>(
            &self,
            first_line: usize,
            out_rows: &mut [u8],
        ) {
            use std::arch::x86_64::*;
            let (src, stride, step) = (self.src, self.stride, self.step);
            let last_line = first_line + (R - 1) * stride;
            for (j, &(offset, groups, xx)) in self.plan.iter().enumerate() {
                // Rows lie at increasing addresses: if the last row's reads stay inside
                // `src`, every row's do.
                if groups == 0 || last_line + offset + (groups - 1) * step + LOAD > src.len() {
                    for i in 0..R {
                        let dst = &mut out_rows[i * self.row_bytes + j * C..][..C];
                        let base = first_line + i * stride + offset;
                        scalar_pixel::<C>(src, base, self.coeffs, xx, dst);
                    }
                    continue;
                }
                let mut acc_hi = [_mm256_setzero_si256(); R];
                let mut acc_lo = [_mm256_setzero_si256(); R];
                for g in 0..groups {
                    // SAFETY: AVX2 (and AVX-VNNI for `VNNI`) is this function's contract.
                    // Row `i < R` reads LOAD bytes from
                    // `first_line + i * stride + offset + g * step`, at most the last
                    // row's, which stays below `src.len()` (checked above); the weights
                    // are LANES i16 from `(j * gmax + g) * LANES`, inside `wide` since
                    // `groups <= gmax`.
                    unsafe {
                        let w = self.wide.as_ptr().add((j * self.gmax + g) * LANES);
                        let k_hi = _mm256_loadu_si256(w as *const __m256i);
                        let k_lo = _mm256_loadu_si256(w.add(16) as *const __m256i);
                        let at = src.as_ptr().add(first_line + offset + g * step);
                        for i in 0..R {
                            let v = _mm_loadu_si128(at.add(i * stride) as *const __m128i);
                            let v =
                                _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(v), self.control);
                            acc_hi[i] = madd_acc::<VNNI>(acc_hi[i], v, k_hi);
                            acc_lo[i] = madd_acc::<VNNI>(acc_lo[i], v, k_lo);
                        }
                    }
                }
                // Rows past `R` are packed as zeros and not stored.
                let s = std::array::from_fn::<_, 4, _>(|i| {
                    if i < R {
                        finish_sums(acc_hi[i], acc_lo[i])
                    } else {
                        _mm_setzero_si128()
                    }
                });
                // Saturating packs clamp to 0..=255 exactly as `clip8` does: 16 bytes,
                // row i's pixel (padded to 4 bytes) at 4·i.
                let px = _mm_packus_epi16(_mm_packs_epi32(s[0], s[1]), _mm_packs_epi32(s[2], s[3]));
                let mut bytes = [0u8; 16];
                // SAFETY: `bytes` is 16 bytes, an unaligned store is allowed.
                unsafe { _mm_storeu_si128(bytes.as_mut_ptr() as *mut __m128i, px) };
                for i in 0..R {
                    out_rows[i * self.row_bytes + j * C..][..C]
                        .copy_from_slice(&bytes[i * 4..i * 4 + C]);
                }
            }
        }
    }

    /// The end of [`horizontal_madd`]'s sum for one pixel: `2^11 · hi + lo`, the two
    /// 128-bit halves (taps 0–1 and 2–3 of each group) added, plus the rounding half,
    /// shifted: the four channel values as `i32`, before clamping.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn finish_sums(
        acc_hi: std::arch::x86_64::__m256i,
        acc_lo: std::arch::x86_64::__m256i,
    ) -> std::arch::x86_64::__m128i {
        use std::arch::x86_64::*;
        let acc = _mm256_add_epi32(_mm256_slli_epi32(acc_hi, SPLIT_BITS), acc_lo);
        let s = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        );
        let s = _mm_add_epi32(s, _mm_set1_epi32(HALF));
        _mm_srai_epi32(s, PRECISION_BITS as i32)
    }

    /// Sums `groups` groups of taps for one output pixel and returns its `C`
    /// bytes packed little-endian.
    ///
    /// # Safety
    /// AVX2 must be available; `p` must be readable for
    /// `(groups - 1) * step + load` bytes and `w` for `groups * group * lanes`
    /// i32 (see `horizontal_c`).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn pixel<const C: usize>(p: *const u8, w: *const i32, groups: usize) -> u32 {
        use std::arch::x86_64::*;
        let mut acc = _mm256_setzero_si256();
        if C == 1 {
            for g in 0..groups {
                // SAFETY: within the bounds stated in the contract.
                let (v, k) = unsafe {
                    (
                        _mm_loadl_epi64(p.add(g * 8) as *const __m128i),
                        _mm256_loadu_si256(w.add(g * 8) as *const __m256i),
                    )
                };
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(v), k));
            }
            // Horizontal sum of the 8 lanes.
            let s = _mm_add_epi32(
                _mm256_castsi256_si128(acc),
                _mm256_extracti128_si256(acc, 1),
            );
            let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
            let ss = _mm_cvtsi128_si32(s).wrapping_add(HALF);
            return u32::from(clip8(ss));
        }
        // RGB: spread 4 pixels of 3 bytes into 4 lanes each (the 4th zeroed).
        let spread = if C == 3 {
            _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1)
        } else {
            _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        };
        for g in 0..groups {
            // SAFETY: within the bounds stated in the contract.
            let (v, k01, k23) = unsafe {
                (
                    _mm_loadu_si128(p.add(g * 4 * C) as *const __m128i),
                    _mm256_loadu_si256(w.add(g * 16) as *const __m256i),
                    _mm256_loadu_si256(w.add(g * 16 + 8) as *const __m256i),
                )
            };
            let v = _mm_shuffle_epi8(v, spread);
            let lo = _mm256_cvtepu8_epi32(v);
            let hi = _mm256_cvtepu8_epi32(_mm_srli_si128(v, 8));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(lo, k01));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(hi, k23));
        }
        let s = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        );
        let s = _mm_add_epi32(s, _mm_set1_epi32(HALF));
        let s = _mm_srai_epi32(s, PRECISION_BITS as i32);
        // Saturating packs clamp to 0..=255 exactly as `clip8` does.
        let s = _mm_packs_epi32(s, s);
        let s = _mm_packus_epi16(s, s);
        _mm_cvtsi128_si32(s) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::super::{horizontal_scalar, input_span, Coeffs, Kernels};
    use super::{avx2_available, select, vnni_available, KernelSet};
    use crate::tokenizer::xorshift64;

    /// The dispatched horizontal pass equals the scalar oracle byte for byte on random
    /// pixels: every row count from 1 to 9 (blocks of four rows and the rows left over),
    /// 1, 3 and 4 channels, up- and downscales (a 4032-wide photo's 55 taps included),
    /// windows of output columns at both edges, a first row other than 0, sources holding
    /// whole rows or only the columns the window reads, and source buffers that end at
    /// the last row's last pixel (where the kernels fall back to the scalar sum for
    /// pixels whose vector loads would read past the end).
    #[test]
    fn horizontal_kernels_match_the_scalar_oracle() {
        let chosen = select(Kernels::Auto);
        assert_eq!(
            chosen.avx2,
            avx2_available(),
            "AVX2 CPU, AVX2 kernels not chosen"
        );
        assert_eq!(chosen.vnni, avx2_available() && vnni_available());
        // Every variant this CPU can run, not only the one `select` picks.
        let mut sets = vec![];
        if avx2_available() {
            sets.push(KernelSet {
                avx2: true,
                vnni: false,
            });
            if vnni_available() {
                sets.push(KernelSet {
                    avx2: true,
                    vnni: true,
                });
            }
        }
        eprintln!("horizontal kernels under test: {sets:?}");
        for kernels in sets.iter().copied().chain([chosen]) {
            check_horizontal_against_scalar(kernels);
        }
    }

    fn check_horizontal_against_scalar(kernels: KernelSet) {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut compared = 0;
        for c in [1, 3, 4] {
            for (in_w, out_w) in [
                (640, 336),
                (4032, 298),
                (231, 224),
                (120, 336),
                (17, 5),
                (3, 7),
            ] {
                for nrows in 1..=9 {
                    for row0 in [0, 2] {
                        let len = in_w * (row0 + nrows) * c;
                        let src: Vec<u8> = (0..len)
                            .map(|_| (xorshift64(&mut state) >> 56) as u8)
                            .collect();
                        for window in [0..out_w, out_w / 4..out_w - out_w / 4, out_w - 1..out_w] {
                            let coeffs = Coeffs::window(in_w, out_w, window.clone());
                            let cols = 0..window.len();
                            let size = cols.len() * nrows * c;
                            // The whole rows, and only the columns the window reads (as
                            // the JPEG column-window decoder delivers them): `col0` > 0.
                            let span = input_span(in_w, out_w, window.clone());
                            let held: Vec<u8> = src
                                .chunks_exact(in_w * c)
                                .flat_map(|row| &row[span.start * c..span.end * c])
                                .copied()
                                .collect();
                            for (buf, width, col0) in
                                [(&src, in_w, 0), (&held, span.len(), span.start)]
                            {
                                let mut want = vec![0u8; size];
                                horizontal_scalar(
                                    buf,
                                    width * c,
                                    c,
                                    row0,
                                    nrows,
                                    &coeffs,
                                    cols.clone(),
                                    col0,
                                    &mut want,
                                );
                                let mut got = vec![0xa5u8; size];
                                kernels.horizontal(
                                    buf,
                                    width * c,
                                    c,
                                    row0,
                                    nrows,
                                    &coeffs,
                                    cols.clone(),
                                    col0,
                                    &mut got,
                                );
                                assert!(
                                    got == want,
                                    "{kernels:?}: {c} channels, {in_w} -> {out_w} columns \
                                     {window:?}, rows {row0}..{}, source columns from {col0}",
                                    row0 + nrows
                                );
                                compared += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(compared, 3 * 6 * 9 * 2 * 3 * 2);
    }
}
