//! ERC-20 tokens, keyed by address. A row that lacks a field (BigQuery's export often has no
//! symbol) keeps what a richer source stored.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::fields::{self, Address, Field, Fields};
use super::{Entity, ImportRules, Target};
use crate::store::tokens;
use crate::store::upsert::UpsertCounts;
use crate::uint256::U256;

/// One token, as a provider or a file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub address: Address,
    pub symbol: Option<String>,
    pub name: Option<String>,
    pub decimals: Option<i32>,
    pub total_supply: Option<U256>,
    pub block_number: Option<i64>,
    pub block_timestamp: Option<DateTime<Utc>>,
}

pub const ADDRESS: Field = Field::required(
    "address",
    0,
    "the token contract's address, `0x` + 40 hex digits",
);
pub const SYMBOL: Field = Field::optional("symbol", 1, "ticker symbol, trimmed");
pub const NAME: Field = Field::optional("name", 2, "name, trimmed");
pub const DECIMALS: Field = Field::optional("decimals", 3, "decimal places, 0 to 255");
pub const TOTAL_SUPPLY: Field = Field::optional(
    "total_supply",
    4,
    "total supply, a whole number up to 2^256-1, exact",
);
pub const BLOCK_NUMBER: Field =
    Field::optional("block_number", 5, "block of the contract's creation");
pub const BLOCK_TIMESTAMP: Field = Field::optional("block_timestamp", 6, "time of that block");

pub struct Token;

impl Entity for Token {
    const NAME: &'static str = "token";
    const FIELDS: &'static [Field] = &[
        ADDRESS,
        SYMBOL,
        NAME,
        DECIMALS,
        TOTAL_SUPPLY,
        BLOCK_NUMBER,
        BLOCK_TIMESTAMP,
    ];
    const IMPORT: Option<ImportRules> = Some(ImportRules {
        about: "ethereum-etl or BigQuery CSV, or ethereum-etl JSON lines",
        etl_type: Some("token"),
        last_row_first: false,
        one_transaction: false,
        first_load: &[],
        read_ahead: 2,
        tables: &["tokens"],
    });

    type Record = TokenRecord;

    fn from_fields(f: &impl Fields, _key: Option<String>) -> Result<TokenRecord, String> {
        Ok(TokenRecord {
            address: f.required(&ADDRESS, fields::address)?,
            symbol: f.optional(&SYMBOL, fields::name)?,
            name: f.optional(&NAME, fields::name)?,
            decimals: f.optional(&DECIMALS, fields::whole_i32(255))?,
            total_supply: f.optional(&TOTAL_SUPPLY, fields::uint256)?,
            block_number: f.optional(&BLOCK_NUMBER, fields::whole(i64::MAX))?,
            block_timestamp: f.optional(&BLOCK_TIMESTAMP, fields::timestamp)?,
        })
    }

    fn key(record: &TokenRecord) -> Cow<'_, str> {
        hex::encode_prefixed(record.address).into()
    }

    async fn write<C: ConnectionTrait>(
        db: &C,
        _target: &Target<'_>,
        records: Vec<TokenRecord>,
    ) -> Result<UpsertCounts, DbErr> {
        tokens::upsert(db, &records).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::fields::mapped;
    use serde_json::json;

    #[test]
    fn a_token_from_mapped_fields() {
        let record = Token::from_fields(
            &mapped(json!({
                "address": "0xC02AAA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
                "symbol": "WETH",
                "name": " Wrapped Ether ",
                "decimals": "18",
                "total_supply": "115792089237316195423570985008687907853269984665640564039457584007913129639935",
                "block_number": 4719568,
                "block_timestamp": "2017-12-12T11:17:35Z",
            })),
            None,
        )
        .expect("valid token");
        assert_eq!(record.symbol.as_deref(), Some("WETH"));
        assert_eq!(record.name.as_deref(), Some("Wrapped Ether"));
        assert_eq!(record.decimals, Some(18));
        assert_eq!(record.total_supply, Some(U256::MAX));
        assert_eq!(record.block_number, Some(4719568));
        assert!(record.block_timestamp.is_some());

        // Only the address is required; blanks are unknown.
        let sparse = Token::from_fields(
            &mapped(json!({
                "address": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
                "symbol": "",
                "decimals": null,
            })),
            None,
        )
        .expect("sparse token");
        assert_eq!(
            (sparse.symbol, sparse.decimals, sparse.total_supply),
            (None, None, None)
        );

        assert_eq!(
            Token::from_fields(&serde_json::Map::new(), None).expect_err("no address"),
            "address: missing"
        );
        assert_eq!(
            Token::from_fields(
                &mapped(json!({
                    "address": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
                    "decimals": 300,
                })),
                None
            )
            .expect_err("too many decimals"),
            "decimals: expected a whole number from 0 to 255, got \"300\""
        );
    }
}
