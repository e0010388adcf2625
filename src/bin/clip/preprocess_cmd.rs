//! `clip preprocess`: CLIP's image preprocessing to `.npy` files.
//!
//! ```text
//! clip preprocess --out DIR [--size N] [--threads N] IMAGE...
//! ```
//! writes `DIR/<file name>.npy` (float32, `[3, N, N]`) for each image, e.g.
//! `photo.jpg` → `DIR/photo.jpg.npy`. An input that fails is named on stderr with
//! the reason as it happens; the others are still processed and the exit status is
//! non-zero. A failing input's output from an earlier run, if any, is left as it was.
//! Two inputs with the same file name (`a/x.jpg`, `b/x.jpg`) would need the same
//! output: the first one gets it, the later ones fail. An output whose write fails (a
//! full disk) is removed rather than left cut short.

use std::collections::hash_map::{Entry, HashMap};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use clip_preprocess::image::{
    Fidelity, PreprocessConfig, Preprocessor, CLIP_MEAN, CLIP_STD, MAX_IMAGE_SIZE,
};
use ndarray::Array3;
use ndarray_npy::WriteNpyExt;

/// Arguments of `clip preprocess`.
#[derive(clap::Args)]
pub struct Args {
    /// Folder for the `.npy` outputs (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Side of the square output in pixels (the model's input resolution).
    #[arg(long, value_name = "N", default_value_t = 224)]
    size: u32,
    /// Worker threads; 0 uses every available core.
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Trade bit-exactness for speed on large JPEGs (DCT-domain downscaling
    /// before the exact resize; see `Fidelity::Throughput` for the measured deviation).
    #[arg(long)]
    throughput: bool,
    /// Image files (JPEG, PNG, GIF, WebP, BMP, TIFF; the format is read from the bytes).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

/// Runs `clip preprocess`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.size == 0 || args.size > MAX_IMAGE_SIZE {
        anyhow::bail!("--size must be in 1..={MAX_IMAGE_SIZE}");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;
    let fidelity = if args.throughput {
        Fidelity::Throughput
    } else {
        Fidelity::Exact
    };
    let pre = Preprocessor::new(PreprocessConfig::new(args.size, CLIP_MEAN, CLIP_STD))
        .with_fidelity(fidelity);
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(args.images.len())
    .max(1);

    let outputs = outputs(&args.images);
    let progress = crate::common::progress_bar(args.images.len() as u64);
    let next = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    let worker = || {
        // One buffer per worker, reused for every image.
        let n = args.size as usize;
        let mut buf = Array3::<f32>::zeros((3, n, n));
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let (Some(path), Some(output)) = (args.images.get(i), outputs.get(i)) else {
                break;
            };
            let result = match output {
                Output::Name(name) => process(&pre, path, &args.out, name, &mut buf),
                Output::NoName => Err(anyhow::anyhow!(
                    "cannot preprocess {}: it has no file name to name its output after",
                    path.display()
                )),
                Output::SameAs(first) => Err(anyhow::anyhow!(
                    "cannot preprocess {}: its output name is already {}'s (same file name)",
                    path.display(),
                    args.images[*first].display()
                )),
            };
            if let Err(e) = result {
                // Named as it happens, above the progress bar, like the other commands.
                failures.fetch_add(1, Ordering::Relaxed);
                progress.suspend(|| eprintln!("clip: {e:#}"));
            }
            progress.inc(1);
        }
    };
    if threads == 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(worker);
            }
        });
    }

    progress.finish_and_clear();
    match failures.into_inner() {
        0 => Ok(ExitCode::SUCCESS),
        n => {
            eprintln!("clip: {n} of {} images failed", args.images.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Where an input's tensor goes.
enum Output {
    /// `photo.jpg` → `photo.jpg.npy`.
    Name(OsString),
    /// A path without a file name (`/`, `..`).
    NoName,
    /// An earlier input (this index) has the same file name, hence the same output.
    SameAs(usize),
}

/// Each input's output; the first of several inputs with one file name gets it.
fn outputs(images: &[PathBuf]) -> Vec<Output> {
    let mut first_by_name: HashMap<OsString, usize> = HashMap::new();
    images
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let Some(file_name) = path.file_name() else {
                return Output::NoName;
            };
            let mut name = file_name.to_os_string();
            name.push(".npy");
            match first_by_name.entry(name.clone()) {
                Entry::Occupied(first) => Output::SameAs(*first.get()),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    Output::Name(name)
                }
            }
        })
        .collect()
}

fn process(
    pre: &Preprocessor,
    path: &Path,
    out_dir: &Path,
    name: &OsString,
    buf: &mut Array3<f32>,
) -> anyhow::Result<()> {
    pre.preprocess_path_into(path, buf.view_mut())?;
    // Written in place: a temporary file renamed over the output cost 8-10 % of a re-run
    // over existing outputs (92 photos, ext4: a new inode per file), for a case a reader
    // detects anyway (a cut .npy is shorter than its header says). A failed write removes
    // its partial file, so only a killed process can leave one.
    let dest = out_dir.join(name);
    // A file that cannot be created (read-only, a folder) is left as it is.
    let file = std::fs::File::create(&dest)
        .with_context(|| format!("cannot create {}", dest.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let written = buf
        .write_npy(&mut writer)
        .map_err(anyhow::Error::from)
        .and_then(|()| writer.flush().map_err(anyhow::Error::from))
        .with_context(|| format!("cannot write {}", dest.display()));
    if written.is_err() {
        // This run truncated it: best effort, the error above is what the user needs.
        let _ = std::fs::remove_file(&dest);
    }
    written
}
