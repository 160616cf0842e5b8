//! `snowcast convert INPUT --tenant T --dataset D --out OUT [--contract FILE]`

use std::{path::PathBuf, process::ExitCode};

use clap::Args;
use snowcast::{
    Error, Result, config,
    contract::Contract,
    convert::{ByteSource, Converter, SourceInfo, fingerprint},
    storage::LocalDirSink,
};

#[derive(Args)]
pub struct ConvertArgs {
    /// CSV to convert (plain, .gz or .zst): a local path.
    input: String,
    /// Tenant that owns the file.
    #[arg(long)]
    tenant: String,
    /// Dataset the file belongs to (selects the built-in contract).
    #[arg(long)]
    dataset: String,
    /// Output root: a local directory.
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
}

pub async fn run(args: ConvertArgs) -> Result<ExitCode> {
    let mut settings = config::convert_settings()?;
    if let Some(mb) = args.memory_budget_mb {
        settings.memory_budget = mb << 20;
    }
    let (source, input) = open_local(&args.input).await?;
    let mut converter = Converter::try_new(&args.tenant, &args.dataset, source)?
        .with_strict(args.strict)
        .with_settings(settings);
    if let Some(path) = &args.contract {
        converter = converter.with_contract(Contract::from_file(path)?);
    }
    let sink = LocalDirSink::new(absolute_dir(&args.out)?);
    let manifest = converter.run(input, &sink).await?;
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    Ok(if manifest.is_accepted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Creates the output directory and returns its absolute path, so manifests show full paths.
fn absolute_dir(dir: &str) -> Result<PathBuf> {
    let io = |e| Error::io(format!("creating output directory {dir}"), e);
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::canonicalize(dir).map_err(io)
}

/// Opens a local file; its fingerprint is its absolute path, size and modification time.
async fn open_local(path: &str) -> Result<(SourceInfo, ByteSource)> {
    let io = |e| Error::io(format!("opening {path}"), e);
    let absolute = std::fs::canonicalize(path).map_err(io)?;
    let file = tokio::fs::File::open(&absolute).await.map_err(io)?;
    let metadata = file.metadata().await.map_err(io)?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = absolute.display().to_string();
    let source = SourceInfo {
        fingerprint: fingerprint(&[&key, &metadata.len().to_string(), &modified.to_string()]),
        key,
    };
    Ok((source, Box::new(file)))
}
