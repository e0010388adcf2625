//! What several subcommands share: model options, reading inputs, writing `.npy`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clip_rs::{Clip, Device, OrtOptions};
use ndarray::Array2;
use ndarray_npy::WriteNpyExt;

/// Options that pick and configure a model.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model directory (from tools/export_onnx.py, or a transformers.js-style repository).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Images or texts sent to the model at once.
    #[arg(long, default_value_t = clip_rs::DEFAULT_BATCH_SIZE, value_name = "N")]
    pub batch_size: usize,
    /// Threads ONNX Runtime uses (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Execution device: auto (TensorRT, then CUDA, then CPU), cpu, cuda or tensorrt.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: Device,
    /// ONNX Runtime library (default: $ORT_DYLIB_PATH, then the usual places).
    #[arg(long, value_name = "FILE")]
    pub ort_lib: Option<PathBuf>,
    /// Do not print which device runs the model.
    #[arg(long, short)]
    pub quiet: bool,
    /// Keep ONNX Runtime's optimised graphs in a cache directory ($CLIP_RS_CACHE_DIR, else
    /// $XDG_CACHE_HOME/clip-rs/onnx or ~/.cache/clip-rs/onnx) and load them from there next
    /// time. Off by default: measured on a 2-core x86 machine with ViT-B/32 it did not make
    /// start-up faster and raised peak memory (docs/performance.md).
    #[arg(long)]
    pub model_cache: bool,
}

/// Which of the model's two towers a command uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Towers {
    Image,
    /// The image tower, left for the command's image pipeline to create while it decodes
    /// the first images (`Encoder::prepare_image`, which `Clip`'s pipeline calls itself): a
    /// broken image tower is then reported once decoding has started instead of before, and
    /// start-up overlaps decoding.
    ImageBesideDecoding,
    Text,
    Both,
}

impl ModelArgs {
    /// Loads the model and says once, on stderr, what runs it.
    ///
    /// Only the towers the command uses are created (the other one's weights are never
    /// read), and they are created here, so that a broken model file is reported as a load
    /// error before any input is processed (except `Towers::ImageBesideDecoding`, whose
    /// tower the image pipeline creates beside the first batch's decoding). `spinning`: see
    /// `OrtOptions::with_spinning` (`None`: ONNX Runtime's default).
    pub fn load(&self, towers: Towers, spinning: Option<bool>) -> anyhow::Result<Clip> {
        let mut options = OrtOptions::new()
            .with_device(self.device)
            .with_intra_threads(self.threads.unwrap_or(0));
        if let Some(lib) = &self.ort_lib {
            options = options.with_library_path(lib);
        }
        if let Some(spinning) = spinning {
            options = options.with_spinning(spinning);
        }
        if self.model_cache {
            if let Some(dir) = clip_rs::default_model_cache_dir() {
                options = options.with_model_cache(dir);
            }
        }
        let context = || format!("cannot load the model in {}", self.model.display());
        let encoder = clip_rs::OrtEncoder::load(&self.model, &options).with_context(context)?;
        if matches!(towers, Towers::Image | Towers::Both) {
            encoder.load_image_tower().with_context(context)?;
        }
        if matches!(towers, Towers::Text | Towers::Both) {
            encoder.load_text_tower().with_context(context)?;
        }
        if !self.quiet {
            eprintln!("clip: {}", clip_rs::Encoder::describe(&encoder));
        }
        Ok(Clip::new(encoder).with_batch_size(self.batch_size))
    }
}

/// Writes `array` as float32 `.npy` to `out`, or to stdout when `out` is `None` (refusing a
/// terminal, where binary output would be garbage).
pub fn write_npy(array: &Array2<f32>, out: Option<&PathBuf>) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            array
                .write_npy(&mut writer)
                .with_context(|| format!("cannot write {}", path.display()))?;
            writer
                .flush()
                .with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let stdout = std::io::stdout();
            anyhow::ensure!(
                !stdout.is_terminal(),
                "refusing to write binary .npy to a terminal: pass --out FILE.npy or redirect stdout"
            );
            let mut lock = stdout.lock();
            array
                .write_npy(&mut lock)
                .context("cannot write to stdout")?;
            lock.flush().context("cannot write to stdout")
        }
    }
}

/// Reads stdin as lines split on `\n` only (the newline is not part of the text; a final
/// newline does not start another text, so `"\n"` is one empty text and no input is none,
/// as in `clip tokenize`). Each line is its bytes, decoded later so that invalid UTF-8 can
/// be reported per line.
pub fn read_stdin_lines() -> anyhow::Result<Vec<Vec<u8>>> {
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut data)
        .context("cannot read stdin")?;
    Ok(split_lines(data))
}

/// [`read_stdin_lines`]'s split of `data`.
fn split_lines(mut data: Vec<u8>) -> Vec<Vec<u8>> {
    if data.is_empty() {
        return Vec::new();
    }
    if data.last() == Some(&b'\n') {
        data.pop();
    }
    data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

pub use clip_rs::error_chain;

/// A progress bar on stderr counting `len` images, hidden when stderr is not a terminal
/// (logs and pipes get no control characters).
pub fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} images, {per_sec}, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::split_lines;

    #[test]
    fn one_text_per_line_and_an_empty_line_is_a_text() {
        let split = |s: &str| split_lines(s.as_bytes().to_vec());
        assert!(split("").is_empty());
        assert_eq!(split("\n"), vec![b"".to_vec()]);
        assert_eq!(split("\n\n"), vec![b"".to_vec(), b"".to_vec()]);
        assert_eq!(split("a\nb"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(split("a\nb\n"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(split("a\r\n"), vec![b"a\r".to_vec()]);
    }
}
