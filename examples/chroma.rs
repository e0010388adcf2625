//! Semantic image search with a Chroma server: embed a folder of images into a collection
//! (with each file's path and size as metadata), then query it with texts.
//!
//! ```text
//! chroma run --path /tmp/chroma-data          # in another terminal (pip install chromadb)
//! cargo run --release --features chroma --example chroma -- \
//!     [--model DIR] [--url http://localhost:8000] [--collection NAME] [-k N] FOLDER QUERY...
//! ```
//!
//! Without `--model` it uses the tiny test model in `tests/data/models/tiny-vit`, whose
//! weights are **random**: the pipeline runs, but the rankings mean nothing. Export real
//! weights with `tools/export_onnx.py` for real results. Files that are not images (or fail to
//! decode) are named on stderr and skipped. Run it twice and the second run replaces the
//! records (the ids are the file names), it does not duplicate them.
#![forbid(unsafe_code)]

use std::error::Error;
use std::path::{Path, PathBuf};

use clip_rs::store::chroma::{ChromaOptions, ChromaStore};
use clip_rs::store::{Record, VectorStore};
use clip_rs::OrtOptions;

struct Args {
    model: PathBuf,
    url: String,
    collection: String,
    k: usize,
    folder: PathBuf,
    queries: Vec<String>,
}

const USAGE: &str =
    "usage: chroma [--model DIR] [--url URL] [--collection NAME] [-k N] FOLDER QUERY...";

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        model: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/models/tiny-vit"),
        url: "http://localhost:8000".to_owned(),
        collection: "clip-rs-example".to_owned(),
        k: 3,
        folder: PathBuf::new(),
        queries: Vec::new(),
    };
    let mut positional = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--model" => args.model = value()?.into(),
            "--url" => args.url = value()?,
            "--collection" => args.collection = value()?,
            "-k" => args.k = value()?.parse()?,
            "-h" | "--help" => return Err(USAGE.into()),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    args.folder = positional.next().ok_or(USAGE)?.into();
    args.queries = positional.collect();
    if args.queries.is_empty() {
        return Err(format!("no query given\n{USAGE}").into());
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let clip = clip_rs::load(&args.model, &OrtOptions::new())?;
    let mut store = ChromaStore::connect(&ChromaOptions::new(&args.url, &args.collection))?;

    // Embed each file on its own so one bad file does not stop the others.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.folder)?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    let mut records = Vec::new();
    for path in &files {
        match clip.encode_image(path) {
            Ok(embedding) => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let size = std::fs::metadata(path).map_or(0, |m| m.len());
                records.push(
                    Record::new(name, embedding.to_vec())
                        .with_metadata("path", path.display().to_string())
                        .with_metadata("bytes", i64::try_from(size).unwrap_or(i64::MAX)),
                );
            }
            Err(err) => eprintln!("skipped {}: {err}", path.display()),
        }
    }
    store.upsert(&records)?;
    println!(
        "stored {} image embeddings in Chroma collection {:?} ({} records in all)",
        records.len(),
        store.collection_name(),
        store.count()?
    );

    for query in &args.queries {
        let hits = store.query(clip.encode_text(query)?.view(), args.k)?;
        println!("{query:?}");
        for hit in hits {
            let path = hit.metadata.get("path").map(ToString::to_string);
            println!("  {:.4}  {}", hit.score, path.unwrap_or(hit.id));
        }
    }
    Ok(())
}
