//! Where a `file` source reads from and how: resolved by these functions alone, for the check
//! (`tributary providers`) and for the run, so a file the check accepts is read the same way.

use std::path::{Path, PathBuf};

use super::Provider;
use super::definition::{FileFormat, FileSource};
use super::validate::has_http_scheme;

/// Where a `file` source reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileLocation {
    /// A local file; relative paths are resolved against the provider file's directory.
    Local(PathBuf),
    /// An http(s) URL.
    Url(String),
}

/// Resolves a `file` source's `path` against the directory of the provider's file.
pub fn file_location(provider: &Provider, source: &FileSource) -> FileLocation {
    if has_http_scheme(&source.path) {
        FileLocation::Url(source.path.clone())
    } else {
        let base = provider.path.parent().unwrap_or_else(|| Path::new(""));
        FileLocation::Local(base.join(&source.path))
    }
}

/// A `file` source's name as its format and compression are told from: lower case, without a
/// URL's query or fragment.
fn file_name(source: &FileSource) -> String {
    source
        .path
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Whether a `file` source is gzipped: its name ends in `.gz` (any case; a URL's query is
/// ignored).
pub fn file_gzip(source: &FileSource) -> bool {
    file_name(source).ends_with(".gz")
}

/// A `file` source's format: `format` when given, otherwise from the name (`.csv`, `.jsonl`
/// or `.ndjson`, `.json`, each optionally followed by `.gz`; any case; a URL's query is
/// ignored).
pub fn file_format(source: &FileSource) -> Option<FileFormat> {
    if let Some(format) = source.format {
        return Some(format);
    }
    let name = file_name(source);
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".csv") {
        Some(FileFormat::Csv)
    } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        Some(FileFormat::Jsonl)
    } else if name.ends_with(".json") {
        Some(FileFormat::Json)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_formats_and_locations() {
        let source = |path: &str| FileSource {
            path: path.to_string(),
            format: None,
            records: None,
        };
        assert_eq!(file_format(&source("a.CSV.gz")), Some(FileFormat::Csv));
        assert_eq!(file_format(&source("a.ndjson")), Some(FileFormat::Jsonl));
        assert_eq!(
            file_format(&source("https://x/a.json?x=1.csv")),
            Some(FileFormat::Json)
        );
        assert_eq!(file_format(&source("a.txt")), None);
        let provider = Provider {
            name: "p".to_string(),
            path: PathBuf::from("providers/p.toml"),
            def: toml::from_str(
                "entity = \"token\"\n[source]\nkind = \"push\"\n[fields]\naddress = \"address\"\n",
            )
            .expect("valid"),
        };
        assert_eq!(
            file_location(&provider, &source("../data/a.csv")),
            FileLocation::Local(PathBuf::from("providers/../data/a.csv"))
        );
        assert_eq!(
            file_location(&provider, &source("https://x/a.csv")),
            FileLocation::Url("https://x/a.csv".to_string())
        );
    }

    #[test]
    fn names_with_a_query_or_in_upper_case_are_told_apart() {
        let source = |path: &str| FileSource {
            path: path.to_string(),
            format: None,
            records: None,
        };
        for (path, format, gzip) in [
            ("DATA.CSV", Some(FileFormat::Csv), false),
            ("https://x/e.csv?sig=a.b&se=1", Some(FileFormat::Csv), false),
            ("https://x/e.csv.gz?sig=abc", Some(FileFormat::Csv), true),
            ("https://x/E.JSONL.GZ#part", Some(FileFormat::Jsonl), true),
            ("https://x/e?format=csv", None, false),
        ] {
            assert_eq!(file_format(&source(path)), format, "{path}");
            assert_eq!(file_gzip(&source(path)), gzip, "{path}");
        }
    }
}
