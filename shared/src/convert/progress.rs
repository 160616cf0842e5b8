//! Counters of a running conversion, for a progress display on another thread. They move
//! per chunk and per batch, never per row, so a conversion that reports them is as fast as
//! one that does not.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, ReadBuf};

use crate::ports::storage::ByteSource;

/// What a conversion has done so far (of its current read of the input: a file read twice
/// starts again from zero).
#[derive(Debug, Default)]
pub struct Progress {
    input_bytes: AtomicU64,
    rows: AtomicU64,
    partitions: AtomicU64,
}

impl Progress {
    /// Bytes of the input read, as stored (compressed if it is).
    pub fn input_bytes(&self) -> u64 {
        self.input_bytes.load(Ordering::Relaxed)
    }

    /// Records read.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Partitions with rows so far (0 when the dataset is not partitioned).
    pub fn partitions(&self) -> u64 {
        self.partitions.load(Ordering::Relaxed)
    }

    pub(crate) fn start_read(&self) {
        self.input_bytes.store(0, Ordering::Relaxed);
        self.rows.store(0, Ordering::Relaxed);
        self.partitions.store(0, Ordering::Relaxed);
    }

    pub(crate) fn set_rows(&self, rows: u64) {
        self.rows.store(rows, Ordering::Relaxed);
    }

    pub(crate) fn set_partitions(&self, partitions: usize) {
        self.partitions.store(partitions as u64, Ordering::Relaxed);
    }
}

/// The input, counting the bytes read into `progress`.
pub(crate) fn counted(source: ByteSource, progress: Arc<Progress>) -> ByteSource {
    Box::new(Counted { source, progress })
}

struct Counted {
    source: ByteSource,
    progress: Arc<Progress>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.source).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.progress.input_bytes.fetch_add(read, Ordering::Relaxed);
        polled
    }
}
