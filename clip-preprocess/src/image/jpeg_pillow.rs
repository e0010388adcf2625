//! Pillow's verdict and pixels for the JPEGs that TurboJPEG's API refuses.
//!
//! `tj3Decompress8` fails a file on any libjpeg *warning*, and its memory source answers
//! a read past the end with a fake EOI marker and a warning. Pillow's `JpegDecode.c`
//! ignores warnings, and its source suspends at the end of the data: the file fails as
//! truncated only if that happens before the last scanline. So Pillow opens a JPEG with
//! corrupt but complete entropy data ("N extraneous bytes before marker", a stray restart
//! marker); TurboJPEG refused them. (A file without its EOI marker still fails in both:
//! libjpeg's entropy decoder reads ahead past the last MCU, and Pillow's source waits.)
//!
//! When the TurboJPEG decode fails, `csrc/pillow_jpeg.c` decodes the file again with
//! Pillow's calls on the same libjpeg-turbo (statically linked by `turbojpeg-sys`), and
//! its outcome is the verdict: pixels where Pillow opens the file, `Decode` errors where
//! it raises. Files TurboJPEG decodes never get here, so their speed is unchanged. The
//! C file exists because libjpeg reports errors by `longjmp`, which must not cross Rust
//! frames; it is compiled by `build.rs`.
// The FFI call below is this module's only unsafe code; it has a SAFETY note.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CStr};

use super::error::ImageError;

extern "C" {
    /// `csrc/pillow_jpeg.c`: the header only when `out` is null, else the decode.
    fn clip_rs_pillow_jpeg(
        data: *const u8,
        len: usize,
        width: *mut usize,
        height: *mut usize,
        components: *mut c_int,
        out: *mut u8,
        out_len: usize,
        msg: *mut c_char,
        msg_len: usize,
    ) -> c_int;
}

/// Results of `clip_rs_pillow_jpeg` (csrc/pillow_jpeg.c).
const OK: c_int = 0;
const TRUNCATED: c_int = 1;
const ERROR: c_int = 2;

/// What libjpeg said, as the error's source.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Reason(String);

/// libjpeg's message buffer (its `JMSG_LENGTH_MAX` is 200).
type Message = [c_char; 256];

/// The error for a result `code` of the C functions.
fn error(code: c_int, msg: &Message, what: String) -> ImageError {
    let reason = match code {
        TRUNCATED => "image file is truncated: the data ends before the last row".into(),
        ERROR => {
            // `c_char` is i8 or u8 by platform; the C side NUL-terminates within `msg`.
            let bytes: Vec<u8> = msg.iter().map(|&c| c as u8).collect();
            CStr::from_bytes_until_nul(&bytes)
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default()
        }
        _ => what,
    };
    ImageError::decode("JPEG", Reason(reason))
}

/// The header as Pillow's decoder reads it: `(width, height, components)`, where the
/// number of components gives Pillow's mode (1 `L`, 3 `RGB`, 4 `CMYK`).
pub(crate) fn header(bytes: &[u8]) -> Result<(usize, usize, usize), ImageError> {
    let mut msg: Message = [0; 256];
    let (mut width, mut height, mut components) = (0usize, 0usize, 0 as c_int);
    // SAFETY: `bytes` is a live slice passed with its length, read and never kept; the
    // three size pointers are to live locals; with `out` null nothing else is written but
    // a NUL-terminated string of at most `msg.len()` bytes into `msg`. The C function
    // catches its own longjmps (none crosses this frame).
    let code = unsafe {
        clip_rs_pillow_jpeg(
            bytes.as_ptr(),
            bytes.len(),
            &mut width,
            &mut height,
            &mut components,
            std::ptr::null_mut(),
            0,
            msg.as_mut_ptr(),
            msg.len(),
        )
    };
    if code != OK {
        return Err(error(code, &msg, String::new()));
    }
    Ok((width, height, usize::try_from(components).unwrap_or(0)))
}

/// Decodes `bytes`, a `width × height` JPEG with `components` (1, 3 or 4) output
/// components, into `out` (exactly `width * height * components` bytes) as Pillow 13
/// does; CMYK comes out in libjpeg's polarity, as from TurboJPEG. The error is
/// Pillow's: data that ends before the last scanline, or a libjpeg error.
pub(crate) fn decode(
    bytes: &[u8],
    width: usize,
    height: usize,
    components: usize,
    out: &mut [u8],
) -> Result<(), ImageError> {
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(components));
    if expected != Some(out.len()) || !matches!(components, 1 | 3 | 4) {
        return Err(ImageError::decode(
            "JPEG",
            Reason(format!(
                "internal: a {width}x{height}x{components} JPEG into {} bytes",
                out.len()
            )),
        ));
    }
    let mut msg: Message = [0; 256];
    let (mut width_c, mut height_c, mut components_c) = (width, height, components as c_int);
    // SAFETY: `bytes` and `out` are live slices passed with their lengths; the C function
    // reads at most `bytes.len()` bytes of `bytes`, writes at most `out.len()` bytes of
    // `out` (it checks `width * components * height <= out_len` and that the decoded
    // size equals `width × height`), only reads the three size locals, and writes a
    // NUL-terminated string of at most `msg.len()` bytes into `msg`. It keeps no pointer
    // after returning, and catches its own longjmps (none crosses this frame).
    let code = unsafe {
        clip_rs_pillow_jpeg(
            bytes.as_ptr(),
            bytes.len(),
            &mut width_c,
            &mut height_c,
            &mut components_c,
            out.as_mut_ptr(),
            out.len(),
            msg.as_mut_ptr(),
            msg.len(),
        )
    };
    if code == OK {
        return Ok(());
    }
    Err(error(
        code,
        &msg,
        format!("decoded size differs from the header's {width}x{height}x{components}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// On files TurboJPEG decodes, Pillow's calls give the same pixels (every mode and
    /// sampling of the corpus): the fallback is the same decoder, driven differently.
    #[test]
    fn pillow_calls_match_turbojpeg_on_intact_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/images");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            if !bytes.starts_with(&[0xFF, 0xD8]) {
                continue;
            }
            let mut turbo = turbojpeg::Decompressor::new().unwrap();
            let Ok(h) = turbo.read_header(&bytes) else {
                continue; // arithmetic coding etc.: not what this test is about
            };
            let (width, height, components) = header(&bytes).unwrap();
            assert_eq!((width, height), (h.width, h.height), "{}", path.display());
            let format = match components {
                1 => turbojpeg::PixelFormat::GRAY,
                3 => turbojpeg::PixelFormat::RGB,
                _ => turbojpeg::PixelFormat::CMYK,
            };
            let mut expected = vec![0u8; width * height * components];
            let image = turbojpeg::Image {
                pixels: expected.as_mut_slice(),
                width,
                pitch: width * components,
                height,
                format,
            };
            if turbo.decompress(&bytes, image).is_err() {
                continue;
            }
            let mut ours = vec![0u8; expected.len()];
            decode(&bytes, width, height, components, &mut ours).unwrap();
            assert!(ours == expected, "{}: pixels differ", path.display());
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} JPEGs checked");
    }

    #[test]
    fn truncation_and_garbage_are_errors_not_panics() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/images/china.jpg");
        let bytes = std::fs::read(path).unwrap();
        let (width, height, components) = header(&bytes).unwrap();
        let mut out = vec![0u8; width * height * components];
        let half = &bytes[..bytes.len() / 2];
        let err = decode(half, width, height, components, &mut out).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(header(&bytes[..100]).is_err());
        assert!(header(b"not a jpeg at all").is_err());
        // A buffer of the wrong size is refused before libjpeg runs.
        assert!(decode(&bytes, width, height, components, &mut out[1..]).is_err());
        assert!(decode(
            &bytes,
            width + 8,
            height,
            components,
            &mut vec![0; (width + 8) * height * 3]
        )
        .is_err());
    }
}
