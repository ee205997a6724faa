//! File sources: a local path (relative to the provider file) or an http(s) URL, as CSV, JSON
//! lines or JSON, optionally gzipped. Read on a blocking thread in chunks through a bounded
//! channel, so memory stays flat whatever the file size (a `json` file, one document, is the
//! exception: use JSON lines for large inputs).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use futures_util::StreamExt;
use serde_json::{Map, Value as Json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::json;
use super::listing::{parse_path, select};
use super::outbound::Outbound;
use crate::providers::definition::{FileFormat, FileSource, Provider};

/// Records per chunk; each chunk is one committed batch.
const CHUNK: usize = 5_000;

/// Records read so far, and the count consumed from the start of the file (the checkpoint).
pub struct Chunk {
    pub records: Vec<Json>,
    pub consumed: u64,
}

pub struct FileReader {
    receiver: mpsc::Receiver<Result<Chunk, String>>,
    /// A downloaded copy, removed when the reader is dropped.
    _download: Option<tempfile::TempPath>,
}

impl FileReader {
    /// Opens the file and skips the first `skip` records (already committed by an earlier run).
    /// A remote file may be fetched only from an address `outbound` allows.
    pub async fn open(
        provider: &Provider,
        source: &FileSource,
        skip: u64,
        outbound: &Outbound,
    ) -> Result<FileReader, String> {
        let name = source.path.as_str();
        let (path, download) = if name.starts_with("http://") || name.starts_with("https://") {
            let temp = download(&provider.name, name, outbound).await?;
            (temp.to_path_buf(), Some(temp))
        } else {
            let base = provider.path.parent().unwrap_or(Path::new("."));
            (base.join(name), None)
        };
        let plain = name.strip_suffix(".gz").unwrap_or(name);
        let format = match source.format {
            Some(f) => f,
            None if plain.ends_with(".csv") => FileFormat::Csv,
            None if plain.ends_with(".jsonl") || plain.ends_with(".ndjson") => FileFormat::Jsonl,
            None if plain.ends_with(".json") => FileFormat::Json,
            None => {
                return Err(format!(
                    "source.path: cannot tell the format of {name}; set source.format"
                ));
            }
        };
        let file =
            File::open(&path).map_err(|e| format!("source.path: {}: {e}", path.display()))?;
        let reader: Box<dyn Read + Send> = if name.ends_with(".gz") {
            Box::new(MultiGzDecoder::new(BufReader::new(file)))
        } else {
            Box::new(file)
        };
        let records_path = source.records.clone().unwrap_or_else(|| "$".to_string());
        let (sender, receiver) = mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            let result = read(
                BufReader::with_capacity(1 << 16, reader),
                format,
                &records_path,
                skip,
                &sender,
            );
            if let Err(error) = result {
                let _ = sender.blocking_send(Err(error));
            }
        });
        Ok(FileReader {
            receiver,
            _download: download,
        })
    }

    pub async fn next_chunk(&mut self) -> Result<Option<Chunk>, String> {
        self.receiver.recv().await.transpose()
    }
}

async fn download(
    provider: &str,
    url: &str,
    outbound: &Outbound,
) -> Result<tempfile::TempPath, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("source.path: not a URL ({e})"))?;
    let refused = |refused| format!("provider {provider}: source.path: GET {parsed}: {refused}");
    outbound.check_url(&parsed).map_err(refused)?;
    let client = reqwest::Client::builder()
        .dns_resolver(outbound.resolver())
        .redirect(outbound.redirect_policy())
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let response = client
        .get(parsed.clone())
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| match super::outbound::refusal_in(&e) {
            Some(r) => refused(r),
            None => format!("source.path: GET failed: {}", e.without_url()),
        })?;
    let temp = tempfile::NamedTempFile::new().map_err(|e| format!("temporary file: {e}"))?;
    let (file, path) = temp.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("source.path: download: {}", e.without_url()))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("temporary file: {e}"))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("temporary file: {e}"))?;
    Ok(path)
}

fn read(
    reader: impl BufRead,
    format: FileFormat,
    records_path: &str,
    skip: u64,
    sender: &mpsc::Sender<Result<Chunk, String>>,
) -> Result<(), String> {
    let mut chunker = Chunker {
        records: Vec::with_capacity(CHUNK),
        consumed: 0,
        skip,
        sender,
    };
    match format {
        FileFormat::Csv => {
            let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
            let header: Vec<String> = csv
                .headers()
                .map_err(|e| format!("CSV header: {e}"))?
                .iter()
                .map(|h| h.trim().to_string())
                .collect();
            for row in csv.records() {
                let row = row.map_err(|e| format!("CSV: {e}"))?;
                let object: Map<String, Json> = header
                    .iter()
                    .zip(row.iter())
                    .map(|(k, v)| (k.clone(), Json::String(v.to_string())))
                    .collect();
                if !chunker.push(Json::Object(object)) {
                    return Ok(());
                }
            }
        }
        FileFormat::Jsonl => {
            for (n, line) in reader.lines().enumerate() {
                let line = line.map_err(|e| format!("line {}: {e}", n + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                // A line that is not JSON still counts: it becomes the record, and mapping
                // rejects it with a reason instead of ending the file.
                let record = json::parse(&line).unwrap_or(Json::String(line));
                if !chunker.push(record) {
                    return Ok(());
                }
            }
        }
        FileFormat::Json => {
            let mut text = String::new();
            let mut reader = reader;
            reader
                .read_to_string(&mut text)
                .map_err(|e| format!("reading: {e}"))?;
            let document = json::parse(&text).map_err(|e| format!("not JSON: {e}"))?;
            let path = parse_path("source.records", records_path).map_err(|e| e.to_string())?;
            for record in select(&path, &document) {
                if !chunker.push(record) {
                    return Ok(());
                }
            }
        }
    }
    chunker.flush();
    Ok(())
}

struct Chunker<'a> {
    records: Vec<Json>,
    consumed: u64,
    skip: u64,
    sender: &'a mpsc::Sender<Result<Chunk, String>>,
}

impl Chunker<'_> {
    /// Adds a record; false when the consumer has gone.
    fn push(&mut self, record: Json) -> bool {
        self.consumed += 1;
        if self.consumed <= self.skip {
            return true;
        }
        self.records.push(record);
        if self.records.len() >= CHUNK {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        if self.records.is_empty() {
            return true;
        }
        let chunk = Chunk {
            records: std::mem::replace(&mut self.records, Vec::with_capacity(CHUNK)),
            consumed: self.consumed,
        };
        self.sender.blocking_send(Ok(chunk)).is_ok()
    }
}
