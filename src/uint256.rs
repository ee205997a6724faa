//! Exact unsigned 256-bit integers (ERC-20 values and supplies): parsed from decimal text, never
//! through floating point, and stored so that both databases compare them exactly.

pub use ethnum::U256;

/// Digits of 2^256 - 1: the width of the fixed-width text form.
pub const WIDTH: usize = 78;

/// Parses a non-negative decimal integer of at most 2^256 - 1. The error says what was wrong.
pub fn parse_decimal(text: &str) -> Result<U256, String> {
    let digits = text.trim();
    if digits.is_empty() {
        return Err("empty value".to_string());
    }
    if digits.starts_with('-') {
        return Err(format!("negative number {digits}"));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{digits:?} is not a whole decimal number"));
    }
    U256::from_str_radix(digits, 10).map_err(|_| format!("{digits} exceeds 2^256-1"))
}

/// Parses a `0x` hex quantity (`0x186a0`, or a 32-byte word with leading zeros, as JSON-RPC
/// nodes write amounts) of at most 2^256 - 1. `None` when `text` does not start with `0x`.
pub fn parse_hex(text: &str) -> Option<Result<U256, String>> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(Err(format!("{text:?} is not a hex quantity")));
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 64 {
        return Some(Err(format!("{text} exceeds 2^256-1")));
    }
    if significant.is_empty() {
        return Some(Ok(U256::ZERO));
    }
    Some(U256::from_str_radix(significant, 16).map_err(|_| format!("{text} exceeds 2^256-1")))
}

/// The stored text form on SQLite: zero-padded to 78 digits, so text order is numeric order.
pub fn to_fixed_width(value: U256) -> String {
    format!("{value:0>WIDTH$}")
}

/// Canonical decimal from a stored form (PostgreSQL `numeric` text or the padded SQLite text).
pub fn canonical(stored: &str) -> String {
    let trimmed = stored.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: &str =
        "115792089237316195423570985008687907853269984665640564039457584007913129639935";

    #[test]
    fn round_trips_the_largest_value() {
        let v = parse_decimal(MAX).expect("valid");
        assert_eq!(v, U256::MAX);
        assert_eq!(to_fixed_width(v), MAX);
        assert_eq!(canonical(&to_fixed_width(v)), MAX);
        assert_eq!(canonical(&to_fixed_width(U256::ZERO)), "0");
        assert_eq!(to_fixed_width(U256::new(42)).len(), WIDTH);
    }

    #[test]
    fn says_what_is_wrong() {
        assert_eq!(parse_decimal("-5").unwrap_err(), "negative number -5");
        assert_eq!(
            parse_decimal("1.5e3").unwrap_err(),
            "\"1.5e3\" is not a whole decimal number"
        );
        assert_eq!(parse_decimal("").unwrap_err(), "empty value");
        let too_big = format!("{MAX}0");
        assert_eq!(
            parse_decimal(&too_big).unwrap_err(),
            format!("{too_big} exceeds 2^256-1")
        );
    }

    #[test]
    fn fixed_width_text_orders_like_numbers() {
        let mut values: Vec<U256> = ["9", "10", "100000000000000000000000000000", "0", MAX]
            .iter()
            .map(|s| parse_decimal(s).expect("valid"))
            .collect();
        let mut texts: Vec<String> = values.iter().map(|v| to_fixed_width(*v)).collect();
        values.sort();
        texts.sort();
        assert_eq!(
            texts,
            values
                .iter()
                .map(|v| to_fixed_width(*v))
                .collect::<Vec<_>>()
        );
    }
}
