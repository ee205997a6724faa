//! Bundles the GraphiQL assets into the server binary.
//!
//! The assets come from npm (`graphiql/package.json` + `graphiql/package-lock.json`) and are
//! copied into `$OUT_DIR/graphiql/`, where `src/graphiql.rs` embeds them. When npm is missing or
//! `npm ci` fails, the build still succeeds with placeholder files and a warning, and the server
//! then serves a page explaining that GraphiQL was not bundled.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// (name served under /graphiql/, path inside graphiql/node_modules/)
const ASSETS: [(&str, &str); 4] = [
    (
        "react.production.min.js",
        "react/umd/react.production.min.js",
    ),
    (
        "react-dom.production.min.js",
        "react-dom/umd/react-dom.production.min.js",
    ),
    ("graphiql.min.js", "graphiql/graphiql.min.js"),
    ("graphiql.min.css", "graphiql/graphiql.min.css"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=graphiql/package.json");
    println!("cargo:rerun-if-changed=graphiql/package-lock.json");

    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("CARGO_MANIFEST_DIR is not set; build.rs must run under cargo"));
    let out_dir = env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("OUT_DIR is not set; build.rs must run under cargo"));
    let npm_dir = manifest_dir.join("graphiql");
    let modules = npm_dir.join("node_modules");
    let target = out_dir.join("graphiql");
    if let Err(e) = fs::create_dir_all(&target) {
        panic!("cannot create {}: {e}", target.display());
    }

    let all_present = || ASSETS.iter().all(|(_, src)| modules.join(src).is_file());
    let outcome = if all_present() {
        Ok(())
    } else {
        npm_ci(&npm_dir).and_then(|()| {
            if all_present() {
                Ok(())
            } else {
                Err("`npm ci` ran but graphiql/node_modules still lacks the assets".into())
            }
        })
    }
    .and_then(|()| copy_assets(&modules, &target));

    let bundled = match outcome {
        // Nothing under node_modules is watched: `npm ci` has just written it, after this
        // script started, so cargo would take it for a change and build the crate again.
        Ok(()) => true,
        Err(reason) => {
            // Written by every npm install: while the assets are missing, installing npm (or
            // running `npm ci` by hand) is picked up without touching any file.
            println!("cargo:rerun-if-changed=graphiql/node_modules/.package-lock.json");
            println!(
                "cargo:warning=GraphiQL assets could not be installed ({reason}); GET /graphql \
                 will show a notice instead of GraphiQL. To fix it, install Node.js with npm (with \
                 access to the npm registry) and rebuild; `npm ci` in graphiql/ shows npm's errors."
            );
            for (name, _) in ASSETS {
                let placeholder =
                    format!("/* {name}: GraphiQL assets were not bundled in this build */\n");
                if let Err(e) = fs::write(target.join(name), placeholder) {
                    panic!("cannot write {}: {e}", target.join(name).display());
                }
            }
            false
        }
    };
    println!(
        "cargo:rustc-env=GRAPHIQL_ASSETS_BUNDLED={}",
        if bundled { "1" } else { "0" }
    );
}

/// Runs `npm ci --no-audit --no-fund` in `dir`; its output goes to stderr so it cannot be taken
/// for cargo instructions.
fn npm_ci(dir: &Path) -> Result<(), String> {
    if !dir.join("package-lock.json").is_file() {
        return Err(format!(
            "{} is missing",
            dir.join("package-lock.json").display()
        ));
    }
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("could not run npm: {e}"))?;
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        return Ok(());
    }
    // npm prints `npm error code X`, then the message, then where its log is: keep the message.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("npm error "))
        .find(|l| !l.trim().is_empty() && !l.starts_with("code ") && !l.contains("complete log"))
        .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("");
    Err(format!("`npm ci` failed with {}: {message}", output.status))
}

fn copy_assets(modules: &Path, target: &Path) -> Result<(), String> {
    for (name, src) in ASSETS {
        let from = modules.join(src);
        fs::copy(&from, target.join(name))
            .map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    }
    Ok(())
}
