//! clip-rs: OpenAI's CLIP in Rust.
#![deny(missing_docs)]

pub use clip_preprocess as preprocess;
