//! A dry run: a provider's source read and mapped as a run reads and maps it, each row it
//! would write and each rejection handed to the caller as it comes, and nothing written — no
//! run, no checkpoint, no cursor, no rows. Pages (and file chunks) are read one at a time, so
//! memory stays bounded; a limit stops the reading.

use sea_orm::DatabaseConnection;
use serde_json::{Map, Value as Json};

use super::write::{Item, Unit, map_one, unit};
use super::{Cancel, IngestError, Prepared, RunContext};
use crate::entities::{Entity, Visit};
use crate::hosts::HostRules;
use crate::providers::{Provider, Source};
use crate::sources::file::FileReader;
use crate::sources::incremental::Mark;
use crate::sources::listing::ListingError;
use crate::sources::outbound::Outbound;
use crate::store::runs::RunMode;

/// What to read, and how far.
pub struct DryRun<'a> {
    pub provider: &'a Provider,
    pub host_rules: &'a HostRules,
    pub outbound: &'a Outbound,
    /// Where an incremental listing's stored mark is read from (`INCREMENTAL`); `None`, or
    /// `mode` `FULL`: it starts from `initial`.
    pub db: Option<&'a DatabaseConnection>,
    pub mode: RunMode,
    /// Stop after this many rows and rejections together.
    pub limit: Option<u64>,
}

/// One record as the run would treat it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A row it would write: the mapped fields and the external id.
    Row {
        external_id: String,
        fields: Map<String, Json>,
    },
    /// A record it would reject, with the reason.
    Rejected {
        reason: String,
        external_id: Option<String>,
        payload: Json,
        /// Where in a file the record was, when it came from one.
        line: Option<u64>,
    },
}

impl Outcome {
    /// The JSON line a dry run prints: `{"external_id", "fields"}` for a row,
    /// `{"rejected", "external_id", "payload"}` (and `line` from a file) for a rejection.
    pub fn to_json(&self) -> Json {
        match self {
            Outcome::Row {
                external_id,
                fields,
            } => serde_json::json!({ "external_id": external_id, "fields": fields }),
            Outcome::Rejected {
                reason,
                external_id,
                payload,
                line,
            } => {
                let mut out = serde_json::json!({
                    "rejected": reason,
                    "external_id": external_id,
                    "payload": payload,
                });
                if let (Some(line), Json::Object(map)) = (line, &mut out) {
                    map.insert("line".into(), Json::from(*line));
                }
                out
            }
        }
    }
}

/// What a dry run read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryRunSummary {
    /// Pages (or file chunks) read.
    pub pages: u64,
    pub rows: u64,
    pub rejected: u64,
    /// It stopped at the limit (or because the caller stopped it) before the source's end.
    pub stopped: bool,
    /// Where an incremental listing started, in stored form.
    pub since: Option<String>,
}

/// Reads and maps the provider's source, handing each outcome to `emit` in input order;
/// `emit` returns false to stop. Push and `kafka` providers are refused: a dry run does not
/// read them (nothing to fetch; consuming would take messages from the consumer group).
pub async fn dry_run(
    run: &DryRun<'_>,
    emit: &mut (dyn FnMut(Outcome) -> bool + Send),
) -> Result<DryRunSummary, IngestError> {
    let provider = run.provider;
    let name = &provider.name;
    if run.mode == RunMode::Renormalize {
        return Err(IngestError::Provider(
            "a dry run reads the source; RENORMALIZE reads stored payloads and has no dry run"
                .into(),
        ));
    }
    match &provider.def.source {
        Source::Push(_) => {
            return Err(IngestError::Provider(format!(
                "{name} is a push provider: a dry run reads nothing (records arrive at POST \
                 /ingest/{name})"
            )));
        }
        Source::Kafka(_) => {
            return Err(IngestError::Provider(format!(
                "{name} is a kafka provider: a dry run reads nothing (consuming would take \
                 messages from its consumer group)"
            )));
        }
        Source::Http(_) | Source::File(_) => {}
    }
    let prepared =
        Prepared::new(provider, run.host_rules, run.outbound).map_err(IngestError::Provider)?;
    let mut mapper = Mapper {
        prepared: &prepared,
        keep_raw: prepared.provider.keep_raw(),
        cursor: None,
        summary: DryRunSummary::default(),
        limit: run.limit,
        emit,
    };
    match &provider.def.source {
        Source::Http(source) => {
            // Without a database, or in `FULL` mode, the listing starts from `initial`.
            let disconnected = DatabaseConnection::default();
            let (db, mode) = match run.db {
                Some(db) if run.mode == RunMode::Incremental => (db, RunMode::Incremental),
                _ => (&disconnected, RunMode::Full),
            };
            let ctx = RunContext {
                db,
                provider,
                host_rules: run.host_rules,
                outbound: run.outbound,
                mode,
                cancel: &Cancel::default(),
                on_progress: &|_| {},
            };
            let (since, _) = super::incremental_start(&ctx, source, None).await?;
            mapper.summary.since = since.as_ref().map(|s| s.mark.stored());
            let mut listing = prepared.listing(None, since)?;
            while !mapper.done() {
                let Some(page) = listing.next_page().await? else {
                    break;
                };
                let items = prepared
                    .follow(listing.client(), page.records)
                    .await
                    .map_err(|error| ListingError::AtPage {
                        page: listing.pages(),
                        error: Box::new(ListingError::from(error)),
                    })?;
                mapper.summary.pages += 1;
                mapper.items(items);
            }
        }
        Source::File(source) => {
            let mut reader = FileReader::open(provider, source, 0, run.outbound)
                .await
                .map_err(IngestError::Provider)?;
            while !mapper.done() {
                let Some(chunk) = reader.next_chunk().await.map_err(IngestError::Provider)? else {
                    break;
                };
                mapper.summary.pages += 1;
                mapper.items(chunk.items);
            }
        }
        Source::Push(_) | Source::Kafka(_) => {}
    }
    Ok(mapper.summary)
}

/// Maps items as `write::map_items` does (filters, rejections from the source, NUL checks,
/// text documents split by the pattern, `map_one` per record), handing each outcome on.
struct Mapper<'a, 'e> {
    prepared: &'a Prepared,
    keep_raw: bool,
    cursor: Option<Mark>,
    summary: DryRunSummary,
    limit: Option<u64>,
    emit: &'e mut (dyn FnMut(Outcome) -> bool + Send),
}

impl Mapper<'_, '_> {
    fn done(&self) -> bool {
        self.summary.stopped
    }

    fn items(&mut self, items: Vec<Item>) {
        for item in items {
            if self.done() {
                return;
            }
            self.item(item);
        }
    }

    fn item(&mut self, item: Item) {
        match unit(self.prepared, item, self.keep_raw) {
            Unit::Skipped => {}
            Unit::Rejected {
                reason,
                payload,
                line,
            } => self.give(Outcome::Rejected {
                reason,
                external_id: None,
                payload,
                line,
            }),
            Unit::Split { raw, records } => {
                for record in records {
                    if self.done() {
                        return;
                    }
                    self.record(&record, &raw);
                }
            }
            Unit::Whole(raw) => self.record(&raw, &raw),
        }
    }

    /// One record (from `raw`, the payload a rejection shows).
    fn record(&mut self, record: &Json, raw: &Json) {
        let prepared = self.prepared;
        let mapped = prepared.provider.def.entity.visit(MapOne {
            prepared,
            record,
            cursor: &mut self.cursor,
        });
        let outcome = mapped.and_then(|external_id| {
            // Mapped once more for the fields as stored: `map_one` gives the entity's record.
            prepared
                .fields(record)
                .map(|fields| (external_id, fields))
                .map_err(|e| (None, e))
        });
        match outcome {
            Ok((external_id, fields)) => self.give(Outcome::Row {
                external_id,
                fields,
            }),
            Err((external_id, reason)) => self.reject(external_id, reason, raw),
        }
    }

    fn reject(&mut self, external_id: Option<String>, reason: String, raw: &Json) {
        self.give(Outcome::Rejected {
            reason,
            external_id,
            payload: raw.clone(),
            line: None,
        });
    }

    fn give(&mut self, outcome: Outcome) {
        match &outcome {
            Outcome::Row { .. } => self.summary.rows += 1,
            Outcome::Rejected { .. } => self.summary.rejected += 1,
        }
        let more = (self.emit)(outcome);
        let reached = self
            .limit
            .is_some_and(|limit| self.summary.rows + self.summary.rejected >= limit);
        if !more || reached {
            self.summary.stopped = true;
        }
    }
}

/// `map_one` for the provider's entity kind: the external id, or the rejection.
struct MapOne<'a> {
    prepared: &'a Prepared,
    record: &'a Json,
    cursor: &'a mut Option<Mark>,
}

impl Visit for MapOne<'_> {
    type Output = Result<String, (Option<String>, String)>;
    fn visit<E: Entity>(self) -> Self::Output {
        map_one::<E>(self.prepared, self.record, self.cursor).map(|(external_id, _)| external_id)
    }
}
