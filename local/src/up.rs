//! `snowcast up`: the pipeline on this machine, without Docker or a cloud account.
//!
//! - An S3-compatible endpoint (s3s-fs over the data directory, buckets `bronze` and
//!   `silver`) turns every object created in bronze into the ObjectCreated notification S3
//!   would send, on a durable queue with SQS's semantics.
//! - The csv-to-parquet service, the Lambda's own code on its own thread (one core, as on
//!   Lambda), converts each notified object into silver through the AWS SDK against that
//!   endpoint and announces each batch on the durable load queue.
//! - With the `warehouse` feature: the snowpipe-notifier service hands each announced
//!   batch to the DuckDB loader (`warehouse::loader`), which loads it into the RAW tables
//!   and marks the tenants whose draft the model then rebuilds; and the forecast API (the
//!   router both API functions serve) answers on its own address over the same warehouse.
//!
//! A process killed at any point loses nothing and loads nothing twice: a notification is
//! on disk before the upload is answered; a conversion not finished is redone from its
//! notification on the next start (its output paths and announcement are idempotent); a
//! file's load commits with its load-history entry, and a path in the history is skipped.

use std::{
    net::SocketAddr,
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use clap::Args;
use futures::FutureExt;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder as ConnectionBuilder,
};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use s3s::{Body, HttpError, HttpResponse, auth::SimpleAuth, service::S3ServiceBuilder};
use serde_json::json;
use snowcast::{
    adapters::{
        aws::{
            self,
            s3::{S3Sink, S3Source, S3Uri},
        },
        local::queue::{LocalQueue, QueueSettings},
    },
    convert::ConvertSettings,
    error::{Error, Result},
    services::csv_to_parquet::{Ingest, IngestSettings},
};
use tokio::{net::TcpListener, time::Instant};

/// The bucket tenants upload to, and the one the converter writes.
const BRONZE: &str = "bronze";
const SILVER: &str = "silver";

/// As the SAM template wires the real queues: a conversion may take up to the function's
/// 15 minutes, and a notification that fails three times goes to the dead letters.
const EVENTS: QueueSettings = QueueSettings {
    visibility: Duration::from_secs(16 * 60),
    max_receives: 3,
};
const LOADS: QueueSettings = QueueSettings {
    visibility: Duration::from_secs(5 * 60),
    max_receives: 5,
};

/// How long one conversion may take (the Lambda's timeout).
const CONVERSION_TIME: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where buckets and queues live (default: the platform's data directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the S3 endpoint.
    #[arg(long, default_value = "127.0.0.1:9000")]
    s3_addr: SocketAddr,
    /// S3 access key clients sign with (the secret key is `SNOWCAST_S3_SECRET_KEY`, default
    /// `snowcast`).
    #[arg(long, default_value = "snowcast")]
    s3_access_key: String,
    /// Address of the forecast API (tokens: `snowcast token`).
    #[arg(long, default_value = "127.0.0.1:3000")]
    api_addr: SocketAddr,
    /// Upload a year of two tenants' sales (acme, globex), follow them to the forecast,
    /// then print the web page's address, a token and curl examples.
    #[arg(long)]
    demo: bool,
}

/// The data directory's layout.
struct Layout {
    objects: PathBuf,
    events: PathBuf,
    loads: PathBuf,
    #[cfg_attr(not(feature = "warehouse"), allow(dead_code))]
    warehouse: PathBuf,
}

impl Layout {
    fn create(root: &Path) -> Result<Self> {
        let layout = Layout {
            objects: root.join("s3"),
            events: root.join("queues").join("bronze-events"),
            loads: root.join("queues").join("loads"),
            warehouse: root.join("warehouse"),
        };
        for bucket in [BRONZE, SILVER] {
            let path = layout.objects.join(bucket);
            std::fs::create_dir_all(&path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        }
        Ok(layout)
    }
}

/// Runs the stack until interrupted.
pub async fn run(args: UpArgs) -> Result<ExitCode> {
    let root = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let layout = Layout::create(&root)?;
    // The functions' EMF records (CloudWatch's, in Lambda) would crowd the terminal.
    snowcast::lambda::metrics::emit_to_file(&root.join("metrics.jsonl"))?;
    let events = Arc::new(LocalQueue::open(&layout.events, EVENTS)?);
    let loads = Arc::new(LocalQueue::open(&layout.loads, LOADS)?);
    let secret_key = std::env::var("SNOWCAST_S3_SECRET_KEY").unwrap_or_else(|_| "snowcast".into());
    let listener = TcpListener::bind(args.s3_addr)
        .await
        .map_err(|e| Error::io(format!("listening on {}", args.s3_addr), e))?;
    let endpoint = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| Error::io("reading the S3 address", e))?
    );
    let s3 = S3Endpoint::new(
        &layout.objects,
        &args.s3_access_key,
        &secret_key,
        events.clone(),
    )?;
    // The same conversion settings as `snowcast convert` and the Lambda (memory budget,
    // threads, zstd level from the environment).
    let settings = IngestSettings {
        convert: ConvertSettings::from_env()?,
        ..IngestSettings::default()
    };
    let converter = spawn_converter(
        settings,
        endpoint.clone(),
        (args.s3_access_key.clone(), secret_key.clone()),
        events.clone(),
        loads.clone(),
    )?;
    let demo = if args.demo {
        Some(warehouse::Demo {
            s3: local_s3_client(&endpoint, args.s3_access_key.clone(), secret_key).await,
            events,
        })
    } else {
        None
    };
    let downstream = warehouse::start(&layout, &root, loads, args.api_addr, demo).await?;
    eprintln!(
        "snowcast up: data in {}\n  S3 endpoint {endpoint} (access key {}, buckets {BRONZE} and {SILVER})\n  \
         upload to s3://{BRONZE}/<tenant>/<dataset>/<name>.csv[.gz|.zst]; silver appears in s3://{SILVER}\n{}",
        root.display(),
        args.s3_access_key,
        downstream.describe(&root),
    );
    tokio::select! {
        served = s3.serve(listener) => served?,
        served = downstream.run() => served?,
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(converter);
    Ok(ExitCode::SUCCESS)
}

/// What runs after conversion: with the `warehouse` feature, loads, the model and the API.
#[cfg(feature = "warehouse")]
mod warehouse {
    use std::{
        collections::BTreeSet,
        net::SocketAddr,
        path::Path,
        sync::{Arc, Mutex, MutexGuard},
    };

    use futures::future::LocalBoxFuture;
    use snowcast::{
        adapters::local::{LocalDirSink, queue::LocalQueue},
        domain::forecast::TenantId,
        error::{Error, Result},
        services::{
            api::{cache::TieredGenerations, config::ServingConfig},
            quota_monitor::{
                QuotaMonitor, Settings,
                config::{Config, RequestWindow},
            },
            snowpipe_notifier::Notifier,
        },
    };
    use tokio::net::TcpListener;

    use super::{Layout, SILVER, drain};
    use crate::{
        demo, serve,
        token::LocalIssuer,
        warehouse::{
            Shared, Warehouse,
            loader::{DuckDbLoader, refresh_drafts},
            store::DuckDbForecastStore,
            usage::{DATABASE, FileAlerts, LocalUsage, RequestLog},
        },
    };

    /// The loader's batch, as the notifier's SQS trigger hands them over.
    const LOAD_BATCH: usize = 10;
    /// How often the quota monitor runs (its schedule in the template is 15 minutes; a
    /// local session is short).
    const QUOTA_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);

    /// What `--demo` needs besides the warehouse.
    pub struct Demo {
        /// A client of the S3 endpoint.
        pub s3: aws_sdk_s3::Client,
        /// The notifications queue (to follow conversions).
        pub events: Arc<LocalQueue>,
    }

    /// The running loader and API.
    pub struct Downstream {
        api: String,
        work: LocalBoxFuture<'static, Result<()>>,
    }

    impl Downstream {
        /// Runs until an error.
        pub async fn run(self) -> Result<()> {
            self.work.await
        }

        /// What a user needs to know to call the API.
        pub fn describe(&self, root: &Path) -> String {
            format!(
                "  warehouse {}\n  forecast API {}/v1/forecast (token: snowcast token --tenant <tenant> --data-dir {})\n  \
                 web page {}/#token=<token>",
                root.join("warehouse").join("snowcast.duckdb").display(),
                self.api,
                root.display(),
                self.api,
            )
        }
    }

    /// Opens the warehouse, binds the API, and returns the loader and API to run.
    pub async fn start(
        layout: &Layout,
        root: &Path,
        loads: Arc<LocalQueue>,
        api_addr: SocketAddr,
        demo: Option<Demo>,
    ) -> Result<Downstream> {
        let warehouse = Warehouse::open(&layout.warehouse)?;
        let loader = DuckDbLoader::new(warehouse.loads(), layout.objects.join(SILVER)).await?;
        let notifier = Notifier::new(Arc::new(loader));
        let issuer = Arc::new(LocalIssuer::open(root)?);
        let store = Arc::new(DuckDbForecastStore::open(&warehouse).await?);
        let requests = Arc::new(RequestLog::default());
        let (router, generations) = serve::router(
            store.clone(),
            issuer.clone(),
            requests.clone(),
            ServingConfig::from_env()?,
        );
        let quota = monitor_quotas(&warehouse, requests, root)?;
        let listener = TcpListener::bind(api_addr)
            .await
            .map_err(|e| Error::io(format!("listening on {api_addr}"), e))?;
        let api = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| Error::io("reading the API address", e))?
        );
        let demo: LocalBoxFuture<'static, Result<()>> = match demo {
            Some(Demo { s3, events }) => {
                let pipeline = demo::Pipeline {
                    s3,
                    events,
                    loads: loads.clone(),
                    warehouse: warehouse.api(),
                    api: api.clone(),
                };
                Box::pin(async move {
                    if let Err(error) = demo::run(pipeline, &issuer).await {
                        eprintln!("snowcast up --demo: {}", snowcast::error::chain(&error));
                    }
                    // The stack keeps serving.
                    std::future::pending().await
                })
            }
            None => Box::pin(std::future::pending()),
        };
        // Marks left by a process that stopped between a load and its refresh.
        let drafts = Drafts {
            connection: warehouse.loads(),
            store,
            generations,
            unread: Default::default(),
        };
        drafts.refresh().await;
        let load = async move {
            drain(&loads, LOAD_BATCH, |event| {
                let (notifier, drafts) = (&notifier, &drafts);
                async move {
                    let answer = notifier.handle(event).await;
                    drafts.refresh().await;
                    answer
                }
            })
            .await;
            Ok(())
        };
        let work = Box::pin(async move {
            tokio::select! {
                served = serve::serve(listener, router) => served,
                loaded = load => loaded,
                monitored = quota => monitored,
                demonstrated = demo => demonstrated,
            }
        });
        Ok(Downstream { api, work })
    }

    /// The quota monitor on a timer: the hybrid tables' storage and the API's request
    /// rates against the quotas of `SNOWCAST_QUOTA_*`, its history in `DIR/quota`, alerts
    /// in `DIR/alerts.jsonl` and on stderr.
    fn monitor_quotas(
        warehouse: &Warehouse,
        requests: Arc<RequestLog>,
        root: &Path,
    ) -> Result<impl std::future::Future<Output = Result<()>> + use<>> {
        let config = Config::from_env()?;
        let monitor = QuotaMonitor::new(
            // Its table scans wait behind loads rather than hold up the API's reads.
            Arc::new(LocalUsage::new(warehouse.loads(), requests)),
            Arc::new(LocalDirSink::new(root.join("quota"))),
            Some(Arc::new(FileAlerts::new(root.join("alerts.jsonl")))),
            Settings {
                databases: vec![DATABASE.to_string()],
                quotas: config.quotas,
                // The API counts its own requests: nothing lags.
                window: RequestWindow {
                    window: config.window.window,
                    lag: chrono::Duration::zero(),
                },
            },
        );
        Ok(async move {
            let mut timer = tokio::time::interval(QUOTA_PERIOD);
            loop {
                timer.tick().await;
                let databases = [DATABASE.to_string()];
                let (_, failures) = monitor.run(&databases, chrono::Utc::now(), true).await;
                for (database, error) in failures {
                    tracing::error!(database, %error, "the quota check failed");
                }
            }
        })
    }

    /// What a model refresh changes: the warehouse's drafts, the API store's copy of them and
    /// the generations of the tenants' cached pages.
    struct Drafts {
        connection: Shared,
        store: Arc<DuckDbForecastStore>,
        generations: Arc<TieredGenerations>,
        /// Tenants whose new draft the store has not read yet (its read failed): tried
        /// again at the next refresh, which would not name them otherwise.
        unread: Mutex<BTreeSet<TenantId>>,
    }

    impl Drafts {
        /// Rebuilds the draft of tenants with new sales; the store reads it again, and their
        /// cached pages are then stale.
        async fn refresh(&self) {
            let rebuilt = refresh_drafts(&self.connection).await.unwrap_or_else(|error| {
                tracing::error!(%error, "the model refresh failed; it runs again after the next load");
                Vec::new()
            });
            let mut tenants = std::mem::take(&mut *self.unread());
            tenants.extend(rebuilt);
            if tenants.is_empty() {
                return;
            }
            let tenants: Vec<TenantId> = tenants.into_iter().collect();
            if let Err(error) = self.store.reload_drafts(&tenants).await {
                tracing::error!(%error, "the API could not read the new draft; it tries again after the next load");
                return self.unread().extend(tenants);
            }
            for tenant in tenants {
                tracing::info!(tenant = tenant.as_str(), "draft rebuilt");
                self.generations.bump(&tenant).await;
            }
        }

        fn unread(&self) -> MutexGuard<'_, BTreeSet<TenantId>> {
            self.unread
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }
}

/// Without the `warehouse` feature: announced batches wait on the load queue.
#[cfg(not(feature = "warehouse"))]
mod warehouse {
    use std::{net::SocketAddr, path::Path, sync::Arc};

    use snowcast::{
        adapters::local::queue::LocalQueue,
        error::{Error, Result},
    };

    use super::Layout;

    pub struct Downstream;

    impl Downstream {
        pub async fn run(self) -> Result<()> {
            std::future::pending().await
        }

        pub fn describe(&self, root: &Path) -> String {
            format!(
                "  built without the warehouse feature: converted batches wait in {} (build \
                 with `--features warehouse` to load them and serve the API)",
                root.join("queues").join("loads").display()
            )
        }
    }

    /// `--demo` needs the warehouse: this build refuses it.
    #[allow(dead_code)]
    pub struct Demo {
        pub s3: aws_sdk_s3::Client,
        pub events: Arc<LocalQueue>,
    }

    pub async fn start(
        _layout: &Layout,
        _root: &Path,
        _loads: Arc<LocalQueue>,
        _api_addr: SocketAddr,
        demo: Option<Demo>,
    ) -> Result<Downstream> {
        match demo {
            Some(_) => Err(Error::invalid(
                "--demo",
                "this build has no warehouse; build with `--features warehouse`",
            )),
            None => Ok(Downstream),
        }
    }
}

/// `$XDG_DATA_HOME/snowcast`, else `~/.local/share/snowcast`.
pub fn default_data_dir() -> Result<PathBuf> {
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(data).join("snowcast"));
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".local/share/snowcast"))
        .ok_or_else(|| {
            Error::invalid(
                "data directory",
                "neither XDG_DATA_HOME nor HOME is set; pass --data-dir",
            )
        })
}

/// The S3 endpoint: s3s-fs, plus the notifications S3 would send for bronze.
#[derive(Clone)]
struct S3Endpoint {
    s3: s3s::service::S3Service,
    objects: PathBuf,
    events: Arc<LocalQueue>,
}

impl S3Endpoint {
    fn new(
        objects: &Path,
        access_key: &str,
        secret_key: &str,
        events: Arc<LocalQueue>,
    ) -> Result<Self> {
        let fs = s3s_fs::FileSystem::new(objects).map_err(|e| {
            Error::invalid(
                "S3 endpoint",
                format!("{} cannot hold the buckets: {e:?}", objects.display()),
            )
        })?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
        Ok(S3Endpoint {
            s3: builder.build(),
            objects: objects.to_path_buf(),
            events,
        })
    }

    async fn serve(self, listener: TcpListener) -> Result<()> {
        let http = ConnectionBuilder::new(TokioExecutor::new());
        loop {
            let (socket, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "S3 endpoint: accepting a connection failed");
                    continue;
                }
            };
            let connection = http
                .serve_connection(
                    TokioIo::new(socket),
                    hyper::service::service_fn({
                        let endpoint = self.clone();
                        move |request| endpoint.clone().handle(request)
                    }),
                )
                .into_owned();
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "S3 endpoint: connection ended");
                }
            });
        }
    }

    /// Serves one request; when it created an object in bronze, the notification is on the
    /// events queue before the client hears of success (a failure to queue it answers 500,
    /// and the client's retry of the same upload notifies again).
    async fn handle(
        self,
        request: http::Request<hyper::body::Incoming>,
    ) -> std::result::Result<HttpResponse, HttpError> {
        if let Some(refusal) = check_addressing(&request) {
            return Ok(refusal);
        }
        let created = created_key(&request);
        let if_match = request
            .headers()
            .get(http::header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_string());
        let response = self.s3.call(request.map(Body::from)).await?;
        // s3s-fs ignores If-Match on reads; the converter relies on it to skip an object
        // replaced since its notification (it would read the new bytes under the old
        // event's identity and load them twice).
        if let Some(expected) = if_match.filter(|_| response.status().is_success())
            && etag_of(&response).is_some_and(|etag| etag != expected && expected != "*")
        {
            return Ok(s3_error(
                http::StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "the object changed: its ETag no longer matches If-Match",
            ));
        }
        let Some((key, event_name)) = created.filter(|_| response.status().is_success()) else {
            return Ok(response);
        };
        match self.notify(&key, event_name, etag_of(&response)) {
            Ok(()) => Ok(response),
            Err(error) => {
                tracing::error!(%error, key, "could not queue the ObjectCreated notification");
                Ok(s3_error(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "the upload was stored but its notification could not be queued; retry \
                     the upload",
                ))
            }
        }
    }

    fn notify(&self, key: &str, event_name: &str, etag: Option<String>) -> Result<()> {
        let path = self.objects.join(BRONZE).join(key);
        let size = std::fs::metadata(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
            .len();
        let notification = json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "local",
            "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "eventName": event_name,
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": BRONZE, "arn": format!("arn:aws:s3:::{BRONZE}")},
                "object": {
                    // S3 sends keys form-URL-encoded.
                    "key": utf8_percent_encode(key, NON_ALPHANUMERIC).to_string(),
                    "size": size,
                    "eTag": etag,
                },
            },
        }]});
        self.events.send_body(&notification.to_string()).map(|_| ())
    }
}

/// Longest key accepted: s3s-fs keeps each object's metadata in a file named after the
/// base64 of bucket and key, and file names stop at 255 bytes (S3 itself allows 1,024).
const MAX_KEY_BYTES: usize = 100;

/// The refusal of what s3s-fs would resolve outside the bucket, or store under another name: a
/// key (or copy source) with `.`, `..` or empty path segments, and keys too long for it.
fn check_addressing<B>(request: &http::Request<B>) -> Option<HttpResponse> {
    let copy_source = request
        .headers()
        .get("x-amz-copy-source")
        .and_then(|v| v.to_str().ok());
    for raw in [Some(request.uri().path()), copy_source]
        .into_iter()
        .flatten()
    {
        let Ok(path) = percent_decode_str(raw).decode_utf8() else {
            return Some(s3_error(
                http::StatusCode::BAD_REQUEST,
                "InvalidURI",
                "the path is not UTF-8",
            ));
        };
        let path = path.trim_start_matches('/');
        let Some((_, key)) = path.split_once('/') else {
            continue; // a bucket, or the service
        };
        let segments: Vec<&str> = key.split('/').collect();
        let (last, inner) = segments.split_last().unwrap_or((&"", &[]));
        if inner
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == "..")
            || *last == "."
            || *last == ".."
        {
            return Some(s3_error(
                http::StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "object keys with `.`, `..` or empty path segments are refused by the local stack",
            ));
        }
        if key.len() > MAX_KEY_BYTES {
            return Some(s3_error(
                http::StatusCode::BAD_REQUEST,
                "KeyTooLongError",
                "the local stack accepts keys of at most 100 bytes",
            ));
        }
    }
    None
}

fn etag_of(response: &HttpResponse) -> Option<String> {
    response
        .headers()
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches('"').to_string())
}

/// An S3 error response.
fn s3_error(status: http::StatusCode, code: &str, message: &str) -> HttpResponse {
    let mut response = HttpResponse::new(Body::from(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    response
}

/// Query parameters of an object PUT that does not create the object: an upload part, or
/// its ACL, tags, retention or legal hold.
const NOT_CREATING: [&str; 6] = [
    "partNumber",
    "uploadId",
    "acl",
    "tagging",
    "retention",
    "legal-hold",
];

/// The bronze key a request creates an object at, and S3's event name for it: PutObject
/// (and CopyObject) is a PUT on `/bronze/<key>` that is not an upload part;
/// CompleteMultipartUpload is a POST with an `uploadId`. Path-style addressing only (what
/// the SDKs use for an endpoint given by IP address).
fn created_key<B>(request: &http::Request<B>) -> Option<(String, &'static str)> {
    let uri = request.uri();
    let raw = uri.path().strip_prefix(&format!("/{BRONZE}/"))?;
    let key = percent_decode_str(raw).decode_utf8().ok()?.into_owned();
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            q.split('&')
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (name.to_string(), value.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let has = |name: &str| query.iter().any(|(n, _)| n == name);
    let event = match *request.method() {
        // A part of a multipart upload, or a change of the object's settings.
        http::Method::PUT if NOT_CREATING.iter().any(|name| has(name)) => return None,
        http::Method::PUT if request.headers().contains_key("x-amz-copy-source") => {
            "ObjectCreated:Copy"
        }
        // With or without the `x-id=PutObject` the AWS SDKs for Rust, Go and JS add.
        http::Method::PUT => "ObjectCreated:Put",
        http::Method::POST if has("uploadId") => "ObjectCreated:CompleteMultipartUpload",
        _ => return None,
    };
    (!key.is_empty() && !key.ends_with('/')).then_some((key, event))
}

/// An S3 client of the local endpoint, signing with the stack's keys.
async fn local_s3_client(
    endpoint: &str,
    access_key: String,
    secret_key: String,
) -> aws_sdk_s3::Client {
    let credentials =
        aws_sdk_s3::config::Credentials::new(access_key, secret_key, None, None, "snowcast-up");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .http_client(aws::aws_endpoints_client())
        .load()
        .await;
    aws::s3_client(&sdk)
}

/// Starts the converter on a thread of its own, with its own single-threaded runtime (a
/// conversion uses one core and would otherwise hold up the S3 endpoint it reads from).
fn spawn_converter(
    settings: IngestSettings,
    endpoint: String,
    (access_key, secret_key): (String, String),
    events: Arc<LocalQueue>,
    loads: Arc<LocalQueue>,
) -> Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the converter's runtime", e))?;
    std::thread::Builder::new()
        .name("converter".into())
        .spawn(move || {
            runtime.block_on(async move {
                let s3 = local_s3_client(&endpoint, access_key, secret_key).await;
                let silver = match S3Uri::root(SILVER) {
                    Ok(silver) => silver,
                    Err(error) => return tracing::error!(%error, "silver bucket"),
                };
                let ingest = Ingest::new(
                    Arc::new(S3Source::new(s3.clone())),
                    Arc::new(S3Sink::new(s3, silver)),
                    loads,
                    settings,
                );
                convert_forever(&ingest, &events).await;
            });
        })
        .map_err(|e| Error::io("starting the converter thread", e))
}

/// Takes notifications one at a time, as the Lambda's SQS trigger would hand them over.
async fn convert_forever(ingest: &Ingest, events: &LocalQueue) {
    drain(events, 1, |event| {
        ingest.handle(event, Instant::now() + CONVERSION_TIME)
    })
    .await;
}

/// Hands a queue's messages to a function's SQS handler, up to `batch` at a time, as an
/// event source mapping does, and deletes each one the handler did not report failed
/// (`batchItemFailures`); a handler error or panic fails the whole batch, whose messages
/// come back after the visibility timeout (then go to the dead letters).
async fn drain<F, Fut>(queue: &LocalQueue, batch: usize, mut handle: F)
where
    F: FnMut(serde_json::Value) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value>>,
{
    loop {
        let received = match queue.receive(batch) {
            Ok(received) => received,
            Err(error) => {
                tracing::error!(%error, "reading a queue");
                Vec::new()
            }
        };
        if received.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let records: Vec<serde_json::Value> = received
            .iter()
            .map(|message| {
                json!({
                    "messageId": message.receipt,
                    "body": message.body,
                    "eventSource": "aws:sqs",
                    "attributes": {"ApproximateReceiveCount": message.receive_count.to_string()},
                })
            })
            .collect();
        let answer = AssertUnwindSafe(handle(json!({ "Records": records })))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(Error::invalid("queue handler", "the handler panicked")));
        let failed: Vec<&str> = match &answer {
            Ok(answer) => answer["batchItemFailures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|failure| failure["itemIdentifier"].as_str())
                .collect(),
            Err(error) => {
                tracing::error!(%error, "a batch failed; its messages will be retried");
                received.iter().map(|m| m.receipt.as_str()).collect()
            }
        };
        for message in &received {
            if !failed.contains(&message.receipt.as_str())
                && let Err(error) = queue.delete(&message.receipt)
            {
                tracing::error!(%error, "deleting a handled message");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(method: &str, uri: &str, copy: bool) -> Option<(String, &'static str)> {
        let mut request = http::Request::builder().method(method).uri(uri);
        if copy {
            request = request.header("x-amz-copy-source", "/bronze/a/sales/x.csv");
        }
        created_key(&request.body(()).unwrap())
    }

    #[test]
    fn every_sdks_put_notifies_and_settings_and_parts_do_not() {
        let put = Some(("acme/sales/f.csv".to_string(), "ObjectCreated:Put"));
        assert_eq!(created("PUT", "/bronze/acme/sales/f.csv", false), put);
        assert_eq!(
            created("PUT", "/bronze/acme/sales/f.csv?x-id=PutObject", false),
            put
        );
        assert_eq!(
            created("PUT", "/bronze/acme/sales/f.csv?x-id=CopyObject", true).map(|c| c.1),
            Some("ObjectCreated:Copy")
        );
        assert_eq!(
            created(
                "POST",
                "/bronze/acme/sales/f.csv?uploadId=u&x-id=CompleteMultipartUpload",
                false
            )
            .map(|c| c.1),
            Some("ObjectCreated:CompleteMultipartUpload")
        );
        for uri in [
            "/bronze/acme/sales/f.csv?partNumber=1&uploadId=u&x-id=UploadPart",
            "/bronze/acme/sales/f.csv?tagging",
            "/bronze/acme/sales/f.csv?acl",
            "/silver/acme/sales/f.csv",
            "/bronze/acme/sales/",
        ] {
            assert_eq!(created("PUT", uri, false), None, "{uri}");
        }
        assert_eq!(
            created("POST", "/bronze/acme/sales/f.csv?uploads", false),
            None
        );
    }
}
