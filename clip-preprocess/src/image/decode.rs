//! Decoding file bytes into a [`Raster`] in the mode Pillow 13 opens them in.
//!
//! * JPEG: libjpeg-turbo through the `turbojpeg` crate. Pillow's wheels bundle
//!   libjpeg-turbo and decode with the same defaults (ISLOW DCT, fancy
//!   upsampling), so the pixels are identical (REFERENCE §5: 890/890 files). CMYK
//!   and YCCK files come out of libjpeg in Adobe's inverted polarity; Pillow reads
//!   them as `CMYK;I`, i.e. `255 - x`, and so do we. A file TurboJPEG refuses (it
//!   fails on libjpeg warnings and on any end of data) is decoded again with Pillow's
//!   own libjpeg calls (`jpeg_pillow`), whose outcome is Pillow's.
//! * PNG: the `png` crate, without its expansions, so that the Pillow mode (`1`,
//!   `L`, `LA`, `P`, `RGB`, `RGBA`, `I;16`) is known. 16-bit colour keeps the high
//!   byte as Pillow's `RGB;16B` unpacker does (`v >> 8`); 16-bit gray is `I;16`.
//! * GIF: the `gif` crate, first frame as palette indices, laid out as Pillow's
//!   `GifImagePlugin` does (mode `P`, or `L` when the palette is the identity
//!   gray ramp or absent; the canvas filled with the transparent index or 0).
//! * WebP, BMP, TIFF: the `image` crate (see the module docs of
//!   [`crate::image`] for which of these are exact).
//!
//! The format is decided from the bytes, never from a file name. Every decoder
//! reads the header first and the [`Limits`] are checked before the pixel buffer
//! is allocated.

use std::io::Cursor;
use std::ops::Range;

use super::error::ImageError;
use super::jpeg_markers;
use super::jpeg_pillow;
use super::jpeg_window;
use super::png_chunks;
use super::raster::{Decoded, Mode, Raster};
use super::Limits;

/// For an image of `(width, height)`, the columns the caller will read, if fewer than
/// all (exact mode: the resize's support of the centre crop).
pub(crate) type ColumnsRead<'a> = &'a dyn Fn(usize, usize) -> Option<Range<usize>>;

/// Image container formats recognised from their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Jpeg,
    Png,
    Gif,
    WebP,
    Bmp,
    Tiff,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Gif => "GIF",
            Format::WebP => "WebP",
            Format::Bmp => "BMP",
            Format::Tiff => "TIFF",
        }
    }
}

/// Detects the format from magic bytes.
pub(crate) fn detect(bytes: &[u8]) -> Result<Format, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let fmt = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Format::Jpeg
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Format::Png
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Format::Gif
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Format::WebP
    } else if bytes.starts_with(b"BM") {
        Format::Bmp
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Format::Tiff
    } else {
        return Err(ImageError::UnsupportedFormat {
            magic: bytes.iter().take(8).copied().collect(),
        });
    };
    Ok(fmt)
}

/// Decodes `bytes` into a raster in Pillow's mode for that file.
///
/// `min_side`: throughput mode only. JPEGs are then decoded with libjpeg-turbo's
/// DCT-domain downscaling (1/2, 1/4 or 1/8) as long as the short side stays at
/// least `min_side`; the result is no longer Pillow's pixels.
///
/// `columns_read` (exact mode): JPEGs may then hold only a window of columns that
/// includes those (see [`jpeg_window`]); other formats are always whole.
pub(crate) fn decode(
    bytes: &[u8],
    limits: &Limits,
    min_side: Option<usize>,
    columns_read: Option<ColumnsRead<'_>>,
) -> Result<Decoded, ImageError> {
    match detect(bytes)? {
        Format::Jpeg => decode_jpeg(bytes, limits, min_side, columns_read),
        Format::Png => decode_png(bytes, limits).map(Decoded::whole),
        Format::Gif => decode_gif(bytes, limits).map(Decoded::whole),
        other => decode_with_image_crate(bytes, other, limits).map(Decoded::whole),
    }
}

fn jpeg_err(e: turbojpeg::Error) -> ImageError {
    ImageError::decode("JPEG", e)
}

fn decode_jpeg(
    bytes: &[u8],
    limits: &Limits,
    min_side: Option<usize>,
    columns_read: Option<ColumnsRead<'_>>,
) -> Result<Decoded, ImageError> {
    use turbojpeg::{Colorspace, PixelFormat, ScalingFactor};
    // Pillow's Python-level header walk refuses some files libjpeg decodes.
    jpeg_markers::check(bytes)?;
    let mut dec = turbojpeg::Decompressor::new().map_err(jpeg_err)?;
    let header = match dec.read_header(bytes) {
        Ok(header) => header,
        // TurboJPEG fails a header with a libjpeg warning; Pillow reads it.
        Err(_) => return decode_jpeg_as_pillow(bytes, limits),
    };
    limits.check(header.width as u64, header.height as u64)?;
    let (mut width, mut height) = (header.width, header.height);
    if let Some(min_side) = min_side {
        for factor in [
            ScalingFactor::ONE_EIGHTH,
            ScalingFactor::ONE_QUARTER,
            ScalingFactor::ONE_HALF,
        ] {
            let scaled = header.scaled(factor);
            if scaled.width.min(scaled.height) >= min_side {
                dec.set_scaling_factor(factor).map_err(jpeg_err)?;
                (width, height) = (scaled.width, scaled.height);
                break;
            }
        }
    }
    let (mode, format) = match header.colorspace {
        Colorspace::Gray => (Mode::L, PixelFormat::GRAY),
        Colorspace::CMYK | Colorspace::YCCK => (Mode::Cmyk, PixelFormat::CMYK),
        _ => (Mode::Rgb, PixelFormat::RGB),
    };
    let channels = mode.channels();
    let len = pixel_len(width, height, channels)?;
    if min_side.is_none() {
        let window = columns_read
            .and_then(|read| read(width, height))
            .and_then(|needed| jpeg_window::window(needed, width, header.subsamp));
        if let Some(cols) = window {
            if let Some(mut raster) =
                jpeg_window::decode(bytes, width, height, (mode, format), cols.clone())
            {
                if mode == Mode::Cmyk {
                    invert(&mut raster.data);
                }
                return Ok(Decoded {
                    raster,
                    col0: cols.start,
                    full_width: width,
                });
            }
            // TurboJPEG refused or failed: the whole-width decode below gives the verdict.
        }
    }
    // libjpeg-turbo writes every row before `decompress` returns `Ok` (on an error the
    // buffer is only recycled), so the buffer needs no zeroing first.
    let mut data = super::scratch::take_for_overwrite(len);
    let image = turbojpeg::Image {
        pixels: data.as_mut_slice(),
        width,
        pitch: width * channels,
        height,
        format,
    };
    if dec.decompress(bytes, image).is_err() {
        // TurboJPEG fails on any libjpeg warning and on data that ends anywhere; Pillow
        // does neither (see `jpeg_pillow`). Its calls, run again, give Pillow's verdict.
        // A scaled (throughput) decode is redone at full size, where that applies.
        if min_side.is_some() {
            return decode_jpeg(bytes, limits, None, None);
        }
        jpeg_pillow::decode(bytes, width, height, channels, data.as_mut_slice())?;
    }
    Ok(whole_jpeg(mode, width, height, data))
}

/// A whole-width JPEG raster from libjpeg's pixels (CMYK in its polarity).
fn whole_jpeg(mode: Mode, width: usize, height: usize, mut data: Vec<u8>) -> Decoded {
    if mode == Mode::Cmyk {
        invert(&mut data);
    }
    Decoded::whole(Raster::new_u8(mode, width, height, data))
}

/// The whole JPEG through Pillow's own libjpeg calls (`jpeg_pillow`), header included:
/// for files whose header TurboJPEG refuses.
fn decode_jpeg_as_pillow(bytes: &[u8], limits: &Limits) -> Result<Decoded, ImageError> {
    let (width, height, components) = jpeg_pillow::header(bytes)?;
    limits.check(width as u64, height as u64)?;
    let mode = match components {
        1 => Mode::L,
        3 => Mode::Rgb,
        4 => Mode::Cmyk,
        n => {
            return Err(ImageError::decode(
                "JPEG",
                std::io::Error::other(format!("cannot handle {n}-component images")),
            ))
        }
    };
    let mut data = super::scratch::take_for_overwrite(pixel_len(width, height, components)?);
    jpeg_pillow::decode(bytes, width, height, components, data.as_mut_slice())?;
    Ok(whole_jpeg(mode, width, height, data))
}

/// Pillow's JPEG plugin always reads 4-component files as "CMYK;I" ("assume adobe
/// conventions", JpegImagePlugin.py), i.e. inverted.
pub(crate) fn invert(data: &mut [u8]) {
    for v in data {
        *v = 255 - *v;
    }
}

/// `width * height * channels`, or an error if it does not fit in memory.
fn pixel_len(width: usize, height: usize, channels: usize) -> Result<usize, ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::InvalidDimensions {
            width: width as u64,
            height: height as u64,
        });
    }
    width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels))
        .ok_or(ImageError::InvalidDimensions {
            width: width as u64,
            height: height as u64,
        })
}

fn png_err(e: png::DecodingError) -> ImageError {
    ImageError::decode("PNG", e)
}

fn decode_png(bytes: &[u8], limits: &Limits) -> Result<Raster, ImageError> {
    use png::{BitDepth, ColorType};
    // Pillow's bomb check runs on the IHDR size. The png crate refuses sizes whose buffer
    // arithmetic overflows before handing us the header, so check it here first: a bomb is
    // then reported as `TooLarge`, not as a decoding error.
    if let (Some(b"IHDR"), Some(w), Some(h)) =
        (bytes.get(12..16), be_u32(bytes, 16), be_u32(bytes, 20))
    {
        if w > 0 && h > 0 {
            limits.check(u64::from(w), u64::from(h))?;
        }
    }
    // The png crate's own allocation limit (64 MiB by default) would reject large
    // photos that Pillow opens; our pixel limit is checked after the header instead.
    // Profiles and text are never used; Pillow's verdicts on them come from
    // `png_chunks`, which inflates them with a bound (the unlimited `bytes` above would
    // let the png crate inflate a profile without one).
    // Pillow opens a PNG whose chunks end after the image data without an IEND (the file
    // cut short, a stray non-chunk there); the png crate wants one: it gets a copy of the
    // file cut there with an IEND added (for these files only).
    let patched = png_chunks::check(bytes)?;
    let bytes = patched.as_deref().unwrap_or(bytes);
    // Checksums as Pillow has them: `png_chunks` checked the CRCs before the image data;
    // those of the image data and after it are never checked (Pillow reads past them);
    // the zlib stream's Adler-32 is (zlib checks it; the png crate would skip it).
    let mut options = png::DecodeOptions::default();
    options.set_ignore_crc(true);
    options.set_ignore_adler32(false);
    options.set_ignore_iccp_chunk(true);
    options.set_ignore_text_chunk(true);
    let mut dec = png::Decoder::new_with_options(Cursor::new(bytes), options);
    dec.set_limits(png::Limits { bytes: usize::MAX });
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut reader = dec.read_info().map_err(png_err)?;
    let (width, height, color, depth, palette) = {
        let info = reader.info();
        (
            info.width as usize,
            info.height as usize,
            info.color_type,
            info.bit_depth,
            info.palette.as_ref().map(|p| p.to_vec()),
        )
    };
    limits.check(width as u64, height as u64)?;
    let size = reader
        .output_buffer_size()
        .ok_or(ImageError::InvalidDimensions {
            width: width as u64,
            height: height as u64,
        })?;
    pixel_len(width, height, 1)?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(png_err)?;
    let line = frame.line_size;
    let bits = depth as u8 as usize;
    let rows = buf.chunks_exact(line).take(height);

    let raster = match (color, depth) {
        (ColorType::Grayscale, BitDepth::Sixteen) => {
            let mut wide = Vec::with_capacity(width * height);
            for row in rows {
                wide.extend(
                    row.chunks_exact(2)
                        .take(width)
                        .map(|b| u16::from_be_bytes([b[0], b[1]])),
                );
            }
            Raster {
                mode: Mode::I16,
                width,
                height,
                data: Vec::new(),
                wide,
                palette: Vec::new(),
            }
        }
        (ColorType::Grayscale, _) => {
            // Pillow: 1-bit is mode "1" (0/255); 2- and 4-bit are "L" scaled by
            // 85 and 17 (its L;2 / L;4 unpackers); 8-bit is "L".
            let (mode, scale) = match bits {
                1 => (Mode::One, 255u8),
                2 => (Mode::L, 85),
                4 => (Mode::L, 17),
                _ => (Mode::L, 1),
            };
            let mut data = Vec::with_capacity(width * height);
            for row in rows {
                unpack_bits(row, bits, width, &mut data, |v| v.wrapping_mul(scale));
            }
            Raster::new_u8(mode, width, height, data)
        }
        (ColorType::Indexed, _) => {
            let mut data = Vec::with_capacity(width * height);
            for row in rows {
                unpack_bits(row, bits, width, &mut data, |v| v);
            }
            let mut pal = vec![[0u8; 3]; 256];
            if let Some(p) = palette {
                for (dst, src) in pal.iter_mut().zip(p.chunks_exact(3)) {
                    *dst = [src[0], src[1], src[2]];
                }
            }
            Raster {
                palette: pal,
                ..Raster::new_u8(Mode::P, width, height, data)
            }
        }
        (ColorType::Rgb, _) => {
            Raster::new_u8(Mode::Rgb, width, height, take8(rows, width * 3, bits))
        }
        (ColorType::Rgba, _) => {
            Raster::new_u8(Mode::Rgba, width, height, take8(rows, width * 4, bits))
        }
        (ColorType::GrayscaleAlpha, BitDepth::Sixteen) => {
            // Pillow opens 16-bit LA as RGBA through its "LA;16B" unpacker.
            let la = take8(rows, width * 2, bits);
            let mut data = Vec::with_capacity(width * height * 4);
            for p in la.chunks_exact(2) {
                data.extend_from_slice(&[p[0], p[0], p[0], p[1]]);
            }
            Raster::new_u8(Mode::Rgba, width, height, data)
        }
        (ColorType::GrayscaleAlpha, _) => {
            Raster::new_u8(Mode::La, width, height, take8(rows, width * 2, bits))
        }
    };
    Ok(raster)
}

/// The big-endian `u32` at `at`, if the bytes reach that far.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Copies `samples` samples per row, keeping the high byte of 16-bit samples.
fn take8<'a>(rows: impl Iterator<Item = &'a [u8]>, samples: usize, bits: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        if bits == 16 {
            out.extend(row.chunks_exact(2).take(samples).map(|b| b[0]));
        } else {
            out.extend_from_slice(row.get(..samples).unwrap_or(row));
        }
    }
    out
}

/// Unpacks MSB-first packed samples of `bits` bits (1, 2, 4, 8) into bytes.
fn unpack_bits(row: &[u8], bits: usize, width: usize, out: &mut Vec<u8>, map: impl Fn(u8) -> u8) {
    if bits >= 8 {
        out.extend(row.iter().take(width).map(|&v| map(v)));
        return;
    }
    let per_byte = 8 / bits;
    let mask = (1u8 << bits) - 1;
    let mut n = 0;
    'outer: for &byte in row {
        for i in 0..per_byte {
            if n == width {
                break 'outer;
            }
            let shift = 8 - bits * (i + 1);
            out.push(map((byte >> shift) & mask));
            n += 1;
        }
    }
}

fn gif_err(e: gif::DecodingError) -> ImageError {
    ImageError::decode("GIF", e)
}

/// Pillow's `GifImagePlugin._is_palette_needed`: false when entry `i` is `(i, i, i)`
/// for the whole table (then the image opens as `L`).
fn gif_palette_needed(p: &[u8]) -> bool {
    p.chunks_exact(3)
        .enumerate()
        .any(|(i, e)| !(i == usize::from(e[0]) && e[0] == e[1] && e[1] == e[2]))
}

fn decode_gif(bytes: &[u8], limits: &Limits) -> Result<Raster, ImageError> {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    opts.check_frame_consistency(false);
    // Our pixel limit is checked on the canvas (screen and first frame) below, from the
    // descriptors, before the frame's pixels are allocated or decoded.
    opts.set_memory_limit(gif::MemoryLimit::Unlimited);
    let mut dec = opts.read_info(Cursor::new(bytes)).map_err(gif_err)?;
    let (sw, sh) = (usize::from(dec.width()), usize::from(dec.height()));
    limits.check(sw as u64, sh as u64)?;
    let global = dec.global_palette().map(<[u8]>::to_vec);
    let frame = dec
        .next_frame_info()
        .map_err(gif_err)?
        .ok_or(ImageError::Decode {
            format: "GIF",
            source: "the file has no image frame".into(),
        })?;
    let (fx, fy) = (usize::from(frame.left), usize::from(frame.top));
    let (fw, fh) = (usize::from(frame.width), usize::from(frame.height));
    let (local, transparent) = (frame.palette.clone(), frame.transparent);
    // Pillow grows the canvas when the first frame reaches past the screen. A frame can
    // claim up to 65535 × 65535 pixels behind a 1 × 1 screen: checked before its buffer.
    let (width, height) = (sw.max(fx + fw), sh.max(fy + fh));
    limits.check(width as u64, height as u64)?;
    let len = pixel_len(width, height, 1)?;
    // One index per pixel (`ColorOutput::Indexed`); the canvas check bounds it.
    let frame_len = pixel_len(fw, fh, 1).unwrap_or(0);
    let mut pixels = vec![0u8; frame_len];
    dec.read_into_buffer(&mut pixels).map_err(gif_err)?;
    let palette = match local {
        Some(local) => gif_palette_needed(&local).then_some(local),
        None => global.filter(|g| gif_palette_needed(g)),
    };
    // load_prepare: frame 0 starts from the transparent index, else from zeros.
    let mut data = vec![transparent.unwrap_or(0); len];
    for (r, row) in pixels.chunks_exact(fw.max(1)).take(fh).enumerate() {
        let at = (fy + r) * width + fx;
        data[at..at + fw].copy_from_slice(&row[..fw]);
    }
    Ok(match palette {
        Some(p) => {
            let mut pal = vec![[0u8; 3]; 256];
            for (dst, src) in pal.iter_mut().zip(p.chunks_exact(3)) {
                *dst = [src[0], src[1], src[2]];
            }
            Raster {
                palette: pal,
                ..Raster::new_u8(Mode::P, width, height, data)
            }
        }
        None => Raster::new_u8(Mode::L, width, height, data),
    })
}

fn decode_with_image_crate(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<Raster, ImageError> {
    let name = format.name();
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::decode(name, e))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| ImageError::decode(name, e))?;
    limits.check(u64::from(w), u64::from(h))?;
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::decode(name, e))?;
    let mut lim = image::Limits::default();
    lim.max_alloc = None;
    reader.limits(lim);
    let img = reader.decode().map_err(|e| ImageError::decode(name, e))?;
    from_dynamic(&img)
}

/// Maps an `image` crate buffer onto the Pillow mode the same pixels would have.
pub(crate) fn from_dynamic(img: &image::DynamicImage) -> Result<Raster, ImageError> {
    use image::DynamicImage as D;
    let (w, h) = (img.width() as usize, img.height() as usize);
    pixel_len(w, h, 1)?;
    let high = |v: &[u16]| v.iter().map(|&x| (x >> 8) as u8).collect::<Vec<u8>>();
    let raster = match img {
        D::ImageLuma8(b) => Raster::new_u8(Mode::L, w, h, b.as_raw().clone()),
        D::ImageLumaA8(b) => Raster::new_u8(Mode::La, w, h, b.as_raw().clone()),
        D::ImageRgb8(b) => Raster::new_u8(Mode::Rgb, w, h, b.as_raw().clone()),
        D::ImageRgba8(b) => Raster::new_u8(Mode::Rgba, w, h, b.as_raw().clone()),
        D::ImageLuma16(b) => Raster {
            mode: Mode::I16,
            width: w,
            height: h,
            data: Vec::new(),
            wide: b.as_raw().clone(),
            palette: Vec::new(),
        },
        D::ImageLumaA16(b) => {
            let la = high(b.as_raw());
            let mut data = Vec::with_capacity(w * h * 4);
            for p in la.chunks_exact(2) {
                data.extend_from_slice(&[p[0], p[0], p[0], p[1]]);
            }
            Raster::new_u8(Mode::Rgba, w, h, data)
        }
        D::ImageRgb16(b) => Raster::new_u8(Mode::Rgb, w, h, high(b.as_raw())),
        D::ImageRgba16(b) => Raster::new_u8(Mode::Rgba, w, h, high(b.as_raw())),
        D::ImageRgb32F(_) => Raster::new_u8(Mode::Rgb, w, h, img.to_rgb8().into_raw()),
        D::ImageRgba32F(_) => Raster::new_u8(Mode::Rgba, w, h, img.to_rgba8().into_raw()),
        other => {
            return Err(ImageError::UnsupportedLayout {
                layout: format!("{:?}", other.color()),
            })
        }
    };
    Ok(raster)
}
