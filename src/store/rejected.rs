//! Records that could not be stored, kept with the reason and where they came from.

use entity::rejected_record;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};

use super::nul;

/// One rejection to store. Text with NUL characters is kept with U+FFFD in their place (see
/// [`nul`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRejection {
    pub external_id: Option<String>,
    /// 1-based line of a file, when the input was a file.
    pub line: Option<i64>,
    pub reason: String,
    pub payload: Option<String>,
}

/// Rows per statement: 7 parameters each, under both databases' parameter limits.
const CHUNK: usize = 2_000;

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    run_id: Option<i64>,
    rejections: &[NewRejection],
) -> Result<(), DbErr> {
    let now = chrono::Utc::now();
    for chunk in rejections.chunks(CHUNK) {
        let rows = chunk.iter().map(|r| rejected_record::ActiveModel {
            provider: Set(provider.to_string()),
            run_id: Set(run_id),
            external_id: Set(r
                .external_id
                .as_deref()
                .map(|t| nul::replaced(t).into_owned())),
            line: Set(r.line),
            reason: Set(nul::replaced(&r.reason).into_owned()),
            payload: Set(r.payload.as_deref().map(|t| nul::replaced(t).into_owned())),
            created_at: Set(now),
            ..Default::default()
        });
        rejected_record::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}
