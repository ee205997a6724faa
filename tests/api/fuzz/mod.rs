//! Property tests ("fuzzing") of every parser that reads outside input: CSV rows and JSON lines,
//! JSON pages and the transform pipeline, regex text documents, the scalars, and provider files.
//!
//! `cargo fuzz` needs a nightly toolchain, which the machines that build this project cannot
//! fetch, so these are `proptest` properties on the stable toolchain. They feed arbitrary input,
//! and mutations of the real provider payloads in `../shared/data` and of the shipped provider
//! files, to the real entry points, and assert that nothing panics, that bad input gives an
//! error saying what was wrong and where, and, where it means something, that values round-trip.
//!
//! Case counts are small so the file runs in seconds in CI; `PROPTEST_CASES=5000 cargo test
//! --test api fuzz::` runs more. A failure found here is fixed in the source and kept there as a plain
//! unit test with the offending input.

// The stand-in providers' data generators (the patients documents).
mod csv_rows;
mod json_pages;
mod provider_files;
mod scalars;
mod text_documents;

use proptest::test_runner::Config;

/// The shared sample data: real provider payloads.
pub const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

/// `cases` per property unless `PROPTEST_CASES` is set. No regression files: a failure is kept
/// as a unit test beside the code it found wanting.
pub fn config(cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}

/// A sample file's text.
pub fn data(path: &str) -> String {
    let path = format!("{DATA_DIR}/{path}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
