//! The forecast API's cache and rate limits against a real `redis-server` (started here on
//! a free port; Debian's package): two reader instances and one editor, each with its own
//! Redis client, L1 and in-process fallbacks, over one store.
//!
//! - An edit is visible on the next read from either reader; hits cost no store call;
//!   concurrent misses of one key make one store call.
//! - Redis killed mid-test: reads keep answering 200 and limits fall back to the
//!   in-process limiter; when Redis returns, sharing resumes (an edit made during the
//!   outage still retires the pages cached before it).
//! - A burst over the limit gets 429 with a `Retry-After` that is enough, and the limit is
//!   shared by the two readers.

use std::{
    collections::HashMap,
    net::TcpStream,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use chrono::NaiveDate;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use snowcast::{
    adapters::{
        memory::{
            cache::{LocalGenerations, LocalRateLimiter},
            forecast::MemoryForecastStore,
        },
        redis::Redis,
    },
    domain::{
        forecast::{DailySales, ForecastQuery, ForecastRow, Quantity, SalesQuery, SkuId, TenantId},
        identity::Claims,
        rate_limit::{Quota, Quotas},
    },
    error::Result,
    ports::{
        cache::{Generations, RateLimiter, SharedCache},
        forecast::{ForecastRead, Page},
    },
    services::api::{
        self, EditorState, ReaderState,
        auth::AuthConfig,
        cache::{CacheSettings, InvalidatingEdits, PageCache, TieredGenerations},
        limit::RateLimits,
    },
};
use tower::ServiceExt;

/// A `redis-server` child on 127.0.0.1, without persistence.
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer { port, child: None };
        server.restart();
        server
    }

    /// Starts (again) on the same port.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; scripts/setup installs it)");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn cli(&self, args: &[&str]) {
        let status = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "redis-cli {args:?}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The store behind the readers, counting reads and taking a little while to answer (so
/// concurrent misses overlap).
struct CountingRead {
    store: Arc<MemoryForecastStore>,
    reads: AtomicUsize,
}

#[async_trait]
impl ForecastRead for CountingRead {
    async fn forecast(
        &self,
        tenant: &TenantId,
        query: &ForecastQuery,
    ) -> Result<Page<ForecastRow>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.store.forecast(tenant, query).await
    }

    async fn sales(&self, tenant: &TenantId, query: &SalesQuery) -> Result<Vec<DailySales>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.store.sales(tenant, query).await
    }
}

impl CountingRead {
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, d).unwrap()
}

/// One container: its own Redis client, L1, in-process generations and limiter.
struct Instance {
    router: Router,
    redis: Arc<Redis>,
}

struct World {
    store: Arc<MemoryForecastStore>,
    read: Arc<CountingRead>,
}

impl World {
    fn new() -> Self {
        let store = Arc::new(MemoryForecastStore::new());
        for sku in ["SKU-1", "SKU-2"] {
            for d in 1..=10 {
                store.put_draft(
                    &tenant("acme"),
                    &SkuId::new(sku).unwrap(),
                    day(d),
                    Quantity::parse("10").unwrap(),
                );
            }
        }
        let read = Arc::new(CountingRead {
            store: store.clone(),
            reads: AtomicUsize::new(0),
        });
        World { store, read }
    }

    fn settings() -> CacheSettings {
        CacheSettings {
            settle: Duration::from_millis(200),
            local_ttl: Duration::from_secs(1),
            ..CacheSettings::default()
        }
    }

    fn limits(redis: &Arc<Redis>, quota: Quota) -> Option<Arc<RateLimits>> {
        Some(Arc::new(RateLimits::new(
            Quotas::new(quota, None).unwrap(),
            Some(redis.clone() as Arc<dyn RateLimiter>),
            Arc::new(LocalRateLimiter::default()),
        )))
    }

    fn generations(redis: &Arc<Redis>) -> Arc<TieredGenerations> {
        Arc::new(TieredGenerations::new(
            Some(redis.clone() as Arc<dyn Generations>),
            Arc::new(LocalGenerations::default()),
        ))
    }

    async fn reader(&self, url: &str, quota: Quota) -> Instance {
        let redis = connected(url).await;
        let cache = PageCache::new(
            World::settings(),
            Some(redis.clone() as Arc<dyn SharedCache>),
            World::generations(&redis),
        );
        let state = ReaderState {
            store: self.read.clone(),
            cache: Some(Arc::new(cache)),
            limits: World::limits(&redis, quota),
        };
        Instance {
            router: api::reader(state, AuthConfig::default()),
            redis,
        }
    }

    /// Three containers over one Redis, with limits too roomy to refuse anything.
    async fn two_readers_and_an_editor(&self, url: &str) -> (Instance, Instance, Instance) {
        let a = self.reader(url, roomy()).await;
        let b = self.reader(url, roomy()).await;
        (a, b, self.editor(url).await)
    }

    async fn editor(&self, url: &str) -> Instance {
        let redis = connected(url).await;
        let state = EditorState {
            edits: Arc::new(InvalidatingEdits::new(
                self.store.clone(),
                World::generations(&redis),
            )),
            prefs: self.store.clone(),
            limits: World::limits(&redis, Quota::new(1000, 1000).unwrap()),
        };
        Instance {
            router: api::editor(state, AuthConfig::default()),
            redis,
        }
    }
}

/// A client whose background connection is up.
async fn connected(url: &str) -> Arc<Redis> {
    let redis = Arc::new(Redis::connect(url, false, Duration::from_millis(200)).unwrap());
    let started = Instant::now();
    while redis.current(&tenant("probe")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn send(router: &Router, method: &str, uri: &str, body: Option<Value>) -> Answer {
    let mut builder = Request::builder().method(method).uri(uri);
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let mut request = builder
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    request.extensions_mut().insert(Claims {
        claims: HashMap::from([
            ("tenant_id".to_string(), "acme".to_string()),
            ("sub".to_string(), "planner".to_string()),
        ]),
        scopes: Some(vec!["forecast:read".into(), "forecast:write".into()]),
    });
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

const PAGE: &str = "/v1/forecast?sku_id=SKU-1&from=2026-01-01&to=2026-01-10";

/// The quantity the page shows for SKU-1 on Jan 3.
async fn shown(reader: &Instance) -> String {
    let answer = send(&reader.router, "GET", PAGE, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["items"][2]["quantity"].to_string()
}

async fn edit(editor: &Instance, quantity: &str) {
    let uri = "/v1/edits/SKU-1/2026-01-03";
    let answer = send(
        &editor.router,
        "PUT",
        uri,
        Some(json!({ "quantity": serde_json::from_str::<Value>(quantity).unwrap() })),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

fn roomy() -> Quota {
    Quota::new(10_000, 10_000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_is_visible_on_the_next_read_from_either_reader_and_hits_cost_nothing() {
    let redis = RedisServer::start();
    let world = World::new();
    let (a, b, editor) = world.two_readers_and_an_editor(&redis.url()).await;

    assert_eq!(shown(&a).await, "10");
    assert_eq!(world.read.reads(), 1, "a miss reads the store once");
    assert_eq!(shown(&a).await, "10");
    assert_eq!(world.read.reads(), 1, "an L1 hit costs no store call");
    assert_eq!(shown(&b).await, "10");
    assert_eq!(world.read.reads(), 1, "the other reader hits L2");

    for (round, quantity) in ["11", "12.5", "13"].into_iter().enumerate() {
        edit(&editor, quantity).await;
        assert_eq!(shown(&a).await, quantity, "round {round}: reader a");
        assert_eq!(shown(&b).await, quantity, "round {round}: reader b");
    }
    // Right after a bump pages are not cached (a read in another session may lag the
    // commit); once it settled they are again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shown(&a).await, "13");
    let reads = world.read.reads();
    assert_eq!(shown(&a).await, "13");
    assert_eq!(shown(&b).await, "13");
    assert_eq!(world.read.reads(), reads, "settled pages are cached again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_one_page_make_one_store_call() {
    let redis = RedisServer::start();
    let world = World::new();
    let reader = Arc::new(world.reader(&redis.url(), roomy()).await);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let reader = reader.clone();
            tokio::spawn(async move { shown(&reader).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), "10");
    }
    assert_eq!(world.read.reads(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_redis_dying_and_share_again_when_it_returns() {
    let mut redis = RedisServer::start();
    let world = World::new();
    let (a, b, editor) = world.two_readers_and_an_editor(&redis.url()).await;
    assert_eq!(shown(&a).await, "10");
    assert_eq!(shown(&b).await, "10");

    redis.kill();
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(shown(&a).await, "10");
        assert_eq!(shown(&b).await, "10");
    }
    // Redis down costs no more than its short timeouts, then the circuit opens.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // An edit during the outage: committed, answered 200; the readers' own pages expire
    // within the local TTL (1 s here, 5 s by default).
    edit(&editor, "21").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(shown(&a).await, "21");
    assert_eq!(shown(&b).await, "21");

    // Redis returns (empty): sharing resumes without a restart of any instance.
    redis.restart();
    let started = Instant::now();
    for instance in [&a, &b, &editor] {
        while instance.redis.current(&tenant("acme")).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never reconnected"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The edit made during the outage reached the shared generation, and an edit is
    // visible at once again.
    assert_eq!(shown(&a).await, "21");
    assert_eq!(shown(&b).await, "21");
    edit(&editor, "22").await;
    assert_eq!(shown(&a).await, "22");
    assert_eq!(shown(&b).await, "22");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_is_visible_while_redis_answers_reads_but_refuses_writes() {
    let redis = RedisServer::start();
    let world = World::new();
    let (a, b, editor) = world.two_readers_and_an_editor(&redis.url()).await;
    assert_eq!(shown(&a).await, "10");
    assert_eq!(shown(&b).await, "10");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shown(&a).await, "10");

    // Out of memory with `noeviction`: reads answer, every write (a bump too) fails, so
    // the shared generation misses the edit. The readers' own writes fail too: they stop
    // trusting the shared generations and fall back to their own (the local TTL bound).
    redis.cli(&["config", "set", "maxmemory", "1"]);
    edit(&editor, "31").await;
    for _ in 0..5 {
        assert_eq!(shown(&a).await, "31");
        assert_eq!(shown(&b).await, "31");
    }
    edit(&editor, "32").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..5 {
        assert_eq!(shown(&a).await, "32");
        assert_eq!(shown(&b).await, "32");
    }
    redis.cli(&["config", "set", "maxmemory", "0"]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    edit(&editor, "33").await;
    assert_eq!(shown(&a).await, "33");
    assert_eq!(shown(&b).await, "33");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_limit_is_refused_with_an_honest_retry_after_across_instances() {
    let redis = RedisServer::start();
    let world = World::new();
    let quota = Quota::new(2, 10).unwrap();
    let (a, b) = (
        world.reader(&redis.url(), quota).await,
        world.reader(&redis.url(), quota).await,
    );

    // Ten in the burst, split over both instances; the eleventh is refused on either.
    let mut allowed = 0;
    for i in 0..10 {
        let reader = if i % 2 == 0 { &a } else { &b };
        let answer = send(&reader.router, "GET", PAGE, None).await;
        assert_eq!(answer.status, StatusCode::OK, "request {i}");
        assert_eq!(answer.headers["ratelimit-limit"], "10");
        allowed += 1;
    }
    assert_eq!(allowed, 10);
    for reader in [&a, &b] {
        let answer = send(&reader.router, "GET", PAGE, None).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.body["status"], 429);
        assert_eq!(answer.headers["ratelimit-remaining"], "0");
        assert_eq!(answer.headers["content-type"], "application/problem+json");
        let retry_after: u64 = answer.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            retry_after, 1,
            "one request every 500 ms: retry within a second"
        );
    }
    // Waiting as told is enough, on either instance.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        send(&b.router, "GET", PAGE, None).await.status,
        StatusCode::OK
    );

    // Without Redis the in-process limiter still limits, per instance.
    drop(redis);
    let mut statuses = Vec::new();
    for _ in 0..14 {
        statuses.push(send(&a.router, "GET", PAGE, None).await.status);
    }
    assert!(
        statuses[..10].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sku_ids_and_parameter_spellings_never_share_a_cached_page() {
    let redis = RedisServer::start();
    let world = World::new();
    // SKU ids that would collide in a naively joined key, each with its own quantity.
    let skus = ["a|b", "a", "a\",\"b", "a%7Cb", "é", "e\u{301}", "x y"];
    for (i, sku) in skus.iter().enumerate() {
        world.store.put_draft(
            &tenant("acme"),
            &SkuId::new(sku).unwrap(),
            day(1),
            Quantity::parse(&(100 + i).to_string()).unwrap(),
        );
    }
    let (a, b, _) = world.two_readers_and_an_editor(&redis.url()).await;
    let encode = |sku: &str| form_urlencoded::byte_serialize(sku.as_bytes()).collect::<String>();
    // Twice over, alternating readers and parameter order, so later reads are cache hits.
    for round in 0..2 {
        for (i, sku) in skus.iter().enumerate() {
            let reader = if (i + round) % 2 == 0 { &a } else { &b };
            let uri = if round == 0 {
                format!(
                    "/v1/forecast?sku_id={}&from=2026-01-01&to=2026-01-01",
                    encode(sku)
                )
            } else {
                format!(
                    "/v1/forecast?to=2026-01-01&from=2026-01-01&sku_id={}",
                    encode(sku)
                )
            };
            let answer = send(&reader.router, "GET", &uri, None).await;
            assert_eq!(answer.status, StatusCode::OK, "{sku}: {}", answer.body);
            let items = answer.body["items"].as_array().unwrap();
            assert_eq!(items.len(), 1, "{sku}");
            assert_eq!(items[0]["sku_id"], *sku);
            assert_eq!(items[0]["quantity"], 100 + i, "{sku}");
        }
    }
}
