//! Provider files: arbitrary TOML text, and the shipped providers and templates with a key
//! dropped, a value swapped to another type, or a number out of range. A file loads, or every
//! problem names its key (or the line, for TOML syntax); a file that loads can be made ready
//! to run (mappings compiled, HTTP client and listing built) without a panic.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tributary::hosts::HostRules;
use tributary::ingest::Prepared;
use tributary::providers::definition::Source;
use tributary::providers::load::{LoadError, LoadErrors, load_dir};

use super::config;

/// Writes `text` as the only provider file of a fresh directory and loads the directory.
fn load(name: &str, text: &str) -> (tempfile::TempDir, Result<(), Vec<LoadError>>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join(format!("{name}.toml")), text).expect("write provider file");
    let result = match load_dir(dir.path()) {
        Ok(providers) => {
            assert_eq!(providers.len(), 1);
            prepare(&providers[0]);
            Ok(())
        }
        Err(LoadErrors(errors)) => Err(errors),
    };
    (dir, result)
}

/// What a run does with a loaded provider before its first request.
fn prepare(provider: &tributary::providers::Provider) {
    let env = |_: &str| Some("http://127.0.0.1:9".to_string());
    let Ok(prepared) = Prepared::with_env(
        provider,
        &HostRules::default(),
        &crate::common::outbound(),
        &env,
    ) else {
        return;
    };
    if let Source::Http(_) = &provider.def.source {
        let _ = prepared.listing(None, None);
    }
}

/// Every problem says where: a key path, or a line and column in the file.
fn assert_located(errors: &[LoadError]) {
    assert!(!errors.is_empty());
    for error in errors {
        assert!(
            !error.key.is_empty() || error.message.starts_with("line "),
            "problem without a place: {error}"
        );
    }
}

/// Pieces of provider files, and of TOML.
fn toml_like() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "entity = ",
        "\"token\"",
        "\"record\"",
        "dataset = \"d\"\n",
        "key = \"id\"\n",
        "\n[source]\n",
        "kind = ",
        "\"http\"",
        "\"file\"",
        "\"push\"",
        "url = ",
        "\"https://api.example.com/x\"",
        "\"${BASE}/x\"",
        "path = \"x.csv\"\n",
        "\n[source.pagination]\n",
        "\"cursor\"",
        "page_size = ",
        "\n[fields]\n",
        "id = ",
        "address = ",
        "\"$.id\"",
        "{ path = \"a\", transforms = [\"int\", { default = 1 }] }",
        "\n[[source.skip]]\n",
        "\n[parse]\nformat = \"text\"\npattern = ",
        "'(?P<id>\\d+)'",
        "\n",
        "=",
        "{",
        "}",
        "[",
        "]",
        ",",
        "\"",
        "'''",
        "1",
        "-1",
        "5e-324",
        "nan",
        "true",
        "1979-05-27T07:32:00Z",
        "# note\n",
    ]);
    prop_oneof![
        "\\PC{0,120}",
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat()),
    ]
}

proptest! {
    #![proptest_config(config(128))]

    /// Any text: a provider, or problems that each name a key or a line.
    #[test]
    fn any_text_loads_or_says_where(text in toml_like()) {
        if let (_, Err(errors)) = load("fuzzed", &text) {
            assert_located(&errors);
        }
    }
}

/// A key or an index on the way to a value.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn shown(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key) if text.is_empty() => text.push_str(key),
            Step::Key(key) => {
                text.push('.');
                text.push_str(key);
            }
            Step::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// Every path to a value in `value` (tables and lists included).
fn all_paths(value: &toml::Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        toml::Value::Table(table) => {
            for (key, item) in table {
                prefix.push(Step::Key(key.clone()));
                out.push(prefix.clone());
                all_paths(item, prefix, out);
                prefix.pop();
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push(prefix.clone());
                all_paths(item, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(value: &'a mut toml::Value, path: &[Step]) -> &'a mut toml::Value {
    path.iter().fold(value, |value, step| match (step, value) {
        (Step::Key(key), toml::Value::Table(table)) => table.get_mut(key).expect("path exists"),
        (Step::Index(i), toml::Value::Array(items)) => &mut items[*i],
        _ => panic!("path does not fit"),
    })
}

/// A mutation of one value of a provider file.
#[derive(Debug, Clone)]
enum Mutation {
    Drop,
    /// Another type than the value's: string, number, bool, list, table or date.
    OtherType(usize),
    /// A number at or past the edge of the ranges the loader checks.
    OutOfRange(usize),
}

fn other_types() -> Vec<toml::Value> {
    vec![
        toml::Value::String("x".into()),
        toml::Value::Integer(7),
        toml::Value::Boolean(true),
        toml::Value::Array(vec![]),
        toml::Value::Table(toml::Table::new()),
        toml::Value::Datetime("1979-05-27T07:32:00Z".parse().expect("date")),
    ]
}

fn kind(value: &toml::Value) -> usize {
    match value {
        toml::Value::String(_) => 0,
        toml::Value::Integer(_) | toml::Value::Float(_) => 1,
        toml::Value::Boolean(_) => 2,
        toml::Value::Array(_) => 3,
        toml::Value::Table(_) => 4,
        toml::Value::Datetime(_) => 5,
    }
}

/// Numbers at the edges the loader checks, or past them: a number key gets any of these,
/// integer or not (`rate_limit = 5e-324` once loaded and then panicked at run start).
fn edge_number(choice: usize) -> toml::Value {
    const INTEGERS: [i64; 7] = [-1, 0, 99, 600, 65_536, i64::MAX, i64::MIN];
    const FLOATS: [f64; 6] = [0.0, -1.0, 5e-324, 1e-10, 1e308, f64::INFINITY];
    match INTEGERS.get(choice) {
        Some(n) => toml::Value::Integer(*n),
        None => toml::Value::Float(FLOATS[(choice - INTEGERS.len()) % FLOATS.len()]),
    }
}

/// The shipped provider files and templates: (name to save as, text).
fn shipped() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("providers");
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [root.clone(), root.join("templates")] {
        for entry in std::fs::read_dir(&dir).expect("providers directory") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".toml") || name.ends_with(".toml.example") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split('.').next())
                .expect("file name")
                .to_string();
            (name, std::fs::read_to_string(&path).expect("provider file"))
        })
        .collect()
}

#[test]
fn the_shipped_files_load_as_they_are() {
    let files = shipped();
    assert_eq!(
        files.len(),
        8,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (name, text) in files {
        if let (_, Err(errors)) = load(&name, &text) {
            panic!("{name}: {errors:?}");
        }
    }
}

/// Applies `mutation` at `path`; true when the result must be refused (a value of another
/// type, except where any value is allowed: `source.body`, a `default` transform, a field
/// given as a path instead of a table or the other way round, and the cursor and window keys
/// that take an integer or a text).
fn mutate(document: &mut toml::Value, path: &[Step], mutation: &Mutation) -> bool {
    let (parent, last) = path.split_at(path.len() - 1);
    match mutation {
        Mutation::Drop => {
            match (get_mut(document, parent), &last[0]) {
                (toml::Value::Table(table), Step::Key(key)) => {
                    table.remove(key);
                }
                (toml::Value::Array(items), Step::Index(i)) => {
                    items.remove(*i);
                }
                _ => unreachable!("paths fit their parents"),
            }
            false
        }
        Mutation::OtherType(choice) => {
            let target = get_mut(document, path);
            let candidates: Vec<toml::Value> = other_types()
                .into_iter()
                .filter(|v| kind(v) != kind(target))
                .collect();
            let replacement = candidates[choice % candidates.len()].clone();
            // A field is a path (a string) or a table with `path` and `transforms`.
            let field_spec = matches!(path, [Step::Key(table), Step::Key(_)] if table == "fields")
                && matches!(kind(&replacement), 0 | 4);
            *target = replacement;
            let shown_path = shown(path);
            // Keys that take an integer or a text (or a list, or a head request) by design.
            let several = matches!(
                path.last(),
                Some(Step::Key(key)) if ["length", "step", "start", "end", "initial", "lookback"]
                    .contains(&key.as_str())
            );
            !shown_path.contains("body")
                && !shown_path.contains("default")
                && !field_spec
                && !several
        }
        Mutation::OutOfRange(choice) => {
            let target = get_mut(document, path);
            if matches!(target, toml::Value::Integer(_) | toml::Value::Float(_)) {
                *target = edge_number(*choice);
            }
            false
        }
    }
}

/// Loads the mutated document: it loads (and is made ready to run), or every problem is
/// located; when it `must_fail`, one of them names the mutated key (or a key inside or around
/// it) or a line.
fn check(name: &str, document: &toml::Value, path: &[Step], must_fail: bool) {
    let shown_path = shown(path);
    let text = toml::to_string(document).expect("TOML out");
    match load(name, &text).1 {
        Ok(()) => assert!(
            !must_fail,
            "{name}: {shown_path} as another type loaded:\n{text}"
        ),
        Err(errors) => {
            assert_located(&errors);
            let relates = |key: &str| {
                key.is_empty()
                    || key == shown_path
                    || shown_path.starts_with(&format!("{key}."))
                    || shown_path.starts_with(&format!("{key}["))
                    || key.starts_with(&format!("{shown_path}."))
                    || key.starts_with(&format!("{shown_path}["))
            };
            assert!(
                !must_fail || errors.iter().any(|e| relates(&e.key)),
                "{name}: {shown_path} changed type, but no problem names it: {errors:?}"
            );
        }
    }
}

/// Every single mutation of every shipped file: each key dropped, each value as every other
/// type, each number at every edge.
#[test]
fn every_single_mutation_of_the_shipped_files_loads_or_names_the_key() {
    let mut checked = 0;
    for (name, text) in shipped() {
        let original = toml::Value::Table(toml::from_str(&text).expect("shipped TOML"));
        let mut paths = Vec::new();
        all_paths(&original, &mut Vec::new(), &mut paths);
        for path in &paths {
            let mutations = std::iter::once(Mutation::Drop)
                .chain((0..5).map(Mutation::OtherType))
                .chain((0..13).map(Mutation::OutOfRange));
            for mutation in mutations {
                let is_number = matches!(
                    get_mut(&mut original.clone(), path),
                    toml::Value::Integer(_) | toml::Value::Float(_)
                );
                if matches!(mutation, Mutation::OutOfRange(_)) && !is_number {
                    continue;
                }
                let mut document = original.clone();
                let must_fail = mutate(&mut document, path, &mutation);
                check(&name, &document, path, must_fail);
                checked += 1;
            }
        }
    }
    assert!(checked > 1_000, "{checked}");
}

proptest! {
    #![proptest_config(config(128))]

    /// Several mutations of a shipped file at once: it loads, or every problem is located.
    #[test]
    fn mutated_shipped_files_load_or_say_where(
        file in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop_oneof![
                    Just(Mutation::Drop),
                    (0usize..6).prop_map(Mutation::OtherType),
                    (0usize..13).prop_map(Mutation::OutOfRange),
                ],
            ),
            1..4,
        ),
    ) {
        let files = shipped();
        let (name, text) = &files[file.index(files.len())];
        let mut document = toml::Value::Table(toml::from_str(text).expect("shipped TOML"));
        let mut last_path = Vec::new();
        for (at, mutation) in &mutations {
            let mut paths = Vec::new();
            all_paths(&document, &mut Vec::new(), &mut paths);
            if paths.is_empty() {
                break;
            }
            last_path = paths[at.index(paths.len())].clone();
            mutate(&mut document, &last_path, mutation);
        }
        if !last_path.is_empty() {
            check(name, &document, &last_path, false);
        }
    }
}
