//! A stand-in Ethereum node: answers `eth_blockNumber` and `eth_getLogs` over JSON-RPC from
//! ethereum-etl's recorded logs of blocks 17173049–17173050 (`stream_logs_17173049.jsonl`),
//! each log written in the shape a node sends (`rpc_eth_getFilterLogs_0x76250.json`): block
//! number, log index and transaction index as hex quantities, addresses inside 32-byte topics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/ethereum");

struct Shared {
    /// (block number, the log as a node writes it), in block and log order.
    logs: Vec<(u64, Value)>,
    head: u64,
    block_number_calls: AtomicUsize,
    /// `(fromBlock, toBlock)` of each `eth_getLogs`.
    get_logs: Mutex<Vec<(u64, u64)>>,
}

pub struct EthNode {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EthNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `0x` hex quantity, as JSON-RPC writes numbers.
fn quantity(n: u64) -> String {
    format!("{n:#x}")
}

fn parse_quantity(value: &Value) -> Option<u64> {
    u64::from_str_radix(value.as_str()?.strip_prefix("0x")?, 16).ok()
}

/// The recorded logs, each in a node's shape.
fn node_logs() -> Vec<(u64, Value)> {
    let text = std::fs::read_to_string(format!("{DATA}/stream_logs_17173049.jsonl"))
        .expect("stream_logs_17173049.jsonl");
    let mut per_transaction: std::collections::HashMap<String, u64> = Default::default();
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let log: Value = serde_json::from_str(line).expect("a log line");
            let block = log["block_number"].as_u64().expect("block_number");
            let tx = log["transaction_hash"].as_str().expect("hash").to_string();
            let in_tx = per_transaction.entry(tx.clone()).or_insert(0);
            let node = json!({
                "address": log["address"],
                "blockHash": log["block_hash"],
                "blockNumber": quantity(block),
                "data": log["data"],
                "logIndex": quantity(log["log_index"].as_u64().expect("log_index")),
                "topics": log["topics"],
                "transactionHash": tx,
                "transactionIndex": quantity(log["transaction_index"].as_u64().expect("index")),
                "transactionLogIndex": quantity(*in_tx),
                "type": "mined",
            });
            *in_tx += 1;
            (block, node)
        })
        .collect()
}

impl EthNode {
    pub async fn start() -> EthNode {
        let logs = node_logs();
        let head = logs.iter().map(|(b, _)| *b).max().expect("logs");
        let shared = Arc::new(Shared {
            logs,
            head,
            block_number_calls: AtomicUsize::new(0),
            get_logs: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the node on 127.0.0.1:0");
        let port = listener.local_addr().expect("address").port();
        let app = Router::new()
            .route("/", post(rpc))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        EthNode {
            url: format!("http://127.0.0.1:{port}/"),
            shared,
            task,
        }
    }

    pub fn block_number_calls(&self) -> usize {
        self.shared.block_number_calls.load(Ordering::SeqCst)
    }

    /// The block ranges `eth_getLogs` was asked for, and forgets them.
    pub fn take_get_logs(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.shared.get_logs.lock().expect("lock"))
    }
}

fn error(id: &Value, code: i64, message: &str) -> axum::Json<Value> {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
}

async fn rpc(State(shared): State<Arc<Shared>>, body: String) -> axum::Json<Value> {
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return error(&Value::Null, -32700, "parse error");
    };
    let id = request["id"].clone();
    match request["method"].as_str() {
        Some("eth_blockNumber") => {
            shared.block_number_calls.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": quantity(shared.head)}))
        }
        Some("eth_getLogs") => {
            let filter = &request["params"][0];
            let (Some(from), Some(to)) = (
                parse_quantity(&filter["fromBlock"]),
                parse_quantity(&filter["toBlock"]),
            ) else {
                return error(&id, -32602, "invalid block range");
            };
            if to < from {
                return error(&id, -32602, "toBlock is before fromBlock");
            }
            shared.get_logs.lock().expect("lock").push((from, to));
            // As a node does: the first topic position filters by any of the given values.
            let wanted: Vec<&str> = match &filter["topics"][0] {
                Value::String(one) => vec![one.as_str()],
                Value::Array(any) => any.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let result: Vec<Value> = shared
                .logs
                .iter()
                .filter(|(block, _)| (from..=to).contains(block))
                .filter(|(_, log)| {
                    wanted.is_empty()
                        || log["topics"][0]
                            .as_str()
                            .is_some_and(|topic| wanted.contains(&topic))
                })
                .map(|(_, log)| log.clone())
                .collect();
            axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result}))
        }
        _ => error(&id, -32601, "method not found"),
    }
}
