//! Index file bytes → `Index::load`, twice: the bytes as given (mostly stopped by the
//! magic, the sizes and the header checksum), then with both CRC-32s recomputed so that the
//! structural checks behind them (storage type, dimension, section sizes, entries, ids,
//! non-finite values) are reached too. A loaded index is searched, saved and reloaded.
//!
//! Invariants: no panic, no allocation beyond the file's size; a loaded index has
//! consistent sizes, survives a save/load round trip unchanged and answers a search.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clip_core::search::Index;
use libfuzzer_sys::fuzz_target;
use ndarray::Array1;

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("clip-fuzz-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        dir
    })
}

/// The same bytes with the header and body checksums made valid (see
/// `clip-core/src/search/format.rs` for the layout).
fn fix_checksums(data: &[u8]) -> Option<Vec<u8>> {
    let arch_len = u32::from_le_bytes(data.get(20..24)?.try_into().ok()?) as usize;
    let header_end = 48usize.checked_add(arch_len)?;
    let body_start = header_end.checked_add(4)?;
    if data.len() < body_start + 4 {
        return None;
    }
    let mut out = data.to_vec();
    let crc = crc32fast::hash(&out[..header_end]);
    out[header_end..body_start].copy_from_slice(&crc.to_le_bytes());
    let end = out.len() - 4;
    let crc = crc32fast::hash(&out[body_start..end]);
    out[end..].copy_from_slice(&crc.to_le_bytes());
    Some(out)
}

fn check(bytes: &[u8]) {
    let path = scratch().join("index");
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    let Ok(index) = Index::load(&path) else {
        return;
    };
    let dim = index.dim();
    assert!(dim >= 1);
    assert_eq!(index.ids().len(), index.len());
    for id in index.ids() {
        assert!(index.contains(id));
        assert_eq!(index.embedding(id).map(|e| e.len()), Some(dim));
    }
    let mut query = Array1::<f32>::zeros(dim);
    query[0] = 1.0;
    let hits = index
        .search(query.view(), 3)
        .unwrap_or_else(|e| panic!("search: {e}"));
    assert_eq!(hits.len(), index.len().min(3));
    let again = scratch().join("again");
    index.save(&again).unwrap_or_else(|e| panic!("save: {e}"));
    let reloaded = Index::load(&again).unwrap_or_else(|e| panic!("reload: {e}"));
    assert!(reloaded == index, "save/load round trip changed the index");
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = fix_checksums(data) {
        if fixed != data {
            check(&fixed);
        }
    }
});
