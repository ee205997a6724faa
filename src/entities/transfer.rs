//! ERC-20 transfers, keyed by `(transaction_hash, log_index)`; amounts exact to 2^256-1.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::fields::{self, Address, Field, Fields, TxHash};
use super::{Entity, ImportRules, Target};
use crate::store::transfers;
use crate::store::upsert::UpsertCounts;
use crate::uint256::U256;

/// One transfer, as a provider or a file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub token_address: Address,
    pub from_address: Address,
    pub to_address: Address,
    pub value: U256,
    pub transaction_hash: TxHash,
    pub log_index: i32,
    pub block_number: i64,
    pub block_timestamp: Option<DateTime<Utc>>,
}

pub const TOKEN_ADDRESS: Field =
    Field::required("token_address", 0, "the token contract's address");
pub const FROM_ADDRESS: Field = Field::required("from_address", 1, "the sender's address");
pub const TO_ADDRESS: Field = Field::required("to_address", 2, "the receiver's address");
pub const VALUE: Field = Field::required(
    "value",
    3,
    "the amount, a whole number up to 2^256-1, exact",
);
pub const TRANSACTION_HASH: Field = Field::required("transaction_hash", 4, "`0x` + 64 hex digits");
pub const LOG_INDEX: Field = Field::required("log_index", 5, "the log's place in its block");
pub const BLOCK_NUMBER: Field = Field::required("block_number", 6, "the block's number");
pub const BLOCK_TIMESTAMP: Field = Field::optional("block_timestamp", 7, "the block's time");

pub struct Transfer;

impl Entity for Transfer {
    const NAME: &'static str = "transfer";
    const FIELDS: &'static [Field] = &[
        TOKEN_ADDRESS,
        FROM_ADDRESS,
        TO_ADDRESS,
        VALUE,
        TRANSACTION_HASH,
        LOG_INDEX,
        BLOCK_NUMBER,
        BLOCK_TIMESTAMP,
    ];
    const IMPORT: Option<ImportRules> = Some(ImportRules {
        about: "ethereum-etl or BigQuery CSV, or ethereum-etl JSON lines",
        etl_type: Some("token_transfer"),
        last_row_first: false,
        one_transaction: false,
        first_load: transfers::FIRST_LOAD,
        read_ahead: 2,
        tables: &["transfers"],
    });

    type Record = TransferRecord;

    fn from_fields(f: &impl Fields, _key: Option<String>) -> Result<TransferRecord, String> {
        Ok(TransferRecord {
            token_address: f.required(&TOKEN_ADDRESS, fields::address)?,
            from_address: f.required(&FROM_ADDRESS, fields::address)?,
            to_address: f.required(&TO_ADDRESS, fields::address)?,
            value: f.required(&VALUE, fields::uint256)?,
            transaction_hash: f.required(&TRANSACTION_HASH, fields::tx_hash)?,
            log_index: f.required(&LOG_INDEX, fields::whole_i32(i32::MAX))?,
            block_number: f.required(&BLOCK_NUMBER, fields::whole(i64::MAX))?,
            block_timestamp: f.optional(&BLOCK_TIMESTAMP, fields::timestamp)?,
        })
    }

    fn key(record: &TransferRecord) -> Cow<'_, str> {
        Cow::Owned(format!(
            "{}:{}",
            hex::encode_prefixed(record.transaction_hash),
            record.log_index
        ))
    }

    async fn write<C: ConnectionTrait>(
        db: &C,
        target: &Target<'_>,
        records: Vec<TransferRecord>,
    ) -> Result<UpsertCounts, DbErr> {
        if target.first_load {
            transfers::insert_new(db, &records).await
        } else {
            transfers::upsert(db, &records).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::fields::mapped;
    use crate::uint256::parse_decimal;
    use serde_json::{Value, json};

    fn transfer() -> Value {
        // The second transfer of ethereum-etl's stream export (block 17173049), whose value is
        // beyond u64 and f64, given as text the way the mapper keeps such numbers.
        json!({
            "token_address": "0x1ce270557c1f68cfb577b856766310bf8b47fd9c",
            "from_address": "0x7054b0f980a7eb5b3a6b3446f3c947d80162775c",
            "to_address": "0x6b75d8af000000e20b7a7ddf000ba900b4009a80",
            "value": "150188698577042438264952193024",
            "transaction_hash": "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0",
            "log_index": 1,
            "block_number": "17173049",
            "block_timestamp": "2023-05-02T12:19:59Z",
        })
    }

    #[test]
    fn a_transfer_from_mapped_fields() {
        let record = Transfer::from_fields(&mapped(transfer()), None).expect("valid transfer");
        assert_eq!(
            hex::encode(record.token_address),
            "1ce270557c1f68cfb577b856766310bf8b47fd9c"
        );
        assert_eq!(
            record.value,
            parse_decimal("150188698577042438264952193024").expect("valid")
        );
        assert_eq!((record.log_index, record.block_number), (1, 17173049));
        assert_eq!(
            record.block_timestamp.map(|t| t.timestamp()),
            Some(1683029999)
        );
        assert_eq!(
            Transfer::key(&record),
            "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0:1"
        );

        // Numbers for every numeric column, epoch seconds for the timestamp, no timestamp at all.
        let mut numeric = mapped(transfer());
        numeric.insert("value".into(), json!(u64::MAX));
        numeric.insert("block_number".into(), json!(17173049));
        numeric.insert("block_timestamp".into(), json!(1683029999));
        let record = Transfer::from_fields(&numeric, None).expect("numbers");
        assert_eq!(record.value, U256::from(u64::MAX));
        assert_eq!(
            record.block_timestamp.map(|t| t.timestamp()),
            Some(1683029999)
        );
        numeric.remove("block_timestamp");
        assert_eq!(
            Transfer::from_fields(&numeric, None)
                .expect("no timestamp")
                .block_timestamp,
            None
        );
    }

    #[test]
    fn transfer_errors_name_the_field() {
        let with = |name: &str, value: Value| {
            let mut map = mapped(transfer());
            map.insert(name.to_string(), value);
            Transfer::from_fields(&map, None).expect_err("should fail")
        };
        assert_eq!(with("from_address", Value::Null), "from_address: missing");
        assert_eq!(
            with("value", json!(1e29)),
            "value: \"1e+29\" is not a whole decimal number"
        );
        assert_eq!(with("value", json!("-1")), "value: negative number -1");
        assert_eq!(
            with("log_index", json!(-1)),
            "log_index: expected a whole number from 0 to 2147483647, got \"-1\""
        );
        assert_eq!(
            with("to_address", json!("0x1234")),
            "to_address: expected 20 bytes (40 hex digits), got 4 digits in \"0x1234\""
        );
        assert_eq!(
            with("block_number", json!([1])),
            "block_number: expected text or a number, got an array"
        );
        assert!(
            with("block_timestamp", json!("soon"))
                .starts_with("block_timestamp: timestamp \"soon\"")
        );
    }
}
