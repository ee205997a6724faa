//! The bundled ERC-20 sample: 291 real transfers of Ethereum blocks 17173049–17173050 and
//! their tokens, loaded into an empty embedded database at first start so a newcomer has
//! something to query.

use std::io::Cursor;
use std::path::PathBuf;

use sea_orm::{DatabaseConnection, DbErr, EntityTrait, PaginatorTrait};

use crate::entities::EntityKind;
use crate::formats::Format;
use crate::import::{self, ImportError, Source};
use crate::store::runs::RunTrigger;

const TOKENS: &[u8] = include_bytes!("../data/sample/tokens.csv");
const TRANSFERS: &[u8] = include_bytes!("../data/sample/token_transfers.jsonl");

/// Loads the sample when no run has ever happened here. Returns whether it did.
pub async fn load_if_empty(db: &DatabaseConnection) -> Result<bool, ImportError> {
    let runs = entity::ingest_run::Entity::find()
        .count(db)
        .await
        .map_err(|e: DbErr| ImportError::from(e))?;
    if runs > 0 {
        return Ok(false);
    }
    for (entity, name, format, data) in [
        (EntityKind::Token, "sample/tokens.csv", Format::Csv, TOKENS),
        (
            EntityKind::Transfer,
            "sample/token_transfers.jsonl",
            Format::JsonLines,
            TRANSFERS,
        ),
    ] {
        let source = Source {
            name: PathBuf::from(name),
            format,
            gzip: false,
            trigger: RunTrigger::Startup,
            last_rows: None,
        };
        import::import_reader(db, entity, source, Cursor::new(data), |_| {}).await?;
    }
    Ok(true)
}
