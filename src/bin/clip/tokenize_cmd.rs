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
//! Lines are read in jobs of up to 256 lines or 64 KiB and tokenized on all cores by worker
//! threads that live for the whole run; output order is input order.
use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;
use std::sync::{mpsc, Mutex};

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

/// A job handed to a worker: at most this many lines...
const JOB_LINES: usize = 256;
/// ...or about this many bytes of text, whichever comes first.
const JOB_BYTES: usize = 1 << 16;

/// Consecutive input lines, stored back to back (no allocation per line).
struct Job {
    /// Position of the job in the input, for writing results in order.
    index: usize,
    /// 1-based number of its first line.
    first_line: usize,
    text: Vec<u8>,
    /// End offset of each line in `text`.
    ends: Vec<usize>,
}

/// A worker's answer: the formatted rows, up to the first failing line if any.
struct Done {
    index: usize,
    rows: Vec<u8>,
    error: Option<anyhow::Error>,
}

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

    // Workers live for the whole run (their BPE caches stay warm); the main thread
    // reads jobs and writes answers in input order. The job queue is bounded, so a huge
    // input is never read far ahead of what has been written.
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads * 2);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let result = std::thread::scope(|s| -> anyhow::Result<()> {
        for _ in 0..threads {
            let (job_rx, done_tx, tok, args) = (&job_rx, done_tx.clone(), &tok, &args);
            s.spawn(move || loop {
                // The lock is held only while taking a job; a poisoned lock means
                // another worker panicked: stop quietly, the panic is reported.
                let job = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                if done_tx.send(process(tok, &job, args)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut writer = InOrder::default();
        let mut next_index = 0;
        let mut line_no = 0;
        let mut eof = false;
        while !eof {
            let mut job = Job {
                index: next_index,
                first_line: line_no + 1,
                text: Vec::new(),
                ends: Vec::new(),
            };
            while job.ends.len() < JOB_LINES && job.text.len() < JOB_BYTES {
                let n = input
                    .read_until(b'\n', &mut job.text)
                    .context("cannot read stdin")?;
                if n == 0 {
                    eof = true;
                    break;
                }
                if job.text.last() == Some(&b'\n') {
                    job.text.pop();
                }
                job.ends.push(job.text.len());
            }
            if job.ends.is_empty() {
                break;
            }
            line_no += job.ends.len();
            next_index += 1;
            // Write what is ready before (possibly) blocking on a full queue.
            while let Ok(done) = done_rx.try_recv() {
                writer.accept(done, &mut out)?;
            }
            if job_tx.send(job).is_err() {
                break; // every worker is gone: the answers below say why
            }
        }
        drop(job_tx);
        while writer.next < next_index {
            let Ok(done) = done_rx.recv() else {
                bail!("a tokenizer thread stopped unexpectedly");
            };
            writer.accept(done, &mut out)?;
        }
        Ok(())
    });
    // On an error the workers still finish the queued jobs (the queue is short).
    out.flush().context("cannot write stdout")?;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Writes answers in input order, holding back those that arrive early.
#[derive(Default)]
struct InOrder {
    next: usize,
    waiting: std::collections::BTreeMap<usize, Done>,
}

impl InOrder {
    fn accept(&mut self, done: Done, out: &mut impl Write) -> anyhow::Result<()> {
        self.waiting.insert(done.index, done);
        while let Some(done) = self.waiting.remove(&self.next) {
            out.write_all(&done.rows).context("cannot write stdout")?;
            if let Some(e) = done.error {
                return Err(e);
            }
            self.next += 1;
        }
        Ok(())
    }
}

/// Tokenizes the lines of `job` into JSON rows, stopping at the first failing line.
fn process(tok: &Tokenizer, job: &Job, args: &Args) -> Done {
    let mut rows = Vec::with_capacity(job.ends.len() * (args.context_length * 3 + 3));
    let mut start = 0;
    for (i, &end) in job.ends.iter().enumerate() {
        let line = job.first_line + i;
        let bytes = job.text.get(start..end).unwrap_or_default();
        start = end;
        match tokenize_line(tok, bytes, args) {
            Ok(ids) => write_row(&mut rows, &ids),
            Err(error) => {
                return Done {
                    index: job.index,
                    rows,
                    error: Some(line_error(line, error)),
                }
            }
        }
    }
    Done {
        index: job.index,
        rows,
        error: None,
    }
}

enum LineError {
    Utf8(std::str::Utf8Error),
    Tokenize(TokenizerError),
}

fn line_error(line: usize, error: LineError) -> anyhow::Error {
    match error {
        LineError::Utf8(e) => anyhow::anyhow!("line {line}: not valid UTF-8 ({e})"),
        LineError::Tokenize(TokenizerError::TooLong { context_length, .. }) => anyhow::anyhow!(
            "line {line}: too long for context length {context_length} \
             (use --truncate to cut it)"
        ),
        LineError::Tokenize(e) => anyhow::Error::new(e).context(format!("line {line}")),
    }
}

fn tokenize_line(tok: &Tokenizer, line: &[u8], args: &Args) -> Result<Vec<u32>, LineError> {
    let text = std::str::from_utf8(line).map_err(LineError::Utf8)?;
    tok.tokenize_row(text, args.context_length, args.truncate)
        .map_err(LineError::Tokenize)
}

fn write_row(line: &mut Vec<u8>, ids: &[u32]) {
    // Formatting was a tenth of the whole run's time, then its many small copies (a
    // `memcpy` call per id) a twentieth: the row's room is reserved in `line` once,
    // digits are written in place two at a time, the zero padding in chunks, and the
    // unused room is cut off at the end.
    let used = ids.iter().rposition(|&id| id != 0).map_or(0, |i| i + 1);
    let mut zeros = ids.len() - used;
    let start = line.len();
    // At most 10 digits and a comma per id, 2 bytes per zero, "[", "]\n".
    line.resize(start + used * 11 + zeros * 2 + 3, 0);
    let buf = &mut line[start..];
    buf[0] = b'[';
    let mut at = 1;
    for (i, &id) in ids[..used].iter().enumerate() {
        if i > 0 {
            buf[at] = b',';
            at += 1;
        }
        at = write_digits(buf, at, id);
    }
    // The zero padding, most of a row: ",0" pairs (a lone "0" if the row is all zeros).
    if used == 0 && zeros > 0 {
        buf[at] = b'0';
        at += 1;
        zeros -= 1;
    }
    while zeros > 0 {
        let n = zeros.min(ZEROS.len() / 2);
        buf[at..at + 2 * n].copy_from_slice(&ZEROS[..2 * n]);
        at += 2 * n;
        zeros -= n;
    }
    buf[at] = b']';
    buf[at + 1] = b'\n';
    line.truncate(start + at + 2);
}

/// `",0"` repeated: the zero padding of up to 512 ids, copied in one piece.
const ZEROS: &[u8; 1024] = &{
    let mut z = [b'0'; 1024];
    let mut i = 0;
    while i < 1024 {
        z[i] = b',';
        i += 2;
    }
    z
};

/// `"00" "01" ... "99"`: digits are written two at a time.
const DIGIT_PAIRS: &[u8; 200] = &{
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// Writes the decimal digits of `n` at `buf[at..]`, returning the end.
#[inline]
fn write_digits(buf: &mut [u8], at: usize, mut n: u32) -> usize {
    let end = at + n.checked_ilog10().map_or(1, |d| d as usize + 1);
    let mut pos = end;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        buf[pos - 2..pos].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        buf[pos - 1] = b'0' + n as u8;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::write_row;

    /// The row writer against `serde_json`, for short and long rows, zero padding
    /// included, and the largest ids.
    #[test]
    fn rows_are_the_json_of_the_ids() {
        let rows: Vec<Vec<u32>> = vec![
            vec![],
            vec![0],
            vec![0, 0, 0],
            vec![49406, 49407, 0, 0],
            vec![49406, 320, 1125, 539, 320, 2368, 49407],
            vec![1, 9, 10, 99, 100, 999, 1000, 9999, 10000, u32::MAX, 0],
            (0..77)
                .map(|i| if i < 5 { i * 1234 + 1 } else { 0 })
                .collect(),
            (0..400).map(|i| (i * 7919) % 49408 + 1).collect(),
            // More zeros than one copy of the padding chunk holds.
            (0..1500)
                .map(|i| if i < 3 { 49406 + i } else { 0 })
                .collect(),
        ];
        for ids in rows {
            let expected = serde_json::to_string(&ids).unwrap() + "\n";
            let mut fast = Vec::new();
            write_row(&mut fast, &ids);
            assert_eq!(String::from_utf8(fast).unwrap(), expected);
        }
    }
}
