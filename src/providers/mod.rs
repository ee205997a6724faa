//! Providers: one TOML file each in `providers/`, saying where data comes from and how it
//! becomes an entity kind's records.
//!
//! - `definition`: the file format — one type per table, each key documented where declared.
//! - `load`: reading a directory of files, collecting every problem of every file.
//! - `shape`: each key checked against the schema derived from `definition`.
//! - `validate`: what the keys mean — names, fields, cron, JSONPaths, URLs.
//! - `env`: `${VAR}` expansion when a run starts.
//! - `resolve`: where a file source reads from, and its format.

pub mod definition;
pub mod env;
pub mod load;
pub mod resolve;
pub mod shape;
mod validate;

use std::path::PathBuf;

pub use definition::{
    EntityKind, FieldSpec, FileFormat, ProviderFile, Source, Transform, TransformName,
    TransformWith,
};
pub use env::{expand_env, expand_provider};
pub use load::{LoadError, LoadErrors, load_dir, load_file};
pub use resolve::{FileLocation, file_format, file_gzip, file_location};

/// A provider ready to run: its file, validated, with its resolved name.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    /// The file it was read from.
    pub path: PathBuf,
    pub def: ProviderFile,
}

impl Provider {
    /// `http`, `file`, `push` or `kafka`.
    pub fn source_kind(&self) -> &'static str {
        match self.def.source {
            Source::Http(_) => "http",
            Source::File(_) => "file",
            Source::Push(_) => "push",
            Source::Kafka(_) => "kafka",
        }
    }

    /// Whether raw payloads are kept: `keep_raw`, by default on for `http` — except when a
    /// field is redacted or hashed, because the raw payload would hold that personal data in
    /// clear (set `keep_raw = true` to keep it anyway).
    pub fn keep_raw(&self) -> bool {
        self.def
            .keep_raw
            .unwrap_or(matches!(self.def.source, Source::Http(_)) && !self.has_sensitive_fields())
    }

    /// Some field is redacted or hashed.
    pub fn has_sensitive_fields(&self) -> bool {
        self.def.fields.values().any(|spec| {
            spec.parts().1.iter().any(|t| {
                matches!(
                    t,
                    Transform::Name(TransformName::Redact | TransformName::Sha256)
                        | Transform::With(TransformWith::Sha256 { .. })
                )
            })
        })
    }
}
