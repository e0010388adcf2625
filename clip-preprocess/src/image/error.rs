//! Typed errors of the image pipeline.
//!
//! Errors are classified by who is at fault, as the `image` crate does: the input
//! (unreadable, empty, corrupt, unknown format, too large), the caller (a bad
//! buffer or configuration) or a mode this crate does not handle.

use std::path::PathBuf;

/// Why an image could not be preprocessed.
///
/// Each message says what went wrong and, where it helps, what to do next. The
/// underlying error (I/O, decoder) stays reachable through
/// [`std::error::Error::source`]; it is not repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file could not be read. Check that the path exists and is readable.
    #[error("cannot read image file {}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An error about one file; the source says what went wrong with it.
    #[error("cannot preprocess {}", path.display())]
    File {
        /// The input file.
        path: PathBuf,
        /// What went wrong with it.
        #[source]
        source: Box<ImageError>,
    },
    /// The input is empty (0 bytes).
    #[error("the image data is empty (0 bytes)")]
    Empty,
    /// The bytes are not an image format this crate reads.
    #[error(
        "unrecognized image format (first bytes {magic:02x?}); supported: JPEG, PNG, GIF, WebP, BMP, TIFF"
    )]
    UnsupportedFormat {
        /// Up to the first 8 bytes of the input.
        magic: Vec<u8>,
    },
    /// The decoder rejected the data: the file is corrupt, truncated or uses a
    /// feature the decoder lacks. Re-export the image or check the download.
    #[error("cannot decode the {format} image: the file is corrupt, truncated or unsupported")]
    Decode {
        /// Format name (`"JPEG"`, `"PNG"` …).
        format: &'static str,
        /// The decoder's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The header announces more pixels than [`Limits`](super::Limits) allow:
    /// a guard against decompression bombs, checked before anything is
    /// allocated. Raise the limit with [`Limits::with_max_pixels`](super::Limits::with_max_pixels)
    /// if you trust the input.
    #[error("image of {width}x{height} pixels exceeds the limit of {limit} pixels (possible decompression bomb); raise Limits::max_pixels if the input is trusted")]
    TooLarge {
        /// Width from the header.
        width: u64,
        /// Height from the header.
        height: u64,
        /// The limit in pixels.
        limit: u64,
    },
    /// A width or height is zero, or the image is too large to address, or to resize
    /// (a side of the resized image beyond `i32::MAX`, where Pillow's resize fails too).
    #[error("invalid image dimensions {width}x{height}: a side is zero, or the image is too large to address or to resize")]
    InvalidDimensions {
        /// The width.
        width: u64,
        /// The height.
        height: u64,
    },
    /// A caller-supplied buffer has the wrong length or shape.
    #[error("buffer has {actual} elements but {expected} were expected ({what})")]
    BufferSize {
        /// Which buffer.
        what: &'static str,
        /// Expected number of elements.
        expected: usize,
        /// Actual number of elements.
        actual: usize,
    },
    /// The decoded pixel layout is not one this crate handles (for example
    /// 32-bit float images). Convert the image to 8-bit RGB first.
    #[error("unsupported pixel layout {layout}; convert the image to 8-bit RGB first")]
    UnsupportedLayout {
        /// A description of the layout.
        layout: String,
    },
    /// The configuration is invalid (for example an image size of 0).
    #[error("invalid preprocessing configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
}

impl ImageError {
    /// `true` when the limits rejected the image ([`ImageError::TooLarge`]).
    pub fn is_too_large(&self) -> bool {
        match self {
            ImageError::TooLarge { .. } => true,
            ImageError::File { source, .. } => source.is_too_large(),
            _ => false,
        }
    }

    /// `true` when the input itself is bad: empty, corrupt, truncated or of an
    /// unknown format.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ImageError::Empty
            | ImageError::UnsupportedFormat { .. }
            | ImageError::Decode { .. } => true,
            ImageError::File { source, .. } => source.is_bad_input(),
            _ => false,
        }
    }

    pub(crate) fn decode(
        format: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ImageError::Decode {
            format,
            source: Box::new(source),
        }
    }
}
