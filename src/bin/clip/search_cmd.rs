//! `clip search`: the entries of an index most similar to a text or an image.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clip_core::search::Index;

use crate::common::ModelArgs;

/// Arguments of `clip search`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Prints one JSON object per result, best first: \
    {\"rank\":1,\"id\":\"/photos/cat.jpg\",\"score\":0.31} (score: cosine similarity).")]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Index file written by `clip index` with the same model.
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// How many results.
    #[arg(short = 'k', long = "top", default_value_t = 10, value_name = "N")]
    pub k: usize,
    /// Search by this image instead of a text.
    #[arg(long, value_name = "FILE", conflicts_with = "query")]
    pub image: Option<PathBuf>,
    /// Cut a query longer than the model's context instead of failing.
    #[arg(long)]
    pub truncate: bool,
    /// The text to search for.
    #[arg(required_unless_present = "image", value_name = "QUERY")]
    pub query: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let clip = args
        .model
        .load(
            if args.image.is_some() {
                crate::common::Towers::Image
            } else {
                crate::common::Towers::Text
            },
            None,
        )?
        .with_truncation(args.truncate);
    let model = crate::index_cmd::model_id(&args.model, &clip)?;
    let index = Index::load_for(&args.db, &model)
        .with_context(|| format!("cannot search the index {}", args.db.display()))?;
    let query = match (&args.image, &args.query) {
        (Some(image), _) => clip
            .encode_image(image)
            .with_context(|| format!("cannot embed the query image {}", image.display()))?,
        (None, Some(text)) => clip
            .encode_text(text)
            .context("cannot embed the query text")?,
        (None, None) => anyhow::bail!("give a QUERY text or --image FILE"),
    };
    let hits = index
        .search(query.view(), args.k)
        .context("cannot search")?;
    if index.is_empty() && !args.model.quiet {
        eprintln!("clip: the index {} is empty", args.db.display());
    }
    let mut out = std::io::stdout().lock();
    for (rank, hit) in hits.iter().enumerate() {
        // f32's Display is the shortest text that reads back to the same value.
        writeln!(
            out,
            "{{\"rank\":{},\"id\":{},\"score\":{}}}",
            rank + 1,
            serde_json::to_string(hit.id)?,
            hit.score
        )
        .context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
