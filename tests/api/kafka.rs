//! `kafka` providers on both databases, against librdkafka's mock cluster: JSON and Avro
//! messages over three partitions land exactly once, a poison message is rejected with its
//! offset, lag shows in GraphQL and `/metrics`, and `cancelIngest`/`triggerIngest` pause and
//! resume consumption.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use apache_avro::Schema;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::common::kafka::{FAST_GROUP, MockKafka, produce};
use crate::common::recorded_transfers;
use crate::common::{Backend, TestApp, wait_for, write_provider};

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/patients/patient_avro_schema.avsc"
);

/// The `i`-th test patient, as the Avro schema's record.
fn patient(i: usize) -> Value {
    let institution = ["north", "south", "east"][i % 3];
    json!({
        "id": format!("p-{i:05}"),
        "age": (i % 90) as i32,
        "institution": institution,
        "activity": format!("activity {}", i % 7),
        "comment": if i.is_multiple_of(5) { "follow up" } else { "" },
        "extracted_ts": i as f64 + 0.5,
    })
}

fn avro(schema: &Schema, value: &Value, confluent: bool) -> Vec<u8> {
    let mut record = apache_avro::types::Record::new(schema).expect("a record schema");
    for name in ["id", "institution", "activity", "comment"] {
        record.put(name, value[name].as_str().expect("text"));
    }
    record.put("age", value["age"].as_i64().expect("age") as i32);
    record.put("extracted_ts", value["extracted_ts"].as_f64().expect("ts"));
    let avro = apache_avro::types::Value::from(record);
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .expect("writer")
        .write_value_to_vec(avro)
        .expect("encode");
    if confluent {
        let mut framed = vec![0, 0, 0, 0, 42];
        framed.extend(datum);
        framed
    } else {
        datum
    }
}

/// A `record` provider consuming `topic` in `format`, mapping the patient's fields and where
/// the message was.
fn patients_provider(dir: &Path, name: &str, brokers: &str, topic: &str, format: &str) {
    let schema = if format == "avro" {
        std::fs::copy(SCHEMA, dir.join("patient.avsc")).expect("copy the schema");
        "schema = \"patient.avsc\"\n"
    } else {
        ""
    };
    write_provider(
        dir,
        name,
        &format!(
            "entity = \"record\"\ndataset = \"{name}\"\nkey = \"id\"\n\
             [source]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopics = [\"{topic}\"]\n\
             format = \"{format}\"\n{schema}max_wait_ms = 50\n{FAST_GROUP}\
             [fields]\nid = \"$.value.id\"\nage = \"$.value.age\"\n\
             institution = \"$.value.institution\"\nextracted_ts = \"$.value.extracted_ts\"\n\
             message_key = \"$.key\"\npartition = \"$.partition\"\n"
        ),
    );
}

async fn record_count(app: &TestApp, dataset: &str) -> u64 {
    entity::record::Entity::find()
        .filter(entity::record::Column::Dataset.eq(dataset))
        .count(&app.db)
        .await
        .expect("count records")
}

/// Every record of `dataset`, by key.
async fn records(app: &TestApp, dataset: &str) -> BTreeMap<String, Value> {
    entity::record::Entity::find()
        .filter(entity::record::Column::Dataset.eq(dataset))
        .all(&app.db)
        .await
        .expect("records")
        .into_iter()
        .map(|r| (r.key, r.data))
        .collect()
}

const N: usize = 300;

async fn json_and_avro_messages_land_exactly_once(backend: Backend) {
    let kafka = MockKafka::start();
    let brokers = kafka.brokers();
    kafka.create_topic("patients-json", 3);
    kafka.create_topic("patients-avro", 3);
    let dir = tempfile::tempdir().expect("dir");
    patients_provider(
        dir.path(),
        "patients-json",
        &brokers,
        "patients-json",
        "json",
    );
    patients_provider(
        dir.path(),
        "patients-avro",
        &brokers,
        "patients-avro",
        "avro",
    );

    let schema =
        Schema::parse_str(&std::fs::read_to_string(SCHEMA).expect("schema")).expect("avsc");
    let mut json_messages = Vec::new();
    let mut avro_messages = Vec::new();
    for i in 0..N {
        let p = patient(i);
        let key = p["id"].as_str().expect("id").to_string();
        let partition = (i % 3) as i32;
        json_messages.push((partition, key.clone(), p.to_string().into_bytes()));
        avro_messages.push((partition, key, avro(&schema, &p, i % 2 == 0)));
    }
    // A poison message in partition 1, after the first 20 of that partition: offset 20.
    json_messages.insert(3 * 20 + 1, (1, "poison".into(), b"{not json".to_vec()));
    produce(&brokers, "patients-json", &json_messages).await;
    produce(&brokers, "patients-avro", &avro_messages).await;

    let providers = dir.path().to_path_buf();
    let app = TestApp::spawn_with(backend, move |s| s.providers_dir = providers).await;
    for dataset in ["patients-json", "patients-avro"] {
        wait_for(
            &format!("{N} {dataset} records"),
            Duration::from_secs(60),
            async || record_count(&app, dataset).await >= N as u64,
        )
        .await;
    }
    // Exactly N each, every value as produced.
    for dataset in ["patients-json", "patients-avro"] {
        let stored = records(&app, dataset).await;
        assert_eq!(stored.len(), N, "{dataset}");
        for i in 0..N {
            let p = patient(i);
            let key = p["id"].as_str().expect("id");
            assert_eq!(
                stored[key],
                json!({
                    "id": key, "age": p["age"], "institution": p["institution"],
                    "extracted_ts": p["extracted_ts"], "message_key": key,
                    "partition": i % 3,
                }),
                "{dataset} {key}"
            );
        }
    }

    // The poison message is rejected with where it was; the rest of its partition landed.
    let rejected = app
        .query(
            "{ rejectedRecords(first: 10) { nodes { provider reason message { topic partition offset } } } }",
            json!({}),
        )
        .await;
    let nodes = &rejected["rejectedRecords"]["nodes"];
    assert_eq!(nodes.as_array().map(Vec::len), Some(1), "{rejected}");
    assert_eq!(nodes[0]["provider"], "patients-json");
    assert!(
        nodes[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("value: not JSON"),
        "{rejected}"
    );
    assert_eq!(
        nodes[0]["message"],
        json!({"topic": "patients-json", "partition": 1, "offset": 20})
    );

    // Stored offsets are the partitions' ends; once the owner has seen the high watermarks,
    // the lag is zero in GraphQL and in /metrics.
    let query = "{ providers { name kind paused partitions { topic partition storedOffset highWatermark lag owner } } }";
    wait_for(
        "lag 0 on every partition",
        Duration::from_secs(30),
        async || {
            let data = app.query(query, json!({})).await;
            data["providers"].as_array().is_some_and(|providers| {
                providers.iter().all(|p| {
                    p["partitions"].as_array().is_some_and(|parts| {
                        parts.len() == 3 && parts.iter().all(|part| part["lag"] == json!(0))
                    })
                })
            })
        },
    )
    .await;
    let data = app.query(query, json!({})).await;
    for provider in data["providers"].as_array().expect("providers") {
        assert_eq!(provider["kind"], "KAFKA");
        assert_eq!(provider["paused"], false);
        let offsets: Vec<i64> = provider["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .map(|p| p["storedOffset"].as_i64().expect("stored offset"))
            .collect();
        let expected = if provider["name"] == "patients-json" {
            vec![100, 101, 100]
        } else {
            vec![100, 100, 100]
        };
        assert_eq!(offsets, expected, "{provider}");
        assert!(provider["partitions"][0]["owner"].is_string(), "{provider}");
    }
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for partition in 0..3 {
        let line = format!(
            "kafka_consumer_lag{{provider=\"patients-json\",topic=\"patients-json\",partition=\"{partition}\"}} 0"
        );
        assert!(metrics.contains(&line), "{line} missing from /metrics");
    }

    // Each provider's consumer is one long-lived run whose counters advanced with its batches.
    let runs = app
        .query(
            "{ ingestRuns(first: 10) { nodes { provider trigger status fetched inserted rejected } } }",
            json!({}),
        )
        .await;
    let mut seen: Vec<(String, String, String, i64, i64, i64)> = runs["ingestRuns"]["nodes"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (
                r["provider"].as_str().unwrap_or_default().to_string(),
                r["trigger"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
                r["fetched"].as_i64().unwrap_or_default(),
                r["inserted"].as_i64().unwrap_or_default(),
                r["rejected"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    seen.sort();
    let n = N as i64;
    assert_eq!(
        seen,
        vec![
            (
                "patients-avro".into(),
                "consumer".into(),
                "RUNNING".into(),
                n,
                n,
                0
            ),
            (
                "patients-json".into(),
                "consumer".into(),
                "RUNNING".into(),
                n + 1,
                n,
                1
            ),
        ]
    );
}
on_both_databases!(json_and_avro_messages_land_exactly_once);

/// A `transfer` provider of the topic `transfers`, writing at most `batch_size` messages at once.
fn transfers_provider(dir: &Path, brokers: &str, batch_size: usize) {
    write_provider(
        dir,
        "kafka-transfers",
        &format!(
            "entity = \"transfer\"\n[source]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\n\
             topics = [\"transfers\"]\nbatch_size = {batch_size}\nmax_wait_ms = 50\n{FAST_GROUP}\
             [fields]\ntoken_address = \"$.value.token_address\"\n\
             from_address = \"$.value.from_address\"\nto_address = \"$.value.to_address\"\n\
             value = \"$.value.value\"\ntransaction_hash = \"$.value.transaction_hash\"\n\
             log_index = \"$.value.log_index\"\nblock_number = \"$.value.block_number\"\n"
        ),
    );
}

/// One message per line, keyed `t{i}`, spread over three partitions.
fn transfer_messages(lines: &[String]) -> Vec<(i32, String, Vec<u8>)> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| ((i % 3) as i32, format!("t{i}"), line.as_bytes().to_vec()))
        .collect()
}

/// These `fields` of the newest run, as GraphQL shows it.
async fn last_run(app: &TestApp, fields: &str) -> Value {
    let query = format!("{{ ingestRuns(first: 1) {{ nodes {{ {fields} }} }} }}");
    let data = app.query(&query, json!({})).await;
    data["ingestRuns"]["nodes"][0].clone()
}

/// The names of the indexes on `transfers`: every one the migrations made.
const TRANSFER_INDEXES: [&str; 6] = [
    "transfers_from_time",
    "transfers_natural_key",
    "transfers_pkey",
    "transfers_time",
    "transfers_to_time",
    "transfers_token_time",
];

async fn transfer_indexes(app: &TestApp) -> Vec<String> {
    app.db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT indexname FROM pg_indexes WHERE tablename = 'transfers' ORDER BY 1",
        ))
        .await
        .expect("indexes")
        .iter()
        .map(|row| row.try_get("", "indexname").expect("name"))
        .collect()
}

/// Runs of this database holding `transfers` for a first load.
async fn loads_holding_transfers(app: &TestApp) -> i64 {
    app.db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FROM pg_locks WHERE relation = 'transfers'::regclass AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND mode = 'AccessExclusiveLock'",
        ))
        .await
        .expect("pg_locks")
        .expect("a row")
        .try_get_by_index(0)
        .expect("a count")
}

/// A `transfer` provider's topic read from the start into an empty table: on PostgreSQL the
/// backlog is one first load (the table held, its indexes built once it has caught up), whose
/// repeated keys are settled as a file import's are; later messages are upserts. On SQLite
/// every batch is written as it comes. ethereum-etl's 291 transfers of block 17173049, and the
/// first of them sent again with a corrected value.
async fn a_backlog_into_empty_transfers_loads_like_an_import(backend: Backend) {
    let kafka = MockKafka::start();
    let brokers = kafka.brokers();
    kafka.create_topic("transfers", 3);
    let dir = tempfile::tempdir().expect("dir");
    transfers_provider(dir.path(), &brokers, 40);
    let lines = recorded_transfers::lines();
    let mut messages = transfer_messages(&lines);
    // The first transfer again, corrected, last in its partition: 97 messages after the first
    // copy, so never in one batch of 40 with it.
    let first: Value = tributary::sources::json::parse_slice(lines[0].as_bytes()).expect("json");
    let mut corrected = first.clone();
    corrected["value"] = json!(12345);
    messages.push((0, "t0".into(), corrected.to_string().into_bytes()));
    produce(&brokers, "transfers", &messages).await;

    let providers = dir.path().to_path_buf();
    let app = TestApp::spawn_with(backend, move |s| s.providers_dir = providers).await;
    let counters = async || last_run(&app, "provider fetched inserted updated superseded").await;
    wait_for(
        "292 messages counted",
        Duration::from_secs(60),
        async || counters().await["fetched"] == json!(292),
    )
    .await;
    // The repeat was written twice in a load and settled at its end; batch by batch it is an
    // update of the row the first copy stored.
    let (inserted, updated, superseded) = match backend {
        Backend::Postgres => (291, 0, 1),
        Backend::Sqlite => (291, 1, 0),
    };
    assert_eq!(
        counters().await,
        json!({"provider": "kafka-transfers", "fetched": 292, "inserted": inserted,
               "updated": updated, "superseded": superseded})
    );
    let transaction = first["transaction_hash"].clone();
    let mut expected = recorded_transfers::expected();
    let corrected_row = expected
        .iter()
        .position(|r| r["transactionHash"] == transaction && r["logIndex"] == json!(0))
        .expect("the first transfer");
    expected[corrected_row]["value"] = json!("12345");
    assert_eq!(recorded_transfers::stored(&app).await, expected);
    if backend == Backend::Postgres {
        assert_eq!(transfer_indexes(&app).await, TRANSFER_INDEXES);
    }

    // After the load, a message is an upsert against the unique key the load built again.
    produce(
        &brokers,
        "transfers",
        &[(0, "t0".into(), lines[0].as_bytes().to_vec())],
    )
    .await;
    wait_for(
        "the correction undone",
        Duration::from_secs(30),
        async || counters().await["updated"] == json!(updated + 1),
    )
    .await;
    assert_eq!(
        recorded_transfers::stored(&app).await,
        recorded_transfers::expected()
    );
    assert_eq!(counters().await["inserted"], json!(inserted));
}
on_both_databases!(a_backlog_into_empty_transfers_loads_like_an_import);

/// The real products sample (998 rows, every SKU twice) as JSON messages over three
/// partitions, read into empty tables: on PostgreSQL one first load, whose repeats are settled
/// and whose `product_counts` are counted once at its end; then the real edits file's rows,
/// upserted. Products and counts equal what the files say each time.
async fn a_product_backlog_keeps_counts_exact(backend: Backend) {
    use crate::products::{assert_counts_exact, expected_from, file, stored};
    let kafka = MockKafka::start();
    let brokers = kafka.brokers();
    kafka.create_topic("products", 3);
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        "kafka-products",
        &format!(
            "entity = \"product\"\nkey = \"sku\"\n[source]\nkind = \"kafka\"\n\
             brokers = \"{brokers}\"\ntopics = [\"products\"]\nbatch_size = 100\n\
             max_wait_ms = 50\n{FAST_GROUP}[fields]\nsku = \"$.value.sku\"\n\
             name = \"$.value.name\"\ndescription = \"$.value.description\"\n"
        ),
    );
    let messages = |name: &str| -> Vec<(i32, String, Vec<u8>)> {
        let mut reader = csv::Reader::from_path(file(name)).expect("sample file");
        reader
            .records()
            .enumerate()
            .map(|(i, row)| {
                let row = row.expect("row");
                let value = json!({"name": &row[0], "sku": &row[1], "description": &row[2]});
                (
                    (i % 3) as i32,
                    row[1].to_string(),
                    value.to_string().into_bytes(),
                )
            })
            .collect()
    };
    let sample = messages("products_first499_twice.csv");
    assert_eq!(sample.len(), 998);
    produce(&brokers, "products", &sample).await;

    let providers = dir.path().to_path_buf();
    let app = TestApp::spawn_with(backend, move |s| s.providers_dir = providers).await;
    let counters = async || last_run(&app, "fetched inserted updated unchanged superseded").await;
    wait_for(
        "998 messages counted",
        Duration::from_secs(60),
        async || counters().await["fetched"] == json!(998),
    )
    .await;
    // Each SKU's second row is superseded in its batch, or unchanged after the batch that
    // stored the first (the products' key is their primary key, which a load keeps).
    let run = counters().await;
    assert_eq!(
        (&run["inserted"], &run["updated"]),
        (&json!(499), &json!(0))
    );
    assert_eq!(
        run["unchanged"].as_i64().unwrap_or(-1) + run["superseded"].as_i64().unwrap_or(-1),
        499,
        "{run}"
    );
    let expected = expected_from(&["products_first499_twice.csv"]);
    assert_eq!(stored(&app).await, expected);
    assert_counts_exact(&app, &expected).await;

    produce(&brokers, "products", &messages("products_upsert_edits.csv")).await;
    wait_for(
        "1004 messages counted",
        Duration::from_secs(30),
        async || counters().await["fetched"] == json!(1004),
    )
    .await;
    let expected = expected_from(&["products_first499_twice.csv", "products_upsert_edits.csv"]);
    assert_eq!(stored(&app).await, expected);
    assert_counts_exact(&app, &expected).await;
}
on_both_databases!(a_product_backlog_keeps_counts_exact);

/// A `tributary serve` SIGKILLed while its first load holds `transfers` leaves the table empty
/// with every index and no offset stored; started again, it loads every message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_load_killed_midway_is_loaded_again_whole() {
    let kafka = MockKafka::start();
    let brokers = kafka.brokers();
    kafka.create_topic("transfers", 3);
    let dir = tempfile::tempdir().expect("dir");
    // One message per batch: the load lasts long enough to be caught in the middle.
    transfers_provider(dir.path(), &brokers, 1);
    let lines = recorded_transfers::lines();
    produce(&brokers, "transfers", &transfer_messages(&lines)).await;
    let empty = tempfile::tempdir().expect("dir");
    let none = empty.path().to_path_buf();
    let app = TestApp::spawn_with(Backend::Postgres, move |s| s.providers_dir = none).await;

    let mut server = serve(&app.database_url, dir.path());
    wait_for(
        "the load to hold transfers",
        Duration::from_secs(60),
        async || loads_holding_transfers(&app).await > 0,
    )
    .await;
    sigkill(&mut server);
    wait_for(
        "the load to be rolled back",
        Duration::from_secs(60),
        async || loads_holding_transfers(&app).await == 0,
    )
    .await;
    assert_eq!(recorded_transfers::stored(&app).await, Vec::<Value>::new());
    assert_eq!(transfer_indexes(&app).await, TRANSFER_INDEXES);
    let offsets = entity::kafka_offset::Entity::find()
        .all(&app.db)
        .await
        .expect("offsets");
    assert!(
        offsets.iter().all(|o| o.next_offset.is_none()),
        "{offsets:?}"
    );

    let mut server = serve(&app.database_url, dir.path());
    wait_for("291 transfers", Duration::from_secs(60), async || {
        recorded_transfers::stored(&app).await.len() == 291
    })
    .await;
    assert_eq!(
        recorded_transfers::stored(&app).await,
        recorded_transfers::expected()
    );
    assert_eq!(transfer_indexes(&app).await, TRANSFER_INDEXES);
    // The killed run counted nothing: its counters were in the load's transaction.
    let runs = entity::ingest_run::Entity::find()
        .filter(entity::ingest_run::Column::Provider.eq("kafka-transfers"))
        .all(&app.db)
        .await
        .expect("runs");
    let counted: Vec<(i64, i64)> = runs.iter().map(|r| (r.fetched, r.inserted)).collect();
    assert_eq!(
        counted.iter().filter(|c| **c != (0, 0)).count(),
        1,
        "{counted:?}"
    );
    assert!(counted.contains(&(291, 291)), "{counted:?}");
    sigkill(&mut server);
}

/// `cancelIngest` on the consumer's run pauses the provider: nothing more is consumed until
/// `triggerIngest` resumes it, from where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_pauses_and_trigger_resumes_a_kafka_provider() {
    let kafka = MockKafka::start();
    let brokers = kafka.brokers();
    kafka.create_topic("patients-json", 3);
    let dir = tempfile::tempdir().expect("dir");
    patients_provider(dir.path(), "patients", &brokers, "patients-json", "json");
    let batch = |range: std::ops::Range<usize>| -> Vec<(i32, String, Vec<u8>)> {
        range
            .map(|i| {
                let p = patient(i);
                (
                    (i % 3) as i32,
                    p["id"].as_str().unwrap_or_default().to_string(),
                    p.to_string().into_bytes(),
                )
            })
            .collect()
    };
    produce(&brokers, "patients-json", &batch(0..30)).await;
    let providers = dir.path().to_path_buf();
    let app = TestApp::spawn_with(Backend::Sqlite, move |s| s.providers_dir = providers).await;
    wait_for("30 records", Duration::from_secs(60), async || {
        record_count(&app, "patients").await == 30
    })
    .await;
    let run = app
        .query("{ providers { lastRun { id status } } }", json!({}))
        .await["providers"][0]["lastRun"]
        .clone();
    assert_eq!(run["status"], "RUNNING");
    app.query(
        "mutation($id: ID!) { cancelIngest(id: $id) { id } }",
        json!({"id": run["id"]}),
    )
    .await;
    wait_for(
        "the consumer to stop",
        Duration::from_secs(20),
        async || {
            let data = app
                .query("{ providers { paused lastRun { status } } }", json!({}))
                .await;
            data["providers"][0]["paused"] == true
                && data["providers"][0]["lastRun"]["status"] == "CANCELLED"
        },
    )
    .await;
    produce(&brokers, "patients-json", &batch(30..40)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        record_count(&app, "patients").await,
        30,
        "a paused provider consumed"
    );

    let resumed = app
        .query(
            "mutation { triggerIngest(provider: \"patients\") { alreadyRunning run { trigger status } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        resumed["triggerIngest"]["alreadyRunning"], false,
        "{resumed}"
    );
    wait_for(
        "the 10 produced while paused",
        Duration::from_secs(60),
        async || record_count(&app, "patients").await == 40,
    )
    .await;
    let data = app.query("{ providers { paused } }", json!({})).await;
    assert_eq!(data["providers"][0]["paused"], false);
}

/// A `tributary serve` process on `database_url` with the providers in `providers`.
fn serve(database_url: &str, providers: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("TRIBUTARY_PROVIDERS_DIR", providers)
        .env("TRIBUTARY_LISTEN", "127.0.0.1:0")
        .env("TRIBUTARY_SAMPLE_DATA", "false")
        .env("TRIBUTARY_SCHEDULER__LEASE_TTL_SECS", "5")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tributary serve")
}

fn sigkill(child: &mut std::process::Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

/// Two `serve` replicas share a 6-partition topic that keeps receiving messages; 20 times one
/// of them is SIGKILLed at a random moment and started again (its partitions move to the
/// other, then back); at the end one is killed for good and the other takes every partition.
/// Every message is stored once: the rows are exact, and the runs' counters add up to the
/// messages produced (a message written twice would be counted twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_and_rebalances_store_every_message_once() {
    kills_store_every_message_once(Backend::Postgres, 2).await;
}

/// The embedded default: one `serve` on SQLite, SIGKILLed at a random moment and started
/// again 20 times while messages keep arriving; every message stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_on_sqlite_store_every_message_once() {
    kills_store_every_message_once(Backend::Sqlite, 1).await;
}

async fn kills_store_every_message_once(backend: Backend, replicas: usize) {
    let kafka = MockKafka::start();
    let brokers = kafka.brokers();
    kafka.create_topic("patients", 6);
    let dir = tempfile::tempdir().expect("dir");
    patients_provider(dir.path(), "patients", &brokers, "patients", "json");
    // The test's own server (no providers) migrates the database and answers queries.
    let empty = tempfile::tempdir().expect("dir");
    let none = empty.path().to_path_buf();
    let app = TestApp::spawn_with(backend, move |s| s.providers_dir = none).await;

    // Messages keep arriving, 100 every 100 ms, over all partitions, until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = tokio::spawn({
        let brokers = brokers.clone();
        let stop = stop.clone();
        async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch: Vec<(i32, String, Vec<u8>)> = (n..n + 100)
                    .map(|i| {
                        let p = patient(i);
                        let key = p["id"].as_str().unwrap_or_default().to_string();
                        ((i % 6) as i32, key, p.to_string().into_bytes())
                    })
                    .collect();
                produce(&brokers, "patients", &batch).await;
                n += 100;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            n
        }
    });

    let mut replicas: Vec<_> = (0..replicas)
        .map(|_| serve(&app.database_url, dir.path()))
        .collect();
    for kill in 0..20 {
        let before = record_count(&app, "patients").await;
        wait_for(
            "consumption to go on",
            Duration::from_secs(60),
            async || record_count(&app, "patients").await > before,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..1_500))).await;
        let n = replicas.len();
        let victim = &mut replicas[kill % n];
        sigkill(victim);
        *victim = serve(&app.database_url, dir.path());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let produced = producing.await.expect("producer") as u64;
    if replicas.len() > 1 {
        sigkill(&mut replicas[0]);
    }

    wait_for(
        &format!("{produced} records"),
        Duration::from_secs(120),
        async || record_count(&app, "patients").await >= produced,
    )
    .await;
    let stored = records(&app, "patients").await;
    assert_eq!(stored.len() as u64, produced);
    for i in 0..produced as usize {
        let p = patient(i);
        let key = p["id"].as_str().expect("id");
        assert_eq!(stored[key]["age"], p["age"], "{key}");
        assert_eq!(stored[key]["partition"], json!(i % 6), "{key}");
    }
    // Every message counted once across all the runs the kills cut short.
    let runs = entity::ingest_run::Entity::find()
        .filter(entity::ingest_run::Column::Provider.eq("patients"))
        .all(&app.db)
        .await
        .expect("runs");
    assert!(runs.len() >= 21, "{} consumer runs", runs.len());
    let fetched: i64 = runs.iter().map(|r| r.fetched).sum();
    let inserted: i64 = runs.iter().map(|r| r.inserted).sum();
    assert_eq!((fetched, inserted), (produced as i64, produced as i64));
    // The survivor owns all six partitions, each stored to its end.
    let per_partition: Vec<i64> = (0..6)
        .map(|p| (0..produced).filter(|i| i % 6 == p).count() as i64)
        .collect();
    assert_eq!(wait_owner_of_all(&app, 6).await, per_partition);
    for replica in &mut replicas {
        let _ = replica.kill();
        let _ = replica.wait();
    }
}

/// Waits until one replica owns all `n` partitions and returns their stored offsets.
async fn wait_owner_of_all(app: &TestApp, n: usize) -> Vec<i64> {
    let mut offsets = Vec::new();
    wait_for(
        "one owner of every partition",
        Duration::from_secs(60),
        async || {
            let rows = entity::kafka_offset::Entity::find()
                .order_by_asc(entity::kafka_offset::Column::Partition)
                .all(&app.db)
                .await
                .expect("offsets");
            let mut owners: Vec<_> = rows.iter().map(|r| r.owner.clone()).collect();
            owners.sort();
            owners.dedup();
            offsets = rows.iter().map(|r| r.next_offset.unwrap_or(-1)).collect();
            rows.len() == n && owners.len() == 1
        },
    )
    .await;
    offsets
}

/// The shipped template that lands the sink's topic in `events`, pointed at `brokers`.
fn events_provider(dir: &Path, brokers: &str) {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/providers/templates/events-kafka.toml.example"
    ))
    .expect("the events-kafka template");
    write_provider(
        dir,
        "events-kafka",
        &format!(
            "{}\n{FAST_GROUP}",
            template.replace("${KAFKA_BROKERS}", brokers)
        ),
    );
}

fn event(id: usize) -> String {
    json!({
        "ip_address": "192.168.1.1",
        "user_agent": "Mozilla/5.0",
        "referring_url": "https://example.com",
        "advertiser_id": "12345",
        "metadata": { "id": format!("e-{id}") },
    })
    .to_string()
}

async fn submit(app: &TestApp, body: String) -> reqwest::Response {
    app.client
        .post(format!("{}/submit", app.address))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST /submit")
}

/// Events accepted with `events.sink = "kafka"` (`/submit`, `/submit/batch`, `submitEvent`) are
/// in the broker before the answer, and the shipped provider lands each in `events` once,
/// keyed by the id the answer gave.
async fn events_through_kafka_land_once(backend: Backend) {
    let kafka = MockKafka::start();
    let brokers = kafka.brokers();
    kafka.create_topic("events", 3);
    let dir = tempfile::tempdir().expect("dir");
    events_provider(dir.path(), &brokers);
    let providers = dir.path().to_path_buf();
    let sink_brokers = brokers.clone();
    let app = TestApp::spawn_with(backend, move |s| {
        s.providers_dir = providers;
        s.events.sink = tributary::settings::EventSink::Kafka;
        s.events.kafka.brokers = sink_brokers;
    })
    .await;

    for i in 0..40 {
        assert_eq!(submit(&app, event(i)).await.status(), 204);
    }
    let lines: Vec<String> = (40..60).map(event).collect();
    let batch = app
        .client
        .post(format!("{}/submit/batch", app.address))
        .body(lines.join("\n"))
        .send()
        .await
        .expect("POST /submit/batch");
    assert_eq!(batch.status(), 200);
    let answer: Value = batch.json().await.expect("JSON");
    let batch_ids: Vec<String> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            r["id"]
                .as_str()
                .expect("an id for each stored line")
                .to_string()
        })
        .collect();
    assert_eq!(batch_ids.len(), 20);
    let submitted = app
        .query(
            r#"mutation { submitEvent(input: { ipAddress: "10.0.0.1", userAgent: "curl",
                referringUrl: "https://example.com/x", advertiserId: "7",
                metadata: { id: "e-mutation" } }) { id } }"#,
            json!({}),
        )
        .await;
    let mutation_id = submitted["submitEvent"]["id"]
        .as_str()
        .expect("id")
        .to_string();

    wait_for("61 events", Duration::from_secs(60), async || {
        crate::common::stored_event_ids(&app.database_url)
            .await
            .len()
            == 61
    })
    .await;
    let ids = crate::common::stored_event_ids(&app.database_url).await;
    assert!(ids.values().all(|n| *n == 1), "{ids:?}");
    let mut expected: Vec<String> = (0..60).map(|i| format!("e-{i}")).collect();
    expected.push("e-mutation".into());
    expected.sort();
    assert_eq!(ids.keys().cloned().collect::<Vec<_>>(), expected);
    // The ids the answers gave are the stored ids.
    let stored: Vec<String> = entity::event::Entity::find()
        .all(&app.db)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    for id in batch_ids.iter().chain([&mutation_id]) {
        assert!(stored.contains(id), "{id} not stored");
    }
}
on_both_databases!(events_through_kafka_land_once);

/// With the Kafka sink, `/submit` does not need PostgreSQL: it keeps answering 204 while the
/// database is down, and every acknowledged event is stored once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_keeps_accepting_while_postgres_is_down() {
    use crate::common::postgres::PrivateCluster;
    let kafka = MockKafka::start();
    let brokers = kafka.brokers();
    kafka.create_topic("events", 3);
    let dir = tempfile::tempdir().expect("dir");
    events_provider(dir.path(), &brokers);
    let cluster = std::sync::Arc::new(PrivateCluster::start());
    let providers = dir.path().to_path_buf();
    let sink_brokers = brokers.clone();
    let app = TestApp::spawn_at(cluster.url(), None, move |s| {
        s.providers_dir = providers;
        s.database.acquire_timeout_secs = 2;
        s.events.sink = tributary::settings::EventSink::Kafka;
        s.events.kafka.brokers = sink_brokers;
    })
    .await;
    let mut accepted = 0;
    for i in 0..30 {
        if submit(&app, event(i)).await.status() == 204 {
            accepted += 1;
        }
    }
    let stopping = cluster.clone();
    tokio::task::spawn_blocking(move || stopping.stop_immediate())
        .await
        .expect("stop");
    for i in 30..60 {
        let status = submit(&app, event(i)).await.status();
        assert_eq!(status, 204, "event {i} with PostgreSQL down");
        accepted += 1;
    }
    let starting = cluster.clone();
    tokio::task::spawn_blocking(move || starting.start_again())
        .await
        .expect("start");
    assert_eq!(accepted, 60);
    wait_for(
        "60 events after the restart",
        Duration::from_secs(120),
        async || {
            crate::common::stored_event_ids(&app.database_url)
                .await
                .len()
                == 60
        },
    )
    .await;
    let ids = crate::common::stored_event_ids(&app.database_url).await;
    assert!(ids.values().all(|n| *n == 1), "{ids:?}");
}

/// With the broker unreachable, an event is never acknowledged: 503 with `Retry-After`, within
/// the acknowledgement bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_answers_503_when_the_broker_is_unreachable() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let brokers = format!("127.0.0.1:{}", closed.local_addr().expect("address").port());
    drop(closed);
    let app = TestApp::spawn_with(Backend::Sqlite, move |s| {
        s.events.sink = tributary::settings::EventSink::Kafka;
        s.events.kafka.brokers = brokers;
        s.events.kafka.ack_timeout_ms = 1_000;
    })
    .await;
    let started = std::time::Instant::now();
    let response = submit(&app, event(1)).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let body = response.text().await.expect("body");
    assert!(body.to_lowercase().contains("broker"), "{body}");
    assert_eq!(
        crate::common::stored_event_ids(&app.database_url)
            .await
            .len(),
        0
    );
}

/// End to end against a separate broker process (tansu): 300 JSON messages over 3 partitions
/// land exactly once in PostgreSQL, and events acknowledged through the Kafka sink are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_broker_process_carries_messages_exactly_once() {
    let broker = crate::common::kafka::Tansu::start();
    broker.create_topic("patients", 3);
    broker.create_topic("events", 3);
    let brokers = broker.brokers.clone();
    let dir = tempfile::tempdir().expect("dir");
    patients_provider(dir.path(), "patients", &brokers, "patients", "json");
    events_provider(dir.path(), &brokers);
    let messages: Vec<(i32, String, Vec<u8>)> = (0..N)
        .map(|i| {
            let p = patient(i);
            (
                (i % 3) as i32,
                p["id"].as_str().unwrap_or_default().to_string(),
                p.to_string().into_bytes(),
            )
        })
        .collect();
    produce(&brokers, "patients", &messages).await;
    let providers = dir.path().to_path_buf();
    let sink_brokers = brokers.clone();
    let app = TestApp::spawn_with(Backend::Postgres, move |s| {
        s.providers_dir = providers;
        s.events.sink = tributary::settings::EventSink::Kafka;
        s.events.kafka.brokers = sink_brokers;
    })
    .await;
    for i in 0..20 {
        assert_eq!(submit(&app, event(i)).await.status(), 204);
    }
    wait_for(
        &format!("{N} records"),
        Duration::from_secs(90),
        async || record_count(&app, "patients").await >= N as u64,
    )
    .await;
    let stored = records(&app, "patients").await;
    assert_eq!(stored.len(), N);
    for i in 0..N {
        let p = patient(i);
        let key = p["id"].as_str().expect("id");
        assert_eq!(stored[key]["institution"], p["institution"], "{key}");
    }
    let offsets: Vec<Option<i64>> = entity::kafka_offset::Entity::find()
        .filter(entity::kafka_offset::Column::Provider.eq("patients"))
        .order_by_asc(entity::kafka_offset::Column::Partition)
        .all(&app.db)
        .await
        .expect("offsets")
        .into_iter()
        .map(|o| o.next_offset)
        .collect();
    assert_eq!(offsets, vec![Some(100); 3]);
    wait_for("20 events", Duration::from_secs(90), async || {
        crate::common::stored_event_ids(&app.database_url)
            .await
            .len()
            == 20
    })
    .await;
}
