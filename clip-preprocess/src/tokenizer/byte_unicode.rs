//! GPT-2's `bytes_to_unicode()`, shared by the crate and by `build.rs` (which
//! precompiles the embedded vocabulary): one definition, so the two cannot drift.

/// Byte → printable character, in the reference's order (printable bytes first), which
/// is also the order of the first 256 ids of the vocabulary.
pub(crate) fn bytes_to_unicode() -> Vec<(u8, char)> {
    let mut bs: Vec<u8> = (b'!'..=b'~')
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs: Vec<u32> = bs.iter().map(|&b| u32::from(b)).collect();
    let mut n = 0;
    for b in 0..=255u8 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter()
        .zip(cs)
        // Every value is below 0x200, a valid scalar value: the fallback never happens.
        .map(|(b, c)| (b, char::from_u32(c).unwrap_or('\0')))
        .collect()
}
