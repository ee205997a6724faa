//! The command line: `tributary [serve]`, `tributary migrate`, `tributary schema`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
}

/// Runs the parsed command. Errors come back to `main`, which prints them on one line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Migrate => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(settings.log_format);
            let db = db::connect(&settings).await?;
            db::migrate(&db, &settings).await?;
            let pending = db::pending_migrations(&db).await?;
            tracing::info!(pending = pending.len(), "migrations applied");
            Ok(())
        }
        Command::Serve => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(settings.log_format);
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
    }
}
