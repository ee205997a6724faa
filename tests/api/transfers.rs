//! Tokens and transfers end to end: real ethereum-etl and BigQuery exports imported through
//! the bulk writer, read back over GraphQL on both databases.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::{Backend, TestApp};
use chrono::{TimeZone, Utc};
use num_bigint::BigUint;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use tributary::entities::EntityKind;
use tributary::entities::transfer::TransferRecord;
use tributary::import;
use tributary::store::{transfers, upsert::UpsertCounts};
use tributary::uint256::U256;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/ethereum");
const WETH: &str = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";
const U256_MAX: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";

fn file(name: &str) -> PathBuf {
    Path::new(DATA).join(name)
}

/// One transfer of the stream export, as the file's text has it.
#[derive(Debug, Clone)]
struct FileTransfer {
    key: (String, i64),
    token: String,
    from: String,
    to: String,
    /// The JSON number's digits exactly as written.
    value: String,
    timestamp: i64,
}

fn stream_file() -> Vec<FileTransfer> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        token_address: String,
        from_address: String,
        to_address: String,
        #[serde(borrow)]
        value: &'a serde_json::value::RawValue,
        transaction_hash: String,
        log_index: i64,
        block_timestamp: i64,
    }
    let text =
        std::fs::read_to_string(file("stream_token_transfers_17173049.jsonl")).expect("file");
    text.lines()
        .map(|line| {
            let l: Line = serde_json::from_str(line).expect("line");
            FileTransfer {
                key: (l.transaction_hash, l.log_index),
                token: l.token_address,
                from: l.from_address,
                to: l.to_address,
                value: l.value.get().to_string(),
                timestamp: l.block_timestamp,
            }
        })
        .collect()
}

fn rfc3339(epoch: i64) -> String {
    Utc.timestamp_opt(epoch, 0)
        .single()
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn import(app: &TestApp, entity: EntityKind, path: &Path) -> import::ImportSummary {
    import::import_file(&app.db, entity, path, |_| {})
        .await
        .unwrap_or_else(|e| panic!("import {}: {e}", path.display()))
}

const ALL: &str = r#"
query All($where: TransferWhere, $orderBy: [TransferOrder!], $first: Int, $after: String) {
  transfers(where: $where, orderBy: $orderBy, first: $first, after: $after) {
    nodes { id transactionHash logIndex value from to tokenAddress blockTimestamp }
    pageInfo { hasNextPage endCursor }
  }
}"#;

fn key_of(node: &Value) -> (String, i64) {
    (
        node["transactionHash"].as_str().expect("hash").to_string(),
        node["logIndex"].as_i64().expect("index"),
    )
}

async fn stream_export_round_trips_every_value_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let summary = import(
        &app,
        EntityKind::Transfer,
        &file("stream_token_transfers_17173049.jsonl"),
    )
    .await;
    assert_eq!((summary.rows, summary.rejected), (291, 0));
    assert_eq!(
        summary.counts,
        UpsertCounts {
            inserted: 291,
            updated: 0,
            unchanged: 0,
            superseded: 0
        }
    );

    let lines = stream_file();
    let data = app.query(ALL, json!({ "first": 1000 })).await;
    let nodes = data["transfers"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 291);
    let stored: BTreeMap<(String, i64), &Value> = nodes.iter().map(|n| (key_of(n), n)).collect();
    for t in &lines {
        let node = stored
            .get(&t.key)
            .unwrap_or_else(|| panic!("{:?} missing", t.key));
        assert_eq!(
            node["value"].as_str(),
            Some(t.value.as_str()),
            "{:?}",
            t.key
        );
        assert_eq!(node["from"].as_str(), Some(t.from.as_str()));
        assert_eq!(node["to"].as_str(), Some(t.to.as_str()));
        assert_eq!(node["tokenAddress"].as_str(), Some(t.token.as_str()));
        assert_eq!(
            node["blockTimestamp"].as_str(),
            Some(rfc3339(t.timestamp).as_str())
        );
    }
    // Values beyond u64 are in the file, and came through digit for digit.
    assert!(lines.iter().any(|t| t.value.parse::<u64>().is_err()));

    let again = import(
        &app,
        EntityKind::Transfer,
        &file("stream_token_transfers_17173049.jsonl"),
    )
    .await;
    assert_eq!(
        again.counts,
        UpsertCounts {
            inserted: 0,
            updated: 0,
            unchanged: 291,
            superseded: 0
        }
    );
}
on_both_databases!(stream_export_round_trips_every_value_exactly);

/// Pages whose nodes select only columns are written in one pass; any other selection goes
/// through the resolvers. Both must answer the same.
async fn a_page_answers_the_same_whichever_way_its_nodes_are_resolved(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    import(
        &app,
        EntityKind::Transfer,
        &file("stream_token_transfers_17173049.jsonl"),
    )
    .await;
    const COLUMNS: &str = "__typename id tokenAddress from to value transactionHash logIndex blockNumber blockTimestamp";
    let data = app
        .query(
            &format!(
                "{{ columns: transfers(first: 300) {{ nodes {{ {COLUMNS} }} }}
                    resolved: transfers(first: 300) {{ nodes {{ {COLUMNS} token {{ symbol }} }} }}
                    aliased: transfers(first: 300) {{ nodes {{ key: id amount: value value: blockNumber }} }}
                    fragment: transfers(first: 300) {{ nodes {{ ... on Transfer {{ id value }} }} }}
                    skipped: transfers(first: 300) {{ nodes {{ id value @include(if: false) }} }}
                    twice: transfers(first: 300) {{ nodes {{ id id }} }}
                    edges: transfers(first: 300) {{ edges {{ node {{ id value }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    let nodes = |name: &str| data[name]["nodes"].as_array().expect("nodes").clone();
    let columns = nodes("columns");
    assert_eq!(columns.len(), 291);
    let without_token: Vec<Value> = nodes("resolved")
        .into_iter()
        .map(|mut node| {
            node.as_object_mut().expect("object").remove("token");
            node
        })
        .collect();
    assert_eq!(columns, without_token);
    let lines = stream_file();
    let first = lines
        .iter()
        .find(|t| key_of(&columns[0]) == t.key)
        .expect("the first node is a transfer of the file");
    assert_eq!(columns[0]["__typename"], "Transfer");
    assert_eq!(columns[0]["value"].as_str(), Some(first.value.as_str()));
    assert_eq!(
        columns[0]["blockTimestamp"].as_str(),
        Some(rfc3339(first.timestamp).as_str())
    );
    let (aliased, fragment) = (nodes("aliased"), nodes("fragment"));
    let (skipped, twice) = (nodes("skipped"), nodes("twice"));
    for (i, column) in columns.iter().enumerate() {
        let id = &column["id"];
        assert_eq!(
            aliased[i],
            json!({ "key": id, "amount": column["value"], "value": column["blockNumber"] })
        );
        assert_eq!(fragment[i], json!({ "id": id, "value": column["value"] }));
        assert_eq!(skipped[i], json!({ "id": id }));
        assert_eq!(twice[i], json!({ "id": id }));
        assert_eq!(
            data["edges"]["edges"][i]["node"],
            json!({ "id": id, "value": column["value"] })
        );
    }
}
on_both_databases!(a_page_answers_the_same_whichever_way_its_nodes_are_resolved);

async fn a_time_range_returns_exactly_the_rows_a_file_filter_returns(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    import(
        &app,
        EntityKind::Transfer,
        &file("stream_token_transfers_17173049.jsonl"),
    )
    .await;
    let lines = stream_file();
    let (from, to) = (1_683_029_999, 1_683_030_011); // [first block, second block)
    for token in [None, Some(WETH)] {
        let expected: BTreeSet<(String, i64)> = lines
            .iter()
            .filter(|t| t.timestamp >= from && t.timestamp < to)
            .filter(|t| token.is_none_or(|tok| t.token == tok))
            .map(|t| t.key.clone())
            .collect();
        assert!(!expected.is_empty());
        let mut filter = json!({ "blockTimestamp": { "gte": rfc3339(from), "lt": rfc3339(to) } });
        if let Some(tok) = token {
            // Any case in: the filter matches the lowercase stored bytes.
            filter["token"] = json!({ "eq": tok.to_uppercase().replace("0X", "0x") });
        }
        let data = app
            .query(ALL, json!({ "first": 1000, "where": filter }))
            .await;
        let got: BTreeSet<(String, i64)> = data["transfers"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(key_of)
            .collect();
        assert_eq!(got, expected, "token {token:?}");
    }
}
on_both_databases!(a_time_range_returns_exactly_the_rows_a_file_filter_returns);

fn synthetic(n: u8, timestamp: i64) -> TransferRecord {
    TransferRecord {
        token_address: [0xee; 20],
        from_address: [n; 20],
        to_address: [n; 20],
        value: U256::new(u128::from(n)),
        transaction_hash: [n; 32],
        log_index: 0,
        block_number: 1,
        block_timestamp: Utc.timestamp_opt(timestamp, 0).single(),
    }
}

async fn pages_of_seven_visit_each_row_once_while_rows_arrive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    import(
        &app,
        EntityKind::Transfer,
        &file("stream_token_transfers_17173049.jsonl"),
    )
    .await;
    for order_by in [
        json!([{ "field": "BLOCK_TIMESTAMP", "direction": "DESC" }]),
        json!([{ "field": "VALUE", "direction": "ASC" }]),
        json!([{ "field": "BLOCK_NUMBER", "direction": "ASC" }, { "field": "VALUE", "direction": "DESC" }]),
    ] {
        // The expected order, read in one go before any insert.
        let all = app
            .query(ALL, json!({ "first": 1000, "orderBy": order_by }))
            .await;
        let expected: Vec<String> = all["transfers"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].as_str().expect("id").to_string())
            .collect();
        assert_eq!(expected.len(), 291);
        let original: BTreeSet<&String> = expected.iter().collect();

        let mut visited = Vec::new();
        let mut after: Option<String> = None;
        let mut n = 0u8;
        loop {
            let page = app
                .query(
                    ALL,
                    json!({ "first": 7, "after": after, "orderBy": order_by }),
                )
                .await;
            let connection = &page["transfers"];
            for node in connection["nodes"].as_array().expect("nodes") {
                let id = node["id"].as_str().expect("id").to_string();
                if original.contains(&id) {
                    visited.push(id);
                }
            }
            // Rows arriving at both ends of the order while the client pages.
            n = n.wrapping_add(2);
            transfers::upsert(
                &app.db,
                &[synthetic(n, 1_600_000_000), synthetic(n + 1, 1_800_000_000)],
            )
            .await
            .expect("insert between pages");
            if !connection["pageInfo"]["hasNextPage"]
                .as_bool()
                .expect("bool")
            {
                break;
            }
            after = Some(
                connection["pageInfo"]["endCursor"]
                    .as_str()
                    .expect("cursor")
                    .to_string(),
            );
        }
        assert_eq!(visited, expected, "order {order_by}");
        // Start again from a clean slate for the next order.
        entity::transfer::Entity::delete_many()
            .filter(entity::transfer::Column::TokenAddress.eq(vec![0xeeu8; 20]))
            .exec(&app.db)
            .await
            .expect("clean up");
    }
}
on_both_databases!(pages_of_seven_visit_each_row_once_while_rows_arrive);

async fn bad_rows_are_rejected_with_reasons_and_the_rest_lands(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("transfers.csv");
    let good = |i: u8| {
        format!(
            "0x{tok},0x{from},0x{to},{value},0x{hash},{i},483920\n",
            tok = "f4eced2f682ce333f96f2d8966c613ded8fc95dd",
            from = "1b63142628311395ceafeea5667e7c9026c862ca",
            to = "ac4df82fe37ea2187bc8c011a23d743b4f39019a",
            value = 100000 * u32::from(i),
            hash = hex::encode([i; 32]),
        )
    };
    let mut csv = String::from(
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number\n",
    );
    csv += &good(1);
    csv += "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd,0x1234,0xac4df82fe37ea2187bc8c011a23d743b4f39019a,5,0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8,0,483920\n";
    csv += &good(2);
    csv += "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd,0x1b63142628311395ceafeea5667e7c9026c862ca,0xac4df82fe37ea2187bc8c011a23d743b4f39019a,-5,0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8,1,483920\n";
    csv += "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd,0x1b63142628311395ceafeea5667e7c9026c862ca,0xac4df82fe37ea2187bc8c011a23d743b4f39019a,lots,0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8,2,483920\n";
    csv +=
        "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd,0x1b63142628311395ceafeea5667e7c9026c862ca\n";
    csv += &good(3);
    std::fs::write(&path, csv).expect("write");

    let summary = import(&app, EntityKind::Transfer, &path).await;
    assert_eq!(summary.rows, 7);
    assert_eq!(summary.rejected, 4);
    assert_eq!(
        summary.counts,
        UpsertCounts {
            inserted: 3,
            updated: 0,
            unchanged: 0,
            superseded: 0
        }
    );

    let rejected = entity::rejected_record::Entity::find()
        .order_by_asc(entity::rejected_record::Column::Line)
        .all(&app.db)
        .await
        .expect("rejected rows");
    let got: Vec<(Option<i64>, &str, &str, Option<i64>)> = rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str(), r.provider.as_str(), r.run_id))
        .collect();
    let run = Some(summary.run_id);
    assert_eq!(
        got,
        vec![
            (
                Some(3),
                "from_address: expected 20 bytes (40 hex digits), got 4 digits in \"0x1234\"",
                "import:transfer",
                run
            ),
            (Some(5), "value: negative number -5", "import:transfer", run),
            (
                Some(6),
                "value: \"lots\" is not a whole decimal number",
                "import:transfer",
                run
            ),
            (Some(7), "missing column to_address", "import:transfer", run),
        ]
    );
    assert!(
        rejected[1]
            .payload
            .as_deref()
            .is_some_and(|p| p.contains(",-5,"))
    );

    let stats = app
        .query("{ transferStats { count totalValue } }", json!({}))
        .await;
    assert_eq!(
        stats["transferStats"],
        json!({ "count": 3, "totalValue": "600000" })
    );
    let run_row = app
        .query(
            "query($id: ID!) { ingestRun(id: $id) { status fetched inserted rejected } }",
            json!({ "id": summary.run_id.to_string() }),
        )
        .await;
    assert_eq!(
        run_row["ingestRun"],
        json!({ "status": "SUCCEEDED", "fetched": 7, "inserted": 3, "rejected": 4 })
    );
}
on_both_databases!(bad_rows_are_rejected_with_reasons_and_the_rest_lands);

async fn uint256_extremes_are_exact(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let max = U256::MAX;
    let records = [
        TransferRecord {
            value: max,
            ..synthetic(1, 1_683_000_000)
        },
        TransferRecord {
            value: max,
            ..synthetic(2, 1_683_000_001)
        },
        TransferRecord {
            value: U256::ZERO,
            ..synthetic(3, 1_683_000_002)
        },
    ];
    transfers::upsert(&app.db, &records).await.expect("upsert");
    let data = app
        .query(
            r#"{ max: transfers(where: {value: {eq: "115792089237316195423570985008687907853269984665640564039457584007913129639935"}}) { nodes { value } }
                 positive: transfers(where: {value: {gt: "0"}}, orderBy: [{field: VALUE, direction: DESC}]) { nodes { value } }
                 transferStats { count totalValue } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["max"]["nodes"],
        json!([{ "value": U256_MAX }, { "value": U256_MAX }])
    );
    assert_eq!(data["positive"]["nodes"].as_array().map(Vec::len), Some(2));
    // The sum passes 2^256 and stays exact.
    let twice = BigUint::parse_bytes(U256_MAX.as_bytes(), 10).expect("digits") * 2u32;
    assert_eq!(
        data["transferStats"],
        json!({ "count": 3, "totalValue": twice.to_string() })
    );

    let bad = app
        .graphql(
            r#"{ transfers(where: {value: {gt: "-1"}}) { nodes { id } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        bad["errors"][0]["message"],
        "`where.value` compares unsigned amounts: use values of 0 or more"
    );
}
on_both_databases!(uint256_extremes_are_exact);

async fn stats_and_volume_agree_with_the_file(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    import(
        &app,
        EntityKind::Transfer,
        &file("stream_token_transfers_17173049.jsonl"),
    )
    .await;
    let weth: Vec<FileTransfer> = stream_file()
        .into_iter()
        .filter(|t| t.token == WETH)
        .collect();
    let total: BigUint = weth
        .iter()
        .map(|t| BigUint::parse_bytes(t.value.as_bytes(), 10).expect("digits"))
        .sum();
    let senders: BTreeSet<&str> = weth.iter().map(|t| t.from.as_str()).collect();
    let receivers: BTreeSet<&str> = weth.iter().map(|t| t.to.as_str()).collect();
    let first = weth.iter().map(|t| t.timestamp).min().expect("rows");
    let last = weth.iter().map(|t| t.timestamp).max().expect("rows");

    let data = app
        .query(
            "query($w: TransferWhere) { transferStats(where: $w) { count totalValue distinctSenders distinctReceivers firstTimestamp lastTimestamp }
               transferVolume(where: $w, interval: HOUR) { start count totalValue }
               week: transferVolume(where: $w, interval: WEEK) { start count } }",
            json!({ "w": { "token": { "eq": WETH } } }),
        )
        .await;
    assert_eq!(
        data["transferStats"],
        json!({
            "count": weth.len(), "totalValue": total.to_string(),
            "distinctSenders": senders.len(), "distinctReceivers": receivers.len(),
            "firstTimestamp": rfc3339(first), "lastTimestamp": rfc3339(last),
        })
    );
    // Both blocks fall in the 12:00 hour of 2 May 2023, a Tuesday; its week starts Monday 1 May.
    assert_eq!(
        data["transferVolume"],
        json!([{ "start": "2023-05-02T12:00:00Z", "count": weth.len(), "totalValue": total.to_string() }])
    );
    assert_eq!(
        data["week"],
        json!([{ "start": "2023-05-01T00:00:00Z", "count": weth.len() }])
    );
}
on_both_databases!(stats_and_volume_agree_with_the_file);

async fn transfers_bring_their_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample/tokens.csv");
    let tokens = import(&app, EntityKind::Token, Path::new(sample)).await;
    assert_eq!(tokens.counts.inserted, 76);
    import(
        &app,
        EntityKind::Transfer,
        &file("stream_token_transfers_17173049.jsonl"),
    )
    .await;
    let data = app
        .query(
            "query($t: Bytes!) { token(address: $t) { symbol name decimals
                 transfers(first: 3, orderBy: [{field: VALUE, direction: DESC}]) { nodes { value token { symbol } } } }
               missing: token(address: \"0x0000000000000000000000000000000000000001\") { symbol }
               transfers(first: 300) { nodes { tokenAddress token { address } } } }",
            json!({ "t": WETH }),
        )
        .await;
    assert_eq!(data["token"]["symbol"], "WETH");
    assert_eq!(data["token"]["name"], "Wrapped Ether");
    assert_eq!(data["token"]["decimals"], 18);
    let weth_values: Vec<&Value> = data["token"]["transfers"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .collect();
    assert_eq!(weth_values.len(), 3);
    assert!(weth_values.iter().all(|n| n["token"]["symbol"] == "WETH"));
    assert_eq!(data["missing"], Value::Null);
    for node in data["transfers"]["nodes"].as_array().expect("nodes") {
        assert_eq!(node["token"]["address"], node["tokenAddress"]);
    }
    // `%` and `_` are literal text in startsWith/contains, never wildcards.
    let like = app
        .query(
            r#"{ literal: tokens(where: {symbol: {startsWith: "W_"}}) { nodes { symbol } }
                 prefix: tokens(where: {symbol: {startsWith: "WE"}}) { nodes { symbol } }
                 percent: tokens(where: {name: {contains: "%"}}) { nodes { symbol } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(like["literal"]["nodes"], json!([]));
    assert_eq!(like["prefix"]["nodes"], json!([{ "symbol": "WETH" }]));
    assert_eq!(like["percent"]["nodes"], json!([]));
    // BigQuery's sparse token rows do not erase what a richer source said.
    let sparse = import(&app, EntityKind::Token, Path::new(sample)).await;
    assert_eq!(sparse.counts.unchanged, 76);
}
on_both_databases!(transfers_bring_their_token);

async fn bigquery_exports_import(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = import(
        &app,
        EntityKind::Transfer,
        &file("bigquery_export_token_transfers.csv"),
    )
    .await;
    assert_eq!((t.rows, t.rejected, t.counts.inserted), (500, 0, 500));
    let first = app
        .query(
            r#"{ transfers(where: {transactionHash: {eq: "0xfcd68727243265af7ab78585e9da9041c9052ea523a8ba1586987b935acc60c5"}}) { nodes { value blockTimestamp blockNumber } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        first["transfers"]["nodes"],
        json!([{ "value": "1000", "blockTimestamp": "2016-12-09T18:35:23Z", "blockNumber": 2777948 }])
    );
    let tokens = import(&app, EntityKind::Token, &file("bigquery_export_tokens.csv")).await;
    assert_eq!(tokens.rows, 500);
    assert_eq!(tokens.counts.inserted + tokens.rejected, 500);
}
on_both_databases!(bigquery_exports_import);

#[test]
fn rfc3339_helper_matches_the_api_format() {
    assert_eq!(rfc3339(1_683_029_999), "2023-05-02T12:19:59Z");
}

async fn duplicates_inside_one_file_resolve_to_the_last_row(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("dupes.csv");
    let row = |value: u32, block: u32| {
        format!(
            "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd,0x1b63142628311395ceafeea5667e7c9026c862ca,0xac4df82fe37ea2187bc8c011a23d743b4f39019a,{value},0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8,0,{block}\n"
        )
    };
    let csv = format!(
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number\n{}{}{}",
        row(1, 10),
        row(1, 10),
        row(3, 11)
    );
    std::fs::write(&path, csv).expect("write");
    let summary = import(&app, EntityKind::Transfer, &path).await;
    // One row stored, from the last record; the two before it are superseded.
    assert_eq!(
        summary.counts,
        UpsertCounts {
            inserted: 1,
            updated: 0,
            unchanged: 0,
            superseded: 2
        }
    );
    let data = app.query(ALL, json!({})).await;
    assert_eq!(data["transfers"]["nodes"].as_array().map(Vec::len), Some(1));
    assert_eq!(data["transfers"]["nodes"][0]["value"], "3");

    // The same file again changes nothing, and says so: the superseded records differ from
    // the stored row, but they were never written.
    let again = import(&app, EntityKind::Transfer, &path).await;
    assert_eq!(
        again.counts,
        UpsertCounts {
            inserted: 0,
            updated: 0,
            unchanged: 1,
            superseded: 2
        }
    );
    let data = app.query(ALL, json!({})).await;
    assert_eq!(data["transfers"]["nodes"][0]["value"], "3");
}
on_both_databases!(duplicates_inside_one_file_resolve_to_the_last_row);

async fn gzipped_files_import_like_plain_ones(backend: Backend) {
    use std::io::Write;
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("transfers.jsonl.gz");
    let plain = std::fs::read(file("stream_token_transfers_17173049.jsonl")).expect("read");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).expect("compress");
    std::fs::write(&path, gz.finish().expect("finish")).expect("write");
    let summary = import(&app, EntityKind::Transfer, &path).await;
    assert_eq!(
        (summary.rows, summary.counts.inserted, summary.rejected),
        (291, 291, 0)
    );
}
on_both_databases!(gzipped_files_import_like_plain_ones);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_embedded_database_starts_with_the_sample_once() {
    use tributary::startup::Application;
    let (url, _dir) = crate::common::database_url(Backend::Sqlite).await;
    for start in 0..2 {
        let mut settings = crate::common::settings(&url);
        settings.sample_data = true;
        let app = Application::build(settings).await.expect("starts");
        let db = app.db().clone();
        let counts = (
            entity::transfer::Entity::find()
                .all(&db)
                .await
                .expect("transfers")
                .len(),
            entity::token::Entity::find()
                .all(&db)
                .await
                .expect("tokens")
                .len(),
            entity::ingest_run::Entity::find()
                .all(&db)
                .await
                .expect("runs")
                .len(),
        );
        // Loaded at the first start only: the second finds runs and leaves the data alone.
        assert_eq!(counts, (291, 76, 2), "start {start}");
    }
}

/// `rows` transfers in ethereum-etl's CSV, each with its own key (`0x…{i}`, log 0) and value
/// `i`; then, when `repeat` is given, row `repeat`'s key again with the value 999999999.
fn numbered_csv(path: &Path, rows: u64, repeat: Option<u64>) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    writeln!(
        out,
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp"
    )
    .expect("write");
    let row = |out: &mut std::io::BufWriter<std::fs::File>, key: u64, value: u64| {
        writeln!(
            out,
            "{WETH},0x1b63142628311395ceafeea5667e7c9026c862ca,0xac4df82fe37ea2187bc8c011a23d743b4f39019a,{value},0x{key:064x},0,{key},{}",
            1_683_029_999 + key
        )
        .expect("write");
    };
    for i in 0..rows {
        row(&mut out, i, i);
    }
    if let Some(key) = repeat {
        row(&mut out, key, 999_999_999);
    }
    out.flush().expect("flush");
}

/// The transfers table's indexes and constraints, by name, with their definitions.
async fn transfer_indexes(app: &TestApp) -> Vec<(String, String)> {
    use sea_orm::{ConnectionTrait, Statement};
    app.db
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'transfers' ORDER BY 1",
        ))
        .await
        .expect("pg_indexes")
        .into_iter()
        .map(|row| {
            (
                row.try_get("", "indexname").expect("name"),
                row.try_get("", "indexdef").expect("definition"),
            )
        })
        .collect()
}

/// The stored value of `numbered_csv`'s transfer `key`.
async fn value_of(app: &TestApp, key: u64) -> i64 {
    scalar(
        app,
        &format!("SELECT value::bigint FROM transfers WHERE transaction_hash = '\\x{key:064x}'"),
    )
    .await
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    app.db
        .query_one_raw(Statement::from_string(sea_orm::DbBackend::Postgres, sql))
        .await
        .expect(sql)
        .expect("a row")
        .try_get_by_index(0)
        .expect("a bigint")
}

/// An import into the empty table builds the indexes at the end; a key repeated in a later
/// batch (batches are 20,000 rows) ends as the last row, counted superseded, on the run too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_load_keeps_the_last_of_keys_repeated_across_batches_and_every_index() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let indexes = transfer_indexes(&app).await;
    assert_eq!(indexes.len(), 6, "{indexes:?}");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("transfers.csv");
    numbered_csv(&path, 25_000, Some(7));
    let summary = import(&app, EntityKind::Transfer, &path).await;
    assert_eq!(
        (summary.rows, summary.counts),
        (
            25_001,
            UpsertCounts {
                inserted: 25_000,
                updated: 0,
                unchanged: 0,
                superseded: 1
            }
        )
    );
    assert_eq!(scalar(&app, "SELECT count(*) FROM transfers").await, 25_000);
    assert_eq!(value_of(&app, 7).await, 999_999_999);
    assert_eq!(
        scalar(
            &app,
            &format!(
                "SELECT inserted * 10 + superseded FROM ingest_runs WHERE id = {}",
                summary.run_id
            )
        )
        .await,
        250_001
    );
    // Every index and the natural key are back, as the migrations made them.
    assert_eq!(transfer_indexes(&app).await, indexes);
    let clash = app
        .graphql(
            "{ transfers(where: {transactionHash: {eq: \"0x0000000000000000000000000000000000000000000000000000000000000007\"}}) { nodes { value } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        clash["data"]["transfers"]["nodes"],
        json!([{"value": "999999999"}])
    );

    // The table is no longer empty: the same file again is upserted batch by batch, its rows
    // split between two writers by key. Key 7's two rows stay in file order on one writer:
    // the first sets 7 (updated), the last sets 999999999 again (updated).
    let again = import(&app, EntityKind::Transfer, &path).await;
    assert_eq!(
        again.counts,
        UpsertCounts {
            inserted: 0,
            updated: 2,
            unchanged: 24_999,
            superseded: 0
        }
    );
    assert_eq!(scalar(&app, "SELECT count(*) FROM transfers").await, 25_000);
    assert_eq!(value_of(&app, 7).await, 999_999_999);
}

/// `tributary import` killed in the middle of a first load leaves the table as it was, empty
/// with every index, and the next import loads the whole file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_load_killed_midway_leaves_the_table_empty_and_indexed() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let app = TestApp::spawn(Backend::Postgres).await;
    let indexes = transfer_indexes(&app).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("transfers.csv");
    numbered_csv(&path, 200_000, None);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["import", "transfer"])
        .arg(&path)
        .env("DATABASE_URL", &app.database_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tributary import");
    // Killed once rows are going in: the load holds the table and has run an INSERT.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let inserting = scalar(
            &app,
            // This database's: the cluster is shared with tests loading their own `transfers`,
            // whose relation has the same OID (every test database comes from one template).
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO transfers %'
               AND datname = current_database()
               AND pid IN (SELECT pid FROM pg_locks WHERE relation = 'transfers'::regclass
                           AND database = (SELECT oid FROM pg_database
                                           WHERE datname = current_database())
                           AND mode = 'AccessExclusiveLock' AND granted)",
        )
        .await;
        if inserting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the import never started loading"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the import ended before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    // PostgreSQL rolls the load back once it sees the connection gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(
        &app,
        "SELECT count(*) FROM pg_locks WHERE relation = 'transfers'::regclass AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND mode = 'AccessExclusiveLock'",
    )
    .await
        > 0
    {
        assert!(Instant::now() < deadline, "the load was never rolled back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(scalar(&app, "SELECT count(*) FROM transfers").await, 0);
    assert_eq!(transfer_indexes(&app).await, indexes);

    let summary = import(&app, EntityKind::Transfer, &path).await;
    assert_eq!(
        (summary.rows, summary.counts.inserted, summary.rejected),
        (200_000, 200_000, 0)
    );
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM transfers").await,
        200_000
    );
    assert_eq!(transfer_indexes(&app).await, indexes);
    // The killed run is on record as interrupted, and nothing of it was counted.
    let runs = entity::ingest_run::Entity::find()
        .all(&app.db)
        .await
        .expect("runs");
    let shown: Vec<(String, String, i64)> = runs
        .iter()
        .map(|r| {
            (
                r.provider.clone(),
                r.status.as_str().to_string(),
                r.inserted,
            )
        })
        .collect();
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM ingest_runs WHERE provider = 'import:transfer'
               AND status = 'interrupted' AND inserted = 0",
        )
        .await,
        1,
        "runs (provider, status, inserted): {shown:?}"
    );
}
