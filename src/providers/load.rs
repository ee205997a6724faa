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

/// Provider files for the tests of this module and its siblings.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    /// A valid token provider to start from.
    pub const PUSH_TOKEN: &str = r#"
entity = "token"
[source]
kind = "push"
[fields]
address = { path = "address", transforms = ["hex"] }
"#;

    /// Writes `files` into a fresh directory and loads it.
    pub fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Vec<Provider>, LoadErrors>) {
        let dir = tempfile::tempdir().expect("temporary directory");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write provider file");
        }
        let loaded = load_dir(dir.path());
        (dir, loaded)
    }

    /// Loads one file named `p.toml`, which must load.
    pub fn good(text: &str) -> Provider {
        match load(&[("p.toml", text)]).1 {
            Ok(mut providers) => providers.remove(0),
            Err(e) => panic!("expected the file to load, got:\n{e}"),
        }
    }

    /// The problems with one file named `p.toml`, as `key: message`.
    pub fn problems(text: &str) -> Vec<String> {
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

    pub fn http(extra_source: &str, rest: &str) -> String {
        format!(
            "entity = \"record\"\ndataset = \"hosts\"\nkey = \"id\"\n[source]\nkind = \"http\"\nurl = \"https://api.example.com/hosts\"\n{extra_source}\n{rest}\n[fields]\nid = \"$.id\"\n"
        )
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

    use super::fixtures::*;

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
            [
                "crowdstrike",
                "ethereum-transfers-rpc",
                "qualys",
                "sample-tokens",
                "sample-transfers"
            ]
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
        assert_eq!(expected, ["events-kafka", "http-cursor", "http-offset"]);
        let providers = match load_dir(dir.path()) {
            Ok(providers) => providers,
            Err(e) => panic!("templates must load:\n{e}"),
        };
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, expected);

        let events = &providers[0].def;
        assert!(matches!(&events.source, Source::Kafka(k) if k.topics == ["events"]));
        let offset = &providers[2].def;
        let Source::Http(source) = &offset.source else {
            panic!("http-offset is an http source");
        };
        assert_eq!(source.method, HttpMethod::Post);
        assert!(matches!(
            &source.pagination,
            Pagination::Offset { end, .. } if end.statuses == [500] && end.shrink_on_end_status
        ));
        let cursor = &providers[1].def;
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
                "events-by-range",
                "tickets",
                "kafka-transfers",
                "crm-contacts",
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
