//! Byte buffers reused from one image to the next, per thread.
//!
//! Preprocessing an image needs a few large temporary buffers (the file's bytes, the
//! decoded pixels, the resize passes), each as big as the image. Allocating them per
//! image made the allocator hand back fresh pages that the kernel had to fault in and
//! zero, every time. Buffers are taken from and given back to a small per-thread pool
//! instead, so a loop over images allocates nothing once the pool is warm. The pool is
//! bounded: a few buffers per thread, and none larger than [`MAX_KEPT`] is kept (a
//! huge photo does not pin its memory for the life of the thread).
use std::cell::RefCell;

/// Buffers kept per thread.
const MAX_BUFFERS: usize = 4;
/// Largest buffer kept (bytes).
const MAX_KEPT: usize = 64 << 20;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `capacity` bytes: the smallest pooled one
/// that fits, else the largest (it grows), else a new one.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    let taken = POOL.with(|pool| {
        let mut pool = pool.try_borrow_mut().ok()?;
        let fit = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= capacity)
            .min_by_key(|(_, b)| b.capacity())
            .or_else(|| pool.iter().enumerate().max_by_key(|(_, b)| b.capacity()))
            .map(|(i, _)| i)?;
        Some(pool.swap_remove(fit))
    });
    let mut buf = taken.unwrap_or_default();
    buf.clear();
    buf.reserve(capacity);
    buf
}

/// `take(len)` filled with `len` zero bytes.
pub(crate) fn take_zeroed(len: usize) -> Vec<u8> {
    let mut buf = take(len);
    buf.resize(len, 0);
    buf
}

/// Gives `buf` back to this thread's pool (or drops it when the pool is full or the
/// buffer too large).
pub(crate) fn recycle(buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_KEPT {
        return;
    }
    POOL.with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            if pool.len() < MAX_BUFFERS {
                pool.push(buf);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{recycle, take, take_zeroed, MAX_BUFFERS, MAX_KEPT, POOL};

    #[test]
    fn buffers_are_reused_and_bounded() {
        let a = take_zeroed(1000);
        assert_eq!(a.len(), 1000);
        assert!(a.iter().all(|&b| b == 0));
        let ptr = a.as_ptr();
        recycle(a);
        let b = take(500);
        assert!(b.is_empty() && b.capacity() >= 1000);
        assert_eq!(b.as_ptr(), ptr, "the pooled buffer is handed out again");
        let mut b = b;
        b.extend_from_slice(&[7; 10]);
        recycle(b);
        // Reused buffers come back zeroed where asked.
        let c = take_zeroed(20);
        assert_eq!(c, vec![0u8; 20]);
        recycle(c);
        // Oversized buffers are not kept, and the pool never holds more than its bound.
        let before = pooled();
        recycle(Vec::with_capacity(MAX_KEPT + 1));
        assert_eq!(pooled(), before);
        for _ in 0..2 * MAX_BUFFERS {
            recycle(Vec::with_capacity(16));
        }
        assert_eq!(pooled(), MAX_BUFFERS);
    }

    fn pooled() -> usize {
        POOL.with(|p| p.borrow().len())
    }
}
