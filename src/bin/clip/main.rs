//! `clip`: the clip-rs command-line tool.
//!
//! Each subcommand lives in its own module; its command line is a contract
//! (scripts call it exactly so): extend it, never rename it.
#![forbid(unsafe_code)]

mod classify_cmd;
mod common;
mod demo_cmd;
mod embed_cmd;
mod index_cmd;
mod preprocess_cmd;
mod search_cmd;
mod tokenize_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "clip",
    version,
    about = "OpenAI CLIP in Rust: embeddings, zero-shot classification, search"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job end to end: embeddings, similarity matrix and zero-shot guesses over the bundled photos.
    Demo(demo_cmd::Args),
    /// Embed images: float32 .npy [N, D], raw projections as model.encode_image.
    EmbedImage(embed_cmd::ImageArgs),
    /// Embed texts (one per stdin line): float32 .npy [N, D], as model.encode_text.
    EmbedText(embed_cmd::TextArgs),
    /// Zero-shot classification: one JSON object per image with a probability per label.
    Classify(classify_cmd::Args),
    /// Index the images under folders into an embedding database (skips unchanged files).
    Index(index_cmd::Args),
    /// Search an embedding database by text or by image.
    Search(search_cmd::Args),
    /// Preprocess images exactly as CLIP's `preprocess` and write `[3,N,N]` float32 .npy files.
    Preprocess(preprocess_cmd::Args),
    /// Tokenize texts (one per stdin line) exactly as `clip.tokenize`; one JSON array per line.
    Tokenize(tokenize_cmd::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo_cmd::run(args),
        Command::EmbedImage(args) => embed_cmd::run_image(args),
        Command::EmbedText(args) => embed_cmd::run_text(args),
        Command::Classify(args) => classify_cmd::run(args),
        Command::Index(args) => index_cmd::run(args),
        Command::Search(args) => search_cmd::run(args),
        Command::Preprocess(args) => preprocess_cmd::run(args),
        Command::Tokenize(args) => tokenize_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
