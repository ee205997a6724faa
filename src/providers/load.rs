//! Reading provider files: a directory of them or one, every problem of every file collected.
//!
//! A file is checked in three steps, and every problem is reported with the file, the key path
//! (`source.pagination.page_size`) and what was expected:
//!
//! 1. TOML syntax.
//! 2. Shape (`shape`): every key known, every required key present, every value of the right
//!    type and range, against the schema derived from `definition.rs`.
//! 3. Meaning (`validate`): names, entity fields, cron expressions, JSONPaths, regular
//!    expressions, URLs and `${VAR}` syntax, on the typed [`ProviderFile`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::definition::ProviderFile;
use super::{Provider, shape, validate};

#[derive(Debug, thiserror::Error)]
#[error("{}: {}{}", .file.display(), key_prefix(.key), .message)]
pub struct LoadError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Dotted key path (`source.pagination.page_size`, `source.skip[0].field`); empty when the
    /// problem is the file as a whole (unreadable, TOML syntax).
    pub key: String,
    /// What is wrong, phrased as what was expected. Never contains a secret.
    pub message: String,
}

/// Every problem found in a providers directory, in file order.
#[derive(Debug, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct LoadErrors(pub Vec<LoadError>);

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

fn lines(errors: &[LoadError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads every `*.toml` in `dir` (sorted by file name), parses and validates each. Collects
/// ALL problems, not just the first, including names used by more than one file.
/// Subdirectories (such as `templates/`) and other extensions are not read.
pub fn load_dir(dir: &Path) -> Result<Vec<Provider>, LoadErrors> {
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            return Err(LoadErrors(vec![LoadError {
                file: dir.to_path_buf(),
                key: String::new(),
                message: format!("cannot read the providers directory: {e}"),
            }]));
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
                    files.push(path);
                }
            }
            Err(e) => errors.push(LoadError {
                file: dir.to_path_buf(),
                key: String::new(),
                message: format!("cannot list the providers directory: {e}"),
            }),
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));

    let mut providers = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in files {
        match check_file(&path) {
            Ok(provider) => {
                if let Some(first) = seen.get(&provider.name) {
                    errors.push(LoadError {
                        file: path,
                        key: "name".to_string(),
                        message: format!(
                            "`{}` is already the name of {}",
                            provider.name,
                            first.display()
                        ),
                    });
                } else {
                    seen.insert(provider.name.clone(), path);
                    providers.push(provider);
                }
            }
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    if errors.is_empty() {
        Ok(providers)
    } else {
        Err(LoadErrors(errors))
    }
}

/// Reads, parses and validates one provider file. On failure returns the first problem;
/// [`load_dir`] reports all of them.
pub fn load_file(path: &Path) -> Result<Provider, LoadError> {
    check_file(path).map_err(|problems| {
        problems.into_iter().next().unwrap_or_else(|| LoadError {
            file: path.to_path_buf(),
            key: String::new(),
            message: "invalid provider file".to_string(),
        })
    })
}

/// Collects problems for one file.
pub(super) struct Problems<'a> {
    file: &'a Path,
    list: Vec<LoadError>,
}

impl Problems<'_> {
    pub(super) fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(LoadError {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        });
    }

    /// Problems of no file, to try whether a value fits.
    pub(super) fn detached() -> Problems<'static> {
        Problems {
            file: Path::new(""),
            list: Vec::new(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    #[cfg(test)]
    pub(super) fn list(&self) -> &[LoadError] {
        &self.list
    }
}

/// Reads and validates one file, returning every problem found.
fn check_file(path: &Path) -> Result<Provider, Vec<LoadError>> {
    let mut problems = Problems {
        file: path,
        list: Vec::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.add("", format!("cannot read the file: {e}"));
            return Err(problems.list);
        }
    };
    let raw: toml::Table = match toml::from_str(&text) {
        Ok(raw) => raw,
        Err(e) => {
            problems.add("", toml_message(&text, &e));
            return Err(problems.list);
        }
    };
    shape::check(&raw, &mut problems);
    if !problems.list.is_empty() {
        return Err(problems.list);
    }
    // The shape check's schema is derived from these types (a test holds the two to agree),
    // so this fails only if they drift apart; the error then still points at a line.
    let def: ProviderFile = match toml::from_str(&text) {
        Ok(def) => def,
        Err(e) => {
            problems.add("", toml_message(&text, &e));
            return Err(problems.list);
        }
    };
    let (name, from_file_name) = match &def.name {
        Some(name) => (name.clone(), false),
        None => (
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default(),
            true,
        ),
    };
    validate::validate(&def, &raw, &name, from_file_name, &mut problems);
    if problems.list.is_empty() {
        Ok(Provider {
            name,
            path: path.to_path_buf(),
            def,
        })
    } else {
        Err(problems.list)
    }
}

/// A TOML error as `line L, column C: message`, on one line.
fn toml_message(text: &str, error: &toml::de::Error) -> String {
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::definition::{
        FileFormat, HttpMethod, Pagination, Parse, Source, Transform, TransformWith,
    };
    use crate::providers::env::expand_provider;
    use crate::providers::resolve::{FileLocation, file_format, file_location};

    /// A valid token provider to start from.
    const PUSH_TOKEN: &str = r#"
entity = "token"
[source]
kind = "push"
[fields]
address = { path = "address", transforms = ["hex"] }
"#;

    /// Writes `files` into a fresh directory and loads it.
    fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Vec<Provider>, LoadErrors>) {
        let dir = tempfile::tempdir().expect("temporary directory");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write provider file");
        }
        let loaded = load_dir(dir.path());
        (dir, loaded)
    }

    /// Loads one file named `p.toml`, which must load.
    fn good(text: &str) -> Provider {
        match load(&[("p.toml", text)]).1 {
            Ok(mut providers) => providers.remove(0),
            Err(e) => panic!("expected the file to load, got:\n{e}"),
        }
    }

    /// The problems with one file named `p.toml`, as `key: message`.
    fn problems(text: &str) -> Vec<String> {
        match load(&[("p.toml", text)]).1 {
            Ok(_) => panic!("expected problems, the file loaded:\n{text}"),
            Err(LoadErrors(errors)) => errors
                .into_iter()
                .map(|e| {
                    assert_eq!(e.file.file_name().and_then(|n| n.to_str()), Some("p.toml"));
                    format!("{}{}", key_prefix(&e.key), e.message)
                })
                .collect(),
        }
    }

    fn http(extra_source: &str, rest: &str) -> String {
        format!(
            "entity = \"record\"\ndataset = \"hosts\"\nkey = \"id\"\n[source]\nkind = \"http\"\nurl = \"https://api.example.com/hosts\"\n{extra_source}\n{rest}\n[fields]\nid = \"$.id\"\n"
        )
    }

    fn repo_providers() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("providers")
    }

    #[test]
    fn shipped_providers_load() {
        let providers = match load_dir(&repo_providers()) {
            Ok(providers) => providers,
            Err(e) => panic!("providers/ must load:\n{e}"),
        };
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["crowdstrike", "qualys", "sample-tokens", "sample-transfers"]
        );
        for provider in providers.iter().filter(|p| p.name.starts_with("sample-")) {
            let Source::File(file) = &provider.def.source else {
                panic!("{} should be a file source", provider.name);
            };
            let FileLocation::Local(path) = file_location(provider, file) else {
                panic!("{} should read a local file", provider.name);
            };
            assert!(path.is_file(), "{} is missing", path.display());
            assert!(provider.def.schedule.is_none());
        }
    }

    #[test]
    fn templates_load() {
        let templates = repo_providers().join("templates");
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut expected = Vec::new();
        for entry in std::fs::read_dir(&templates).expect("providers/templates") {
            let path = entry.expect("directory entry").path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(stem) = name.strip_suffix(".toml.example") {
                std::fs::copy(&path, dir.path().join(format!("{stem}.toml"))).expect("copy");
                expected.push(stem.to_string());
            }
        }
        expected.sort();
        assert_eq!(expected, ["http-cursor", "http-offset"]);
        let providers = match load_dir(dir.path()) {
            Ok(providers) => providers,
            Err(e) => panic!("templates must load:\n{e}"),
        };
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, expected);

        let offset = &providers[1].def;
        let Source::Http(source) = &offset.source else {
            panic!("http-offset is an http source");
        };
        assert_eq!(source.method, HttpMethod::Post);
        assert!(matches!(
            &source.pagination,
            Pagination::Offset { end, .. } if end.statuses == [500] && end.shrink_on_end_status
        ));
        let cursor = &providers[0].def;
        assert!(matches!(cursor.parse, Parse::Text { .. }));
        assert!(matches!(&cursor.source, Source::Http(h) if h.follow.is_some()));
    }

    #[test]
    fn readme_examples_load() {
        let readme = std::fs::read_to_string(repo_providers().join("README.md")).expect("README");
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut block: Option<String> = None;
        let mut count = 0;
        for line in readme.lines() {
            match (&mut block, line) {
                (None, "```toml") => block = Some(String::new()),
                (Some(text), "```") => {
                    // Complete examples only; snippets have no source.
                    if text.contains("[source]") {
                        let file = dir.path().join(format!("example-{count}.toml"));
                        std::fs::write(file, text.as_str()).expect("write example");
                        count += 1;
                    }
                    block = None;
                }
                (Some(text), line) => {
                    text.push_str(line);
                    text.push('\n');
                }
                (None, _) => {}
            }
        }
        let providers = match load_dir(dir.path()) {
            Ok(providers) => providers,
            Err(e) => panic!("README examples must load:\n{e}"),
        };
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "products-csv",
                "crowdstrike-hosts",
                "slack-users",
                "patients",
                "bigquery-transfers",
                "indexer-tokens",
            ]
        );
    }

    #[test]
    fn good_files_load_with_defaults() {
        let token = good(PUSH_TOKEN);
        assert_eq!(token.name, "p");
        assert!(token.def.enabled);
        assert!(!token.keep_raw());

        let full = good(
            &http(
                r#"method = "POST"
headers = { token = "${SILK_TOKEN}", Accept = "application/json" }
query = { since = "2024-01-01" }
body = { filter = { os = "linux" }, tags = ["a", "${TAG}"] }
records = "$[*]"
concurrency = 2
rate_limit = 0.5
timeout_secs = 10
max_pages = 50
[[source.skip]]
field = "$.name"
starts_with = "index"
equals = "README"
[source.pagination]
kind = "offset"
offset_param = "skip"
limit_param = "limit"
page_size = 2
[source.pagination.end]
statuses = [500]
shrink_on_end_status = true
[source.retry]
attempts = 3
initial_backoff_ms = 100
max_backoff_ms = 1000"#,
                "",
            )
            .replace("entity =", "schedule = \"0 */5 * * * *\"\nentity ="),
        );
        assert!(full.keep_raw());
        let Source::Http(source) = &full.def.source else {
            panic!("an http source");
        };
        assert_eq!(source.rate_limit, Some(0.5));
        assert_eq!(source.skip.len(), 1);

        let file = good(
            r#"name = "bq-transfers"
entity = "transfer"
schedule = "0 0 3 * * MON-FRI"
[source]
kind = "file"
path = "https://example.com/exports/transfers.csv.gz?sig=abc"
[fields]
token_address = { path = "token_address", transforms = ["trim", "lowercase", "hex"] }
from_address = "from_address"
to_address = "to_address"
value = { path = "value", transforms = ["uint256"] }
transaction_hash = "transaction_hash"
log_index = { path = "log_index", transforms = [{ int = { default = 0 } }] }
block_number = { path = "block_number", transforms = ["int"] }
block_timestamp = { path = "block_timestamp", transforms = [{ timestamp = { format = "%m/%d/%Y %H:%M" } }] }"#,
        );
        assert_eq!(file.name, "bq-transfers");
        let Source::File(source) = &file.def.source else {
            panic!("a file source");
        };
        assert_eq!(file_format(source), Some(FileFormat::Csv));

        // A record provider may store whole raw records: no fields, the key read from the raw record.
        let whole = good(
            "entity = \"record\"\ndataset = \"events\"\nkey = \"$.id\"\n[source]\nkind = \"push\"\n",
        );
        assert!(whole.def.fields.is_empty());

        // Cursor pagination from a header, link pagination, a page listing, a default-only field.
        good(&http(
            "[source.pagination]\nkind = \"cursor\"\ntoken_header = \"X-Next\"\nparam = \"cursor\"",
            "",
        ));
        good(&http(
            "[source.pagination]\nkind = \"link\"\nnext_path = \"$.links.next\"",
            "",
        ));
        good(&http(
            "[source.pagination]\nkind = \"page\"\nsize_param = \"per_page\"\npage_size = 100\nfirst_page = 0",
            "",
        ));
        good(
            "entity = \"record\"\ndataset = \"d\"\nkey = \"id\"\n[source]\nkind = \"push\"\n[fields]\nid = \"id\"\norigin = { transforms = [{ default = \"push\" }] }\n",
        );
    }

    #[test]
    fn error_display_names_file_key_and_expectation() {
        let error = LoadError {
            file: PathBuf::from("providers/qualys.toml"),
            key: "source.pagination.page_size".to_string(),
            message: "expected a whole number of at least 1".to_string(),
        };
        assert_eq!(
            error.to_string(),
            "providers/qualys.toml: source.pagination.page_size: expected a whole number of at least 1"
        );
        let whole_file = LoadError {
            file: PathBuf::from("providers/x.toml"),
            key: String::new(),
            message: "line 1, column 1: bad".to_string(),
        };
        assert_eq!(
            whole_file.to_string(),
            "providers/x.toml: line 1, column 1: bad"
        );
        assert_eq!(
            LoadErrors(vec![error, whole_file]).to_string(),
            "providers/qualys.toml: source.pagination.page_size: expected a whole number of at least 1\nproviders/x.toml: line 1, column 1: bad"
        );

        // The same message from a real file.
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("qualys.toml");
        std::fs::write(
            &path,
            http("[source.pagination]\nkind = \"offset\"\npage_size = 0", ""),
        )
        .expect("write");
        let error = load_file(&path).expect_err("page_size 0 is refused");
        assert_eq!(
            error.to_string(),
            format!(
                "{}: source.pagination.page_size: expected a whole number of at least 1",
                path.display()
            )
        );
    }

    #[test]
    fn toml_syntax_errors_give_line_and_column() {
        let found = problems("entity = \"token\"\n[source\nkind = \"push\"\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("line 2, column 8: "), "{found:?}");
        assert!(!found[0].contains('\n'));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        assert_eq!(
            problems(&format!("bogus = 1\n{PUSH_TOKEN}")),
            [
                "bogus: unknown key; expected one of `dataset`, `enabled`, `entity`, `fields`, `keep_raw`, `key`, `name`, `parse`, `schedule`, `source`"
            ]
        );
        assert_eq!(
            problems(&http("method = \"POST\"\nheader = { a = \"b\" }", "")),
            [
                "source.header: unknown key; expected one of `kind`, `body`, `concurrency`, `follow`, `headers`, `max_pages`, `method`, `pagination`, `query`, `rate_limit`, `records`, `retry`, `skip`, `timeout_secs`, `url`"
            ]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"offset\"\npage_size = 10\npagesize = 5",
                ""
            )),
            [
                "source.pagination.pagesize: unknown key; expected one of `kind`, `end`, `limit_param`, `offset_param`, `page_size`"
            ]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"offset\"\npage_size = 10\n[source.pagination.end]\nstatus = [500]",
                ""
            )),
            [
                "source.pagination.end.status: unknown key; expected one of `short_page`, `shrink_on_end_status`, `statuses`"
            ]
        );
        // Extra keys next to a kind that takes none are not silently ignored.
        assert_eq!(
            problems(&PUSH_TOKEN.replace("kind = \"push\"", "kind = \"push\"\nurl = \"x\"")),
            ["source.url: unknown key; `kind = \"push\"` takes no other keys"]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"none\"\npage_size = 10",
                ""
            )),
            ["source.pagination.page_size: unknown key; `kind = \"none\"` takes no other keys"]
        );
        assert_eq!(
            problems(&http("", "[parse]\nformat = \"json\"\npattern = \"x\"")),
            ["parse.pattern: unknown key; `format = \"json\"` takes no other keys"]
        );
        // A misspelt `transforms` would otherwise drop the transforms without a word.
        assert_eq!(
            problems(&PUSH_TOKEN.replace("transforms", "transform")),
            ["fields.address.transform: unknown key; expected one of `path`, `transforms`"]
        );
        assert_eq!(
            problems(
                &PUSH_TOKEN.replace("[\"hex\"]", "[{ sha256 = { key = \"k\", salt = \"s\" } }]")
            ),
            ["fields.address.transforms[0].sha256.salt: unknown key; expected one of `key`"]
        );
    }

    #[test]
    fn host_providers_map_host_fields_and_need_an_id() {
        let host = r#"
entity = "host"
[source]
kind = "push"
[fields]
id = "device_id"
cloud_provider = { path = "service_provider", transforms = [{ map = { AWS_EC2_V2 = "AWS" } }] }
"#;
        let (_dir, loaded) = load(&[("h.toml", host)]);
        assert!(loaded.is_ok(), "{loaded:?}");
        assert_eq!(
            problems(
                &host
                    .replace("id = \"device_id\"", "mac = \"mac_address\"")
                    .replace("entity = \"host\"", "entity = \"host\"\nkey = \"mac\"")
            ),
            [
                "key: not used with entity = \"host\": the `id` field is the provider's id for the host",
                "fields.mac: not a column of host; expected one of `id`, `hostname`, `fqdn`, `os`, `platform`, `cloud_provider`, `cloud_instance_id`, `ips`, `private_ips`, `public_ips`, `macs`, `first_seen`, `last_seen`",
                "fields.id: missing; required for entity = \"host\"",
            ]
        );
        assert_eq!(
            problems(&host.replace("AWS_EC2_V2 = \"AWS\"", "AWS_EC2_V2 = 1")),
            ["fields.cloud_provider.transforms[0].map.AWS_EC2_V2: expected a string"]
        );
    }

    #[test]
    fn missing_keys_and_wrong_types() {
        assert_eq!(
            problems("entity = \"token\"\n"),
            ["source: missing; expected a table with `kind` = `http`, `file`, `push`"]
        );
        assert_eq!(
            problems("[source]\nkind = \"push\"\n"),
            ["entity: missing; expected one of `token`, `transfer`, `host`, `product`, `record`"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("\"token\"", "\"tokens\"")),
            [
                "entity: expected one of `token`, `transfer`, `host`, `product`, `record` (found `tokens`)"
            ]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("\"push\"", "\"ftp\"")),
            ["source.kind: expected one of `http`, `file`, `push` (found `ftp`)"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("kind = \"push\"", "")),
            ["source.kind: missing; expected one of `http`, `file`, `push`"]
        );
        assert_eq!(
            problems(
                "entity = \"record\"\ndataset = \"d\"\nkey = \"id\"\n[source]\nkind = \"http\"\n"
            ),
            ["source.url: missing; expected a string"]
        );
        assert_eq!(
            problems(&http("[source.pagination]\nkind = \"offset\"", "")),
            ["source.pagination.page_size: missing; expected a whole number of at least 1"]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"offset\"\npage_size = \"ten\"",
                ""
            )),
            ["source.pagination.page_size: expected a whole number of at least 1"]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"cursor\"\ntoken_path = \"$.next\"",
                ""
            )),
            ["source.pagination.param: missing; expected a string"]
        );
        assert_eq!(
            problems(&http(
                "method = \"PUT\"\nheaders = { a = 1 }\n[[source.skip]]\nequals = \"x\"\n[source.follow]\nconcurrency = 2",
                ""
            )),
            [
                "source.follow.url: missing; expected a string",
                "source.headers.a: expected a string",
                "source.method: expected one of `GET`, `POST` (found `PUT`)",
                "source.skip[0].field: missing; expected a string",
            ]
        );
        assert_eq!(
            problems(&http("", "[parse]\nformat = \"text\"")),
            ["parse.pattern: missing; expected a string"]
        );
        assert_eq!(
            problems(&format!("enabled = \"yes\"\n{}", http("", ""))),
            ["enabled: expected true or false"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("[\"hex\"]", "[\"hexx\"]")),
            [
                "fields.address.transforms[0]: expected one of `trim`, `lowercase`, `int`, `uint256`, `hex`, `mac`, `ip`, `timestamp`, `redact`, `sha256` (found `hexx`)"
            ]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("[\"hex\"]", "[{ sha256 = {} }]")),
            ["fields.address.transforms[0].sha256.key: missing; expected a string"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("{ path = \"address\", transforms = [\"hex\"] }", "3")),
            ["fields.address: expected a string or a table with `path`, `transforms`"]
        );
        assert_eq!(
            problems(&http(
                "method = \"POST\"\nbody = { since = 2024-01-01 }",
                ""
            )),
            ["source.body.since: TOML dates are not supported here; write the date as a string"]
        );
    }

    #[test]
    fn names_must_be_valid_and_unique() {
        assert_eq!(
            problems(&format!("name = \"Qualys Hosts\"\n{PUSH_TOKEN}")),
            [
                "name: `Qualys Hosts` is not a valid provider name; expected lowercase letters, digits, `_` and `-`"
            ]
        );
        let (_dir, loaded) = load(&[("Qualys.toml", PUSH_TOKEN)]);
        let errors = loaded.expect_err("an upper-case file name is refused").0;
        assert_eq!(
            errors[0].message,
            "`Qualys` (from the file name) is not a valid provider name; expected lowercase letters, digits, `_` and `-`"
        );

        let (dir, loaded) = load(&[
            ("a.toml", &format!("name = \"hosts\"\n{PUSH_TOKEN}")),
            ("b.toml", PUSH_TOKEN),
            ("hosts.toml", PUSH_TOKEN),
        ]);
        let errors = loaded.expect_err("duplicate names are refused").0;
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            format!(
                "{}: name: `hosts` is already the name of {}",
                dir.path().join("hosts.toml").display(),
                dir.path().join("a.toml").display()
            )
        );
    }

    #[test]
    fn record_needs_dataset_and_key() {
        assert_eq!(
            problems("entity = \"record\"\n[source]\nkind = \"push\"\n"),
            [
                "dataset: missing; required when entity = \"record\"",
                "key: missing; required when entity = \"record\"",
            ]
        );
        assert_eq!(
            problems(&format!("dataset = \"tokens\"\n{PUSH_TOKEN}")),
            ["dataset: only allowed when entity = \"record\""]
        );
        assert_eq!(
            problems(
                "entity = \"record\"\ndataset = \"My Hosts\"\nkey = \"id\"\n[source]\nkind = \"push\"\n"
            ),
            [
                "dataset: `My Hosts` is not a valid dataset name; expected lowercase letters, digits, `_` and `-`"
            ]
        );
    }

    #[test]
    fn schedule_is_a_six_field_cron() {
        good(&format!("schedule = \"0 0 * * * *\"\n{PUSH_TOKEN}"));
        assert_eq!(
            problems(&format!("schedule = \"0 * * * *\"\n{PUSH_TOKEN}")),
            [
                "schedule: expected a cron expression with 6 fields (second minute hour day-of-month month day-of-week), found 5"
            ]
        );
        let found = problems(&format!("schedule = \"0 0 25 * * *\"\n{PUSH_TOKEN}"));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("schedule: expected a cron expression with 6 fields (second minute hour day-of-month month day-of-week): "),
            "{found:?}"
        );
        let found = problems(&format!("schedule = \"every hour\"\n{PUSH_TOKEN}"));
        assert_eq!(
            found,
            [
                "schedule: expected a cron expression with 6 fields (second minute hour day-of-month month day-of-week), found 2"
            ]
        );
    }

    #[test]
    fn jsonpaths_must_compile() {
        let found = problems(&http(
            r#"records = "$.items[*"
[[source.skip]]
field = "name"
equals = "x"
[source.pagination]
kind = "cursor"
token_path = "$.."
param = "pageToken"
[source.follow]
url = "mediaLink""#,
            "",
        ));
        let keys: Vec<&str> = found
            .iter()
            .map(|p| p.split(": ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [
                "source.records",
                "source.skip[0].field",
                "source.pagination.token_path",
                "source.follow.url",
            ]
        );
        for problem in &found {
            assert!(
                problem.contains(": not a valid JSONPath (RFC 9535): "),
                "{problem}"
            );
        }
        let found = problems(&http(
            "[source.pagination]\nkind = \"link\"\nnext_path = \"$.[\"",
            "",
        ));
        assert!(found[0].starts_with("source.pagination.next_path: not a valid JSONPath"));
        let found = problems(&PUSH_TOKEN.replace("path = \"address\"", "path = \"$.a[\""));
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("fields.address.path: not a valid JSONPath (RFC 9535): "));
        let found = problems(
            &PUSH_TOKEN.replace("{ path = \"address\", transforms = [\"hex\"] }", "\"$.a[\""),
        );
        assert!(found[0].starts_with("fields.address: not a valid JSONPath (RFC 9535): "));
    }

    #[test]
    fn text_patterns_need_named_captures() {
        let text = |pattern: &str, fields: &str| {
            format!(
                "entity = \"record\"\ndataset = \"patients\"\nkey = \"id\"\n[source]\nkind = \"http\"\nurl = \"https://example.com/doc\"\n[parse]\nformat = \"text\"\npattern = '{pattern}'\n[fields]\n{fields}\n"
            )
        };
        good(&text(
            r"ID: (?P<id>\S+)\nAGE: (?P<age>.*)",
            "id = \"id\"\nage = \"age\"",
        ));
        assert_eq!(
            problems(&text(r"ID: (\S+)", "id = \"id\"")),
            [
                "parse.pattern: has no named capture; each record's fields come from `(?P<name>…)` groups"
            ]
        );
        let found = problems(&text(r"ID: (?P<id>\S+", "id = \"id\""));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("parse.pattern: not a valid regular expression: "),
            "{found:?}"
        );
        assert_eq!(
            problems(&text(r"ID: (?P<id>\S+)", "id = \"ID\"")),
            ["fields.id: `ID` is not a named capture of parse.pattern; expected one of `id`"]
        );
    }

    #[test]
    fn a_rate_limit_too_small_to_wait_for_is_refused() {
        // 1 / 5e-324 is infinite: the HTTP client could not build its rate limiter.
        assert_eq!(
            problems(&http("rate_limit = 5e-324", "")),
            ["source.rate_limit: expected at least 0.000000001 requests per second"]
        );
    }

    #[test]
    fn http_numbers_and_pagination() {
        assert_eq!(
            problems(&http(
                "concurrency = 0\ntimeout_secs = 0\nrate_limit = 0\nmax_pages = -1\n[source.retry]\nattempts = 0\n[source.follow]\nurl = \"$.u\"\nconcurrency = 0",
                ""
            )),
            [
                "source.concurrency: expected a whole number of at least 1",
                "source.follow.concurrency: expected a whole number of at least 1",
                "source.max_pages: expected a whole number of at least 1",
                "source.rate_limit: expected a number greater than 0",
                "source.retry.attempts: expected a whole number of at least 1",
                "source.timeout_secs: expected a whole number of at least 1",
            ]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"page\"\npage_size = 0\n[source.pagination.end]\nstatuses = [500, 42]",
                ""
            )),
            [
                "source.pagination.end.statuses: expected a list of whole numbers from 100 to 599",
                "source.pagination.page_size: expected a whole number of at least 1",
            ]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"offset\"\npage_size = 5\n[source.pagination.end]\nshrink_on_end_status = true",
                ""
            )),
            ["source.pagination.end.shrink_on_end_status: needs at least one status in `statuses`"]
        );
        let cursor = "[source.pagination]\nkind = \"cursor\"\nparam = \"pageToken\"";
        assert_eq!(
            problems(&http(cursor, "")),
            ["source.pagination: expected exactly one of `token_path` or `token_header`"]
        );
        assert_eq!(
            problems(&http(
                &format!("{cursor}\ntoken_path = \"$.next\"\ntoken_header = \"X-Next\""),
                ""
            )),
            ["source.pagination: expected exactly one of `token_path` or `token_header`"]
        );
        assert_eq!(
            problems(&http(
                "[source.retry]\ninitial_backoff_ms = 5000\nmax_backoff_ms = 100\n[[source.skip]]\nfield = \"$.a\"",
                ""
            )),
            [
                "source.skip[0]: expected `starts_with` or `equals` (or both: either one matching skips)",
                "source.retry.max_backoff_ms: expected at least `initial_backoff_ms`",
            ]
        );
        assert_eq!(
            problems(&http(
                "body = { a = 1 }\nheaders = { \"bad header\" = \"x\" }",
                ""
            )),
            [
                "source.headers.bad header: not a valid HTTP header name",
                "source.body: only sent with method = \"POST\"",
            ]
        );
        assert_eq!(
            problems(
                &http("", "[parse]\nformat = \"csv\"")
                    .replace("kind = \"http\"", "kind = \"http\"\nrecords = \"$.items\"")
            ),
            [
                "source.records: only used when responses are JSON (parse.format = \"json\") or with `follow`"
            ]
        );
    }

    #[test]
    fn urls_are_http_or_start_with_a_variable() {
        let with_url = |url: &str| http("", "").replace("https://api.example.com/hosts", url);
        good(&with_url("${SILK_BASE_URL}/api/qualys/hosts/get"));
        good(&with_url("https://${HOST}/api"));
        good(&with_url("HTTP://example.com"));
        let expected =
            ["source.url: expected an http:// or https:// URL (or one starting with `${VAR}`)"];
        assert_eq!(problems(&with_url("ftp://example.com/x")), expected);
        assert_eq!(problems(&with_url("api.example.com/hosts")), expected);
        assert_eq!(problems(&with_url("https://")), expected);
        assert_eq!(
            problems(&with_url("${BASE/api")),
            ["source.url: `${` without a closing `}`"]
        );
        assert_eq!(
            problems(&http("headers = { token = \"${1TOKEN}\" }", "")),
            [
                "source.headers.token: `${…}` must hold a variable name: letters, digits and `_`, not starting with a digit"
            ]
        );
    }

    #[test]
    fn fields_match_the_entity() {
        assert_eq!(
            problems("entity = \"token\"\n[source]\nkind = \"push\"\n"),
            ["fields: expected at least one field for entity = \"token\""]
        );
        assert_eq!(
            problems(&format!("{PUSH_TOKEN}sybmol = \"symbol\"\n")),
            [
                "fields.sybmol: not a column of token; expected one of `address`, `symbol`, `name`, `decimals`, `total_supply`, `block_number`, `block_timestamp`"
            ]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("address =", "symbol =")),
            ["fields.address: missing; required for entity = \"token\""]
        );
        assert_eq!(
            problems(
                "entity = \"transfer\"\n[source]\nkind = \"push\"\n[fields]\ntoken_address = \"a\"\nvalue = \"v\"\nblock_timestamp = \"t\"\n"
            ),
            [
                "fields.from_address: missing; required for entity = \"transfer\"",
                "fields.to_address: missing; required for entity = \"transfer\"",
                "fields.transaction_hash: missing; required for entity = \"transfer\"",
                "fields.log_index: missing; required for entity = \"transfer\"",
                "fields.block_number: missing; required for entity = \"transfer\"",
            ]
        );
        assert_eq!(
            problems(&format!("key = \"addr\"\n{PUSH_TOKEN}")),
            ["key: `addr` is not one of the fields; expected one of `address`"]
        );
        assert_eq!(
            problems(&format!(
                "{PUSH_TOKEN}symbol = {{ transforms = [\"trim\"] }}\n"
            )),
            ["fields.symbol: no `path`, so `transforms` needs a `default`"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace(
                "[\"hex\"]",
                "[{ timestamp = { format = \"%Q\" } }, { sha256 = { key = \"\" } }]"
            )),
            [
                "fields.address.transforms[0].timestamp.format: not a valid strftime format (such as `%m/%d/%Y %H:%M:%S`)",
                "fields.address.transforms[1].sha256.key: expected a key, usually `${VAR}`",
            ]
        );
    }

    #[test]
    fn file_sources() {
        let file = |source: &str| {
            format!(
                "entity = \"token\"\n[source]\nkind = \"file\"\n{source}\n[fields]\naddress = \"address\"\n"
            )
        };
        good(&file("path = \"../data/tokens.jsonl.gz\""));
        good(&file("path = \"/srv/exports/tokens\"\nformat = \"csv\""));
        good(&file("path = \"tokens.json\"\nrecords = \"$.result[*]\""));
        assert_eq!(
            problems(&file("path = \"s3://bucket/tokens.csv\"")),
            ["source.path: expected a local path or an http:// or https:// URL"]
        );
        assert_eq!(
            problems(&file("path = \"tokens.dat\"")),
            [
                "source.format: missing; the file name does not tell the format; expected one of `csv`, `jsonl`, `json`"
            ]
        );
        assert_eq!(
            problems(&file("path = \"tokens.csv\"\nrecords = \"$[*]\"")),
            ["source.records: only used with format = \"json\""]
        );
        assert_eq!(
            problems(&format!(
                "{}[parse]\nformat = \"csv\"\n",
                file("path = \"t.csv\"")
            )),
            ["parse: not used by file sources; the file's format is `source.format`"]
        );
    }

    #[test]
    fn load_dir_collects_every_problem_in_file_order() {
        let (dir, loaded) = load(&[
            ("b.toml", "entity = \"token\"\n[source]\nkind = \"push\"\n"),
            (
                "a.toml",
                &format!("schedule = \"x\"\ndataset = \"d\"\n{PUSH_TOKEN}"),
            ),
            ("c.toml", PUSH_TOKEN),
            ("notes.txt", "not a provider"),
            ("d.toml.example", "not loaded"),
        ]);
        std::fs::create_dir(dir.path().join("templates")).expect("subdirectory");
        std::fs::write(dir.path().join("templates/e.toml"), "not loaded").expect("write");
        let errors = loaded.expect_err("a.toml and b.toml are invalid").0;
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        assert_eq!(
            lines,
            [
                format!(
                    "{}: dataset: only allowed when entity = \"record\"",
                    a.display()
                ),
                format!(
                    "{}: schedule: expected a cron expression with 6 fields (second minute hour day-of-month month day-of-week), found 1",
                    a.display()
                ),
                format!(
                    "{}: fields: expected at least one field for entity = \"token\"",
                    b.display()
                ),
            ]
        );
        // The subdirectory and other extensions are not read.
        let loaded = load_dir(dir.path());
        assert_eq!(loaded.expect_err("still invalid").0.len(), 3);

        // load_file reports the first problem of one file.
        let first = load_file(&a).expect_err("invalid");
        assert_eq!(first.key, "dataset");

        let missing = load_dir(&dir.path().join("nope"))
            .expect_err("no such directory")
            .0;
        assert_eq!(missing.len(), 1);
        assert!(
            missing[0]
                .message
                .starts_with("cannot read the providers directory: ")
        );
    }

    #[test]
    fn expand_provider_expands_secrets_and_names_the_key() {
        let provider = good(&format!(
            "{}\n",
            http(
                "method = \"POST\"\nheaders = { token = \"${SILK_TOKEN}\" }\nquery = { k = \"${SILK_TOKEN}\" }\nbody = { auth = [\"${SILK_TOKEN}\"] }",
                "",
            )
            .replace("https://api.example.com", "${SILK_BASE_URL}")
            .replace(
                "id = \"$.id\"",
                "id = \"$.id\"\nname = { path = \"$.name\", transforms = [{ sha256 = { key = \"${PII_KEY}\" } }] }"
            )
        ));
        let env = |name: &str| match name {
            "SILK_BASE_URL" => Some("https://silk.example.com".to_string()),
            "SILK_TOKEN" => Some("s3cr3t".to_string()),
            "PII_KEY" => Some("pepper".to_string()),
            _ => None,
        };
        let expanded = expand_provider(&provider, &env).expect("all variables set");
        let Source::Http(source) = &expanded.def.source else {
            panic!("an http source");
        };
        assert_eq!(source.url, "https://silk.example.com/hosts");
        assert_eq!(source.headers["token"], "s3cr3t");
        assert_eq!(source.query["k"], "s3cr3t");
        assert_eq!(source.body, Some(serde_json::json!({"auth": ["s3cr3t"]})));
        assert!(matches!(
            expanded.def.fields["name"].parts().1,
            [Transform::With(TransformWith::Sha256 { key })] if key == "pepper"
        ));
        // The loaded provider itself keeps the references.
        let Source::Http(original) = &provider.def.source else {
            panic!("an http source");
        };
        assert_eq!(original.headers["token"], "${SILK_TOKEN}");

        let without_pii = |name: &str| if name == "PII_KEY" { None } else { env(name) };
        let error = expand_provider(&provider, &without_pii).expect_err("PII_KEY is unset");
        assert_eq!(
            error.to_string(),
            format!(
                "{}: fields.name.transforms[0].sha256.key: environment variable `PII_KEY` is not set",
                provider.path.display()
            )
        );
        let bad_base = |name: &str| match name {
            "SILK_BASE_URL" => Some("not a url s3cr3t".to_string()),
            _ => env(name),
        };
        let error = expand_provider(&provider, &bad_base).expect_err("not a URL");
        assert_eq!(error.key, "source.url");
        assert!(!error.to_string().contains("s3cr3t"));
    }
}
