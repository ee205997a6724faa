//! The command line: `tributary [serve]`, `migrate`, `schema`, `import`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::DatabaseConnection;

use crate::import::{self, Entity};
use crate::settings::Settings;
use crate::startup::Application;
use crate::{db, graphql, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "tributary",
    version,
    about = "Pulls data from many providers into typed tables and serves it over GraphQL"
)]
pub struct Cli {
    /// TOML settings file; `TRIBUTARY_*` variables and `DATABASE_URL` override it.
    #[arg(long, global = true, env = "TRIBUTARY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print the GraphQL schema (SDL) to stdout.
    Schema,
    /// Import a file in an entity's canonical format: ethereum-etl / BigQuery CSV or JSON lines
    /// for tokens and transfers, optionally gzipped. Exit status 2 when rows were rejected.
    Import {
        /// What the file holds.
        #[arg(value_enum)]
        entity: Entity,
        /// The file (`.csv`, `.jsonl`, `.json`; `.gz` compressed or not).
        file: PathBuf,
    },
}

/// Exit status when a command finished but rejected some input rows.
pub const EXIT_REJECTED: u8 = 2;

/// Runs the parsed command. Errors come back to `main`, which prints them on one line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { entity, file } => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(settings.log_format);
            let db = db::connect(&settings).await?;
            db::migrate(&db, &settings).await?;
            run_import(&db, entity, &file).await
        }
        Command::Migrate => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(settings.log_format);
            let db = db::connect(&settings).await?;
            db::migrate(&db, &settings).await?;
            let pending = db::pending_migrations(&db).await?;
            tracing::info!(pending = pending.len(), "migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(settings.log_format);
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs an import with a progress bar (on a terminal) and prints a summary line.
async fn run_import(
    db: &DatabaseConnection,
    entity: Entity,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    // indicatif draws only when stderr is a terminal.
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} [{wide_bar}] {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let summary = import::import_file(db, entity, file, |p| {
        bar.set_position(p.bytes);
        let rate = p.rows as f64 / started.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!("{} rows, {:.0} rows/s", p.rows, rate));
    })
    .await;
    bar.finish_and_clear();
    let summary = summary?;
    let c = summary.counts;
    println!(
        "imported {} rows from {} in {:.1} s ({:.0} rows/s): {} inserted, {} updated, {} unchanged, {} rejected (run {})",
        summary.rows,
        file.display(),
        summary.elapsed.as_secs_f64(),
        summary.rows as f64 / summary.elapsed.as_secs_f64().max(0.001),
        c.inserted,
        c.updated,
        c.unchanged,
        summary.rejected,
        summary.run_id,
    );
    if summary.rejected > 0 {
        println!(
            "rejected rows are in rejected_records (provider {:?}, run {}) with their line numbers and reasons",
            entity.provider(),
            summary.run_id
        );
        return Ok(ExitCode::from(EXIT_REJECTED));
    }
    Ok(ExitCode::SUCCESS)
}
