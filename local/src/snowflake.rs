//! Operator commands over the Lambdas' Snowflake client and configuration:
//! `snowcast snowflake jwt`, `snowcast snowflake sql`, `snowcast snowflake migrate` and
//! `snowcast load MANIFEST`.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use clap::{Args, Subcommand};
use snowcast::{
    Error, Result,
    adapters::{
        aws::{
            self,
            s3::{S3Sink, S3Uri},
            secrets::SecretsManagerSecret,
        },
        local::FileSecret,
        snowflake::{
            self,
            pipes::{PipeMap, SnowpipeLoader},
            script,
            session::Session,
            snowpipe::SnowpipeClient,
            sql::{Binding, SqlClient},
        },
    },
    domain::manifest::Manifest,
    ports::{secrets::SecretSource, storage::ObjectSink},
    services::snowpipe_notifier::Notifier,
};

/// Where the credentials are and which endpoints to use.
#[derive(Args)]
pub struct Connection {
    /// Credentials: a local JSON file, or a Secrets Manager secret (ARN or name).
    #[arg(long, env = "SNOWCAST_SNOWFLAKE_SECRET")]
    secret: String,
    /// Sends Snowflake requests here instead of the account URL (a proxy, a test server).
    #[arg(long, env = "SNOWCAST_SNOWFLAKE_BASE_URL")]
    pub base_url: Option<String>,
    /// AWS endpoint for Secrets Manager and S3 (an emulator).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
}

impl Connection {
    /// The Snowflake session: the secret read and its key parsed now.
    pub async fn session(&self) -> Result<Arc<Session>> {
        let source: Arc<dyn SecretSource> = if Path::new(&self.secret).is_file() {
            Arc::new(FileSecret(self.secret.clone().into()))
        } else {
            let config = aws::load_config(self.endpoint_url.as_deref()).await;
            Arc::new(SecretsManagerSecret::new(
                aws::secrets_client(&config),
                &self.secret,
            ))
        };
        Ok(Arc::new(Session::open(source).await?))
    }
}

#[derive(Subcommand)]
pub enum SnowflakeCommand {
    /// Prints a key-pair JWT (for curl checks against the account).
    Jwt {
        #[command(flatten)]
        connection: Connection,
    },
    /// Runs one statement through the SQL API v2; prints every row (all partitions) as a
    /// JSON line.
    Sql {
        /// The statement; `?` placeholders take the --bind values in order.
        statement: String,
        /// A bound value, TYPE:VALUE (TEXT:acme, FIXED:42, DATE:2024-03-01, NULL:TEXT).
        #[arg(long = "bind", value_name = "TYPE:VALUE")]
        bindings: Vec<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Applies the Snowflake DDL (`infra/snowflake`, built in) in file order. Every
    /// statement is idempotent, so running it again is safe; the connection's role must
    /// be allowed to run what the files say (see infra/snowflake/README.md).
    Migrate {
        /// Reads the files from this directory instead of the built-in copy.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Starts at the file with this prefix (`06` for the app layer only).
        #[arg(long)]
        from: Option<String>,
        /// Prints the statements instead of running them.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

/// The DDL of `infra/snowflake`, in order, built into the binary.
pub const MIGRATIONS: [(&str, &str); 11] = [
    (
        "01_database.sql",
        include_str!("../../infra/snowflake/01_database.sql"),
    ),
    (
        "02_stage.sql",
        include_str!("../../infra/snowflake/02_stage.sql"),
    ),
    (
        "03_tables.sql",
        include_str!("../../infra/snowflake/03_tables.sql"),
    ),
    (
        "04_pipes.sql",
        include_str!("../../infra/snowflake/04_pipes.sql"),
    ),
    (
        "05_loader_role.sql",
        include_str!("../../infra/snowflake/05_loader_role.sql"),
    ),
    (
        "06_app_tables.sql",
        include_str!("../../infra/snowflake/06_app_tables.sql"),
    ),
    (
        "07_app_procedures.sql",
        include_str!("../../infra/snowflake/07_app_procedures.sql"),
    ),
    (
        "08_api_role.sql",
        include_str!("../../infra/snowflake/08_api_role.sql"),
    ),
    (
        "09_monitor_role.sql",
        include_str!("../../infra/snowflake/09_monitor_role.sql"),
    ),
    (
        "10_forecast_model.sql",
        include_str!("../../infra/snowflake/10_forecast_model.sql"),
    ),
    (
        "11_api_sales.sql",
        include_str!("../../infra/snowflake/11_api_sales.sql"),
    ),
];

/// The migration files to apply: the built-in ones or a directory's `*.sql`, by name.
fn migration_files(dir: Option<&Path>, from: Option<&str>) -> Result<Vec<(String, String)>> {
    let mut files: Vec<(String, String)> = match dir {
        None => MIGRATIONS
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect(),
        Some(dir) => {
            let io = |source: std::io::Error| Error::Io {
                context: format!("reading {}", dir.display()),
                source,
            };
            let mut files = Vec::new();
            for entry in std::fs::read_dir(dir).map_err(io)? {
                let path = entry.map_err(io)?.path();
                if path.extension().is_some_and(|ext| ext == "sql") {
                    let name = path
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string();
                    files.push((name, std::fs::read_to_string(&path).map_err(io)?));
                }
            }
            files
        }
    };
    files.sort();
    files.retain(|(name, _)| from.is_none_or(|from| name.as_str() >= from));
    Ok(files)
}

async fn migrate(
    dir: Option<&Path>,
    from: Option<&str>,
    dry_run: bool,
    connection: &Connection,
) -> Result<ExitCode> {
    let files = migration_files(dir, from)?;
    let client = match dry_run {
        true => None,
        false => Some(sql_client(connection).await?),
    };
    for (name, text) in files {
        let statements = script::statements(&text);
        eprintln!("{name}: {} statements", statements.len());
        for statement in statements {
            match &client {
                None => println!("{statement};\n"),
                Some(client) => {
                    client
                        .execute(&statement, &[])
                        .await
                        .map_err(|error| Error::invalid("migration", format!("{name}: {error}")))?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn sql_client(connection: &Connection) -> Result<SqlClient> {
    Ok(SqlClient::new(
        snowflake::http_client()?,
        connection.session().await?,
        connection.base_url.clone(),
        "snowcast:cli",
    ))
}

pub async fn run(command: SnowflakeCommand) -> Result<ExitCode> {
    match command {
        SnowflakeCommand::Jwt { connection } => {
            let identity = connection.session().await?.identity().await;
            println!("{}", identity.signer.token()?);
            Ok(ExitCode::SUCCESS)
        }
        SnowflakeCommand::Sql {
            statement,
            bindings,
            connection,
        } => {
            let bindings = bindings
                .iter()
                .map(|b| Binding::parse(b))
                .collect::<Result<Vec<_>>>()?;
            let client = sql_client(&connection).await?;
            let result = client.execute(&statement, &bindings).await?;
            for row in result.rows {
                println!("{}", serde_json::Value::Object(row));
            }
            Ok(ExitCode::SUCCESS)
        }
        SnowflakeCommand::Migrate {
            dir,
            from,
            dry_run,
            connection,
        } => migrate(dir.as_deref(), from.as_deref(), dry_run, &connection).await,
    }
}

/// Which pipes load which datasets, as the notifier is configured.
#[derive(Args)]
pub struct PipeArgs {
    /// Pipes of datasets not named `<DATASET>_PIPE` (`dataset=DB.SCHEMA.PIPE,...`).
    #[arg(long, env = "SNOWCAST_PIPES", default_value = "")]
    pipes: String,
    /// `DB.SCHEMA` of the `<DATASET>_PIPE` pipes (default: the credentials' database and
    /// schema).
    #[arg(long, env = "SNOWCAST_PIPE_SCOPE")]
    pipe_scope: Option<String>,
    /// Datasets with a `<DATASET>_PIPE` (default: those with a built-in contract).
    #[arg(long, env = "SNOWCAST_PIPE_DATASETS")]
    pipe_datasets: Option<String>,
}

/// The notifier's service over `connection` and `pipes`, as the Lambda builds it.
pub async fn notifier(connection: &Connection, pipes: &PipeArgs) -> Result<Notifier> {
    let session = connection.session().await?;
    let scope = match &pipes.pipe_scope {
        Some(scope) => scope.clone(),
        None => {
            let identity = session.identity().await;
            format!("{}.{}", identity.database, identity.schema)
        }
    };
    let map = PipeMap::parse(&pipes.pipes, Some(scope), pipes.pipe_datasets.as_deref())?;
    let client = SnowpipeClient::new(
        snowflake::http_client()?,
        session,
        connection.base_url.clone(),
    );
    Ok(Notifier::new(Arc::new(SnowpipeLoader::new(client, map))))
}

/// `snowcast load MANIFEST`: what the notifier does for one manifest.
#[derive(Args)]
pub struct LoadArgs {
    /// Manifest to load: a local path or s3://bucket/key.
    manifest: String,
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    pipes: PipeArgs,
}

pub async fn load(args: LoadArgs) -> Result<ExitCode> {
    let manifest = read_manifest(&args.manifest, args.connection.endpoint_url.as_deref()).await?;
    let notifier = notifier(&args.connection, &args.pipes).await?;
    let messages = manifest
        .load_messages(&args.manifest)
        .into_iter()
        .map(|message| (args.manifest.clone(), message))
        .collect();
    let report = notifier.load(messages).await;
    println!(
        "{}",
        serde_json::json!({
            "files": report.files,
            "calls": report.calls,
            "retries": report.retries,
            "failed": report.failed,
            "without_pipe": report.without_pipe,
        })
    );
    Ok(
        if report.failed.is_empty() && report.without_pipe.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// Reads a manifest from a path or an `s3://` URI, through the same sinks the converter
/// writes with.
async fn read_manifest(location: &str, endpoint_url: Option<&str>) -> Result<Manifest> {
    let bytes = match S3Uri::parse(location).transpose()? {
        Some(uri) => {
            let s3 = aws::s3_client(&aws::load_config(endpoint_url).await);
            let bucket = S3Uri {
                bucket: uri.bucket.clone(),
                key: String::new(),
            };
            S3Sink::new(s3, bucket)
                .get(&uri.key)
                .await?
                .ok_or_else(|| Error::ObjectStore {
                    operation: "get",
                    key: location.to_string(),
                    message: "no such object".into(),
                })?
                .to_vec()
        }
        None => std::fs::read(location).map_err(|e| Error::io(format!("reading {location}"), e))?,
    };
    Ok(serde_json::from_slice(&bytes)?)
}
