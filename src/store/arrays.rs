//! Array parameters for PostgreSQL's `UNNEST`: a batch travels as one parameter per column, so
//! a statement is planned once whatever the batch size. Array elements cannot be NULL here:
//! absent text travels as `''` (read back with `NULLIF(x, '')`; exact wherever a blank value is
//! never stored) and absent times as [`NO_TIME`] (read back with
//! `'epoch'::timestamptz + NULLIF(x, -9223372036854775808) * interval '1 microsecond'`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::ArrayType;
use sea_orm::{DbErr, Value};

/// Microseconds since the epoch that stand for "no time".
pub const NO_TIME: i64 = i64::MIN;

/// Text; `None` as `''`.
pub fn texts<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Value {
    let items = values
        .map(|v| Value::String(Some(v.unwrap_or_default().to_string())))
        .collect();
    Value::Array(ArrayType::String, Some(Box::new(items)))
}

/// Text made for the statement (decimal digits, JSON).
pub fn strings(values: impl Iterator<Item = String>) -> Value {
    let items = values.map(|v| Value::String(Some(v))).collect();
    Value::Array(ArrayType::String, Some(Box::new(items)))
}

/// Instants as microseconds since the epoch (exact: what both databases keep); `None` as
/// [`NO_TIME`].
pub fn micros(values: impl Iterator<Item = Option<DateTime<Utc>>>) -> Value {
    let items = values
        .map(|v| Value::BigInt(Some(v.map_or(NO_TIME, |t| t.timestamp_micros()))))
        .collect();
    Value::Array(ArrayType::BigInt, Some(Box::new(items)))
}

/// Lists of text as JSON text, cast back with `::jsonb` in the statement.
pub fn lists<'a>(values: impl Iterator<Item = &'a [String]>) -> Result<Value, DbErr> {
    let items = values
        .map(|list| {
            serde_json::to_string(list)
                .map(|text| Value::String(Some(text)))
                .map_err(|e| DbErr::Custom(format!("a list as JSON: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Value::Array(ArrayType::String, Some(Box::new(items))))
}

/// JSON values as their text, cast back with `::jsonb` in the statement.
pub fn jsons<'a>(values: impl Iterator<Item = &'a serde_json::Value>) -> Value {
    let items = values.map(|v| Value::String(Some(v.to_string()))).collect();
    Value::Array(ArrayType::String, Some(Box::new(items)))
}

pub fn bigints(values: impl Iterator<Item = i64>) -> Value {
    let items = values.map(|v| Value::BigInt(Some(v))).collect();
    Value::Array(ArrayType::BigInt, Some(Box::new(items)))
}

pub fn ints(values: impl Iterator<Item = i32>) -> Value {
    let items = values.map(|v| Value::Int(Some(v))).collect();
    Value::Array(ArrayType::Int, Some(Box::new(items)))
}

/// Byte strings (addresses, hashes) as `bytea[]`.
pub fn bytes<'a>(values: impl Iterator<Item = &'a [u8]>) -> Value {
    let items = values.map(|v| Value::from(v.to_vec())).collect();
    Value::Array(ArrayType::Bytes, Some(Box::new(items)))
}
