//! The `tributary` binary: parses the command line and runs it (`cli`); errors print as one line.

use std::process::ExitCode;

use clap::Parser;
use tributary::cli::{Cli, run};

// glibc's allocator spent a fifth of the server's CPU under concurrent GraphQL load; mimalloc's
// per-thread heaps avoid that contention. Built without transparent huge pages (`no_thp`): every
// fresh 2 MiB page was zeroed by the kernel on first touch, a tenth of the server's CPU in a host
// push, and peak memory doubled.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            // One line, the whole cause chain, no backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
