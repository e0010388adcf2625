//! `clip tokenize` (being built).
use std::process::ExitCode;

/// Arguments of `clip tokenize`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`clip tokenize` is not implemented yet")
}
