//! File sources: a local path (relative to the provider file) or an http(s) URL, as CSV, JSON
//! lines or JSON, optionally gzipped. Where the file is and what format it has are worked out
//! by the same resolvers `tributary providers` checks with (`providers::load`). Rows are read
//! by the readers the bulk importer uses (`crate::formats`), so a row that is not valid UTF-8
//! or not JSON is rejected on its own, with its line, and the rest is read. Reading happens on
//! a blocking thread in chunks through a bounded channel, so memory stays flat whatever the
//! file size (a `json` file, one document, is the exception: use JSON lines for large inputs).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;
use futures_util::StreamExt;
use serde_json::Value as Json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::json;
use super::listing::{parse_path, select};
use super::outbound::Outbound;
use crate::formats::jsonl::{JsonRows, invalid_json};
use crate::formats::{self, FileError, Row};
use crate::ingest::Item;
use crate::providers::Provider;
use crate::providers::definition::{FileFormat, FileSource};
use crate::providers::resolve::{FileLocation, file_format, file_gzip, file_location};

/// Rows per chunk; each chunk is one committed batch.
const CHUNK: usize = 5_000;

/// Rows read so far, and the count consumed from the start of the file (the checkpoint).
pub struct Chunk {
    pub items: Vec<Item>,
    pub consumed: u64,
}

pub struct FileReader {
    receiver: mpsc::Receiver<Result<Chunk, String>>,
    /// A downloaded copy, removed when the reader is dropped.
    _download: Option<tempfile::TempPath>,
}

impl FileReader {
    /// Opens the file and skips the first `skip` rows (already committed by an earlier run).
    /// A remote file may be fetched only from an address `outbound` allows.
    pub async fn open(
        provider: &Provider,
        source: &FileSource,
        skip: u64,
        outbound: &Outbound,
    ) -> Result<FileReader, String> {
        let format = file_format(source).ok_or_else(|| {
            format!(
                "source.path: cannot tell the format of {}; set source.format",
                source.path
            )
        })?;
        let (path, download) = match file_location(provider, source) {
            FileLocation::Url(url) => {
                let temp = download(&provider.name, &url, outbound).await?;
                (temp.to_path_buf(), Some(temp))
            }
            FileLocation::Local(path) => (path, None),
        };
        let file =
            File::open(&path).map_err(|e| format!("source.path: {}: {e}", path.display()))?;
        let reader: Box<dyn Read + Send> = if file_gzip(source) {
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
    reader: impl BufRead + Send + 'static,
    format: FileFormat,
    records_path: &str,
    skip: u64,
    sender: &mpsc::Sender<Result<Chunk, String>>,
) -> Result<(), String> {
    let mut chunker = Chunker {
        items: Vec::with_capacity(CHUNK),
        consumed: 0,
        skip,
        sender,
    };
    let rows: formats::Rows<Json> = match format {
        FileFormat::Csv => {
            let file = formats::csv::open(reader).map_err(|e| e.to_string())?;
            Box::new(file.rows(Vec::new(), |row| row.object().map(Json::Object)))
        }
        FileFormat::Jsonl => Box::new(JsonRows::new(reader, |line| {
            json::parse(line).map_err(invalid_json)
        })),
        FileFormat::Json => {
            let mut text = String::new();
            let mut reader = reader;
            reader
                .read_to_string(&mut text)
                .map_err(|e| format!("reading: {e}"))?;
            let document = json::parse(&text).map_err(|e| format!("not JSON: {e}"))?;
            let path = parse_path("source.records", records_path).map_err(|e| e.to_string())?;
            for record in select(&path, &document) {
                if !chunker.push(Item::Raw(record)) {
                    return Ok(());
                }
            }
            chunker.flush();
            return Ok(());
        }
    };
    for row in rows {
        let item = match row.map_err(|e: FileError| e.to_string())? {
            Row::Record { record, .. } => Item::Raw(record),
            Row::Rejected(rejection) => Item::Rejected {
                reason: rejection.reason,
                payload: Json::String(rejection.payload),
                line: Some(rejection.line),
            },
        };
        if !chunker.push(item) {
            return Ok(());
        }
    }
    chunker.flush();
    Ok(())
}

struct Chunker<'a> {
    items: Vec<Item>,
    consumed: u64,
    skip: u64,
    sender: &'a mpsc::Sender<Result<Chunk, String>>,
}

impl Chunker<'_> {
    /// Adds a row; false when the consumer has gone.
    fn push(&mut self, item: Item) -> bool {
        self.consumed += 1;
        if self.consumed <= self.skip {
            return true;
        }
        self.items.push(item);
        if self.items.len() >= CHUNK {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        if self.items.is_empty() {
            return true;
        }
        let chunk = Chunk {
            items: std::mem::replace(&mut self.items, Vec::with_capacity(CHUNK)),
            consumed: self.consumed,
        };
        self.sender.blocking_send(Ok(chunk)).is_ok()
    }
}
