//! Products, keyed by SKU: a later row with the same SKU — later in the same file or in a later
//! file or run — replaces name and description (a blank one is none). `product_counts` moves
//! with every write, in the same transaction.

use std::borrow::Cow;

use sea_orm::{ConnectionTrait, DbErr};

use super::fields::{self, Field, Fields, Scalar};
use super::{Entity, ImportRules, Target};
use crate::store::products::{self, Counts};
use crate::store::upsert::UpsertCounts;

/// One product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRecord {
    pub sku: String,
    pub name: Option<String>,
    pub description: Option<String>,
}

pub const SKU: Field = Field::required("sku", 0, "the key; trimmed");
pub const NAME: Field = Field::optional("name", 1, "trimmed; counted in `product_counts`");
pub const DESCRIPTION: Field =
    Field::optional("description", 2, "kept as written, line breaks included");

/// A product's SKU: any text or number, trimmed.
fn sku(value: Scalar<'_>) -> Result<Cow<'_, str>, String> {
    Ok(match fields::text(value)? {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
        Cow::Owned(text) => Cow::Owned(text.trim().to_string()),
    })
}

/// A name or description: any text or number.
fn any_text(value: Scalar<'_>) -> Result<Cow<'_, str>, String> {
    fields::text(value)
}

pub struct Product;

impl Entity for Product {
    const NAME: &'static str = "product";
    const FIELDS: &'static [Field] = &[SKU, NAME, DESCRIPTION];
    const IMPORT: Option<ImportRules> = Some(ImportRules {
        about: "`name,sku,description` CSV (columns in any order), or JSON lines with those keys",
        etl_type: None,
        // Each product is written once, so importing the same file again changes nothing.
        last_row_first: true,
        // `product_counts` then moves once per name, at the end (a third of the time).
        one_transaction: true,
        // The reader is far faster than the writer; one batch ahead keeps memory lower.
        first_load: products::FIRST_LOAD,
        read_ahead: 1,
        tables: &["products", "product_counts"],
    });

    type Record = ProductRecord;

    fn from_fields(f: &impl Fields, _key: Option<String>) -> Result<ProductRecord, String> {
        Ok(ProductRecord {
            sku: f.required(&SKU, sku)?.into_owned(),
            name: f
                .optional(&NAME, any_text)?
                .map(|name| name.trim().to_string()),
            description: f.optional(&DESCRIPTION, any_text)?.map(Cow::into_owned),
        })
    }

    fn key(record: &ProductRecord) -> Cow<'_, str> {
        Cow::Borrowed(&record.sku)
    }

    /// Reads all three fields as the import will (so a row it rejects has no key), copying only
    /// the SKU: the first pass reads the whole file while the database waits.
    fn import_key(f: &impl Fields) -> Result<String, String> {
        f.optional(&NAME, any_text)?;
        f.optional(&DESCRIPTION, any_text)?;
        Ok(f.required(&SKU, sku)?.into_owned())
    }

    async fn write<C: ConnectionTrait>(
        db: &C,
        target: &Target<'_>,
        records: Vec<ProductRecord>,
    ) -> Result<UpsertCounts, DbErr> {
        let counts = if target.first_load {
            Counts::Recount
        } else if target.bulk {
            Counts::Deferred
        } else {
            Counts::Immediate
        };
        products::upsert_with(db, target.provider, &records, counts).await
    }

    async fn begin_bulk<C: ConnectionTrait>(db: &C, first_load: bool) -> Result<(), DbErr> {
        if first_load {
            return Ok(());
        }
        products::defer_counts(db).await
    }

    async fn finish_bulk<C: ConnectionTrait>(db: &C, first_load: bool) -> Result<(), DbErr> {
        if first_load {
            return products::count_all_names(db).await;
        }
        products::apply_deferred_counts(db).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    fn product(value: Value) -> Result<ProductRecord, String> {
        match value {
            Value::Object(map) => Product::from_fields(&map, None),
            other => panic!("test fields must be an object, got {other}"),
        }
    }

    #[test]
    fn skus_and_names_are_trimmed_descriptions_kept_blanks_none() {
        assert_eq!(
            product(json!({"sku": " a-1 ", "name": " Lamp ", "description": " two\nlines "})),
            Ok(ProductRecord {
                sku: "a-1".into(),
                name: Some("Lamp".into()),
                description: Some(" two\nlines ".into()),
            })
        );
        assert_eq!(
            product(json!({"sku": 42, "name": "", "description": "  "})),
            Ok(ProductRecord {
                sku: "42".into(),
                name: None,
                description: None,
            })
        );
        assert_eq!(
            product(json!({"sku": " "})),
            Err("sku: missing".to_string())
        );
        assert_eq!(
            Product::import_key(&Map::new()),
            Err("sku: missing".to_string())
        );
    }
}
