//! `clip classify` (being built).
use std::process::ExitCode;

/// Arguments of `clip classify`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`clip classify` is not implemented yet")
}
