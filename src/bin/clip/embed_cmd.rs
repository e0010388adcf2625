//! `clip embed-image` and `clip embed-text`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ndarray::{Array2, Axis, Slice};

use crate::common::{error_chain, read_stdin_lines, write_npy, ModelArgs, Towers};

/// Arguments of `clip embed-image`.
#[derive(clap::Args, Debug)]
pub struct ImageArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output file: float32 .npy of shape [N, D], row i for IMAGE i (stdout if omitted).
    #[arg(long, value_name = "FILE.npy")]
    pub out: Option<PathBuf>,
    /// Scale each embedding to unit length (default: raw projections, as model.encode_image).
    #[arg(long)]
    pub normalize: bool,
    /// Image files.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

/// Arguments of `clip embed-text`.
#[derive(clap::Args, Debug)]
pub struct TextArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output file: float32 .npy of shape [N, D], row i for line i (stdout if omitted).
    #[arg(long, value_name = "FILE.npy")]
    pub out: Option<PathBuf>,
    /// Scale each embedding to unit length (default: raw projections, as model.encode_text).
    #[arg(long)]
    pub normalize: bool,
    /// Cut texts longer than the context (clip.tokenize(..., truncate=True)) instead of failing.
    #[arg(long)]
    pub truncate: bool,
}

/// Rows of inputs that failed are NaN, so row i always belongs to input i; failures are
/// named on stderr and make the exit status non-zero.
fn finish(
    mut embeds: Array2<f32>,
    normalize: bool,
    out: Option<&PathBuf>,
    failures: usize,
) -> anyhow::Result<ExitCode> {
    if normalize {
        clip_rs::embedding::normalize_rows(&mut embeds);
    }
    write_npy(&embeds, out)?;
    if failures > 0 {
        eprintln!("clip: {failures} input(s) failed; their rows are NaN");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_image(args: ImageArgs) -> anyhow::Result<ExitCode> {
    // Decoding runs on a second thread beside the model (Clip::encode_images_partial), so
    // ONNX Runtime's workers must not spin between runs: they would take the cores the
    // decoder needs (docs/performance.md, proposal 4). The image tower is created by that
    // pipeline while the first batch decodes.
    let clip = args.model.load(Towers::ImageBesideDecoding, Some(false))?;
    let progress = crate::common::progress_bar(args.images.len() as u64);
    let result = clip.encode_images_partial_with_progress(&args.images, &mut |done| {
        progress.set_position(done as u64);
    });
    progress.finish_and_clear();
    let (embeds, failed) = result.context("the image model failed")?;
    for (index, err) in &failed {
        // `Error::Image` names the input itself ("image <path>"); say the path once, then
        // what went wrong with it.
        let reason = match err {
            clip_rs::Error::Image { source, .. } => error_chain(source),
            other => error_chain(other),
        };
        eprintln!("clip: {}: {reason}", args.images[*index].display());
    }
    finish(embeds, args.normalize, args.out.as_ref(), failed.len())
}

pub fn run_text(args: TextArgs) -> anyhow::Result<ExitCode> {
    let lines = read_stdin_lines()?;
    let clip = args
        .model
        .load(Towers::Text, None)?
        .with_truncation(args.truncate);
    let dim = clip.config().embed_dim;
    let mut embeds = Array2::<f32>::from_elem((lines.len(), dim), f32::NAN);
    let mut failures = 0;
    let context = clip.config().context_length;
    let mut tokens = Array2::<i32>::zeros((lines.len(), context));
    let mut ok_rows = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let row = match std::str::from_utf8(line) {
            Ok(text) => clip.tokenize(&[text]).map_err(|err| error_chain(&err)),
            Err(err) => Err(format!("not valid UTF-8 ({err})")),
        };
        match row {
            Ok(row) => {
                tokens.row_mut(ok_rows.len()).assign(&row.row(0));
                ok_rows.push(index);
            }
            Err(reason) => {
                failures += 1;
                eprintln!("clip: line {}: {reason}", index + 1);
            }
        }
    }
    if !ok_rows.is_empty() {
        let batch = clip
            .encode_tokens(tokens.slice_axis(Axis(0), Slice::from(..ok_rows.len())))
            .context("the text model failed")?;
        for (row, &index) in ok_rows.iter().enumerate() {
            embeds.row_mut(index).assign(&batch.row(row));
        }
    }
    finish(embeds, args.normalize, args.out.as_ref(), failures)
}
