//! Limits checked on a query's text before it is parsed: its size, and how deeply its brackets
//! nest. The parser recurses once per nesting level and gives up only at its own stack limit (a
//! few hundred levels), with an error that quotes the whole offending line back, which for a
//! one-line query is all of it. One pass over the bytes refuses such a document first, with a
//! short error naming the limit and the place.

/// `Err` says which limit `query` passes, and where.
pub fn check(query: &str, max_bytes: usize, max_nesting: usize) -> Result<(), String> {
    if query.len() > max_bytes {
        return Err(format!(
            "Query text is {} bytes, more than the {max_bytes} allowed.",
            query.len()
        ));
    }
    match deepest_nesting(query, max_nesting) {
        None => Ok(()),
        Some(at) => {
            let before = &query[..at];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            Err(format!(
                "Query nests `{{`, `[` or `(` more than {max_nesting} deep (at line {line}, column {column})."
            ))
        }
    }
}

/// The byte offset of the first bracket that opens level `max + 1`, if any. Brackets inside
/// strings, block strings and comments do not count.
fn deepest_nesting(query: &str, max: usize) -> Option<usize> {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && !matches!(bytes[i], b'\n' | b'\r') {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                // A block string ends at the next `"""` not escaped as `\"""`.
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n' | b'\r') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > max {
                    return Some(i);
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_brackets_outside_strings_and_comments() {
        let query = "query($w: TransferWhere = {token: {eq: \"{{{{\"}}) {\n  # {{{{{{\n  transfers(where: $w) { nodes { id description: \"\"\"[[[ \\\"\"\" (((\"\"\" } }\n}";
        assert_eq!(deepest_nesting(query, 3), None);
        assert_eq!(deepest_nesting(query, 2), Some(34));
        assert_eq!(
            check("{ a { b { c } } }", 1024, 2).expect_err("too deep"),
            "Query nests `{`, `[` or `(` more than 2 deep (at line 1, column 9)."
        );
        assert_eq!(
            check(&"{a}".repeat(10), 16, 8).expect_err("too long"),
            "Query text is 30 bytes, more than the 16 allowed."
        );
    }

    #[test]
    fn unterminated_strings_and_stray_closers_end_quietly() {
        for text in ["\"", "\"\"\"", "\"\"\"\\", "#", "}}}{", "\"\\", "{\"\"\"}"] {
            assert!(check(text, 1024, 1).is_ok(), "{text:?}");
        }
    }
}
