//! `clip index`: embed the images under folders into a search index, skipping unchanged
//! files and dropping deleted ones.
//!
//! Decoding and preprocessing run on worker threads that fill a bounded channel while the
//! model embeds the previous batch, so the CPU decodes while ONNX Runtime computes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clip_core::search::{Dtype, FileMeta, Index, ModelId, Upsert};
use ndarray::{Array3, Array4, Axis, Slice};

use crate::common::{error_chain, progress_bar, ModelArgs};

/// Extensions (lower case) of the files `clip index` looks at; their content decides the
/// decoder, so a PNG named `.jpg` is still read.
const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "jfif",
];

/// Exit status when the index was saved but some files could not be indexed.
const EXIT_SOME_FAILED: u8 = 2;

/// Arguments of `clip index`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Prints a JSON summary on stdout. Exit status: 0 when every image was \
    indexed, 2 when some failed (each named on stderr; the rest is indexed and saved), 1 on errors."
)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Index file (created when missing; never overwritten when it cannot be read).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Storage of a new index: f32, or f16 for half the size and scan time (an existing
    /// index keeps its own).
    #[arg(long, default_value = "f32", value_name = "TYPE")]
    pub dtype: Dtype,
    /// Threads decoding and preprocessing images (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Also save every SECS seconds while indexing, so a crash loses little (0: only at the end).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub save_every: u64,
    /// Folders whose images (recursively) are indexed; entries under them whose files are
    /// gone are removed.
    #[arg(required = true, value_name = "FOLDER")]
    pub folders: Vec<PathBuf>,
}

/// A file to embed.
struct Job {
    id: String,
    path: PathBuf,
    meta: Option<FileMeta>,
}

#[derive(Default)]
struct Counts {
    added: usize,
    updated: usize,
    skipped: usize,
    removed: usize,
    failed: usize,
}

/// Whether an index entry survives the walk: it was seen, or it is outside the folders
/// walked, or under a folder that could not be read (a permission error, an unplugged
/// disk: its files are not known to be gone).
fn keep_entry(id: &str, seen: &HashSet<String>, roots: &[PathBuf], unwalked: &[PathBuf]) -> bool {
    let path = Path::new(id);
    seen.contains(id)
        || !roots.iter().any(|root| path.starts_with(root))
        || unwalked.iter().any(|dir| path.starts_with(dir))
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // The image tower is created beside the first images' decoding (`embed_all`), and not
    // at all when no file needs embedding.
    let clip = args
        .model
        .load(crate::common::Towers::ImageBesideDecoding, None)?;
    let model = model_id(&args.model, &clip)?;
    let mut index = match Index::load_for(&args.db, &model) {
        Ok(index) => index,
        Err(err) if err.is_not_found() => Index::new(model.clone(), args.dtype),
        Err(err) => {
            let db = args.db.display();
            return Err(err).with_context(|| {
                format!("cannot update the index {db} (left untouched; pass another --db to start anew)")
            });
        }
    };
    let db_existed = args.db.exists();
    if db_existed && index.dtype() != args.dtype && !args.model.quiet {
        eprintln!(
            "clip: {} stores {}; keeping it",
            args.db.display(),
            index.dtype()
        );
    }
    let mut counts = Counts::default();

    // Walk the folders: what is new or changed, what is unchanged, what is gone.
    let mut roots = Vec::with_capacity(args.folders.len());
    for folder in &args.folders {
        let root = folder
            .canonicalize()
            .with_context(|| format!("cannot open folder {}", folder.display()))?;
        anyhow::ensure!(root.is_dir(), "{} is not a folder", folder.display());
        roots.push(root);
    }
    let mut seen = HashSet::new();
    // Folders (or whole roots) that could not be read: their files were not seen, but are
    // not gone either, so their entries stay.
    let mut unwalked = Vec::new();
    let mut jobs = Vec::new();
    for root in &roots {
        for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    counts.failed += 1;
                    eprintln!("clip: {}", error_chain(&err));
                    unwalked.push(err.path().unwrap_or(root).to_path_buf());
                    continue;
                }
            };
            if !entry.file_type().is_file() || !is_image(entry.path()) {
                continue;
            }
            let Some(id) = entry.path().to_str().map(str::to_owned) else {
                counts.failed += 1;
                eprintln!(
                    "clip: {}: the path is not UTF-8; skipped",
                    entry.path().display()
                );
                continue;
            };
            if !seen.insert(id.clone()) {
                continue; // the same file under two given folders
            }
            let meta = entry
                .metadata()
                .ok()
                .and_then(|m| FileMeta::from_metadata(&m));
            if meta.is_some() && index.file_meta(&id) == meta {
                counts.skipped += 1;
                continue;
            }
            jobs.push(Job {
                id,
                path: entry.into_path(),
                meta,
            });
        }
    }
    counts.removed = index.retain(|id| keep_entry(id, &seen, &roots, &unwalked));

    let progress = progress_bar(jobs.len() as u64);
    let embed_started = Instant::now();
    let embedded = embed_all(&clip, &args, &jobs, &mut index, &mut counts, &progress);
    progress.finish_and_clear();
    let embed_seconds = embed_started.elapsed().as_secs_f64();
    // Save what was done even when the model failed midway; a new index is written when
    // the run succeeded (even empty) or has entries, not when a broken model (whose tower
    // is created only now, in `embed_all`) failed before embedding anything.
    let changed = counts.added + counts.updated + counts.removed > 0;
    if changed || (!db_existed && embedded.is_ok()) {
        index
            .save(&args.db)
            .with_context(|| format!("cannot save the index {}", args.db.display()))?;
    }
    embedded?;

    let images = counts.added + counts.updated;
    let per_second = if embed_seconds > 0.0 {
        images as f64 / embed_seconds
    } else {
        0.0
    };
    if !args.model.quiet {
        eprintln!(
            "clip: {} added, {} updated, {} unchanged, {} removed, {} failed; {} entries; {:.1} images/s",
            counts.added, counts.updated, counts.skipped, counts.removed, counts.failed, index.len(), per_second
        );
    }
    println!(
        "{{\"added\":{},\"updated\":{},\"skipped\":{},\"removed\":{},\"failed\":{},\"entries\":{},\"embed_seconds\":{:.3},\"images_per_s\":{:.2},\"seconds\":{:.3}}}",
        counts.added,
        counts.updated,
        counts.skipped,
        counts.removed,
        counts.failed,
        index.len(),
        embed_seconds,
        per_second,
        started.elapsed().as_secs_f64()
    );
    Ok(if counts.failed > 0 {
        ExitCode::from(EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The identity recorded in (and required of) an index: the model's configuration and a
/// sample of its two tower files, so another model with the same configuration (another
/// random initialisation, a fine-tune) is told apart.
pub fn model_id(args: &ModelArgs, clip: &clip_rs::Clip) -> anyhow::Result<ModelId> {
    let files = clip_ort::ModelFiles::discover(&args.model)
        .with_context(|| format!("cannot read the model directory {}", args.model.display()))?;
    Ok(ModelId::from_config(clip.config()).with_weight_files([&files.visual, &files.textual])?)
}

/// Decodes `jobs` on worker threads and embeds them in batches as they arrive.
fn embed_all(
    clip: &clip_rs::Clip,
    args: &Args,
    jobs: &[Job],
    index: &mut Index,
    counts: &mut Counts,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let batch_size = args.model.batch_size.max(1);
    let workers = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, jobs.len());
    let size = clip.config().image_size as usize;
    let save_every = (args.save_every > 0).then(|| Duration::from_secs(args.save_every));
    let next = AtomicUsize::new(0);
    // Two batches in flight: one being embedded, one being decoded.
    let (tx, rx) = mpsc::sync_channel::<(usize, Result<Array3<f32>, String>)>(2 * batch_size);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let pixels = clip
                    .preprocessor()
                    .preprocess_path(&job.path)
                    .map_err(|err| error_chain(&err));
                if tx.send((i, pixels)).is_err() {
                    break; // the consumer stopped (model failure)
                }
            });
        }
        drop(tx);
        // While the workers decode the first images: create the image tower if the backend
        // creates it on first use, instead of before the decoding starts.
        clip.encoder()
            .prepare_image()
            .context("the image model failed")?;

        let mut batch = Array4::<f32>::zeros((batch_size, 3, size, size));
        let mut rows: Vec<usize> = Vec::with_capacity(batch_size);
        let mut last_save = Instant::now();
        let mut flush = |batch: &Array4<f32>,
                         rows: &mut Vec<usize>,
                         index: &mut Index,
                         counts: &mut Counts|
         -> anyhow::Result<()> {
            if rows.is_empty() {
                return Ok(());
            }
            let embeds = clip
                .encode_pixels(batch.slice_axis(Axis(0), Slice::from(..rows.len())))
                .context("the image model failed")?;
            for (row, &i) in rows.iter().enumerate() {
                let job = &jobs[i];
                match index.upsert(job.id.as_str(), embeds.row(row), job.meta) {
                    Ok(Upsert::Added) => counts.added += 1,
                    Ok(Upsert::Updated) => counts.updated += 1,
                    Err(err) => {
                        counts.failed += 1;
                        index.remove(&job.id);
                        progress.suspend(|| {
                            eprintln!("clip: {}: {}", job.path.display(), error_chain(&err))
                        });
                    }
                }
            }
            progress.inc(rows.len() as u64);
            rows.clear();
            if save_every.is_some_and(|every| last_save.elapsed() >= every) {
                index
                    .save(&args.db)
                    .with_context(|| format!("cannot save the index {}", args.db.display()))?;
                last_save = Instant::now();
            }
            Ok(())
        };
        for (i, pixels) in rx {
            match pixels {
                Ok(pixels) => {
                    batch.index_axis_mut(Axis(0), rows.len()).assign(&pixels);
                    rows.push(i);
                    if rows.len() == batch_size {
                        flush(&batch, &mut rows, index, counts)?;
                    }
                }
                Err(reason) => {
                    let job = &jobs[i];
                    counts.failed += 1;
                    // A changed file that no longer decodes must not keep its old embedding.
                    index.remove(&job.id);
                    progress.inc(1);
                    progress.suspend(|| eprintln!("clip: {}: {reason}", job.path.display()));
                }
            }
        }
        flush(&batch, &mut rows, index, counts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_under_unreadable_folders_are_kept() {
        let roots = [PathBuf::from("/photos")];
        let seen: HashSet<String> = ["/photos/a.jpg".to_owned()].into();
        let unwalked = [PathBuf::from("/photos/2019")];
        assert!(keep_entry("/photos/a.jpg", &seen, &roots, &unwalked));
        assert!(keep_entry("/elsewhere/b.jpg", &seen, &roots, &unwalked));
        assert!(keep_entry("/photos/2019/c.jpg", &seen, &roots, &unwalked));
        assert!(!keep_entry("/photos/2020/d.jpg", &seen, &roots, &unwalked));
        // A sibling whose name only starts the same is not under the folder.
        assert!(!keep_entry("/photos/2019b/e.jpg", &seen, &roots, &unwalked));
        assert!(!keep_entry("/photos/gone.jpg", &seen, &roots, &[]));
    }
}
