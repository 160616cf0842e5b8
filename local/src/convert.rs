//! `snowcast convert INPUT --tenant T --dataset D --out OUT [--contract FILE]`

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use clap::Args;
use snowcast::{
    Error, Result,
    adapters::{
        aws::{
            self,
            s3::{S3Sink, S3Source, S3Uri},
        },
        local::{FileInput, LocalDirSink},
    },
    convert::{ConvertSettings, Converter, Progress},
    domain::{
        contract::Contract,
        keys::{BronzeKey, Scope, SourceId},
    },
    ports::storage::{Input, ObjectSink, open_pinned},
};

use crate::progress::{self, ConvertDisplay};

#[derive(Args)]
pub struct ConvertArgs {
    /// CSV to convert (plain, .gz or .zst): a local path or s3://bucket/key.
    input: String,
    /// Tenant that owns the file.
    #[arg(long)]
    tenant: String,
    /// Dataset the file belongs to (selects the built-in contract).
    #[arg(long)]
    dataset: String,
    /// Output root: a local directory or s3://bucket[/prefix].
    #[arg(long)]
    out: String,
    /// Contract file to use instead of the dataset's built-in contract.
    #[arg(long)]
    contract: Option<PathBuf>,
    /// Reject files of datasets that have no contract instead of sniffing their types.
    #[arg(long)]
    strict: bool,
    /// Memory budget in MiB (default: SNOWCAST_MEMORY_BUDGET_MB, the Lambda's memory, or 256).
    #[arg(long)]
    memory_budget_mb: Option<usize>,
    /// S3-compatible endpoint for s3:// input and output (MinIO, an emulator).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
}

pub async fn run(args: ConvertArgs) -> Result<ExitCode> {
    let mut settings = ConvertSettings::from_env()?;
    if let Some(mb) = args.memory_budget_mb {
        settings.memory_budget = mb << 20;
    }
    let input_uri = S3Uri::parse(&args.input).transpose()?;
    let out_uri = S3Uri::parse(&args.out).transpose()?;
    let s3 = if input_uri.is_some() || out_uri.is_some() {
        Some(aws::s3_client(
            &aws::load_config(args.endpoint_url.as_deref()).await,
        ))
    } else {
        None
    };
    let scope = Scope::new(&args.tenant, &args.dataset)?;
    let (source, input, last_modified, size) = match (&input_uri, &s3) {
        (Some(uri), Some(client)) => {
            check_layout(uri, &scope)?;
            open_s3(client, uri).await?
        }
        _ => open_local(&args.input)?,
    };
    // On a terminal, a progress line on stderr (stdout stays the manifest alone).
    let progress = progress::wanted().then(|| Arc::new(Progress::default()));
    settings.progress = progress.clone();
    let mut converter = Converter::new(scope, source)?
        .with_strict(args.strict)
        .with_settings(settings);
    if let Some(at) = last_modified {
        converter = converter.with_ingested_at(at);
    }
    if let Some(path) = &args.contract {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading contract {}", path.display()), e))?;
        converter = converter.with_contract(Contract::from_file_text(path, &text)?);
    }
    let sink: Box<dyn ObjectSink> = match (out_uri, s3) {
        (Some(uri), Some(client)) => Box::new(S3Sink::new(client, uri)),
        _ => Box::new(LocalDirSink::new(absolute_dir(&args.out)?)),
    };
    let display = progress.map(|progress| ConvertDisplay::start(progress, size));
    let converted = converter.run(input.as_ref(), sink.as_ref()).await;
    if let Some(display) = display {
        display.finish(converted.as_ref().ok());
    }
    let manifest = converted?;
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    Ok(if manifest.is_accepted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The input's identity, bytes, modification time (S3) and size.
type Opening = (
    SourceId,
    Box<dyn Input>,
    Option<chrono::DateTime<chrono::Utc>>,
    u64,
);

/// An S3 input is a bronze object: its key names its tenant and dataset, and `--tenant` and
/// `--dataset` must agree, so a replay can never write one tenant's file as another's.
fn check_layout(uri: &S3Uri, scope: &Scope) -> Result<()> {
    let bronze = BronzeKey::parse(&uri.key).map_err(|reason| Error::invalid("input", reason))?;
    if &bronze.scope != scope {
        return Err(Error::invalid(
            "input",
            format!(
                "{uri} belongs to tenant {:?}, dataset {:?}; --tenant {:?} --dataset {:?} do not match",
                bronze.scope.tenant(),
                bronze.scope.dataset(),
                scope.tenant(),
                scope.dataset()
            ),
        ));
    }
    Ok(())
}

/// Opens an S3 object the way the Lambda does (the same pinned read, fingerprint and
/// `_ingested_at` from its Last-Modified time), so the CLI rewrites exactly the Lambda's
/// keys for the same object.
async fn open_s3(client: &aws_sdk_s3::Client, uri: &S3Uri) -> Result<Opening> {
    let source = Arc::new(S3Source::new(client.clone()));
    match open_pinned(source, &uri.bucket, &uri.key, None).await? {
        Some((meta, input)) => Ok((
            SourceId::s3(&uri.bucket, &uri.key, &meta.etag),
            Box::new(input),
            meta.last_modified,
            meta.size,
        )),
        None => Err(Error::ObjectStore {
            operation: "get",
            key: uri.to_string(),
            message: "no such object".into(),
        }),
    }
}

/// Creates the output directory and returns its absolute path, so manifests show full paths.
fn absolute_dir(dir: &str) -> Result<PathBuf> {
    let io = |e| Error::io(format!("creating output directory {dir}"), e);
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::canonicalize(dir).map_err(io)
}

/// Opens a local file; its fingerprint is its absolute path, size and modification time.
fn open_local(path: &str) -> Result<Opening> {
    let io = |e| Error::io(format!("opening {path}"), e);
    let absolute = std::fs::canonicalize(path).map_err(io)?;
    let metadata = std::fs::metadata(&absolute).map_err(io)?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let source = SourceId::local(&absolute.display().to_string(), metadata.len(), modified);
    Ok((source, Box::new(FileInput(absolute)), None, metadata.len()))
}
