//! `clip tokenize`: one text per stdin line → one JSON array of ids per stdout line,
//! exactly `clip.tokenize(text, context_length, truncate)[0]`.
//!
//! Input rules:
//! * lines are split on `\n` only (a `\r` stays in the text, where the reference's
//!   cleaning turns it into whitespace); a final `\n` ends the last line and does not
//!   start an empty one; empty lines give `[SOT, EOT, 0, ...]`;
//! * a line that is not valid UTF-8 is an error naming the line (1-based), after the
//!   rows of the lines before it have been written;
//! * without `--truncate`, a line needing more than N tokens is an error naming the
//!   line, as `clip.tokenize` raises; encoding stops as soon as that is known, so a
//!   huge line costs one pass of cleaning, not a full BPE.
//!
//! Lines are read in batches and tokenized on all cores; output order is input order.
use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clip_rs::preprocess::tokenizer::{
    Tokenizer, TokenizerError, DEFAULT_CONTEXT_LENGTH, MAX_CONTEXT_LENGTH,
};

/// Arguments of `clip tokenize`.
#[derive(clap::Args)]
pub struct Args {
    /// Number of ids per output row (SOT and EOT included, zero padded).
    #[arg(long, default_value_t = DEFAULT_CONTEXT_LENGTH)]
    context_length: usize,
    /// Cut texts that do not fit to the first N tokens, the last one made EOT
    /// (as `clip.tokenize(..., truncate=True)`); without it such a line is an error.
    #[arg(long)]
    truncate: bool,
}

/// Lines per batch handed to the worker threads.
const BATCH: usize = 4096;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(2..=MAX_CONTEXT_LENGTH).contains(&args.context_length) {
        bail!("--context-length must be in 2..={MAX_CONTEXT_LENGTH} (2 for SOT and EOT)");
    }
    let tok = Tokenizer::new();
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut line_no = 0usize; // lines read so far
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        let mut eof = false;
        while batch.len() < BATCH {
            let mut buf = Vec::new();
            let n = input
                .read_until(b'\n', &mut buf)
                .context("cannot read stdin")?;
            if n == 0 {
                eof = true;
                break;
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            batch.push(buf);
        }
        let first_line = line_no + 1;
        line_no += batch.len();
        let rows = tokenize_batch(&tok, &batch, &args, threads);
        for (i, row) in rows.into_iter().enumerate() {
            let line = first_line + i;
            match row {
                Ok(ids) => write_row(&mut out, &ids).context("cannot write stdout")?,
                Err(LineError::Utf8(e)) => {
                    out.flush().ok();
                    bail!("line {line}: not valid UTF-8 ({e})");
                }
                Err(LineError::Tokenize(TokenizerError::TooLong { context_length, .. })) => {
                    out.flush().ok();
                    bail!(
                        "line {line}: too long for context length {context_length} \
                         (use --truncate to cut it)"
                    );
                }
                Err(LineError::Tokenize(e)) => {
                    out.flush().ok();
                    return Err(e).with_context(|| format!("line {line}"));
                }
            }
        }
        if eof {
            break;
        }
    }
    out.flush().context("cannot write stdout")?;
    Ok(ExitCode::SUCCESS)
}

enum LineError {
    Utf8(std::str::Utf8Error),
    Tokenize(TokenizerError),
}

fn tokenize_line(tok: &Tokenizer, line: &[u8], args: &Args) -> Result<Vec<u32>, LineError> {
    let text = std::str::from_utf8(line).map_err(LineError::Utf8)?;
    tok.tokenize_row(text, args.context_length, args.truncate)
        .map_err(LineError::Tokenize)
}

/// Tokenizes `lines` on up to `threads` threads, keeping their order.
fn tokenize_batch(
    tok: &Tokenizer,
    lines: &[Vec<u8>],
    args: &Args,
    threads: usize,
) -> Vec<Result<Vec<u32>, LineError>> {
    if threads <= 1 || lines.len() < 64 {
        return lines.iter().map(|l| tokenize_line(tok, l, args)).collect();
    }
    let chunk = lines.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|l| tokenize_line(tok, l, args))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(rows) => rows,
                // A worker only panics on a bug; surface it instead of hiding it.
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    })
}

fn write_row(out: &mut impl Write, ids: &[u32]) -> io::Result<()> {
    // Hand-rolled integer formatting: `fmt` was a tenth of the whole run's time.
    let mut line = Vec::with_capacity(ids.len() * 6 + 3);
    line.push(b'[');
    for (i, &id) in ids.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        push_decimal(&mut line, id);
    }
    line.extend_from_slice(b"]\n");
    out.write_all(&line)
}

fn push_decimal(out: &mut Vec<u8>, mut v: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}
