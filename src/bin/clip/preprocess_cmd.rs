//! `clip preprocess` (being built).
use std::process::ExitCode;

/// Arguments of `clip preprocess`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`clip preprocess` is not implemented yet")
}
