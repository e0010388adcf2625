//! Integration tests of clip-rs, in one binary to keep link times down.
//!
//! They need ONNX Runtime: `tools/test.sh` fetches it and sets `ORT_DYLIB_PATH`; without
//! that variable the library is looked for in `./.ort/` (where `tools/setup.sh` puts it).
// The workspace denies these in library code; a test's helpers fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "chroma")]
mod chroma;
mod classify_cli;
mod cli;
mod concurrency;
mod hostile_api;
mod hostile_cli;
#[cfg(feature = "hub")]
mod hub;
mod model_errors;
mod parity;
mod preprocess_tokenize_cli;
mod search_cli;
mod support;
