//! Redis/Valkey (ElastiCache Serverless in production): the generations, the shared page
//! cache (L2) and the rate limiter every container of the API shares.
//!
//! Failure is expected and cheap: every call has a short deadline, a circuit breaker
//! stops calling after a few failures in a row, and connecting happens in the background,
//! never in a request's path. A caller that gets an error falls back to its in-process
//! twin (`services::api::cache`); nothing here ever fails a request by itself.
//!
//! Keys carry the tenant as a hash tag (`snowcast:{acme}:...`), so in cluster mode a
//! tenant's generation, pages and limit live in one slot. Clocks are the server's (Lua
//! `TIME`), so containers with skewed clocks agree on generation ages and rate limits.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bytes::Bytes;
use redis::{
    Client, Cmd, Pipeline, RedisFuture, Script, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
};

use crate::{
    domain::{
        forecast::TenantId,
        rate_limit::{Decision, Quota},
    },
    error::{Error, Result},
    ports::cache::{Generation, Generations, RateLimiter, SharedCache},
};

/// Failures in a row that open the circuit.
const FAILURES_TO_OPEN: u32 = 3;
/// How often an open circuit checks whether Redis answers again.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Least time between two connection attempts.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// A missing generation starts at the server's clock in microseconds, not at 0: after a
/// restart or a lost key the numbers never repeat one a container may still hold pages
/// under. `at` 0: never bumped.
const BUMP: &str = r"
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
redis.call('HSETNX', KEYS[1], 'n', now)
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'at', now)
return 1
";

/// A generation and its age in microseconds by the server's clock (-1: never bumped).
const CURRENT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local g = redis.call('HMGET', KEYS[1], 'n', 'at')
if not g[1] then
  g = {t[1] .. string.format('%06d', tonumber(t[2])), '0'}
  redis.call('HSET', KEYS[1], 'n', g[1], 'at', g[2])
end
if g[2] == '0' then return {g[1], -1} end
return {g[1], now - tonumber(g[2])}
";

/// GCRA as `domain::rate_limit::Gcra::decide`, over the server's clock. ARGV: emission
/// interval and burst tolerance in microseconds. Returns allowed (0/1), remaining,
/// retry-after and reset-after in microseconds.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
";

/// A client of one Redis deployment, shared by the API's ports.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    /// Deadline of one call.
    timeout: Duration,
    target: Target,
    connection: Mutex<Option<Connection>>,
    connecting: AtomicBool,
    /// The last write failed (out of memory, a read-only replica, a timeout): another
    /// container's generation bump may have failed alike, so generations read here are not
    /// trusted until a write succeeds again.
    writes_failing: Mutex<bool>,
    last_attempt: Mutex<Option<Instant>>,
    breaker: Breaker,
    bump: Script,
    current: Script,
    gcra: Script,
}

// One per process: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(Client),
    Cluster(redis::cluster::ClusterClient),
}

impl Redis {
    /// A client of the server at `url` (`redis://`, or `rediss://` for TLS), in cluster
    /// mode or not, giving up on a call after `timeout`. It starts connecting in the
    /// background at once (call it inside the Tokio runtime); until connected, calls fail
    /// fast. Fails only on a malformed URL.
    pub fn connect(url: &str, cluster: bool, timeout: Duration) -> Result<Self> {
        let target = if cluster {
            ClusterClientBuilder::new(vec![url])
                .connection_timeout(connect_timeout(timeout))
                .response_timeout(timeout)
                .retries(1)
                .build()
                .map(Target::Cluster)
        } else {
            Client::open(url).map(Target::Single)
        }
        // The URL may hold a password: never echo it.
        .map_err(|e| Error::invalid("REDIS_URL", format!("{:?}", e.kind())))?;
        let redis = Redis {
            inner: Arc::new(Inner {
                timeout,
                target,
                connection: Mutex::new(None),
                connecting: AtomicBool::new(false),
                writes_failing: Mutex::new(false),
                last_attempt: Mutex::new(None),
                breaker: Breaker::default(),
                bump: Script::new(BUMP),
                current: Script::new(CURRENT),
                gcra: Script::new(GCRA),
            }),
        };
        redis.inner.clone().reconnect();
        Ok(redis)
    }

    /// Runs one call on the connection under the deadline and the circuit breaker.
    async fn call<T, F>(&self, what: &'static str, access: Access, call: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Connection) -> redis::RedisResult<T>,
    {
        let inner = &self.inner;
        let outcome = self.attempt(what, call).await;
        if access == Access::Write
            && let Ok(mut failing) = inner.writes_failing.lock()
        {
            *failing = outcome.is_err();
        }
        outcome
    }

    async fn attempt<T, F>(&self, what: &'static str, call: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Connection) -> redis::RedisResult<T>,
    {
        let inner = &self.inner;
        if !inner.breaker.allows() {
            return Err(unavailable(what, "circuit open after repeated failures"));
        }
        let Some(mut connection) = inner.connection() else {
            inner.clone().reconnect();
            return Err(unavailable(what, "not connected yet"));
        };
        let outcome = tokio::time::timeout(inner.timeout, call(&mut connection)).await;
        let error = match outcome {
            Ok(Ok(value)) => {
                inner.breaker.record(true);
                return Ok(value);
            }
            Ok(Err(error)) => format!("{:?}: {}", error.kind(), error.detail().unwrap_or("")),
            Err(_) => format!("no answer within {:?}", inner.timeout),
        };
        if inner.breaker.record(false) {
            tracing::warn!(%error, "Redis circuit open; serving without it");
            tokio::spawn(inner.clone().probe());
        }
        Err(unavailable(what, &error))
    }
}

impl Inner {
    /// Pings until Redis answers, then closes the circuit. A failed ping also makes the
    /// connection reconnect.
    async fn probe(self: Arc<Self>) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            let Some(mut connection) = self.connection() else {
                self.clone().reconnect();
                continue;
            };
            let ping = redis::cmd("PING");
            let pong = ping.query_async::<String>(&mut connection);
            if let Ok(Ok(_)) = tokio::time::timeout(self.timeout, pong).await {
                self.breaker.close();
                tracing::info!("Redis answers again; circuit closed");
                return;
            }
        }
    }

    fn connection(&self) -> Option<Connection> {
        self.connection.lock().ok()?.clone()
    }

    /// Connects in a background task unless connected, connecting, or tried within the
    /// last second. The connection then reconnects by itself after a network error.
    fn reconnect(self: Arc<Self>) {
        let due = match self.last_attempt.lock() {
            Ok(mut last) if last.is_none_or(|at| at.elapsed() >= RECONNECT_EVERY) => {
                *last = Some(Instant::now());
                true
            }
            _ => false,
        };
        if !due || self.connection().is_some() || self.connecting.swap(true, Ordering::SeqCst) {
            return;
        }
        tokio::spawn(async move {
            match self.open().await {
                Ok(connection) => {
                    if let Ok(mut slot) = self.connection.lock() {
                        *slot = Some(connection);
                    }
                    tracing::info!("connected to Redis");
                }
                Err(error) => tracing::warn!(
                    error = ?error.kind(),
                    "cannot connect to Redis; serving without it"
                ),
            }
            self.connecting.store(false, Ordering::SeqCst);
        });
    }

    async fn open(&self) -> redis::RedisResult<Connection> {
        match &self.target {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect_timeout(self.timeout)))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1);
                client
                    .get_connection_manager_with_config(config)
                    .await
                    .map(Connection::Single)
            }
            Target::Cluster(client) => client
                .get_async_connection()
                .await
                .map(|c| Connection::Cluster(Box::new(c))),
        }
    }
}

#[async_trait]
impl Generations for Redis {
    async fn current(&self, tenant: &TenantId) -> Result<Generation> {
        let key = generation_key(tenant);
        if self
            .inner
            .writes_failing
            .lock()
            .map_or(true, |failing| *failing)
        {
            // Trusted again once a write succeeds; this one is harmless.
            let probe = format!("{key}:probe");
            self.call("write check", Access::Write, async |c| {
                redis::cmd("SET")
                    .arg(&probe)
                    .arg(1)
                    .arg("PX")
                    .arg(1_000)
                    .query_async::<()>(c)
                    .await
            })
            .await
            .map_err(|_| unavailable("generation", "writes fail, so a bump may be missing"))?;
        }
        let script = &self.inner.current;
        let (number, age): (u64, i64) = self
            .call("generation", Access::Read, async |c| {
                script.key(&key).invoke_async(c).await
            })
            .await?;
        Ok(Generation {
            number,
            age: u64::try_from(age).ok().map(Duration::from_micros),
        })
    }

    async fn bump(&self, tenant: &TenantId) -> Result<()> {
        let key = generation_key(tenant);
        let script = &self.inner.bump;
        self.call("generation bump", Access::Write, async |c| {
            script.key(&key).invoke_async::<()>(c).await
        })
        .await
    }
}

#[async_trait]
impl SharedCache for Redis {
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<Bytes>> {
        let key = page_key(tenant, key);
        let value: Option<Vec<u8>> = self
            .call("cache get", Access::Read, async |c| {
                redis::cmd("GET").arg(&key).query_async(c).await
            })
            .await?;
        Ok(value.map(Bytes::from))
    }

    async fn put(&self, tenant: &TenantId, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let key = page_key(tenant, key);
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.call("cache put", Access::Write, async |c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(millis)
                .query_async::<()>(c)
                .await
        })
        .await
    }
}

#[async_trait]
impl RateLimiter for Redis {
    async fn acquire(&self, tenant: &TenantId, quota: Quota) -> Result<Decision> {
        let key = format!("snowcast:{{{}}}:rate", tenant.as_str());
        let script = &self.inner.gcra;
        let (allowed, remaining, retry_after, reset_after): (u8, u64, u64, u64) = self
            .call("rate limit", Access::Write, async |c| {
                script
                    .key(&key)
                    .arg(quota.interval_micros())
                    .arg(quota.tolerance_micros())
                    .invoke_async(c)
                    .await
            })
            .await?;
        Ok(Decision {
            allowed: allowed == 1,
            quota,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            retry_after: Duration::from_micros(retry_after),
            reset_after: Duration::from_micros(reset_after),
        })
    }
}

/// Connecting (TLS included) takes longer than a call: at least a second.
fn connect_timeout(timeout: Duration) -> Duration {
    timeout.max(Duration::from_secs(1))
}

fn generation_key(tenant: &TenantId) -> String {
    format!("snowcast:{{{}}}:gen", tenant.as_str())
}

fn page_key(tenant: &TenantId, key: &str) -> String {
    format!("snowcast:{{{}}}:page:{key}", tenant.as_str())
}

fn unavailable(what: &str, why: &str) -> Error {
    Error::Unavailable(format!("Redis {what}: {why}"))
}

/// Whether a call writes: a failed write makes the generations untrusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// Consecutive failures open the circuit; while open, calls fail at once and a probe
/// (one `PING` every [`PROBE_EVERY`]) closes it when Redis answers again. Requests are
/// never the probe: none waits on a Redis that is still down.
#[derive(Default)]
struct Breaker {
    failures: AtomicU32,
    open: AtomicBool,
}

impl Breaker {
    fn allows(&self) -> bool {
        !self.open.load(Ordering::SeqCst)
    }

    /// Records a call's outcome; true when this failure opened the circuit.
    fn record(&self, success: bool) -> bool {
        if success {
            self.failures.store(0, Ordering::SeqCst);
            return false;
        }
        self.failures.fetch_add(1, Ordering::SeqCst) + 1 >= FAILURES_TO_OPEN
            && !self.open.swap(true, Ordering::SeqCst)
    }

    fn close(&self) {
        self.failures.store(0, Ordering::SeqCst);
        self.open.store(false, Ordering::SeqCst);
    }
}

/// One connection, single node or cluster; both reconnect by themselves.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}
