//! The ERC-20 domain: tokens and their transfers as normalized records, and the parsing of the
//! identifiers they carry. Every format (ethereum-etl CSV, BigQuery exports, JSON lines) is
//! turned into these records before it is stored.

use chrono::{DateTime, Utc};

use crate::uint256::U256;

/// A 20-byte account or contract address.
pub type Address = [u8; 20];
/// A 32-byte transaction hash.
pub type TxHash = [u8; 32];

/// One ERC-20 token contract. Unknown fields stay `None` (BigQuery leaves many empty).
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

/// One ERC-20 `Transfer` event; `(transaction_hash, log_index)` identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub token_address: Address,
    pub from_address: Address,
    pub to_address: Address,
    pub value: U256,
    pub transaction_hash: TxHash,
    pub log_index: i32,
    pub block_number: i64,
    /// Absent in ethereum-etl's plain CSV export.
    pub block_timestamp: Option<DateTime<Utc>>,
}

/// Parses `0x`-prefixed hex of exactly `N` bytes, in any case.
pub fn parse_fixed_hex<const N: usize>(field: &str, text: &str) -> Result<[u8; N], String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| format!("{field}: expected 0x-prefixed hex, got {text:?}"))?;
    if digits.len() != N * 2 {
        return Err(format!(
            "{field}: expected {N} bytes ({} hex digits), got {} digits in {text:?}",
            N * 2,
            digits.len()
        ));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out)
        .map_err(|e| format!("{field}: bad hex in {text:?} ({e})"))?;
    Ok(out)
}

pub fn parse_address(field: &str, text: &str) -> Result<Address, String> {
    parse_fixed_hex::<20>(field, text)
}

pub fn parse_tx_hash(field: &str, text: &str) -> Result<TxHash, String> {
    parse_fixed_hex::<32>(field, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_any_case() {
        let a = parse_address(
            "token_address",
            "0xC02AAA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
        )
        .expect("valid");
        assert_eq!(hex::encode(a), "c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2");
    }

    #[test]
    fn bad_hex_says_where() {
        assert_eq!(
            parse_address("from_address", "0x1234").unwrap_err(),
            "from_address: expected 20 bytes (40 hex digits), got 4 digits in \"0x1234\""
        );
        assert!(
            parse_tx_hash("transaction_hash", "abc")
                .unwrap_err()
                .starts_with("transaction_hash: expected 0x-prefixed hex")
        );
        let zz = format!("0x{}", "zz".repeat(20));
        assert!(
            parse_address("to_address", &zz)
                .unwrap_err()
                .starts_with("to_address: bad hex")
        );
    }
}
