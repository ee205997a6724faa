//! Per-provider checkpoints: where an interrupted run resumes. Written in the same
//! transaction as the batch it follows, so rows and checkpoint never disagree.

use entity::provider_state;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
use serde_json::Value as Json;

/// The stored checkpoint, if any.
pub async fn checkpoint<C: ConnectionTrait>(db: &C, provider: &str) -> Result<Option<Json>, DbErr> {
    Ok(provider_state::Entity::find_by_id(provider.to_string())
        .one(db)
        .await?
        .and_then(|s| s.checkpoint))
}

/// Stores (or, with `None`, clears) the checkpoint.
pub async fn set_checkpoint<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    run_id: i64,
    checkpoint: Option<Json>,
) -> Result<(), DbErr> {
    let state = provider_state::ActiveModel {
        checkpoint: Set(checkpoint),
        checkpoint_run_id: Set(Some(run_id)),
        ..new_row(provider)
    };
    upsert(
        db,
        state,
        [
            provider_state::Column::Checkpoint,
            provider_state::Column::CheckpointRunId,
        ],
    )
    .await
}

/// The incremental high-water mark, if any.
pub async fn cursor<C: ConnectionTrait>(db: &C, provider: &str) -> Result<Option<String>, DbErr> {
    Ok(provider_state::Entity::find_by_id(provider.to_string())
        .one(db)
        .await?
        .and_then(|s| s.cursor))
}

/// Stores (or, with `None`, clears) the incremental high-water mark.
pub async fn set_cursor<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    cursor: Option<String>,
) -> Result<(), DbErr> {
    let state = provider_state::ActiveModel {
        cursor: Set(cursor),
        ..new_row(provider)
    };
    upsert(db, state, [provider_state::Column::Cursor]).await
}

/// Whether the provider is paused (a `kafka` provider no replica consumes).
pub async fn paused<C: ConnectionTrait>(db: &C, provider: &str) -> Result<bool, DbErr> {
    Ok(provider_state::Entity::find_by_id(provider.to_string())
        .one(db)
        .await?
        .is_some_and(|s| s.paused))
}

/// Pauses or resumes the provider.
pub async fn set_paused<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    paused: bool,
) -> Result<(), DbErr> {
    let state = provider_state::ActiveModel {
        paused: Set(paused),
        ..new_row(provider)
    };
    upsert(db, state, [provider_state::Column::Paused]).await
}

/// The provider's row as a first insert makes it: no lease, no checkpoint, not paused.
fn new_row(provider: &str) -> provider_state::ActiveModel {
    provider_state::ActiveModel {
        provider: Set(provider.to_string()),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        last_tick_at: Set(None),
        checkpoint: Set(None),
        checkpoint_run_id: Set(None),
        paused: Set(false),
        cursor: Set(None),
        updated_at: Set(chrono::Utc::now()),
    }
}

/// Inserts `state`, or, when the provider has a row, updates `columns` (and `updated_at`).
async fn upsert<C: ConnectionTrait, const N: usize>(
    db: &C,
    state: provider_state::ActiveModel,
    columns: [provider_state::Column; N],
) -> Result<(), DbErr> {
    provider_state::Entity::insert(state)
        .on_conflict(
            OnConflict::column(provider_state::Column::Provider)
                .update_columns(columns)
                .update_column(provider_state::Column::UpdatedAt)
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}
