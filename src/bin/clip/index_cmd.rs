//! `clip index` (being built).
use std::process::ExitCode;

/// Arguments of `clip index`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`clip index` is not implemented yet")
}
