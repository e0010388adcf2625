//! In-process timings of clip-rs, driven over stdin/stdout by `tools/bench_vs_pytorch.py`.
//!
//! ```text
//! cargo build --release --example bench_encode
//! target/release/examples/bench_encode      # then one JSON command per line on stdin
//! ```
//!
//! The model is loaded once; each command times only the calls it names, so the Python
//! harness can alternate them with the reference's calls on the same inputs (both processes
//! stay alive; the harness pauses between turns so neither one's spinning threads steal the
//! other's cores). One JSON answer per line on stdout, `{"ok": false, "error": ...}` on
//! failure. Times are seconds from `Instant`.
//!
//! | command | fields | answer |
//! |---|---|---|
//! | `load` | `name`, `model` (dir), `threads` | `load_s`, `describe` |
//! | `preprocess` | `paths`, `out`? | `times` (one per image: read + decode + resize + crop + normalize) |
//! | `tokenize` | `texts`, `out`? | `times` (one per text, `truncate = true`) |
//! | `encode_image` | `name`, `pixels` (.npy `[N,3,S,S]`), `batch`, `out`? | `times` (one per batch) |
//! | `encode_text` | `name`, `tokens` (.npy int32 `[N,77]`), `batch`, `bucket`?, `out`? | `times` (one per batch; with `bucket: true` one for all: `Clip::encode_tokens` at batch size `batch`, rows grouped by length) |
//! | `embed_text` | `name`, `texts`, `out`? | `times` (one per text: tokenize + encode at batch 1) |
//! | `quit` | | |
//!
//! `out` writes the result (tensor, ids or embeddings) as `.npy` for the fidelity checks.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::error::Error;
use std::io::{BufRead, Write};
use std::time::Instant;

use clip_rs::{Clip, OrtOptions};
use ndarray::{Array2, Array4, Axis, Slice};
use ndarray_npy::{read_npy, write_npy};
use serde_json::{json, Value};

type Res<T> = Result<T, Box<dyn Error>>;

struct State {
    models: HashMap<String, Clip>,
    pixels: HashMap<String, Array4<f32>>,
    tokens: HashMap<String, Array2<i32>>,
}

fn field<'a>(cmd: &'a Value, name: &str) -> Res<&'a Value> {
    cmd.get(name)
        .ok_or_else(|| format!("missing field {name:?}").into())
}

fn string(cmd: &Value, name: &str) -> Res<String> {
    field(cmd, name)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("field {name:?} is not a string").into())
}

fn number(cmd: &Value, name: &str) -> Res<usize> {
    field(cmd, name)?
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| format!("field {name:?} is not a number").into())
}

fn strings(cmd: &Value, name: &str) -> Res<Vec<String>> {
    field(cmd, name)?
        .as_array()
        .ok_or_else(|| format!("field {name:?} is not a list"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("field {name:?} holds a non-string").into())
        })
        .collect()
}

impl State {
    fn model(&self, cmd: &Value) -> Res<&Clip> {
        let name = string(cmd, "name")?;
        self.models
            .get(&name)
            .ok_or_else(|| format!("no model loaded as {name:?}").into())
    }

    fn handle(&mut self, cmd: &Value) -> Res<Value> {
        match string(cmd, "cmd")?.as_str() {
            "load" => {
                // Eager: `load_s` includes creating both towers, and no timed call pays for it.
                let options = OrtOptions::new()
                    .with_intra_threads(number(cmd, "threads")?)
                    .with_eager_loading(true);
                let start = Instant::now();
                let clip = clip_rs::load(string(cmd, "model")?, &options)?.with_truncation(true);
                let load_s = start.elapsed().as_secs_f64();
                let describe = clip.encoder().describe();
                self.models.insert(string(cmd, "name")?, clip);
                Ok(json!({ "load_s": load_s, "describe": describe }))
            }
            "preprocess" => {
                let clip = self
                    .models
                    .values()
                    .next()
                    .ok_or("load a model first (its config sets the preprocessing)")?;
                let paths = strings(cmd, "paths")?;
                let size = clip.config().image_size as usize;
                let mut all = Array4::<f32>::zeros((paths.len(), 3, size, size));
                let mut times = Vec::with_capacity(paths.len());
                for (path, out) in paths.iter().zip(all.outer_iter_mut()) {
                    let start = Instant::now();
                    clip.preprocessor().preprocess_path_into(path, out)?;
                    times.push(start.elapsed().as_secs_f64());
                }
                if let Some(out) = cmd.get("out").and_then(Value::as_str) {
                    write_npy(out, &all)?;
                }
                Ok(json!({ "times": times }))
            }
            "tokenize" => {
                let clip = self.models.values().next().ok_or("load a model first")?;
                let texts = strings(cmd, "texts")?;
                let context = clip.config().context_length;
                let mut all = Array2::<i32>::zeros((texts.len(), context));
                let mut times = Vec::with_capacity(texts.len());
                for (text, mut row) in texts.iter().zip(all.outer_iter_mut()) {
                    let start = Instant::now();
                    let ids = clip.tokenizer().tokenize(&[text], context, true)?;
                    times.push(start.elapsed().as_secs_f64());
                    row.assign(&ids.row(0));
                }
                if let Some(out) = cmd.get("out").and_then(Value::as_str) {
                    write_npy(out, &all)?;
                }
                Ok(json!({ "times": times }))
            }
            "encode_image" => {
                let path = string(cmd, "pixels")?;
                if !self.pixels.contains_key(&path) {
                    let array: Array4<f32> = read_npy(&path)?;
                    self.pixels.insert(path.clone(), array);
                }
                let pixels = &self.pixels[&path];
                let clip = self.model(cmd)?;
                let batch = number(cmd, "batch")?.max(1);
                let n = pixels.len_of(Axis(0));
                let mut embeds = Array2::<f32>::zeros((n, clip.config().embed_dim));
                let mut times = Vec::new();
                for start in (0..n).step_by(batch) {
                    let end = (start + batch).min(n);
                    let t = Instant::now();
                    let out = clip
                        .encoder()
                        .encode_image_batch(pixels.slice_axis(Axis(0), Slice::from(start..end)))?;
                    times.push(t.elapsed().as_secs_f64());
                    embeds
                        .slice_axis_mut(Axis(0), Slice::from(start..end))
                        .assign(&out);
                }
                if let Some(out) = cmd.get("out").and_then(Value::as_str) {
                    write_npy(out, &embeds)?;
                }
                Ok(json!({ "times": times }))
            }
            "encode_text" => {
                let path = string(cmd, "tokens")?;
                if !self.tokens.contains_key(&path) {
                    let array: Array2<i32> = read_npy(&path)?;
                    self.tokens.insert(path.clone(), array);
                }
                let tokens = &self.tokens[&path];
                let clip = self.model(cmd)?;
                let batch = number(cmd, "batch")?.max(1);
                let n = tokens.nrows();
                let mut embeds = Array2::<f32>::zeros((n, clip.config().embed_dim));
                let mut times = Vec::new();
                if cmd.get("bucket").and_then(Value::as_bool) == Some(true) {
                    // The library's own path: `Clip::encode_tokens` groups rows by length
                    // (clip_core::batching::length_buckets) into batches of its batch size,
                    // set to `batch` for this call.
                    let name = string(cmd, "name")?;
                    let model = self
                        .models
                        .remove(&name)
                        .ok_or_else(|| format!("no model loaded as {name:?}"))?;
                    let previous = model.batch_size();
                    let model = model.with_batch_size(batch);
                    let t = Instant::now();
                    let result = model.encode_tokens(tokens.view());
                    times.push(t.elapsed().as_secs_f64());
                    self.models.insert(name, model.with_batch_size(previous));
                    let embeds = result?;
                    if let Some(out) = cmd.get("out").and_then(Value::as_str) {
                        write_npy(out, &embeds)?;
                    }
                    return Ok(json!({ "times": times }));
                }
                for start in (0..n).step_by(batch) {
                    let end = (start + batch).min(n);
                    let t = Instant::now();
                    let out = clip
                        .encoder()
                        .encode_text_batch(tokens.slice_axis(Axis(0), Slice::from(start..end)))?;
                    times.push(t.elapsed().as_secs_f64());
                    embeds
                        .slice_axis_mut(Axis(0), Slice::from(start..end))
                        .assign(&out);
                }
                if let Some(out) = cmd.get("out").and_then(Value::as_str) {
                    write_npy(out, &embeds)?;
                }
                Ok(json!({ "times": times }))
            }
            "embed_text" => {
                let clip = self.model(cmd)?;
                let texts = strings(cmd, "texts")?;
                let mut embeds = Array2::<f32>::zeros((texts.len(), clip.config().embed_dim));
                let mut times = Vec::with_capacity(texts.len());
                for (text, mut row) in texts.iter().zip(embeds.outer_iter_mut()) {
                    let t = Instant::now();
                    let out = clip.encode_text(text)?;
                    times.push(t.elapsed().as_secs_f64());
                    row.assign(&out);
                }
                if let Some(out) = cmd.get("out").and_then(Value::as_str) {
                    write_npy(out, &embeds)?;
                }
                Ok(json!({ "times": times }))
            }
            other => Err(format!("unknown command {other:?}").into()),
        }
    }
}

use clip_rs::error_chain as chain;

fn main() -> Res<()> {
    let mut state = State {
        models: HashMap::new(),
        pixels: HashMap::new(),
        tokens: HashMap::new(),
    };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(cmd) if cmd.get("cmd").and_then(Value::as_str) == Some("quit") => break,
            Ok(cmd) => match state.handle(&cmd) {
                Ok(mut value) => {
                    value["ok"] = json!(true);
                    value
                }
                Err(err) => json!({ "ok": false, "error": chain(err.as_ref()) }),
            },
            Err(err) => json!({ "ok": false, "error": format!("bad command: {err}") }),
        };
        writeln!(stdout, "{answer}")?;
        stdout.flush()?;
    }
    Ok(())
}
