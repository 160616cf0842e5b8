//! From raw object bytes to UTF-8 text chunks.
//!
//! Compression is detected by magic bytes, not by file name (tenants rename files).
//! Text is passed through untouched when it is UTF-8 (validated later, per record, so the
//! reject reason can name the row); UTF-16 (by BOM) and declared Windows-1252 are transcoded
//! on the fly. Nothing here buffers more than one chunk.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use async_compression::{
    codecs::zstd::params::DParameter,
    tokio::bufread::{GzipDecoder, ZstdDecoder},
};
use encoding_rs::{Decoder, UTF_16BE, UTF_16LE, WINDOWS_1252};
use tokio::io::{AsyncRead, AsyncReadExt, BufReader, ReadBuf};

use crate::{
    domain::contract::TextEncoding,
    error::{Error, Result},
    ports::storage::ByteSource,
};

/// Bytes read from the source per step.
const CHUNK: usize = 256 * 1024;

/// Compression of the source object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
}

impl Compression {
    /// The name shown in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The source's bytes, decompressed.
pub struct Decompressed {
    pub reader: ByteSource,
    pub compression: Compression,
    /// Set when the source itself failed to read (a network fault), as opposed to the
    /// decompressor failing on the bytes it got (a corrupt or truncated file).
    source_failed: Arc<AtomicBool>,
}

/// A source that remembers whether a read of it failed.
struct Watched {
    inner: ByteSource,
    failed: Arc<AtomicBool>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Err(_)) = &polled {
            self.failed.store(true, Ordering::Relaxed);
        }
        polled
    }
}

/// The largest zstd window (log2 bytes) a memory budget allows: the decoder holds a whole
/// window, so a frame made with `--long` must fit in half the budget; never above zstd's
/// own default limit (2^27), never below its smallest window (2^10).
pub fn zstd_window_log_max(memory_budget: usize) -> u32 {
    let half = (memory_budget / 2).max(1);
    (usize::BITS - 1 - half.leading_zeros()).clamp(10, 27)
}

/// Peeks at the first bytes and wraps the source in the decompressor they call for; a
/// zstd frame whose window is over `zstd_window_log_max` fails to decode (a rejected file).
pub async fn decompress(source: ByteSource, zstd_window_log_max: u32) -> Result<Decompressed> {
    let source_failed = Arc::new(AtomicBool::new(false));
    let mut source = Watched {
        inner: source,
        failed: source_failed.clone(),
    };
    let mut magic = Vec::with_capacity(4);
    while magic.len() < 4 {
        let mut byte = [0u8; 4];
        let wanted = 4 - magic.len();
        let n = source
            .read(&mut byte[..wanted])
            .await
            .map_err(|e| Error::io("reading the source", e))?;
        if n == 0 {
            break;
        }
        magic.extend_from_slice(&byte[..n]);
    }
    let compression = match magic.as_slice() {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    };
    let rejoined = std::io::Cursor::new(magic).chain(source);
    let reader: ByteSource = match compression {
        Compression::None => Box::new(rejoined),
        Compression::Gzip => {
            let mut decoder = GzipDecoder::new(BufReader::with_capacity(CHUNK, rejoined));
            decoder.multiple_members(true);
            Box::new(decoder)
        }
        Compression::Zstd => {
            let window = DParameter::window_log_max(zstd_window_log_max);
            let mut decoder =
                ZstdDecoder::with_params(BufReader::with_capacity(CHUNK, rejoined), &[window]);
            decoder.multiple_members(true);
            Box::new(decoder)
        }
    };
    Ok(Decompressed {
        reader,
        compression,
        source_failed,
    })
}

/// The text encoding actually used to read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectedEncoding {
    /// UTF-8 without a BOM.
    Utf8,
    /// UTF-8 with a BOM.
    Utf8Bom,
    /// UTF-16, little-endian (by BOM).
    Utf16Le,
    /// UTF-16, big-endian (by BOM).
    Utf16Be,
    /// Windows-1252, as the contract declared.
    Windows1252,
}

impl DetectedEncoding {
    /// The name shown in manifests and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectedEncoding::Utf8 => "utf-8",
            DetectedEncoding::Utf8Bom => "utf-8-bom",
            DetectedEncoding::Utf16Le => "utf-16le",
            DetectedEncoding::Utf16Be => "utf-16be",
            DetectedEncoding::Windows1252 => "windows-1252",
        }
    }
}

/// Reads decompressed bytes and yields UTF-8 chunks (UTF-8 input is not yet validated).
/// Text a decoder finds malformed is recorded ([`TextReader::malformed`]) and replaced, so
/// the rest of a rejected file can still be counted; compressed data that is corrupt is
/// recorded too, and ends the text there.
pub struct TextReader {
    source: ByteSource,
    compression: Compression,
    source_failed: Arc<AtomicBool>,
    decoder: Option<Decoder>,
    raw: Vec<u8>,
    encoding: Option<DetectedEncoding>,
    declared: TextEncoding,
    text_bytes: u64,
    finished: bool,
    malformed: Option<String>,
    /// The compressed data broke off: no more reads.
    corrupted: bool,
}

impl TextReader {
    pub fn new(source: Decompressed, declared: TextEncoding) -> Self {
        TextReader {
            source: source.reader,
            compression: source.compression,
            source_failed: source.source_failed,
            decoder: None,
            raw: vec![0; CHUNK],
            encoding: None,
            declared,
            text_bytes: 0,
            finished: false,
            malformed: None,
            corrupted: false,
        }
    }

    /// Why the text is not valid in its encoding, once a decoder found it so.
    pub fn malformed(&self) -> Option<&str> {
        self.malformed.as_deref()
    }

    /// The encoding in use; known after the first chunk.
    pub fn encoding(&self) -> DetectedEncoding {
        self.encoding.unwrap_or(DetectedEncoding::Utf8)
    }

    /// UTF-8 bytes produced so far.
    pub fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// Replaces `out` with the next chunk of text; an empty `out` means end of input.
    pub async fn next_chunk(&mut self, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        while out.is_empty() && !self.finished {
            let mut filled = 0;
            // The first read gathers enough bytes to see a BOM even from a trickling source.
            let minimum = if self.encoding.is_none() { 4 } else { 1 };
            while filled < minimum {
                match self.source.read(&mut self.raw[filled..]).await {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(error) => {
                        self.corrupt(error)?;
                        break;
                    }
                }
            }
            let skip = if self.encoding.is_none() {
                self.detect(filled)
            } else {
                0
            };
            let bytes = &self.raw[skip..filled];
            let last = filled == 0 || self.corrupted;
            match &mut self.decoder {
                None => out.extend_from_slice(bytes),
                Some(decoder) => {
                    let needed = decoder
                        .max_utf8_buffer_length(bytes.len())
                        .unwrap_or(bytes.len() * 3 + 16);
                    out.resize(needed, 0);
                    let (_, _, written, replaced) = decoder.decode_to_utf8(bytes, out, last);
                    out.truncate(written);
                    if replaced && self.malformed.is_none() {
                        self.malformed = Some(format!(
                            "the file is not valid {} text (near byte {} of the decoded text)",
                            self.encoding().as_str(),
                            self.text_bytes + written as u64
                        ));
                    }
                }
            }
            self.finished = last;
            self.text_bytes += out.len() as u64;
        }
        Ok(())
    }

    /// A read that failed: the source's fault is an operational error; the decompressor's
    /// on bytes the source delivered means the file is corrupt, which is recorded, and the
    /// text ends there.
    fn corrupt(&mut self, error: std::io::Error) -> Result<()> {
        if self.compression == Compression::None || self.source_failed.load(Ordering::Relaxed) {
            return Err(Error::io("reading the source", error));
        }
        if self.malformed.is_none() {
            self.malformed = Some(format!(
                "the {} data is corrupt or truncated after {} bytes of text ({error})",
                self.compression.as_str(),
                self.text_bytes
            ));
        }
        self.corrupted = true;
        Ok(())
    }

    /// Picks the decoder from a BOM or the declared encoding. Returns the BOM's length.
    fn detect(&mut self, filled: usize) -> usize {
        let (encoding, bom) = match &self.raw[..filled] {
            [0xef, 0xbb, 0xbf, ..] => (DetectedEncoding::Utf8Bom, 3),
            [0xff, 0xfe, ..] => (DetectedEncoding::Utf16Le, 2),
            [0xfe, 0xff, ..] => (DetectedEncoding::Utf16Be, 2),
            _ if self.declared == TextEncoding::Windows1252 => (DetectedEncoding::Windows1252, 0),
            _ => (DetectedEncoding::Utf8, 0),
        };
        self.decoder = match encoding {
            DetectedEncoding::Utf16Le => Some(UTF_16LE.new_decoder_without_bom_handling()),
            DetectedEncoding::Utf16Be => Some(UTF_16BE.new_decoder_without_bom_handling()),
            DetectedEncoding::Windows1252 => Some(WINDOWS_1252.new_decoder_without_bom_handling()),
            DetectedEncoding::Utf8 | DetectedEncoding::Utf8Bom => None,
        };
        self.encoding = Some(encoding);
        bom
    }

    /// Does the text need UTF-8 validation (it was not produced by a decoder)?
    pub fn needs_validation(&self) -> bool {
        self.decoder.is_none()
    }
}

/// The reason given for text that is not UTF-8 (the fix is usually the contract's encoding).
pub fn not_utf8(what: &str) -> String {
    format!(
        "{what} is not valid UTF-8; if the file is a Windows export, declare \
         encoding = \"windows-1252\" in the dataset's contract"
    )
}
