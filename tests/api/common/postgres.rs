//! PostgreSQL for tests: `TEST_DATABASE_URL` when set, otherwise a throwaway cluster started
//! from the local server binaries, once per test process. Every test gets a fresh database
//! cloned from a migrated template. Without PostgreSQL the test fails with a message that says
//! how to get it; it never skips.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database};
use tokio::sync::OnceCell;

const HOW_TO_GET_POSTGRES: &str = "PostgreSQL is needed for these tests: install the server \
    packages (Debian/Ubuntu: `apt-get install postgresql`; macOS: `brew install postgresql`) so \
    that `initdb` and `postgres` are found (on PATH, under /usr/lib/postgresql/*/bin, or in \
    PG_BIN_DIR), or point TEST_DATABASE_URL at a server where the user may create databases";

/// Server URL without a database name, e.g. `postgres://postgres@127.0.0.1:5433`.
fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => strip_database(&url),
        Err(_) => match start_cluster() {
            Ok(url) => url,
            Err(why) => {
                panic!("cannot start a throwaway PostgreSQL cluster: {why}\n{HOW_TO_GET_POSTGRES}")
            }
        },
    })
}

fn strip_database(url: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[scheme_end..].find('/') {
        Some(i) => url[..scheme_end + i].to_string(),
        None => url.to_string(),
    }
}

/// A fresh, migrated database for one test; returns its URL.
pub async fn fresh_database() -> String {
    let server = server_url();
    let template = template(server).await;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "tributary_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    let admin = Database::connect(format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to {server}/postgres: {e}\n{HOW_TO_GET_POSTGRES}")
        });
    admin
        .execute_unprepared(&format!(
            r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#
        ))
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    admin.close().await.ok();
    format!("{server}/{name}")
}

/// The migrated template, made once per process (and shared between processes through an
/// advisory lock when TEST_DATABASE_URL points at a long-lived server).
async fn template(server: &str) -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let names: Vec<String> = Migrator::migrations()
                .iter()
                .map(|m| m.name().to_string())
                .collect();
            let fingerprint = names.join(",").bytes().fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
            });
            let name = format!("tributary_template_{:016x}", fingerprint);
            let admin = Database::connect(format!("{server}/postgres"))
                .await
                .unwrap_or_else(|e| {
                    panic!("cannot connect to {server}/postgres: {e}\n{HOW_TO_GET_POSTGRES}")
                });
            let lock = "SELECT pg_advisory_lock(727274)";
            admin
                .execute_unprepared(lock)
                .await
                .unwrap_or_else(|e| panic!("advisory lock: {e}"));
            let exists = admin
                .query_one_raw(sea_orm::Statement::from_string(
                    admin.get_database_backend(),
                    format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
                ))
                .await
                .unwrap_or_else(|e| panic!("cannot list databases: {e}"))
                .is_some();
            if !exists {
                let building = format!("{name}_building");
                admin
                    .execute_unprepared(&format!(r#"DROP DATABASE IF EXISTS "{building}""#))
                    .await
                    .unwrap_or_else(|e| panic!("drop {building}: {e}"));
                admin
                    .execute_unprepared(&format!(r#"CREATE DATABASE "{building}""#))
                    .await
                    .unwrap_or_else(|e| panic!("create {building}: {e}"));
                let db = Database::connect(format!("{server}/{building}"))
                    .await
                    .unwrap_or_else(|e| panic!("connect {building}: {e}"));
                Migrator::up(&db, None)
                    .await
                    .unwrap_or_else(|e| panic!("migrate {building}: {e}"));
                db.close().await.ok();
                // Renamed only once complete, so a crash mid-way never leaves a half template.
                admin
                    .execute_unprepared(&format!(
                        r#"ALTER DATABASE "{building}" RENAME TO "{name}""#
                    ))
                    .await
                    .unwrap_or_else(|e| panic!("rename template: {e}"));
            }
            admin
                .execute_unprepared("SELECT pg_advisory_unlock(727274)")
                .await
                .unwrap_or_else(|e| panic!("advisory unlock: {e}"));
            admin.close().await.ok();
            name
        })
        .await
}

/// The running throwaway cluster: its supervisor exits (stopping PostgreSQL and deleting the
/// data directory) when this process exits and the pipe to it closes.
struct Cluster {
    _supervisor: Child,
    _stdin: ChildStdin,
}

static CLUSTER: Mutex<Option<Cluster>> = Mutex::new(None);

/// A new cluster's directory (owned by the user PostgreSQL will run as) with an initialised
/// `data` directory in it: (directory, whether we run as root).
fn init_cluster(bin: &Path) -> Result<(PathBuf, bool), String> {
    let dir = tempfile::Builder::new()
        .prefix("tributary-pg-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?
        .keep();
    let data = dir.join("data");
    let as_root = is_root();
    if as_root {
        // PostgreSQL refuses to run as root; run it as the `postgres` user the packages create.
        chown_to_postgres(&dir)?;
    }
    let initdb = bin.join("initdb");
    let status = run_as(as_root, &initdb)
        .args(["-D"])
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", initdb.display()))?;
    if !status.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&status.stderr).trim()
        ));
    }
    Ok((dir, as_root))
}

fn start_cluster() -> Result<String, String> {
    let bin = find_bin_dir().ok_or("no `initdb` found")?;
    let (dir, as_root) = init_cluster(&bin)?;
    let port = free_port()?;
    let postgres = bin.join("postgres");
    // The supervisor shell starts PostgreSQL, waits for its stdin to close (this process
    // ending, however it ends), then stops the server and removes the cluster.
    let script = r#"
        "$1" -D "$2/data" -k "$2" -p "$3" -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
             -c shared_buffers=128MB >"$2/log" 2>&1 &
        pg=$!
        cat >/dev/null
        kill -INT "$pg" 2>/dev/null
        wait "$pg"
        rm -rf "$2"
    "#;
    let mut supervisor = run_as(as_root, Path::new("sh"))
        .args(["-c", script, "supervisor"])
        .arg(&postgres)
        .arg(&dir)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", postgres.display()))?;
    let stdin = supervisor
        .stdin
        .take()
        .ok_or("no stdin pipe to the supervisor")?;
    wait_until_accepting(port, &dir.join("log"))?;
    if let Ok(mut slot) = CLUSTER.lock() {
        *slot = Some(Cluster {
            _supervisor: supervisor,
            _stdin: stdin,
        });
    }
    Ok(format!("postgres://postgres@127.0.0.1:{port}"))
}

fn wait_until_accepting(port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // The port opens a moment before the server accepts logins.
            if let Ok(file) = std::fs::File::open(log) {
                let ready = BufReader::new(file)
                    .lines()
                    .map_while(Result::ok)
                    .any(|l| l.contains("ready to accept connections"));
                if ready {
                    return Ok(());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    Err(format!(
        "PostgreSQL did not start within 30 s; its log:\n{tail}"
    ))
}

fn find_bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").is_file() && p.join("postgres").is_file())
    })
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run_as(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn chown_to_postgres(dir: &Path) -> Result<(), String> {
    let status = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(dir)
        .status()
        .map_err(|e| format!("chown: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("running as root, and the `postgres` user (created by the PostgreSQL packages) does not exist to run the server".to_string())
    }
}

/// A throwaway cluster of one test's own, which the test may stop and start again on the same
/// port (the shared cluster of [`fresh_database`] is never stopped). Commits are synchronous,
/// so an immediate stop loses nothing that was acknowledged. Stopped and removed when dropped,
/// or when the test process ends however it ends (a supervisor waits on a pipe, as for the
/// shared cluster).
pub struct PrivateCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
    _supervisor: Child,
    _stdin: ChildStdin,
}

impl PrivateCluster {
    /// Creates and starts the cluster; fails the test (saying how to get PostgreSQL) when it
    /// cannot.
    pub fn start() -> PrivateCluster {
        Self::try_start().unwrap_or_else(|why| {
            panic!("cannot start a private PostgreSQL cluster: {why}\n{HOW_TO_GET_POSTGRES}")
        })
    }

    fn try_start() -> Result<PrivateCluster, String> {
        let bin = find_bin_dir().ok_or("no `initdb` found")?;
        let (dir, as_root) = init_cluster(&bin)?;
        Self::supervise_and_start(bin, dir, as_root)
    }

    /// A streaming replica of this cluster (`pg_basebackup -R`: a hot standby that follows
    /// it), started on its own port. `initdb --auth=trust` already lets loopback clients
    /// replicate, and PostgreSQL's defaults (`wal_level=replica`, `max_wal_senders=10`) serve
    /// a standby.
    pub fn start_standby(&self) -> PrivateCluster {
        self.try_start_standby()
            .unwrap_or_else(|why| panic!("cannot start a standby of the private cluster: {why}"))
    }

    fn try_start_standby(&self) -> Result<PrivateCluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("tributary-pg-standby-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?
            .keep();
        if self.as_root {
            chown_to_postgres(&dir)?;
        }
        let output = run_as(self.as_root, &self.bin.join("pg_basebackup"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-R", "-X", "stream", "--checkpoint=fast", "--no-sync"])
            .output()
            .map_err(|e| format!("cannot run pg_basebackup: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Self::supervise_and_start(self.bin.clone(), dir, self.as_root)
    }

    fn supervise_and_start(
        bin: PathBuf,
        dir: PathBuf,
        as_root: bool,
    ) -> Result<PrivateCluster, String> {
        let port = free_port()?;
        let script = r#"
            cat >/dev/null
            "$1/pg_ctl" -D "$2/data" -m immediate -w stop >/dev/null 2>&1
            rm -rf "$2"
        "#;
        let mut supervisor = run_as(as_root, Path::new("sh"))
            .args(["-c", script, "supervisor"])
            .arg(&bin)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the cluster's supervisor: {e}"))?;
        let stdin = supervisor
            .stdin
            .take()
            .ok_or("no stdin pipe to the supervisor")?;
        let cluster = PrivateCluster {
            bin,
            dir,
            port,
            as_root,
            _supervisor: supervisor,
            _stdin: stdin,
        };
        cluster.pg_ctl_start()?;
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the cluster's default database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m immediate`: every server process ends at once, as in a crash.
    pub fn stop_immediate(&self) {
        let output = run_as(self.as_root, &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .expect("run pg_ctl stop");
        assert!(
            output.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the stopped cluster again on the same port, waiting until it accepts logins
    /// (after crash recovery).
    pub fn start_again(&self) {
        self.pg_ctl_start()
            .unwrap_or_else(|why| panic!("cannot restart the private cluster: {why}"));
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=on \
             -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let output = run_as(self.as_root, &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            Err(format!(
                "pg_ctl start failed: {}\n{log}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}
