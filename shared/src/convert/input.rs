//! From raw object bytes to UTF-8 text chunks.
//!
//! Compression is detected by magic bytes, not by file name (tenants rename files).
//! Text is passed through untouched when it is UTF-8 (validated later, per record, so the
//! reject reason can name the row); UTF-16 (by BOM) and declared Windows-1252 are transcoded
//! on the fly. Nothing here buffers more than one chunk.

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use encoding_rs::{Decoder, DecoderResult, UTF_16BE, UTF_16LE, WINDOWS_1252};
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

use crate::{
    contract::TextEncoding,
    error::{Error, Result},
};

/// Bytes read from the source per step.
const CHUNK: usize = 256 * 1024;

/// Compression of the source object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
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

/// A boxed async byte source.
pub type ByteSource = Box<dyn AsyncRead + Unpin + Send>;

/// Peeks at the first bytes and wraps the source in the decompressor they call for.
pub async fn decompress(mut source: ByteSource) -> Result<(ByteSource, Compression)> {
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
            let mut decoder = ZstdDecoder::new(BufReader::with_capacity(CHUNK, rejoined));
            decoder.multiple_members(true);
            Box::new(decoder)
        }
    };
    Ok((reader, compression))
}

/// The text encoding actually used to read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectedEncoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
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
pub struct TextReader {
    source: ByteSource,
    decoder: Option<Decoder>,
    raw: Vec<u8>,
    encoding: Option<DetectedEncoding>,
    declared: TextEncoding,
    text_bytes: u64,
    finished: bool,
}

impl TextReader {
    pub fn new(source: ByteSource, declared: TextEncoding) -> Self {
        TextReader {
            source,
            decoder: None,
            raw: vec![0; CHUNK],
            encoding: None,
            declared,
            text_bytes: 0,
            finished: false,
        }
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
                let n = self
                    .source
                    .read(&mut self.raw[filled..])
                    .await
                    .map_err(|e| Error::io("reading the source", e))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            let skip = if self.encoding.is_none() {
                self.detect(filled)
            } else {
                0
            };
            let bytes = &self.raw[skip..filled];
            let last = filled == 0;
            match &mut self.decoder {
                None => out.extend_from_slice(bytes),
                Some(decoder) => {
                    let needed = decoder
                        .max_utf8_buffer_length_without_replacement(bytes.len())
                        .unwrap_or(bytes.len() * 3 + 16);
                    out.resize(needed, 0);
                    let (result, _read, written) =
                        decoder.decode_to_utf8_without_replacement(bytes, out, last);
                    out.truncate(written);
                    if let DecoderResult::Malformed(..) = result {
                        return Err(Error::MalformedText {
                            message: format!(
                                "the file is not valid {} text (near byte {} of the decoded text)",
                                self.encoding().as_str(),
                                self.text_bytes + written as u64
                            ),
                        });
                    }
                }
            }
            self.finished = last;
            self.text_bytes += out.len() as u64;
        }
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
