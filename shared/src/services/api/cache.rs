//! The forecast reader's two-tier page cache: L1 in the process (moka), L2 in Redis shared
//! by every container, both keyed by the tenant's generation.
//!
//! - Freshness: every committed edit bumps the tenant's generation (edit-api, through
//!   [`InvalidatingEdits`]); a read first asks for the generation, so with Redis the next
//!   read from any container misses and sees the edit. Without Redis (or while it is
//!   down, or refusing writes) generations are this process's own: pages then live at
//!   most `local_ttl` (default 5 s), the documented staleness bound.
//! - No stale page under a new generation: a page rendered within `settle` of a bump is
//!   served but not cached, because a read in another Snowflake session can lag the
//!   commit by ~100 ms (SERVING.md).
//! - Coalescing: concurrent misses of one key in a process make one store call (moka's
//!   `try_get_with`).
//! - Cached pages are rendered bytes (body, ETag, cursor), so a hit costs no encoding;
//!   gzip and brotli forms are made once per page, on first demand.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use moka::{Expiry, future::Cache};
use sha2::{Digest, Sha256};

use crate::{
    domain::forecast::{
        Cell, Edit, EditInput, EditsQuery, HistoryEntry, HistoryQuery, TenantId, Version,
    },
    error::{Error, Result},
    ports::{
        cache::{Generation, Generations, SharedCache},
        forecast::{EditStore, Page, PutOutcome, RevertOutcome},
    },
};

/// How long pages live and how much L1 holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Lifetime of a page under a shared generation (`SNOWCAST_CACHE_TTL_SECONDS`, 300).
    pub ttl: Duration,
    /// Lifetime in L1 of a page while generations are this process's own
    /// (`SNOWCAST_CACHE_LOCAL_TTL_SECONDS`, 5): the staleness bound without Redis.
    pub local_ttl: Duration,
    /// Pages rendered this soon after a bump are not cached (`SNOWCAST_CACHE_SETTLE_MS`,
    /// 1,000).
    pub settle: Duration,
    /// L1 size in bytes of page bodies (`SNOWCAST_CACHE_L1_MB`, 64; 0 disables L1).
    pub l1_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl: Duration::from_secs(300),
            local_ttl: Duration::from_secs(5),
            settle: Duration::from_secs(1),
            l1_bytes: 64 << 20,
        }
    }
}

/// A rendered page, as served.
#[derive(Debug)]
pub struct RenderedPage {
    /// `application/json` or `text/csv`.
    pub media: &'static str,
    /// The body.
    pub body: Bytes,
    /// The next page's cursor, if rows follow.
    pub next_cursor: Option<String>,
    /// Strong validator of the body (hex, unquoted).
    pub digest: String,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
}

/// A content coding the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `br`.
    Brotli,
    /// `gzip`.
    Gzip,
}

impl Coding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }
}

impl RenderedPage {
    /// A page of `body`.
    pub fn new(media: &'static str, mut body: Vec<u8>, next_cursor: Option<String>) -> Self {
        // Kept for minutes: drop the spare capacity of the growing serializer's buffer.
        body.shrink_to_fit();
        let digest = hex_digest(&body);
        RenderedPage {
            media,
            body: Bytes::from(body),
            next_cursor,
            digest,
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        }
    }

    /// Bytes this page may hold in memory: the body, room for its compressed forms (made
    /// later, on demand), the cursor and a fixed overhead for the entry and the cache's own
    /// bookkeeping.
    fn weight(&self) -> usize {
        const ENTRY_OVERHEAD: usize = 512;
        self.body.len()
            + self.body.len() / 2
            + self.next_cursor.as_ref().map_or(0, String::len)
            + ENTRY_OVERHEAD
    }

    /// The body in `coding`, compressed on first use and kept with the page.
    pub fn encoded(&self, coding: Coding) -> Bytes {
        match coding {
            Coding::Gzip => self.gzip.get_or_init(|| gzip(&self.body)).clone(),
            Coding::Brotli => self.brotli.get_or_init(|| brotli(&self.body)).clone(),
        }
    }

    /// L2's form: media, cursor and body, framed by lengths.
    fn to_bytes(&self) -> Vec<u8> {
        let media = u8::from(self.media == super::csv::TEXT_CSV);
        let cursor = self.next_cursor.as_deref().unwrap_or_default();
        let mut bytes = Vec::with_capacity(self.body.len() + cursor.len() + 5);
        bytes.push(media);
        bytes.extend_from_slice(&u32::try_from(cursor.len()).unwrap_or(0).to_le_bytes());
        bytes.extend_from_slice(cursor.as_bytes());
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Reads L2's form back; `None` when it is not one (a foreign or corrupt value: the
    /// caller renders the page anew).
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&media, rest) = bytes.split_first()?;
        let (length, rest) = rest.split_first_chunk::<4>()?;
        let (cursor, body) =
            rest.split_at_checked(usize::try_from(u32::from_le_bytes(*length)).ok()?)?;
        let cursor = std::str::from_utf8(cursor).ok()?;
        let media = match media {
            0 => "application/json",
            1 => super::csv::TEXT_CSV,
            _ => return None,
        };
        let cursor = (!cursor.is_empty()).then(|| cursor.to_string());
        Some(RenderedPage::new(media, body.to_vec(), cursor))
    }
}

fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    Bytes::from(encoder.finish().unwrap_or_default())
}

fn brotli(body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(body.len() / 4);
    let params = brotli::enc::BrotliEncoderParams {
        // Quality 4: most of brotli's gain at a fraction of its top levels' cost.
        quality: 4,
        ..Default::default()
    };
    let _ = brotli::BrotliCompress(&mut &body[..], &mut out, &params);
    Bytes::from(out)
}

/// Generations with an in-process stand-in: the shared ones (Redis) when configured and
/// answering, else this process's own.
pub struct TieredGenerations {
    shared: Option<Arc<dyn Generations>>,
    local: Arc<dyn Generations>,
    /// Tenants whose shared bump failed: retried until it lands, so an edit made while
    /// Redis was unreachable still retires the pages cached before it.
    pending: Mutex<BTreeSet<TenantId>>,
}

/// Retries of a failed shared bump before the edit is answered (50 ms apart).
const INLINE_BUMP_RETRIES: usize = 2;

/// Pause between two background retries of the failed shared bumps.
const BUMP_RETRY: Duration = Duration::from_millis(250);

impl TieredGenerations {
    /// `shared` when there is one; `local` always (it takes over while `shared` fails).
    pub fn new(shared: Option<Arc<dyn Generations>>, local: Arc<dyn Generations>) -> Self {
        TieredGenerations {
            shared,
            local,
            pending: Mutex::new(BTreeSet::new()),
        }
    }

    /// The generation and whether every container shares it. While this process still
    /// owes the shared generation a bump for the tenant, its own is used: the shared one
    /// does not show that edit yet.
    pub async fn current(&self, tenant: &TenantId) -> Result<(Generation, bool)> {
        let owed = self
            .pending
            .lock()
            .map_or(true, |pending| pending.contains(tenant));
        if let Some(shared) = self.shared.as_ref().filter(|_| !owed) {
            match shared.current(tenant).await {
                Ok(generation) => return Ok((generation, true)),
                Err(error) => tracing::debug!(%error, "shared generation unavailable"),
            }
        }
        Ok((self.local.current(tenant).await?, false))
    }

    /// Bumps both. A shared bump that fails is retried twice at once, then logged and
    /// retried in the background until it lands; never returned: the edit is committed.
    pub async fn bump(self: &Arc<Self>, tenant: &TenantId) {
        if let Err(error) = self.local.bump(tenant).await {
            tracing::warn!(%error, "cannot bump the local generation");
        }
        let Some(shared) = &self.shared else {
            return;
        };
        // A few quick tries before answering: Lambda freezes the container once the
        // response is sent, and a background retry waits for the next invocation.
        let mut outcome = shared.bump(tenant).await;
        for _ in 0..INLINE_BUMP_RETRIES {
            if outcome.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            outcome = shared.bump(tenant).await;
        }
        if let Err(error) = outcome {
            tracing::warn!(
                %error,
                tenant = tenant.as_str(),
                "cannot bump the shared generation; retrying in the background"
            );
            let first = match self.pending.lock() {
                Ok(mut pending) => pending.insert(tenant.clone()) && pending.len() == 1,
                Err(_) => false,
            };
            if first {
                tokio::spawn(Arc::clone(self).retry_bumps(Arc::clone(shared)));
            }
        }
    }

    /// Retries the pending shared bumps until none is left.
    async fn retry_bumps(self: Arc<Self>, shared: Arc<dyn Generations>) {
        loop {
            tokio::time::sleep(BUMP_RETRY).await;
            let tenants: Vec<TenantId> = match self.pending.lock() {
                Ok(pending) => pending.iter().cloned().collect(),
                Err(_) => return,
            };
            for tenant in tenants {
                if shared.bump(&tenant).await.is_ok()
                    && let Ok(mut pending) = self.pending.lock()
                {
                    pending.remove(&tenant);
                }
            }
            match self.pending.lock() {
                Ok(pending) if !pending.is_empty() => continue,
                _ => {
                    tracing::info!("pending shared generation bumps landed");
                    return;
                }
            }
        }
    }
}

#[derive(Clone)]
struct Entry {
    page: Arc<RenderedPage>,
    ttl: Duration,
}

struct EntryExpiry;

impl Expiry<String, Entry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        entry: &Entry,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// The page cache (see the module documentation).
pub struct PageCache {
    settings: CacheSettings,
    l1: Option<Cache<String, Entry>>,
    l2: Option<Arc<dyn SharedCache>>,
    generations: Arc<TieredGenerations>,
}

/// What a page lookup did, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Served from this process.
    L1,
    /// Served from Redis.
    L2,
    /// Rendered from the store.
    Miss,
}

impl PageCache {
    /// A cache over `generations`, with Redis as L2 when given.
    pub fn new(
        settings: CacheSettings,
        l2: Option<Arc<dyn SharedCache>>,
        generations: Arc<TieredGenerations>,
    ) -> Self {
        let l1 = (settings.l1_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(settings.l1_bytes)
                .weigher(|key: &String, entry: &Entry| {
                    u32::try_from(key.len() + entry.page.weight()).unwrap_or(u32::MAX)
                })
                .expire_after(EntryExpiry)
                .build()
        });
        PageCache {
            settings,
            l1,
            l2,
            generations,
        }
    }

    /// The page of `query` (any stable text naming the request: it is hashed) for
    /// `tenant`, from L1, L2 or `render`.
    pub async fn page<F>(
        &self,
        tenant: &TenantId,
        query: &str,
        render: F,
    ) -> Result<(Arc<RenderedPage>, Lookup)>
    where
        F: Future<Output = Result<RenderedPage>>,
    {
        let (generation, shared) = self.generations.current(tenant).await?;
        let ttl = self.ttl(generation, shared);
        if ttl.is_zero() {
            return Ok((Arc::new(render.await?), Lookup::Miss));
        }
        let scope = if shared { 's' } else { 'l' };
        let key = format!(
            "{scope}{}:{}",
            generation.number,
            hex_digest(query.as_bytes())
        );
        let l2 = self.l2.as_ref().filter(|_| shared);
        let load = async {
            if let Some(l2) = l2 {
                match l2.get(tenant, &key).await {
                    Ok(Some(bytes)) => {
                        if let Some(page) = RenderedPage::from_bytes(&bytes) {
                            return Ok((Arc::new(page), Lookup::L2));
                        }
                    }
                    Ok(None) => {}
                    Err(error) => tracing::debug!(%error, "L2 unavailable"),
                }
            }
            let page = Arc::new(render.await?);
            if let Some(l2) = l2
                && let Err(error) = l2.put(tenant, &key, &page.to_bytes(), ttl).await
            {
                tracing::debug!(%error, "L2 unavailable");
            }
            Ok((page, Lookup::Miss))
        };
        let Some(l1) = &self.l1 else {
            return load.await;
        };
        let mut lookup = Lookup::L1;
        let entry = l1
            .try_get_with(format!("{}/{key}", tenant.as_str()), async {
                let (page, how) = load.await?;
                lookup = how;
                Ok::<_, Error>(Entry { page, ttl })
            })
            .await
            .map_err(owned)?;
        Ok((entry.page, lookup))
    }

    /// Every page can show edits (even with `show_manual=false` it carries the manual
    /// columns), so without shared generations every page gets the short TTL.
    fn ttl(&self, generation: Generation, shared: bool) -> Duration {
        let settings = &self.settings;
        if generation.age.is_some_and(|age| age < settings.settle) {
            Duration::ZERO
        } else if shared {
            settings.ttl
        } else {
            settings.ttl.min(settings.local_ttl)
        }
    }
}

/// The first 128 bits of the SHA-256 of `bytes`, in hex: page validators and cache keys.
fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The error of a coalesced load: the loader's own when this caller ran it, else an
/// equivalent one (the kinds that decide the response status are kept).
fn owned(error: Arc<Error>) -> Error {
    Arc::try_unwrap(error).unwrap_or_else(|shared| match &*shared {
        Error::Invalid { what, message } => Error::invalid(what, message.clone()),
        Error::Snowflake {
            status,
            code,
            sql_state,
            message,
        } => Error::Snowflake {
            status: *status,
            code: code.clone(),
            sql_state: sql_state.clone(),
            message: message.clone(),
        },
        Error::Deadline(message) => Error::Deadline(message.clone()),
        other => Error::Unavailable(other.to_string()),
    })
}

/// The edit store, bumping the tenant's generation after every write that may have
/// changed a page (and after a failed one: it may have committed before the failure).
pub struct InvalidatingEdits {
    inner: Arc<dyn EditStore>,
    generations: Arc<TieredGenerations>,
}

impl InvalidatingEdits {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn EditStore>, generations: Arc<TieredGenerations>) -> Self {
        InvalidatingEdits { inner, generations }
    }

    async fn bump_unless<T>(
        &self,
        tenant: &TenantId,
        result: &Result<T>,
        unchanged: impl Fn(&T) -> bool,
    ) {
        if !result.as_ref().is_ok_and(unchanged) {
            self.generations.bump(tenant).await;
        }
    }
}

#[async_trait]
impl EditStore for InvalidatingEdits {
    async fn put_edit(
        &self,
        tenant: &TenantId,
        user: &str,
        edit: &EditInput,
        expected: Option<Version>,
    ) -> Result<PutOutcome> {
        let result = self.inner.put_edit(tenant, user, edit, expected).await;
        self.bump_unless(tenant, &result, |outcome| {
            !matches!(outcome, PutOutcome::Applied(_))
        })
        .await;
        result
    }

    async fn put_edits(
        &self,
        tenant: &TenantId,
        user: &str,
        edits: &[EditInput],
    ) -> Result<Vec<PutOutcome>> {
        let result = self.inner.put_edits(tenant, user, edits).await;
        self.bump_unless(tenant, &result, |outcomes| {
            !outcomes.iter().any(|o| matches!(o, PutOutcome::Applied(_)))
        })
        .await;
        result
    }

    async fn revert_edit(
        &self,
        tenant: &TenantId,
        user: &str,
        cell: &Cell,
        expected: Option<Version>,
    ) -> Result<RevertOutcome> {
        let result = self.inner.revert_edit(tenant, user, cell, expected).await;
        self.bump_unless(tenant, &result, |outcome| {
            *outcome != RevertOutcome::Reverted
        })
        .await;
        result
    }

    async fn edits(&self, tenant: &TenantId, query: &EditsQuery) -> Result<Vec<Edit>> {
        self.inner.edits(tenant, query).await
    }

    async fn history(&self, tenant: &TenantId, query: &HistoryQuery) -> Result<Page<HistoryEntry>> {
        self.inner.history(tenant, query).await
    }
}
