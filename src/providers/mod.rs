//! Providers: one TOML file each in `providers/`, saying where data comes from and how it
//! becomes an entity's rows. `definition` is the file format; `load` reads and validates a
//! directory of such files and expands `${VAR}` references when a run starts.

pub mod definition;
pub mod load;

pub use definition::{EntityKind, FileFormat, Provider, ProviderFile, Source};
pub use load::{
    FileLocation, LoadError, LoadErrors, expand_env, expand_provider, file_format, file_gzip,
    file_location, load_dir, load_file,
};
