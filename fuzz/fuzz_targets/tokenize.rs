//! Text bytes → the tokenizer: `encode`, `tokenize` with and without truncation (two
//! context lengths), `tokenize_row` (the CLI's bounded path) and `decode`.
//!
//! Invariants: no panic, no hang; rows are `[SOT, ids..., EOT, 0...]` of the context length;
//! truncation keeps a prefix of the untruncated ids; `tokenize` and `tokenize_row` agree;
//! decoding arbitrary ids never fails.
#![no_main]

use clip_preprocess::tokenizer::{Tokenizer, TokenizerError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tok = Tokenizer::new();
    // Invalid UTF-8 reaches the library as U+FFFD, as with `String::from_utf8_lossy` in
    // the CLI.
    let text = String::from_utf8_lossy(data);
    let ids = tok.encode(&text);
    assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));

    for context_length in [77usize, 5] {
        let truncated = match tok.tokenize(&[text.as_ref()], context_length, true) {
            Ok(t) => t,
            Err(e) => panic!("truncate=true failed: {e}"),
        };
        let row: Vec<u32> = truncated.row(0).iter().map(|&v| v as u32).collect();
        assert_eq!(row.len(), context_length);
        assert_eq!(row[0], tok.sot());
        let used = row.iter().rposition(|&v| v != 0).map_or(0, |p| p + 1);
        assert_eq!(row[used - 1], tok.eot(), "row does not end with EOT");
        // The middle is a prefix of the untruncated ids.
        let middle = &row[1..used - 1];
        assert!(ids.starts_with(middle), "truncated row is not a prefix");

        let bounded = tok.tokenize_row(&text, context_length, true);
        assert_eq!(bounded.ok().as_deref(), Some(row.as_slice()));

        let fits = ids.len() + 2 <= context_length;
        match tok.tokenize(&[text.as_ref()], context_length, false) {
            Ok(t) => {
                assert!(
                    fits,
                    "untruncated tokenize accepted a text that does not fit"
                );
                let again: Vec<u32> = t.row(0).iter().map(|&v| v as u32).collect();
                assert_eq!(again, row);
            }
            Err(TokenizerError::TooLong { tokens, .. }) => {
                assert!(!fits);
                assert_eq!(tokens, ids.len() + 2);
            }
            Err(e) => panic!("unexpected error {e}"),
        }
        match tok.tokenize_row(&text, context_length, false) {
            Ok(r) => assert!(fits && r == row),
            Err(TokenizerError::TooLong { .. }) => assert!(!fits),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    // Decoding: the ids of the text, and the raw bytes read as ids (unknown ids skipped).
    let _ = tok.decode(&ids);
    let raw: Vec<u32> = data
        .chunks_exact(2)
        .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
        .collect();
    let _ = tok.decode(&raw);
});
