//! Model configuration JSON and model-directory discovery — everything that runs before an
//! ONNX Runtime session is created.
//!
//! Input: one flag byte, then the contents of the first JSON file, optionally followed by a
//! 0x00 byte and the contents of the second.
//! * `ModelConfig` is parsed from the first file with serde, validated, and turned into a
//!   `Preprocessor` and a search `ModelId` when valid.
//! * `ModelFiles::discover` runs on a scratch directory holding the files the flags ask for:
//!   bit 0 picks the layout (clip-rs `clip_config.json`, or transformers.js `config.json`
//!   with the second file as `preprocessor_config.json` when bit 1 is set); bits 2 and 3
//!   create the two tower files (empty: they are only checked for presence), bit 4 a
//!   `tokenizer.json`; bit 5 makes the config path a directory instead of a file.
//!
//! Invariants: no panic; a discovered configuration always passes `validate`.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clip_core::search::ModelId;
use clip_core::ModelConfig;
use clip_ort::{Layout, ModelFiles};
use clip_preprocess::image::Preprocessor;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("clip-fuzz-model-config-{}", std::process::id()))
    })
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let (first, second) = match body.iter().position(|&b| b == 0) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };

    // The configuration type itself.
    if let Ok(config) = serde_json::from_slice::<ModelConfig>(first) {
        if config.validate().is_ok() {
            let pre = Preprocessor::new(config.preprocess_config());
            assert_eq!(pre.config().image_size, config.image_size);
            let _ = ModelId::from_config(&config);
            let _ = config.logit_scale_exp();
        }
    }

    // Directory discovery on a scratch directory.
    let dir = scratch();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let ours = flags & 1 == 0;
    let (config_name, visual, textual) = if ours {
        ("clip_config.json", "visual.onnx", "textual.onnx")
    } else {
        (
            "config.json",
            "onnx/vision_model.onnx",
            "onnx/text_model.onnx",
        )
    };
    if flags & 0x20 != 0 {
        std::fs::create_dir_all(dir.join(config_name)).unwrap_or_else(|e| panic!("{e}"));
    } else {
        write(&dir.join(config_name), first);
    }
    if !ours && flags & 2 != 0 {
        write(&dir.join("preprocessor_config.json"), second.unwrap_or(b""));
    }
    if flags & 4 != 0 {
        write(&dir.join(visual), b"");
    }
    if flags & 8 != 0 {
        write(&dir.join(textual), b"");
    }
    if flags & 0x10 != 0 {
        write(&dir.join("tokenizer.json"), second.unwrap_or(b"{}"));
    }
    if let Ok(files) = ModelFiles::discover(dir) {
        assert!(
            files.config.validate().is_ok(),
            "discovered an invalid config"
        );
        assert_eq!(files.layout == Layout::ClipRs, ours);
        let _ = Preprocessor::new(files.config.preprocess_config());
    }
});
