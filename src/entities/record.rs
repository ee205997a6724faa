//! Generic dataset records: any fields, keyed by `(dataset, key)` where `key` is the field the
//! provider names. A provider with no `fields` stores each raw record whole.

use std::borrow::Cow;

use sea_orm::{ConnectionTrait, DbErr};
use serde_json::Value as Json;

use super::fields::{Field, Fields};
use super::{Entity, Target};
use crate::store::records::{self, NewRecord};
use crate::store::upsert::UpsertCounts;

pub struct Record;

impl Entity for Record {
    const NAME: &'static str = "record";
    /// Any fields: a record keeps every field its provider maps.
    const FIELDS: &'static [Field] = &[];
    const NEEDS_KEY: bool = true;

    type Record = NewRecord;

    fn from_fields(f: &impl Fields, key: Option<String>) -> Result<NewRecord, String> {
        let key = key.ok_or("key: missing, and it is the record's key")?;
        Ok(NewRecord {
            key,
            data: Json::Object(f.object()?),
        })
    }

    fn key(record: &NewRecord) -> Cow<'_, str> {
        Cow::Borrowed(&record.key)
    }

    async fn write<C: ConnectionTrait>(
        db: &C,
        target: &Target<'_>,
        records: Vec<NewRecord>,
    ) -> Result<UpsertCounts, DbErr> {
        records::upsert(db, target.dataset, target.provider, &records).await
    }
}
