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
// Six: an image holds up to four at once (file bytes, decoded pixels, the resize's two
// passes), and buffers of two sizes of image then stay warm.
const MAX_BUFFERS: usize = 6;
/// Largest buffer kept (bytes).
const MAX_KEPT: usize = 64 << 20;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `capacity` bytes. Of the pooled buffers with
/// that room, the one with the fewest initialised bytes is emptied, so that the long
/// ones stay available to [`take_for_overwrite`].
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    let mut buf = take_pooled(capacity, Vec::capacity).unwrap_or_default();
    buf.clear();
    buf.reserve(capacity);
    buf
}

/// A buffer of `len` bytes whose contents are left over from its last use, for a caller
/// that writes every byte before reading any (the decoder's and the resize passes'
/// outputs). Zeroing them first (`take_zeroed`) cost ~3 % of `clip preprocess` on
/// photos: a pass over every decoded byte that is overwritten right away. Only bytes
/// beyond the pooled buffer's old length are zero-filled, so the buffer is chosen by its
/// length (its initialised bytes): the shortest that is long enough, else the longest.
pub(crate) fn take_for_overwrite(len: usize) -> Vec<u8> {
    let mut buf = take_pooled(len, Vec::len).unwrap_or_default();
    buf.resize(len, 0);
    buf
}

/// Removes and returns a pooled buffer whose `room` (capacity or length) is at least
/// `want`: of those, the one with the fewest initialised bytes; if none has the room, the
/// one with the most room (it grows). Its length and contents are as it was given back.
fn take_pooled(want: usize, room: fn(&Vec<u8>) -> usize) -> Option<Vec<u8>> {
    POOL.with(|pool| {
        let mut pool = pool.try_borrow_mut().ok()?;
        let fit = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| room(b) >= want)
            .min_by_key(|(_, b)| b.len())
            .or_else(|| pool.iter().enumerate().max_by_key(|(_, b)| room(b)))
            .map(|(i, _)| i)?;
        Some(pool.swap_remove(fit))
    })
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

/// Test hook: empties this thread's pool and fills it with buffers of `len` bytes (at
/// most [`MAX_KEPT`]), all `byte`, so that a test can show no output depends on what a
/// reused buffer held.
pub(crate) fn poison(byte: u8, len: usize) {
    let len = len.min(MAX_KEPT);
    POOL.with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            pool.clear();
            pool.resize_with(MAX_BUFFERS, || vec![byte; len]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{recycle, take, take_for_overwrite, take_zeroed, MAX_BUFFERS, MAX_KEPT, POOL};

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
        // `take_for_overwrite` keeps the old bytes and zero-fills only what it grows.
        let mut d = take_for_overwrite(0);
        d.clear();
        d.extend_from_slice(&[9; 8]);
        recycle(d);
        let d = take_for_overwrite(12);
        assert_eq!(d[8..], [0; 4]);
        recycle(d);
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
