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
}

/// Picks the kernels: `Scalar` always gives the oracle.
pub(crate) fn select(kernels: Kernels) -> KernelSet {
    KernelSet {
        avx2: kernels == Kernels::Auto && avx2_available(),
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
            // SAFETY: `avx2` is only set when the CPU reports AVX2 (`select`).
            unsafe { x86::horizontal_avx2(src, stride, c, row0, nrows, coeffs, cols, col0, out) };
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

    use super::super::{horizontal_scalar, vertical_scalar, Coeffs};

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

    /// The horizontal pass compiled for AVX2 (see [`vertical_avx2`]).
    ///
    /// # Safety
    /// The CPU must support AVX2.
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
    ) {
        horizontal_scalar(src, stride, c, row0, nrows, coeffs, cols, col0, out);
    }
}
