//! ethereum-etl's 291 transfers of blocks 17173049–17173050
//! (`stream_token_transfers_17173049.jsonl`): the lines as recorded, the rows the API should
//! show for them, and the rows it shows, in one order.

use serde_json::{Value, json};

use super::TestApp;
use super::eth_node::DATA;

/// The recorded transfers, one JSON document per line.
pub fn lines() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{DATA}/stream_token_transfers_17173049.jsonl"))
        .expect("stream_token_transfers_17173049.jsonl");
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 291);
    lines
}

/// The recorded transfers as the API shows them (no block time: the providers of these tests
/// do not map one), in the order of [`stored`].
pub fn expected() -> Vec<Value> {
    let rows = lines()
        .iter()
        .map(|line| {
            // Values reach 1e29: read them exactly.
            let t: Value = tributary::sources::json::parse_slice(line.as_bytes()).expect("line");
            json!({
                "tokenAddress": t["token_address"],
                "from": t["from_address"],
                "to": t["to_address"],
                "value": match &t["value"] {
                    Value::String(digits) => digits.clone(),
                    other => other.to_string(),
                },
                "transactionHash": t["transaction_hash"],
                "logIndex": t["log_index"],
                "blockNumber": t["block_number"],
                "blockTimestamp": null,
            })
        })
        .collect();
    by_key(rows)
}

/// Every stored transfer, as the API shows it.
pub async fn stored(app: &TestApp) -> Vec<Value> {
    let data = app
        .query(
            "{ transfers(first: 1000) { nodes { tokenAddress from to value transactionHash logIndex blockNumber blockTimestamp } } }",
            json!({}),
        )
        .await;
    by_key(
        data["transfers"]["nodes"]
            .as_array()
            .expect("nodes")
            .clone(),
    )
}

fn by_key(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(|r| (r["transactionHash"].to_string(), r["logIndex"].as_i64()));
    rows
}
