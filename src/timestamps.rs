//! Timestamps as providers write them, normalized to UTC.
//!
//! The same instant reaches us in several spellings: epoch seconds from ethereum-etl, RFC 3339 from
//! APIs, `... UTC` from BigQuery, and month/day/year once a spreadsheet has rewritten an export.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SubsecRound, Utc};

/// The forms [`parse_timestamp`] accepts, for error messages.
const ACCEPTED: &str = "epoch seconds (1683029999), RFC 3339 (2023-05-02T12:19:59Z), \
     \"2023-05-02 12:19:59 UTC\", \"2023-05-02 12:19:59\" (taken as UTC) \
     or month/day/year \"12/9/2016 18:35:23\"";

/// Parses a timestamp as providers write it, into UTC. Accepted: epoch seconds (an integer, e.g. "1683029999"),
/// RFC 3339 ("2023-05-02T12:19:59Z", any offset), BigQuery's "2023-05-02 12:19:59 UTC" (optionally with
/// fractional seconds), a naive "2023-05-02 12:19:59" taken as UTC, and the spreadsheet-rewritten
/// "12/9/2016 18:35:23" (month/day/year, 24 h; also without seconds). The error says what forms are accepted.
///
/// Sub-microsecond digits are dropped (see [`microseconds`]).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    parse_any(text).map(microseconds)
}

/// PostgreSQL keeps microseconds, SQLite whatever it is given: without this, a value with more
/// digits would read back different from what a provider sends again on PostgreSQL, so the same
/// report would count as changed on every run there and unchanged on SQLite.
fn microseconds(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

fn parse_any(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let unrecognized = || format!("timestamp {text:?} is not one of: {ACCEPTED}");
    if text.is_empty() {
        return Err(format!("empty timestamp; expected one of: {ACCEPTED}"));
    }

    // Pick the form from the text's shape, so each value costs one parse attempt (or two).
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: i64 = text.parse().map_err(|_| unrecognized())?;
        return DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| format!("epoch seconds {text} are out of range"));
    }
    if text.contains('/') {
        return NaiveDateTime::parse_from_str(text, "%m/%d/%Y %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%m/%d/%Y %H:%M"))
            .map(|naive| naive.and_utc())
            .map_err(|_| unrecognized());
    }
    if let Some(naive) = text.strip_suffix(" UTC") {
        return parse_naive(naive.trim_end()).ok_or_else(unrecognized);
    }
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Ok(with_offset.with_timezone(&Utc));
    }
    parse_naive(text).ok_or_else(unrecognized)
}

/// "2023-05-02 12:19:59" or "2023-05-02T12:19:59", optionally with fractional seconds, as UTC.
fn parse_naive(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .map(|naive| naive.and_utc())
}

/// Parses with an explicit strftime format (naive → UTC), for provider definitions that name one.
///
/// A format with an offset (`%z`, `%:z`) is honoured; one without is taken as UTC; a date-only format
/// gives midnight UTC.
pub fn parse_with_format(text: &str, format: &str) -> Result<DateTime<Utc>, String> {
    parse_formatted(text, format).map(microseconds)
}

fn parse_formatted(text: &str, format: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    // Tried first because the naive parser would silently drop an offset the format names.
    if let Ok(with_offset) = DateTime::parse_from_str(text, format) {
        return Ok(with_offset.with_timezone(&Utc));
    }
    match NaiveDateTime::parse_from_str(text, format) {
        Ok(naive) => Ok(naive.and_utc()),
        Err(error) => match NaiveDate::parse_from_str(text, format) {
            Ok(date) => Ok(date.and_time(NaiveTime::MIN).and_utc()),
            Err(_) => Err(format!(
                "timestamp {text:?} does not match the format {format:?} ({error})"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid test timestamp")
            .with_timezone(&Utc)
    }

    #[test]
    fn epoch_seconds_from_the_stream_export() {
        assert_eq!(
            parse_timestamp("1683029999"),
            Ok(utc("2023-05-02T12:19:59Z"))
        );
        assert_eq!(parse_timestamp(" 0 "), Ok(utc("1970-01-01T00:00:00Z")));
    }

    #[test]
    fn spreadsheet_month_day_year() {
        // bigquery_export_token_transfers.csv, first row.
        assert_eq!(
            parse_timestamp("12/9/2016 18:35:23"),
            Ok(utc("2016-12-09T18:35:23Z"))
        );
        // Single-digit hour, as the spreadsheet writes it.
        assert_eq!(
            parse_timestamp("12/9/2016 1:50:03"),
            Ok(utc("2016-12-09T01:50:03Z"))
        );
        assert_eq!(
            parse_timestamp("6/9/2023 8:42"),
            Ok(utc("2023-06-09T08:42:00Z"))
        );
    }

    #[test]
    fn rfc3339_with_any_offset() {
        // The stream export's item_timestamp.
        assert_eq!(
            parse_timestamp("2023-05-02T12:19:59Z"),
            Ok(utc("2023-05-02T12:19:59Z"))
        );
        assert_eq!(
            parse_timestamp("2023-05-02T14:19:59+02:00"),
            Ok(utc("2023-05-02T12:19:59Z"))
        );
    }

    #[test]
    fn bigquery_and_naive_forms() {
        assert_eq!(
            parse_timestamp("2023-05-02 12:19:59 UTC"),
            Ok(utc("2023-05-02T12:19:59Z"))
        );
        assert_eq!(
            parse_timestamp("2023-05-02 12:19:59.250 UTC"),
            Ok(utc("2023-05-02T12:19:59.250Z"))
        );
        assert_eq!(
            parse_timestamp("2023-05-02 12:19:59"),
            Ok(utc("2023-05-02T12:19:59Z"))
        );
        assert_eq!(
            parse_timestamp("2023-05-02T12:19:59"),
            Ok(utc("2023-05-02T12:19:59Z"))
        );
    }

    #[test]
    fn errors_list_the_accepted_forms() {
        for bad in [
            "yesterday",
            "13/45/2016 18:35:23",
            "2023-05-02",
            "1683029999.5",
        ] {
            let error = parse_timestamp(bad).expect_err(bad);
            assert!(error.contains(&format!("{bad:?}")), "{error}");
            assert!(error.contains("epoch seconds"), "{error}");
            assert!(error.contains("12/9/2016 18:35:23"), "{error}");
        }
        assert!(
            parse_timestamp("")
                .expect_err("empty")
                .starts_with("empty timestamp")
        );
        assert_eq!(
            parse_timestamp("99999999999999999"),
            Err("epoch seconds 99999999999999999 are out of range".to_string())
        );
    }

    #[test]
    fn explicit_formats() {
        assert_eq!(
            parse_with_format("09.12.2016 18:35", "%d.%m.%Y %H:%M"),
            Ok(utc("2016-12-09T18:35:00Z"))
        );
        assert_eq!(
            parse_with_format("2016-12-09 20:35:23 +0200", "%Y-%m-%d %H:%M:%S %z"),
            Ok(utc("2016-12-09T18:35:23Z"))
        );
        assert_eq!(
            parse_with_format("2016-12-09", "%Y-%m-%d"),
            Ok(utc("2016-12-09T00:00:00Z"))
        );
        let error = parse_with_format("12/9/2016", "%Y-%m-%d").expect_err("mismatch");
        assert!(
            error.starts_with("timestamp \"12/9/2016\" does not match the format \"%Y-%m-%d\""),
            "{error}"
        );
    }

    #[test]
    fn digits_past_the_microsecond_are_dropped() {
        assert_eq!(
            parse_timestamp("2023-03-16T13:34:47.1234567Z"),
            Ok(utc("2023-03-16T13:34:47.123456Z"))
        );
        assert_eq!(
            parse_timestamp("2023-03-16 13:34:47.999999999 UTC"),
            Ok(utc("2023-03-16T13:34:47.999999Z"))
        );
        assert_eq!(
            parse_with_format("2023-03-16 13:34:47.1234567", "%Y-%m-%d %H:%M:%S%.f"),
            Ok(utc("2023-03-16T13:34:47.123456Z"))
        );
    }
}
