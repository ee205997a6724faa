//! The command line: `tributary [serve]`, `migrate`, `schema`, `import`, `providers`, `ingest`,
//! `check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::DatabaseConnection;

use crate::entities::EntityKind;
use crate::hosts::HostRules;
use crate::import;
use crate::ingest;
use crate::providers::load::load_dir;
use crate::providers::{Provider, Source};
use crate::settings::Settings;
use crate::sources::outbound::Outbound;
use crate::startup::Application;
use crate::store::runs::{self, RunMode, RunTrigger};
use crate::store::{invariants, leases, provider_state};
use crate::task::AbortOnDrop;
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
    /// for tokens and transfers, `name,sku,description` CSV for products; optionally gzipped.
    /// Exit status 2 when rows were rejected.
    Import {
        /// What the file holds: `token`, `transfer` or `product` (plurals too).
        #[arg(value_parser = importable_kind)]
        entity: EntityKind,
        /// The file (`.csv`, `.jsonl`, `.json`; `.gz` compressed or not).
        file: PathBuf,
    },
    /// List the providers in `providers_dir`, validating every file, with each one's last run.
    Providers {
        /// Print the provider file's JSON Schema instead (for editors), and nothing else.
        #[arg(long)]
        schema: bool,
    },
    /// Check the store's invariants (run counters, rejections, unfinished runs, product
    /// counts); prints each one that does not hold. Exit status 1 when any does not.
    Check,
    /// Run one provider now, in the foreground, with progress and a summary.
    Ingest {
        /// The provider's name.
        provider: String,
        /// `incremental` continues from the checkpoint an interrupted run left; `full` starts
        /// over; `renormalize` rebuilds rows from stored raw payloads without fetching.
        #[arg(long, value_enum, default_value = "incremental")]
        mode: ModeArg,
        /// Fetch and map without writing anything: print each row it would write and each
        /// rejection as a JSON line on stdout, a summary on stderr. Exit status 2 when records
        /// were rejected.
        #[arg(long)]
        dry_run: bool,
        /// With `--dry-run`: stop after this many rows and rejections together.
        #[arg(long, value_name = "N", requires = "dry_run", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    Incremental,
    Full,
    Renormalize,
}

impl From<ModeArg> for RunMode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Incremental => RunMode::Incremental,
            ModeArg::Full => RunMode::Full,
            ModeArg::Renormalize => RunMode::Renormalize,
        }
    }
}

/// A kind `tributary import` reads, by its name or the plural (`transfers`).
fn importable_kind(name: &str) -> Result<EntityKind, String> {
    let kind = EntityKind::from_name(name)
        .or_else(|| name.strip_suffix('s').and_then(EntityKind::from_name));
    match kind {
        Some(kind) if kind.import().is_some() => Ok(kind),
        _ => Err(format!("expected one of {}", import::importable())),
    }
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
        Command::Providers { schema: true } => {
            let schema = crate::providers::shape::provider_file_schema();
            println!("{}", serde_json::to_string_pretty(schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Providers { schema: false } => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(settings.log_format);
            let providers = load_dir(&settings.providers_dir)?;
            // The files are checked without a database; runs and cursors need one.
            let db = match connect_migrated(&settings).await {
                Ok(db) => Some(db),
                Err(error) => {
                    eprintln!("note: last runs and cursors not shown: {error:#}");
                    None
                }
            };
            for provider in &providers {
                let state = match &db {
                    Some(db) => {
                        let last = runs::last_for(db, &provider.name).await?;
                        let last = last.map_or_else(
                            || "never run".to_string(),
                            |r| {
                                format!(
                                    "last run {} {} ({} fetched, {} rejected)",
                                    r.id, r.status, r.fetched, r.rejected
                                )
                            },
                        );
                        match provider_state::cursor(db, &provider.name).await? {
                            Some(cursor) => format!("{last}, cursor {cursor}"),
                            None if is_incremental(provider) => format!("{last}, no cursor"),
                            None => last,
                        }
                    }
                    None => "-".to_string(),
                };
                println!(
                    "{:<24} {:<9} {:<9} {:<18} {}",
                    provider.name,
                    format!("{:?}", provider.def.entity).to_lowercase(),
                    provider.source_kind(),
                    provider.def.schedule.as_deref().unwrap_or("-"),
                    state
                );
            }
            println!(
                "{} provider(s) in {}, all valid",
                providers.len(),
                settings.providers_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest {
            provider,
            mode,
            dry_run,
            limit,
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(settings.log_format);
            let providers = load_dir(&settings.providers_dir)?;
            let Some(provider) = providers.into_iter().find(|p| p.name == provider) else {
                anyhow::bail!(
                    "no provider named {provider:?} in {}",
                    settings.providers_dir.display()
                );
            };
            if dry_run {
                return run_dry(&settings, &provider, mode.into(), limit).await;
            }
            let db = db::connect(&settings).await?;
            db::migrate(&db, &settings).await?;
            let outbound = settings.outbound.policy();
            run_ingest(
                &db,
                &provider,
                &settings.hosts.rules(),
                &outbound,
                mode.into(),
            )
            .await
        }
        Command::Check => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(settings.log_format);
            let db = db::connect(&settings).await?;
            let violations = invariants::check(&db).await?;
            for (rule, promise) in invariants::rules() {
                match violations.iter().find(|v| v.rule == rule) {
                    Some(v) => println!(
                        "FAIL {rule}: {} rows break \"{promise}\", such as: {}",
                        v.rows,
                        v.examples.join("; ")
                    ),
                    None => println!("ok   {rule}: {promise}"),
                }
            }
            Ok(if violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
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

/// Runs a provider once with a spinner (on a terminal) and prints a summary line.
async fn run_ingest(
    db: &DatabaseConnection,
    provider: &Provider,
    rules: &HostRules,
    outbound: &Outbound,
    mode: RunMode,
) -> anyhow::Result<ExitCode> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let cancel = ingest::Cancel::default();
    // Ctrl-C stops at the next batch boundary: what was committed stays (a `kafka` provider
    // consumes until then).
    let _stop = {
        let cancel = cancel.clone();
        AbortOnDrop(tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }))
    };
    let started = std::time::Instant::now();
    let consumer = matches!(provider.def.source, Source::Kafka(_));
    // Never beside a server's run of the same provider; a run a killed process left behind
    // is closed as interrupted (this run resumes from its checkpoint). A `kafka` provider is
    // consumed by every server at once: this process joins its consumer group beside them.
    let lease = if consumer {
        None
    } else {
        Some(leases::hold(db, &provider.name).await?)
    };
    let summary = async {
        if !consumer {
            runs::interrupt_unfinished(
                db,
                &provider.name,
                "the process running it stopped; the next run resumes from its checkpoint",
            )
            .await?;
        }
        let progress = |p: ingest::Progress| {
            bar.set_message(format!(
                "{} pages, {} records, {} rejected",
                p.pages, p.fetched, p.rejected
            ));
        };
        let ctx = ingest::RunContext {
            db,
            provider,
            host_rules: rules,
            outbound,
            mode,
            cancel: &cancel,
            on_progress: &progress,
        };
        ingest::run(&ctx, RunTrigger::Cli).await
    }
    .await;
    if let Some(lease) = lease {
        lease.release().await;
    }
    bar.finish_and_clear();
    let s = summary?;
    println!(
        "{} run {} {}: {} pages, {} records in {:.1} s: {} inserted, {} updated, {} unchanged, {} superseded, {} rejected",
        provider.name,
        s.run_id,
        s.status.as_str(),
        s.pages,
        s.fetched,
        started.elapsed().as_secs_f64(),
        s.counts.inserted,
        s.counts.updated,
        s.counts.unchanged,
        s.counts.superseded,
        s.rejected,
    );
    if let Some(error) = s.error {
        anyhow::bail!("{} run {} failed: {error}", provider.name, s.run_id);
    }
    if s.rejected > 0 {
        return Ok(ExitCode::from(EXIT_REJECTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects to the database and applies pending migrations.
async fn connect_migrated(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let db = db::connect(settings).await?;
    db::migrate(&db, settings).await?;
    Ok(db)
}

/// Whether the provider keeps an incremental cursor (`[source.incremental]`).
fn is_incremental(provider: &Provider) -> bool {
    matches!(&provider.def.source, Source::Http(http) if http.incremental.is_some())
}

/// `tributary ingest --dry-run`: fetches and maps, printing each row it would write and each
/// rejection as one JSON line on stdout and a summary on stderr; writes nothing. Only an
/// incremental provider's `INCREMENTAL` dry run reads the database (the stored cursor, where
/// its listing starts), and starts from `initial` when the database cannot be reached.
async fn run_dry(
    settings: &Settings,
    provider: &Provider,
    mode: RunMode,
    limit: Option<u64>,
) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let db = if is_incremental(provider) && mode == RunMode::Incremental {
        // Read only: no migrations, so a dry run leaves the database as it found it.
        match db::connect(settings).await {
            Ok(db) => Some(db),
            Err(error) => {
                eprintln!(
                    "note: the stored cursor cannot be read ({error:#}); the listing starts from `initial`"
                );
                None
            }
        }
    } else {
        None
    };
    let outbound = settings.outbound.policy();
    let rules = settings.hosts.rules();
    let run = ingest::dry_run::DryRun {
        provider,
        host_rules: &rules,
        outbound: &outbound,
        db: db.as_ref(),
        mode,
        limit,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut failed_write = None;
    let summary = {
        let mut emit =
            |outcome: ingest::dry_run::Outcome| match writeln!(out, "{}", outcome.to_json()) {
                Ok(()) => true,
                Err(error) => {
                    // A closed pipe (`| head`) ends the dry run quietly.
                    if error.kind() != std::io::ErrorKind::BrokenPipe {
                        failed_write = Some(error);
                    }
                    false
                }
            };
        ingest::dry_run::dry_run(&run, &mut emit).await
    };
    let flushed = out.flush();
    drop(out);
    if let Some(error) = failed_write {
        anyhow::bail!("writing to stdout: {error}");
    }
    if let Err(error) = flushed
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        anyhow::bail!("writing to stdout: {error}");
    }
    let s = summary.map_err(|e| anyhow::anyhow!("{} dry run failed: {e}", provider.name))?;
    let since = s
        .since
        .as_deref()
        .map(|mark| format!(", listing from cursor {mark}"))
        .unwrap_or_default();
    let stopped = if s.stopped {
        ", stopped at the limit"
    } else {
        ""
    };
    eprintln!(
        "{} dry run: {} rows, {} rejected from {} pages{since}{stopped}; nothing written",
        provider.name, s.rows, s.rejected, s.pages,
    );
    if s.rejected > 0 {
        return Ok(ExitCode::from(EXIT_REJECTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs an import with a progress bar (on a terminal) and prints a summary line.
async fn run_import(
    db: &DatabaseConnection,
    entity: EntityKind,
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
        "imported {} rows from {} in {:.1} s ({:.0} rows/s): {} inserted, {} updated, {} unchanged, {} superseded, {} rejected (run {})",
        summary.rows,
        file.display(),
        summary.elapsed.as_secs_f64(),
        summary.rows as f64 / summary.elapsed.as_secs_f64().max(0.001),
        c.inserted,
        c.updated,
        c.unchanged,
        c.superseded,
        summary.rejected,
        summary.run_id,
    );
    if summary.rejected > 0 {
        println!(
            "rejected rows are in rejected_records (provider {:?}, run {}) with their line numbers and reasons",
            entity.import_provider(),
            summary.run_id
        );
        return Ok(ExitCode::from(EXIT_REJECTED));
    }
    Ok(ExitCode::SUCCESS)
}
