//! Uses GraphiQL as a person would: headless Chromium, driven over the Chrome DevTools Protocol.
//!
//! Chromium comes from `$CHROMIUM` or from `PATH` (`chromium`, `chromium-browser`,
//! `google-chrome`); on Debian: `apt-get install chromium`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Bound on the whole run, from starting Chromium to reading GraphiQL's response.
const OVERALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on Chromium printing its DevTools address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound, inside the page, on each wait (editor appearing, response arriving).
const PAGE_WAIT_MS: u64 = 20_000;
/// How many of Chromium's last stderr lines and of the page's errors an error message quotes.
const KEEP_LINES: usize = 15;

/// Runs in the page: waits for GraphiQL's query editor (CodeMirror 5), sets the query, clicks
/// the run button and waits for the response editor to hold text.
const GRAPHIQL_SCRIPT: &str = r#"(async (query, waitMs) => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const until = async (what, probe) => {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const value = probe();
      if (value) return value;
      if (Date.now() > deadline) {
        const body = document.body ? document.body.innerText.slice(0, 500) : '(no body)';
        throw new Error(`${what} within ${waitMs} ms; page text: ${JSON.stringify(body)}`);
      }
      await sleep(100);
    }
  };
  const editor = await until('GraphiQL query editor did not appear', () => {
    const el = document.querySelector('.graphiql-query-editor .CodeMirror');
    return el && el.CodeMirror;
  });
  const output = await until('GraphiQL response editor did not appear', () => {
    const el = document.querySelector('.graphiql-response .CodeMirror');
    return el && el.CodeMirror;
  });
  editor.setValue(query);
  output.setValue('');
  // GraphiQL analyses the query 100 ms after an edit (operation name, whether it is a
  // subscription); let that happen, as it would for a person typing, before running it.
  // A query that does not parse never gets an AST, hence the bounded wait.
  const settled = Date.now() + 2000;
  while (Date.now() < settled) {
    const ast = editor.documentAST;
    if (ast && ast.loc && ast.loc.source.body === query) break;
    await sleep(50);
  }
  const button = await until('GraphiQL run button did not appear', () =>
    document.querySelector('.graphiql-execute-button'));
  button.click();
  return await until('GraphiQL response pane stayed empty', () => {
    const text = output.getValue();
    return text.trim() === '' ? null : text;
  });
})"#;

/// Opens `page_url` (a GraphiQL page) in headless Chromium, types/sets `query` into the editor,
/// clicks the run button, waits for the response pane to contain text, and returns that text.
pub async fn run_query_in_graphiql(page_url: &str, query: &str) -> Result<String, String> {
    let query_json =
        serde_json::to_string(query).map_err(|e| format!("cannot encode the query: {e}"))?;
    let value = run_in_page(
        page_url,
        &format!("{GRAPHIQL_SCRIPT}({query_json}, {PAGE_WAIT_MS})"),
    )
    .await?;
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("the page script returned no text: {value}"))
}

/// Opens `page_url` in headless Chromium and evaluates `expression` in the page (awaiting it
/// when it is a promise), returning its value as JSON.
pub async fn run_in_page(page_url: &str, expression: &str) -> Result<Value, String> {
    let chromium = find_chromium()?;
    let profile = tempfile::Builder::new()
        .prefix("tributary-chromium-")
        .tempdir()
        .map_err(|e| format!("cannot create a Chromium profile directory: {e}"))?;
    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-quic",
            "--no-first-run",
            "--disable-sync",
            "--no-proxy-server",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", chromium.display()))?;

    let progress = Arc::new(Mutex::new(Progress::default()));
    let outcome = tokio::time::timeout(
        OVERALL_TIMEOUT,
        drive(&mut child, page_url, expression, &progress),
    )
    .await;
    // Chromium must be gone before its profile directory is removed.
    if let Err(e) = child.kill().await {
        progress_note(&progress, format!("could not stop Chromium: {e}"));
    }
    drop(profile);

    let (step, details) = match progress.lock() {
        Ok(p) => (p.step.clone(), p.details()),
        Err(_) => ("(unknown step)".to_owned(), String::new()),
    };
    match outcome {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(format!("failed while {step}: {e}{details}")),
        Err(_) => Err(format!(
            "timed out after {} s while {step}{details}",
            OVERALL_TIMEOUT.as_secs()
        )),
    }
}

/// Where the run has got to and what Chromium and the page reported; kept outside the timed
/// future so a timeout can still say where it stopped.
#[derive(Default)]
struct Progress {
    step: String,
    stderr_tail: VecDeque<String>,
    page_errors: VecDeque<String>,
}

impl Progress {
    fn details(&self) -> String {
        let mut out = String::new();
        if !self.page_errors.is_empty() {
            out.push_str("\npage errors:\n  ");
            out.push_str(&Vec::from(self.page_errors.clone()).join("\n  "));
        }
        if !self.stderr_tail.is_empty() {
            out.push_str("\nChromium stderr (last lines):\n  ");
            out.push_str(&Vec::from(self.stderr_tail.clone()).join("\n  "));
        }
        out
    }
}

type Shared = Arc<Mutex<Progress>>;

fn push_bounded(lines: &mut VecDeque<String>, line: String) {
    if lines.len() == KEEP_LINES {
        lines.pop_front();
    }
    lines.push_back(line);
}

fn set_step(progress: &Shared, step: &str) {
    if let Ok(mut p) = progress.lock() {
        p.step = step.to_owned();
    }
}

fn progress_note(progress: &Shared, line: String) {
    if let Ok(mut p) = progress.lock() {
        push_bounded(&mut p.page_errors, line);
    }
}

/// Keeps one of Chromium's stderr lines for error messages, skipping the D-Bus complaints that
/// headless Chromium prints on machines without a session bus.
fn note_stderr(progress: &Shared, line: String) {
    if line.contains("dbus") {
        return;
    }
    if let Ok(mut p) = progress.lock() {
        push_bounded(&mut p.stderr_tail, line);
    }
}

fn find_chromium() -> Result<PathBuf, String> {
    if let Some(value) = std::env::var_os("CHROMIUM").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        let found = if path.components().count() > 1 {
            path.is_file().then(|| path.clone())
        } else {
            on_path(&path)
        };
        return found.ok_or_else(|| {
            format!(
                "CHROMIUM is set to {}, which is not an existing file",
                path.display()
            )
        });
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| on_path(Path::new(name)))
        .ok_or_else(|| {
            "Chromium not found (looked for chromium, chromium-browser and google-chrome on PATH): \
             install Debian's `chromium` package (`apt-get install chromium`) or set CHROMIUM to \
             the browser's path"
                .to_owned()
        })
}

fn on_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

async fn drive(
    child: &mut Child,
    page_url: &str,
    expression: &str,
    progress: &Shared,
) -> Result<Value, String> {
    set_step(
        progress,
        "waiting for Chromium to print its DevTools address",
    );
    let stderr = child
        .stderr
        .take()
        .ok_or("Chromium's stderr was not captured")?;
    let mut lines = BufReader::new(stderr).lines();
    let browser_ws = tokio::time::timeout(STARTUP_TIMEOUT, async {
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| format!("cannot read Chromium's stderr: {e}"))?
        {
            if line.contains("DevTools listening on")
                && let Some(start) = line.find("ws://")
            {
                return Ok(line[start..].trim().to_owned());
            }
            note_stderr(progress, line);
        }
        Err("Chromium exited before printing its DevTools address".to_owned())
    })
    .await
    .map_err(|_| {
        format!(
            "Chromium did not print its DevTools address within {} s",
            STARTUP_TIMEOUT.as_secs()
        )
    })??;
    // Keep draining stderr so Chromium never blocks on a full pipe.
    let tail = Arc::clone(progress);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            note_stderr(&tail, line);
        }
    });

    set_step(progress, "connecting to Chromium's DevTools endpoint");
    let (ws, _) = tokio_tungstenite::connect_async(browser_ws.as_str())
        .await
        .map_err(|e| format!("cannot connect to {browser_ws}: {e}"))?;
    let mut cdp = Cdp {
        ws,
        next_id: 0,
        session: None,
        events: VecDeque::new(),
        progress: Arc::clone(progress),
    };

    set_step(progress, "opening a browser tab");
    let target = cdp
        .call("Target.createTarget", json!({ "url": "about:blank" }))
        .await?;
    let target_id = target["targetId"]
        .as_str()
        .ok_or("Target.createTarget returned no targetId")?
        .to_owned();
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        )
        .await?;
    let session = attached["sessionId"]
        .as_str()
        .ok_or("Target.attachToTarget returned no sessionId")?;
    cdp.session = Some(session.to_owned());
    for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
        cdp.call(domain, json!({})).await?;
    }

    set_step(progress, &format!("loading {page_url}"));
    let navigated = cdp
        .call("Page.navigate", json!({ "url": page_url }))
        .await?;
    if let Some(error) = navigated["errorText"].as_str().filter(|e| !e.is_empty()) {
        return Err(format!("navigation failed: {error}"));
    }
    cdp.wait_event("Page.loadEventFired").await?;

    set_step(progress, "running the script in the page");
    let evaluated = cdp
        .call(
            "Runtime.evaluate",
            json!({
                "expression": expression,
                "awaitPromise": true,
                "returnByValue": true,
            }),
        )
        .await?;
    if let Some(details) = evaluated.get("exceptionDetails") {
        let message = details["exception"]["description"]
            .as_str()
            .or_else(|| details["text"].as_str())
            .unwrap_or("unknown exception");
        return Err(format!("the page script failed: {message}"));
    }
    Ok(evaluated["result"]["value"].clone())
}

/// A DevTools Protocol connection to the browser, talking to one page once `session` is set.
struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    /// Events that arrived while waiting for a command's answer.
    events: VecDeque<Value>,
    progress: Shared,
}

impl Cdp {
    /// Sends one command and returns its `result`.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            command["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(command.to_string()))
            .await
            .map_err(|e| format!("cannot send {method}: {e}"))?;
        loop {
            let message = self.next_message().await?;
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    return Err(format!("{method} failed: {error}"));
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
            if message.get("method").is_some() {
                self.events.push_back(message);
            }
        }
    }

    /// Waits for the event named `method`, dropping the ones before it.
    async fn wait_event(&mut self, method: &str) -> Result<Value, String> {
        loop {
            while let Some(event) = self.events.pop_front() {
                if event["method"] == method {
                    return Ok(event);
                }
            }
            let message = self.next_message().await?;
            if message.get("method").is_some() {
                self.events.push_back(message);
            }
        }
    }

    /// Reads the next protocol message, noting the page's errors on the way.
    async fn next_message(&mut self) -> Result<Value, String> {
        loop {
            let text = match self.ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | None => {
                    return Err("the DevTools connection closed (did Chromium exit?)".to_owned());
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("the DevTools connection failed: {e}")),
            };
            let message: Value = serde_json::from_str(text.as_str())
                .map_err(|e| format!("unreadable DevTools message: {e}"))?;
            if let Some(note) = page_error(&message) {
                progress_note(&self.progress, note);
            }
            return Ok(message);
        }
    }
}

/// The text of an uncaught exception, console error or browser log error, if `event` is one.
fn page_error(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.exceptionThrown" => {
            let details = &params["exceptionDetails"];
            let text = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())?;
            Some(format!("uncaught: {text}"))
        }
        "Runtime.consoleAPICalled" if params["type"] == "error" => {
            let args: Vec<String> = params["args"]
                .as_array()?
                .iter()
                .map(|arg| match &arg["value"] {
                    Value::String(s) => s.clone(),
                    Value::Null => arg["description"].as_str().unwrap_or("?").to_owned(),
                    other => other.to_string(),
                })
                .collect();
            Some(format!("console.error: {}", args.join(" ")))
        }
        "Log.entryAdded" if params["entry"]["level"] == "error" => {
            let entry = &params["entry"];
            Some(format!(
                "{}: {} {}",
                entry["source"].as_str().unwrap_or("log"),
                entry["text"].as_str().unwrap_or(""),
                entry["url"].as_str().unwrap_or("")
            ))
        }
        _ => None,
    }
}
