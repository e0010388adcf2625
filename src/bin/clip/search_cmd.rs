//! `clip search` (being built).
use std::process::ExitCode;

/// Arguments of `clip search`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`clip search` is not implemented yet")
}
