//! `snowcast`: the command-line face of the library.
//!
//! Commands report errors in one place (`main`), as one line on stderr, and map outcomes to
//! exit codes: 0 success, 1 operational error, 2 the input was rejected.

mod convert;
#[cfg(feature = "warehouse")]
mod demo;
mod loads;
mod progress;
mod quota;
#[cfg(feature = "warehouse")]
mod serve;
mod snowflake;
// Checking tokens is the API's, which needs the warehouse.
#[cfg_attr(not(feature = "warehouse"), allow(dead_code))]
mod token;
mod up;
#[cfg(feature = "warehouse")]
mod warehouse;
#[cfg(feature = "warehouse")]
mod web;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "snowcast",
    version,
    about = "Tenant CSV -> Snowflake pipeline tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert one CSV to silver Parquet; prints the manifest as JSON.
    Convert(convert::ConvertArgs),
    /// Snowflake operator commands (same client and configuration as the Lambdas).
    #[command(subcommand)]
    Snowflake(snowflake::SnowflakeCommand),
    /// Hand one manifest's files to Snowpipe, as the notifier does (re-drive a load).
    Load(snowflake::LoadArgs),
    /// List the silver files Snowpipe failed to load, and re-drive them.
    Loads(loads::LoadsArgs),
    /// Print the Hybrid Table quota report (storage, request rates, throttling, projections).
    Quota(quota::QuotaArgs),
    /// Run the pipeline on this machine: S3 endpoint, conversion, loads into the local
    /// warehouse, the forecast model and the forecast API.
    Up(up::UpArgs),
    /// Print a bearer token the API of `snowcast up` accepts.
    Token(token::TokenArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SNOWCAST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return report(&e),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Convert(args) => convert::run(args).await,
            Command::Snowflake(command) => snowflake::run(command).await,
            Command::Load(args) => snowflake::load(args).await,
            Command::Loads(args) => loads::run(args).await,
            Command::Quota(args) => quota::run(args).await,
            Command::Up(args) => up::run(args).await,
            Command::Token(args) => token::run(args),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(error) => report(&error),
    }
}

/// Prints an error and its causes on one line; exit code 1.
fn report(error: &dyn std::error::Error) -> ExitCode {
    eprintln!("snowcast: {}", snowcast::error::chain(error));
    ExitCode::from(1)
}
