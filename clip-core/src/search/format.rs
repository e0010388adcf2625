//! The on-disk format of an index and its crash-safe save.
//!
//! All integers little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `89 43 4C 49 50 49 44 58` (`\x89CLIPIDX`: the high byte catches 7-bit transfers) |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | storage: 1 = `f32`, 2 = `f16` |
//! | 16 | 4 | dimension `D` (1..=65,536) |
//! | 20 | 4 | `A`: bytes of the model's architecture name (≤ 1,024) |
//! | 24 | 8 | `N`: number of entries |
//! | 32 | 8 | model fingerprint |
//! | 40 | 8 | `E`: bytes of the entries section |
//! | 48 | `A` | architecture name, UTF-8 |
//! | 48+A | 4 | CRC-32 of bytes `0..48+A` (the header) |
//! | 52+A | `E` | `N` entries: id length (u32), id (UTF-8), flags (u8, bit 0: file metadata present), file size (u64), modification time (i64 seconds and u32 nanoseconds since the Unix epoch; zeros without metadata) |
//! | 52+A+E | `N·D·4` or `N·D·2` | unit-length embeddings, row-major |
//! | end−4 | 4 | CRC-32 of the entries and embeddings (the body) |
//!
//! The header alone tells the file's exact size, so truncation is found before anything
//! large is allocated, and every byte is covered by a checksum.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::IndexError;
use super::{kernel, Dtype, FileMeta, Index, ModelId, Storage};

/// The first 8 bytes of every index file.
pub const MAGIC: [u8; 8] = [0x89, b'C', b'L', b'I', b'P', b'I', b'D', b'X'];
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Bytes of the fixed part of the header (magic to entries length).
const FIXED_HEADER: usize = 48;
/// Longest architecture name stored (names are like `"ViT-B/32"`).
const MAX_ARCH_BYTES: usize = 1024;
/// Widest embedding accepted from a file (CLIP models use 512 to 1,024).
const MAX_DIM: u64 = 1 << 16;
/// Bytes of an entry besides its id.
const ENTRY_FIXED: u64 = 4 + 1 + 8 + 8 + 4;
/// Size of the buffers used to stream embeddings (large enough to amortise system calls).
const IO_BUFFER: usize = 1 << 20;

/// Makes temporary names unique among the saves of one process.
static SAVE_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> IndexError {
    let path = path.to_owned();
    move |source| IndexError::Io {
        action,
        path,
        source,
    }
}

fn dtype_code(dtype: Dtype) -> u32 {
    match dtype {
        Dtype::F32 => 1,
        Dtype::F16 => 2,
    }
}

/// A writer that checksums what passes through.
struct CrcWriter<W> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `index` to `path` so that at every moment `path` holds either the previous file
/// or the complete new one: the data goes to a temporary file in the same directory, is
/// synced to disk, renamed over `path` (atomic on POSIX file systems), and the directory
/// is synced so the rename itself survives a power cut.
pub(super) fn save(index: &Index, path: &Path) -> Result<(), IndexError> {
    let invalid = |what: &str| IndexError::Io {
        action: "name",
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned()),
    };
    let name = path
        .file_name()
        .ok_or_else(|| invalid("the path has no file name"))?;
    // What `load` would refuse is refused here, before anything is written: a name cut
    // to the limit would read back as another model (or invalid UTF-8).
    let refuse = |what: String| IndexError::Io {
        action: "write",
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, what),
    };
    let arch_len = index.model.architecture().len();
    if arch_len > MAX_ARCH_BYTES {
        return Err(refuse(format!(
            "the model's architecture name has {arch_len} bytes; an index stores at most {MAX_ARCH_BYTES}"
        )));
    }
    if index.dim() == 0 || index.dim() as u64 > MAX_DIM {
        return Err(refuse(format!(
            "embedding dimension {} is outside 1..={MAX_DIM}",
            index.dim()
        )));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        SAVE_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_error("create", &tmp))?;
    let result = write_file(index, file, &tmp)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io_error("rename into place", path)))
        .and_then(|()| sync_dir(&dir));
    if result.is_err() {
        // Best effort: the error being returned matters more than a leftover temporary file.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename in `dir` durable (POSIX needs the directory itself synced).
fn sync_dir(dir: &Path) -> Result<(), IndexError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("sync the directory of", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn write_file(index: &Index, file: File, path: &Path) -> Result<(), IndexError> {
    let write_err = io_error("write", path);
    // At most MAX_ARCH_BYTES: checked by `save`.
    let arch = index.model.architecture().as_bytes();
    let entries_len: u64 = index
        .ids
        .iter()
        .map(|id| ENTRY_FIXED + id.len() as u64)
        .sum();

    let mut header = Vec::with_capacity(FIXED_HEADER + arch.len() + 4);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&dtype_code(index.dtype()).to_le_bytes());
    header.extend_from_slice(&(index.dim() as u32).to_le_bytes());
    header.extend_from_slice(&(arch.len() as u32).to_le_bytes());
    header.extend_from_slice(&(index.len() as u64).to_le_bytes());
    header.extend_from_slice(&index.model.fingerprint().to_le_bytes());
    header.extend_from_slice(&entries_len.to_le_bytes());
    header.extend_from_slice(arch);
    let header_crc = crc32fast::hash(&header);
    header.extend_from_slice(&header_crc.to_le_bytes());

    let mut out = BufWriter::with_capacity(IO_BUFFER, file);
    out.write_all(&header).map_err(write_err)?;
    let mut body = CrcWriter {
        inner: out,
        hasher: crc32fast::Hasher::new(),
    };
    let result = (|| -> std::io::Result<()> {
        let mut entry = Vec::with_capacity(256);
        for (id, meta) in index.ids.iter().zip(&index.metas) {
            entry.clear();
            entry.extend_from_slice(&(id.len() as u32).to_le_bytes());
            entry.extend_from_slice(id.as_bytes());
            let m = meta.unwrap_or(FileMeta {
                size: 0,
                modified_secs: 0,
                modified_nanos: 0,
            });
            entry.push(u8::from(meta.is_some()));
            entry.extend_from_slice(&m.size.to_le_bytes());
            entry.extend_from_slice(&m.modified_secs.to_le_bytes());
            entry.extend_from_slice(&m.modified_nanos.to_le_bytes());
            body.write_all(&entry)?;
        }
        let mut buf = Vec::with_capacity(IO_BUFFER);
        match &index.data {
            Storage::F32(data) => {
                for chunk in data.chunks(IO_BUFFER / 4) {
                    buf.clear();
                    buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
                    body.write_all(&buf)?;
                }
            }
            Storage::F16(data) => {
                for chunk in data.chunks(IO_BUFFER / 2) {
                    buf.clear();
                    buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
                    body.write_all(&buf)?;
                }
            }
        }
        let crc = body.hasher.clone().finalize();
        body.inner.write_all(&crc.to_le_bytes())?;
        body.inner.flush()
    })();
    result.map_err(io_error("write", path))?;
    let file = body
        .inner
        .into_inner()
        .map_err(|e| io_error("write", path)(e.into_error()))?;
    file.sync_all().map_err(io_error("sync", path))
}

/// Reads into `buf` until it is full or the file ends; returns the bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Reads and fully verifies an index file.
pub(super) fn load(path: &Path) -> Result<Index, IndexError> {
    let corrupt = |reason: String| IndexError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let truncated = |expected: u64, actual: u64| IndexError::Truncated {
        path: path.to_owned(),
        expected,
        actual,
    };
    let file = File::open(path).map_err(io_error("open", path))?;
    let actual = file.metadata().map_err(io_error("read", path))?.len();
    let mut reader = BufReader::with_capacity(IO_BUFFER, file);
    let read_err = io_error("read", path);

    let mut fixed = [0u8; FIXED_HEADER];
    let got = read_up_to(&mut reader, &mut fixed).map_err(io_error("read", path))?;
    let magic_len = got.min(MAGIC.len());
    if fixed[..magic_len] != MAGIC[..magic_len] {
        return Err(IndexError::NotAnIndex {
            path: path.to_owned(),
        });
    }
    if got < FIXED_HEADER {
        // Empty, or a prefix of a header: a cut-off index file.
        return Err(truncated(FIXED_HEADER as u64, actual));
    }
    let version = u32_at(&fixed, 8);
    if version != FORMAT_VERSION {
        return Err(IndexError::UnsupportedVersion {
            path: path.to_owned(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let dtype_raw = u32_at(&fixed, 12);
    let dim = u64::from(u32_at(&fixed, 16));
    let arch_len = u32_at(&fixed, 20) as usize;
    let count = u64_at(&fixed, 24);
    let fingerprint = u64_at(&fixed, 32);
    let entries_len = u64_at(&fixed, 40);
    if arch_len > MAX_ARCH_BYTES {
        return Err(corrupt(format!(
            "architecture name of {arch_len} bytes (at most {MAX_ARCH_BYTES})"
        )));
    }
    let header_end = (FIXED_HEADER + arch_len + 4) as u64;
    if actual < header_end {
        return Err(truncated(header_end, actual));
    }
    let mut arch_and_crc = vec![0u8; arch_len + 4];
    reader.read_exact(&mut arch_and_crc).map_err(read_err)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&fixed);
    hasher.update(&arch_and_crc[..arch_len]);
    let computed = hasher.finalize();
    let stored = u32_at(&arch_and_crc, arch_len);
    if computed != stored {
        return Err(IndexError::ChecksumMismatch {
            path: path.to_owned(),
            section: "header",
            stored,
            computed,
        });
    }
    // The header is now known to be as written; what follows checks the writer's sanity.
    let dtype = match dtype_raw {
        1 => Dtype::F32,
        2 => Dtype::F16,
        other => return Err(corrupt(format!("unknown storage type {other}"))),
    };
    if dim == 0 || dim > MAX_DIM {
        return Err(corrupt(format!("dimension {dim} outside 1..={MAX_DIM}")));
    }
    let architecture = String::from_utf8(arch_and_crc[..arch_len].to_vec())
        .map_err(|_| corrupt("architecture name is not UTF-8".into()))?;
    let elem = dtype.bytes() as u64;
    let data_len = count
        .checked_mul(dim)
        .and_then(|v| v.checked_mul(elem))
        .ok_or_else(|| corrupt(format!("{count} entries of dimension {dim} overflow")))?;
    if entries_len < count.saturating_mul(ENTRY_FIXED) {
        return Err(corrupt(format!(
            "entries section of {entries_len} bytes cannot hold {count} entries"
        )));
    }
    let expected = header_end
        .checked_add(entries_len)
        .and_then(|v| v.checked_add(data_len))
        .and_then(|v| v.checked_add(4))
        .ok_or_else(|| corrupt("section sizes overflow".into()))?;
    if actual < expected {
        return Err(truncated(expected, actual));
    }
    if actual > expected {
        return Err(corrupt(format!(
            "{} bytes after the end of the index",
            actual - expected
        )));
    }
    // Sizes are now bounded by the file's length: allocating them is safe.
    let mut hasher = crc32fast::Hasher::new();
    let mut entries = vec![0u8; entries_len as usize];
    reader
        .read_exact(&mut entries)
        .map_err(io_error("read", path))?;
    hasher.update(&entries);
    let values = (count * dim) as usize;
    let mut buf = vec![0u8; IO_BUFFER];
    let data = match dtype {
        Dtype::F32 => {
            let mut data = Vec::with_capacity(values);
            read_values(&mut reader, &mut hasher, &mut buf, values * 4, |bytes| {
                data.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
            })
            .map_err(io_error("read", path))?;
            Storage::F32(data)
        }
        Dtype::F16 => {
            let mut data = Vec::with_capacity(values);
            read_values(&mut reader, &mut hasher, &mut buf, values * 2, |bytes| {
                data.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| u16::from_le_bytes([b[0], b[1]])),
                );
            })
            .map_err(io_error("read", path))?;
            Storage::F16(data)
        }
    };
    let mut crc = [0u8; 4];
    reader
        .read_exact(&mut crc)
        .map_err(io_error("read", path))?;
    let stored = u32::from_le_bytes(crc);
    let computed = hasher.finalize();
    if stored != computed {
        return Err(IndexError::ChecksumMismatch {
            path: path.to_owned(),
            section: "body",
            stored,
            computed,
        });
    }
    let finite = match &data {
        Storage::F32(d) => d.iter().all(|x| x.is_finite()),
        Storage::F16(d) => !d.iter().any(|&x| kernel::f16_is_non_finite(x)),
    };
    if !finite {
        return Err(corrupt(
            "an embedding holds an infinite or NaN value".into(),
        ));
    }
    let (ids, metas) = parse_entries(&entries, count).map_err(corrupt)?;
    let model = ModelId::new(architecture, dim as usize, fingerprint);
    Index::from_parts(model, ids, metas, data).map_err(corrupt)
}

/// Reads `len` bytes in buffer-sized pieces, checksumming and handing each to `sink`
/// (a multiple of 4 bytes, so values never straddle pieces).
fn read_values(
    reader: &mut impl Read,
    hasher: &mut crc32fast::Hasher,
    buf: &mut [u8],
    len: usize,
    mut sink: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        reader.read_exact(&mut buf[..n])?;
        hasher.update(&buf[..n]);
        sink(&buf[..n]);
        left -= n;
    }
    Ok(())
}

/// The next `n` bytes of `bytes` from `*at`, advancing `*at`.
fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = at
        .checked_add(n)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| format!("an entry at byte {at} runs past the entries section"))?;
    let slice = &bytes[*at..end];
    *at = end;
    Ok(slice)
}

type Entries = (Vec<String>, Vec<Option<FileMeta>>);

fn parse_entries(bytes: &[u8], count: u64) -> Result<Entries, String> {
    let mut ids = Vec::with_capacity(count as usize);
    let mut metas = Vec::with_capacity(count as usize);
    let mut at = 0usize;
    for i in 0..count {
        let len = u32_at(take(bytes, &mut at, 4)?, 0) as usize;
        let id = std::str::from_utf8(take(bytes, &mut at, len)?)
            .map_err(|_| format!("id of entry {i} is not UTF-8"))?
            .to_owned();
        let rest = take(bytes, &mut at, (ENTRY_FIXED - 4) as usize)?;
        let meta = match rest[0] {
            0 => None,
            1 => Some(FileMeta {
                size: u64_at(rest, 1),
                modified_secs: u64_at(rest, 9) as i64,
                modified_nanos: u32_at(rest, 17),
            }),
            flags => return Err(format!("entry {i} ({id}) has unknown flags {flags:#04x}")),
        };
        ids.push(id);
        metas.push(meta);
    }
    if at != bytes.len() {
        return Err(format!(
            "{} unused bytes at the end of the entries section",
            bytes.len() - at
        ));
    }
    Ok((ids, metas))
}
