//! Builds the application (database, schema, router, listener) and runs it until a shutdown
//! signal. Tests build it on port 0 and talk to it over real HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Policy;
use crate::db::replicas::Replicas;
use crate::events::kafka::KafkaSink;
use crate::events::sink::Sink;
use crate::events::writer::{EventWriter, WriterTask};
use crate::graphql::{self, GuardedSchema, ServerFacts};
use crate::providers::load_dir;
use crate::runner::Runner;
use crate::settings::EventSink;
use crate::settings::{DatabaseKind, Settings};
use crate::task::AbortOnDrop;
use crate::{db, graphiql, metrics, routes, sample, scheduler};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The primary: every write, and every read outside GraphQL queries and subscriptions.
    pub db: DatabaseConnection,
    /// The primary and the read replicas (`database.replica_urls`), for GraphQL and `/readyz`.
    pub replicas: Replicas,
    pub schema: GuardedSchema,
    pub metrics: PrometheusHandle,
    pub policy: Policy,
    pub runner: Runner,
    /// Where `/submit` and `submitEvent` hand accepted events (`events.sink`).
    pub events: Sink,
    /// Browser origins allowed besides the server's own (`http.cors_allowed_origins`).
    pub allowed_origins: std::sync::Arc<[String]>,
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    local_addr: SocketAddr,
    db: DatabaseConnection,
    replicas: Replicas,
    /// Where the data lives, for the startup log line (never the password).
    database: String,
    runner: Runner,
    run_schedules: bool,
    shutdown_grace: Duration,
    /// The group-commit writer's tasks, with the database sink.
    events: Option<WriterTask>,
    sink: Sink,
}

impl Application {
    /// Connects and migrates the database, builds the schema and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = db::connect(&settings).await?;
        db::migrate(&db, &settings).await?;
        if settings.sample_data
            && settings.database_kind() == DatabaseKind::Sqlite
            && sample::load_if_empty(&db).await?
        {
            tracing::info!("empty database: loaded the bundled ERC-20 sample (291 transfers)");
        }
        Self::build_with(settings, db).await
    }

    /// Like `build`, on a database connection the caller already migrated.
    pub async fn build_with(settings: Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let metrics = metrics::install().map_err(anyhow::Error::msg)?;
        let policy = Policy::from_settings(&settings)?;
        let providers = if settings.providers_dir.is_dir() {
            load_dir(&settings.providers_dir)?
        } else {
            tracing::info!(dir = %settings.providers_dir.display(), "no providers directory: no provider runs");
            Vec::new()
        };
        let runner = Runner::new(
            db.clone(),
            providers,
            settings.providers_dir.clone(),
            settings.hosts.rules(),
            settings.outbound.policy(),
            Duration::from_secs(settings.scheduler.lease_ttl_secs),
        );
        let facts = ServerFacts {
            database: settings.database_kind(),
            started_at: chrono::Utc::now(),
        };
        let (events, events_task) = match settings.events.sink {
            EventSink::Database => {
                let (writer, task) = EventWriter::start(db.clone(), &settings.events);
                (Sink::Database(writer), Some(task))
            }
            EventSink::Kafka => {
                warn_if_nothing_lands(&runner.providers(), &settings.events.kafka.topic);
                let sink = KafkaSink::new(&settings.events).map_err(anyhow::Error::msg)?;
                (Sink::Kafka(sink), None)
            }
        };
        let replicas = Replicas::connect(&settings, db.clone()).await?;
        let schema = graphql::build(
            replicas.clone(),
            facts,
            &settings.graphql,
            runner.clone(),
            policy.clone(),
            events.clone(),
        );
        let state = AppState {
            db: db.clone(),
            replicas: replicas.clone(),
            schema: schema.clone(),
            metrics,
            policy,
            runner: runner.clone(),
            events: events.clone(),
            allowed_origins: settings.http.cors_allowed_origins.clone().into(),
        };
        let router = router(state, &settings)?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let local_addr = listener.local_addr()?;
        Ok(Application {
            listener,
            router,
            local_addr,
            db,
            replicas,
            database: db::describe(&settings.database_url),
            runner,
            run_schedules: settings.scheduler.enabled,
            shutdown_grace: Duration::from_secs(settings.scheduler.shutdown_grace_secs),
            events: events_task,
            sink: events,
        })
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish. SIGHUP reloads the
    /// providers directory.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let _reloads = reload_on_hangup(self.runner.clone());
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(
            address = %self.local_addr,
            database = %self.database,
            "listening: GraphiQL at http://{}/graphql",
            self.local_addr
        );
        if self.replicas.any() {
            let names: Vec<String> = self
                .replicas
                .report()
                .into_iter()
                .map(|replica| replica.database)
                .collect();
            tracing::info!(
                replicas = %names.join(", "),
                "GraphQL queries read from these replicas while they are healthy"
            );
        }
        // The runner holds the scheduler from here on, so that reloads re-register its jobs.
        if self.run_schedules {
            let schedules = scheduler::start(self.runner.clone())
                .await
                .context("starting the scheduler")?;
            self.runner.attach_schedules(schedules).await;
        }
        match self.runner.recover().await {
            Ok(resumed) if !resumed.is_empty() => {
                tracing::info!(runs = ?resumed, "resumed runs an earlier stop interrupted");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not check for interrupted runs"),
        }
        // Read replicas are checked every second; until a check finds one healthy, reads go
        // to the primary.
        let replica_checks = tokio::spawn(self.replicas.clone().watch());
        let watcher = {
            let runner = self.runner.clone();
            tokio::spawn(async move { runner.watch_interrupted().await })
        };
        // Kafka providers are consumed on every replica for as long as it runs.
        let consumers = {
            let runner = self.runner.clone();
            tokio::spawn(async move { runner.watch_consumers().await })
        };
        // Small answers (a 204) go out at once: with Nagle's algorithm a response written in
        // two segments waits for the client's delayed ACK, up to 40 ms.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the HTTP server stopped with an error");
        // No new ticks, then running batches commit, leases are released.
        if let Some(mut schedules) = self.runner.detach_schedules().await {
            let _ = schedules.shutdown().await;
        }
        watcher.abort();
        replica_checks.abort();
        consumers.abort();
        self.runner.shutdown(self.shutdown_grace).await;
        // In-flight requests have had their answers; store whatever is still queued.
        if let Some(writer) = self.events {
            writer.drain().await;
        }
        if let Sink::Kafka(sink) = &self.sink {
            sink.flush(self.shutdown_grace);
        }
        served?;
        self.db.close().await.ok();
        tracing::info!("stopped");
        Ok(())
    }
}

/// With the Kafka sink, events reach `events` only through a provider that consumes the
/// topic: say so at start when none does.
fn warn_if_nothing_lands(providers: &[crate::providers::Provider], topic: &str) {
    use crate::providers::{EntityKind, Source};
    let lands = providers.iter().any(|p| {
        p.def.entity == EntityKind::Event
            && matches!(&p.def.source, Source::Kafka(kafka) if kafka.topics.iter().any(|t| t == topic))
    });
    if !lands {
        tracing::warn!(
            topic,
            "events.sink = \"kafka\" but no provider lands this topic in `events`: copy \
             providers/templates/events-kafka.toml.example into the providers directory"
        );
    }
}

fn router(state: AppState, settings: &Settings) -> anyhow::Result<Router> {
    let router = Router::new()
        .route(
            "/graphql",
            get(graphiql::page).post(routes::graphql::execute),
        )
        .route("/graphql/ws", get(routes::graphql::subscriptions))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/ingest/{provider}", post(routes::push::ingest))
        .route("/submit", post(routes::submit::submit))
        .route("/submit/batch", post(routes::submit::submit_batch))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::metrics::metrics))
        .with_state(state)
        .layer(axum::middleware::from_fn(metrics::track_http))
        .layer(axum::middleware::from_fn_with_state(
            settings.http.body_limit_bytes,
            routes::body_limit::limit,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(settings.http.request_timeout_secs),
        ))
        .layer(cors(&settings.http.cors_allowed_origins)?)
        .layer(TraceLayer::new_for_http());
    Ok(router)
}

/// Browsers may call the API only from the listed origins.
fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let origins = origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o).with_context(|| format!("http.cors_allowed_origins: `{o}`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]))
}

/// Reloads the providers on every SIGHUP, for as long as the returned task lives. Listening
/// starts before this returns, so a SIGHUP after it never ends the process.
fn reload_on_hangup(runner: Runner) -> Option<AbortOnDrop> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP; providers reload only through the reloadProviders mutation");
                return None;
            }
        };
        Some(AbortOnDrop(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the providers");
                if let Err(error) = runner.reload().await {
                    tracing::warn!(%error, "providers not reloaded");
                }
            }
        })))
    }
    #[cfg(not(unix))]
    {
        let _ = runner;
        None
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
