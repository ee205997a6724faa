//! Products end to end on both databases: the real 998-row sample (CRLF, quoted multi-line
//! descriptions, every row twice) and the real edits file, through the importer, a file
//! provider and the command line, with `product_counts` compared to a GROUP BY each time.

use entity::ingest_run::RunStatus;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{Backend, TestApp};
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::{Value, json};
use tributary::entities::EntityKind;
use tributary::import;
use tributary::providers::load::load_file;
use tributary::store::runs::RunMode;
use tributary::store::upsert::UpsertCounts;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/products");

pub(crate) fn file(name: &str) -> PathBuf {
    Path::new(DATA).join(name)
}

/// What the files say, read with the csv crate's defaults (not the importer's reader): SKU →
/// (name, description), the last row of a SKU winning.
pub(crate) fn expected_from(files: &[&str]) -> BTreeMap<String, (String, String)> {
    let mut products = BTreeMap::new();
    for name in files {
        let mut reader = csv::Reader::from_path(file(name)).expect("sample file");
        for row in reader.records() {
            let row = row.expect("row");
            products.insert(row[1].to_string(), (row[0].to_string(), row[2].to_string()));
        }
    }
    products
}

/// Every stored product: SKU → (name, description).
pub(crate) async fn stored(app: &TestApp) -> BTreeMap<String, (String, String)> {
    entity::product::Entity::find()
        .all(&app.db)
        .await
        .expect("products")
        .into_iter()
        .map(|p| {
            (
                p.sku,
                (
                    p.name.expect("every sample product has a name"),
                    p.description
                        .expect("every sample product has a description"),
                ),
            )
        })
        .collect()
}

/// `product_counts` as stored, by name.
async fn counts_table(app: &TestApp) -> Vec<(String, i64)> {
    entity::product_count::Entity::find()
        .order_by_asc(entity::product_count::Column::Name)
        .all(&app.db)
        .await
        .expect("counts")
        .into_iter()
        .map(|c| (c.name, c.count))
        .collect()
}

/// The counts the files give, computed in Rust.
fn counts_of(products: &BTreeMap<String, (String, String)>) -> Vec<(String, i64)> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for (name, _) in products.values() {
        *counts.entry(name.clone()).or_default() += 1;
    }
    counts.into_iter().collect()
}

/// `product_counts` equals the counts of the expected products, and every store invariant
/// (`product_counts` = `GROUP BY` among them) holds.
pub(crate) async fn assert_counts_exact(
    app: &TestApp,
    expected: &BTreeMap<String, (String, String)>,
) {
    crate::common::assert_invariants(&app.db).await;
    assert_eq!(
        counts_table(app).await,
        counts_of(expected),
        "product_counts vs the files"
    );
}

async fn import(app: &TestApp, name: &str) -> import::ImportSummary {
    import::import_file(&app.db, EntityKind::Product, &file(name), |_| {})
        .await
        .unwrap_or_else(|e| panic!("import {name}: {e}"))
}

async fn sample_then_edits(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let summary = import(&app, "products_first499_twice.csv").await;
    assert_eq!((summary.rows, summary.rejected), (998, 0));
    // The second copy of each row is identical to the first.
    assert_eq!(
        summary.counts,
        UpsertCounts {
            inserted: 499,
            updated: 0,
            unchanged: 0,
            superseded: 499
        }
    );
    let expected = expected_from(&["products_first499_twice.csv"]);
    assert_eq!(expected.len(), 499);
    assert_eq!(stored(&app).await, expected);
    assert_counts_exact(&app, &expected).await;
    let bryce = expected["lay-raise-best-end"].0.clone();
    assert_eq!(bryce, "Bryce Jones");

    let summary = import(&app, "products_upsert_edits.csv").await;
    assert_eq!((summary.rows, summary.rejected), (6, 0));
    assert_eq!(
        summary.counts,
        UpsertCounts {
            inserted: 1,
            updated: 1,
            unchanged: 4,
            superseded: 0
        }
    );
    let expected = expected_from(&["products_first499_twice.csv", "products_upsert_edits.csv"]);
    assert_eq!(expected.len(), 500);
    let products = stored(&app).await;
    assert_eq!(products, expected);
    assert_eq!(products["lay-raise-best-end"].0, "Sajal Sirohi");
    assert_eq!(
        products["a-new-primary-key"],
        (
            "Sajal Sirohi".to_string(),
            "This is a good thing I think so.".to_string()
        )
    );
    assert_counts_exact(&app, &expected).await;
    let table = counts_table(&app).await;
    assert!(table.contains(&("Sajal Sirohi".to_string(), 2)));
    // Bryce Jones had one product; the rename leaves none, and no row with a zero count.
    assert!(!table.iter().any(|(name, n)| *name == bryce || *n == 0));

    // The same file again changes nothing.
    let again = import(&app, "products_upsert_edits.csv").await;
    assert_eq!(
        again.counts,
        UpsertCounts {
            inserted: 0,
            updated: 0,
            unchanged: 6,
            superseded: 0
        }
    );
    assert_counts_exact(&app, &expected).await;

    // Over GraphQL.
    let data = app
        .query(
            r#"{
              product(sku: "lay-raise-best-end") { sku name description provider }
              products(where: { name: { eq: "Sajal Sirohi" } }) { nodes { sku } }
              productCounts(where: { name: { eq: "Sajal Sirohi" } }) { nodes { name count } }
              missing: product(sku: "no-such-sku") { sku }
            }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data,
        json!({
            "product": {
                "sku": "lay-raise-best-end",
                "name": "Sajal Sirohi",
                "description": "Art community floor adult your single type. Per back community former stock thing.",
                "provider": "import:product",
            },
            "products": { "nodes": [{ "sku": "a-new-primary-key" }, { "sku": "lay-raise-best-end" }] },
            "productCounts": { "nodes": [{ "name": "Sajal Sirohi", "count": 2 }] },
            "missing": null,
        })
    );
}
on_both_databases!(sample_then_edits);

/// One file in which SKUs repeat, some with other values (the sample, then the edits file's
/// rows): each SKU is written once, from its last row, and importing the file again reports
/// every product unchanged — the rows superseded inside the file are counted apart, never as
/// updates.
async fn repeated_skus_import_again_unchanged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("sample_then_edits.csv");
    let body = |name: &str| {
        let text = std::fs::read_to_string(file(name)).expect("sample file");
        let (_, rows) = text.split_once('\n').expect("a header line");
        rows.trim_end().to_string()
    };
    let joined = format!(
        "name,sku,description\n{}\n{}\n",
        body("products_first499_twice.csv"),
        body("products_upsert_edits.csv")
    );
    std::fs::write(&path, joined).expect("write");
    let expected = expected_from(&["products_first499_twice.csv", "products_upsert_edits.csv"]);
    assert_eq!(expected.len(), 500);

    let first = import::import_file(&app.db, EntityKind::Product, &path, |_| {})
        .await
        .expect("first import");
    assert_eq!((first.rows, first.rejected), (1004, 0));
    assert_eq!(
        first.counts,
        UpsertCounts {
            inserted: 500,
            updated: 0,
            unchanged: 0,
            superseded: 504
        }
    );
    assert_eq!(stored(&app).await, expected);
    assert_eq!(stored(&app).await["lay-raise-best-end"].0, "Sajal Sirohi");
    assert_counts_exact(&app, &expected).await;

    let again = import::import_file(&app.db, EntityKind::Product, &path, |_| {})
        .await
        .expect("second import");
    assert_eq!(
        again.counts,
        UpsertCounts {
            inserted: 0,
            updated: 0,
            unchanged: 500,
            superseded: 504
        }
    );
    assert_eq!(stored(&app).await, expected);
    assert_counts_exact(&app, &expected).await;

    // The run's counters say the same over GraphQL.
    let data = app
        .query(
            "query($id: ID!) { ingestRun(id: $id) { fetched inserted updated unchanged superseded rejected } }",
            json!({ "id": again.run_id.to_string() }),
        )
        .await;
    assert_eq!(
        data["ingestRun"],
        json!({
            "fetched": 1004, "inserted": 0, "updated": 0, "unchanged": 500, "superseded": 504,
            "rejected": 0,
        })
    );
}
on_both_databases!(repeated_skus_import_again_unchanged);

/// A NUL byte (PostgreSQL stores none) rejects its row with the column named; the rows around
/// it land (on PostgreSQL the import is one transaction: one such value must not undo it all).
async fn a_nul_byte_rejects_only_its_row(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("nul.csv");
    std::fs::write(
        &path,
        b"name,sku,description\nAnn,s1,first\nBob,s2,has \0 inside\nCid,s3,third\n",
    )
    .expect("write");
    let summary = import::import_file(&app.db, EntityKind::Product, &path, |_| {})
        .await
        .expect("import");
    assert_eq!(
        (summary.rows, summary.counts.inserted, summary.rejected),
        (3, 2, 1)
    );
    let skus: Vec<String> = stored(&app).await.into_keys().collect();
    assert_eq!(skus, ["s1", "s3"]);
    let rejected = entity::rejected_record::Entity::find()
        .all(&app.db)
        .await
        .expect("rejections");
    assert_eq!(
        rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str(), r.payload.as_deref()))
            .collect::<Vec<_>>(),
        [(
            Some(3),
            "description: contains a NUL character (\\u0000), which the database cannot store",
            Some("Bob,s2,has \u{fffd} inside")
        )]
    );
}
on_both_databases!(a_nul_byte_rejects_only_its_row);

/// Pages through a connection with `first: 100`, returning every node.
async fn all_pages(app: &TestApp, query: &str, field: &str, variables: Value) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut vars = variables.clone();
        vars["after"] = json!(after);
        let data = app.query(query, vars).await;
        let connection = &data[field];
        nodes.extend(
            connection["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .cloned(),
        );
        if connection["pageInfo"]["hasNextPage"] != json!(true) {
            return nodes;
        }
        after = Some(
            connection["pageInfo"]["endCursor"]
                .as_str()
                .expect("cursor")
                .to_string(),
        );
    }
}

async fn counts_and_products_page_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    import(&app, "products_first499_twice.csv").await;
    import(&app, "products_upsert_edits.csv").await;
    let expected = expected_from(&["products_first499_twice.csv", "products_upsert_edits.csv"]);

    // Most common first, names in order within a count: the keyset mixes directions.
    let mut by_count = counts_of(&expected);
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    const COUNTS: &str = r#"query ($after: String, $order: ProductCountOrder, $where: ProductCountWhere) {
      productCounts(orderBy: $order, where: $where, first: 100, after: $after) {
        nodes { name count } pageInfo { hasNextPage endCursor }
      }
    }"#;
    let pages = all_pages(&app, COUNTS, "productCounts", json!({})).await;
    let got: Vec<(String, i64)> = pages
        .iter()
        .map(|n| {
            (
                n["name"].as_str().expect("name").to_string(),
                n["count"].as_i64().expect("count"),
            )
        })
        .collect();
    assert_eq!(got, by_count);
    assert!(
        got[0].1 >= 2,
        "some names have several products: {:?}",
        got[0]
    );

    let by_name = all_pages(&app, COUNTS, "productCounts", json!({ "order": "NAME" })).await;
    let names: Vec<&str> = by_name
        .iter()
        .map(|n| n["name"].as_str().expect("name"))
        .collect();
    let expected_names: Vec<String> = counts_of(&expected).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, expected_names);

    let several = all_pages(
        &app,
        COUNTS,
        "productCounts",
        json!({ "where": { "count": { "gte": 2 } } }),
    )
    .await;
    let several: Vec<(String, i64)> = several
        .iter()
        .map(|n| {
            (
                n["name"].as_str().expect("name").to_string(),
                n["count"].as_i64().expect("count"),
            )
        })
        .collect();
    let expected_several: Vec<(String, i64)> =
        by_count.iter().filter(|(_, n)| *n >= 2).cloned().collect();
    assert_eq!(several, expected_several);

    // Products by name (then SKU), and by SKU descending, visit every product once.
    const PRODUCTS: &str = r#"query ($after: String, $order: [ProductOrder!], $where: ProductWhere) {
      products(orderBy: $order, where: $where, first: 100, after: $after) {
        nodes { sku name } pageInfo { hasNextPage endCursor }
      }
    }"#;
    let mut by_name_sku: Vec<(String, String)> = expected
        .iter()
        .map(|(sku, (name, _))| (name.clone(), sku.clone()))
        .collect();
    by_name_sku.sort();
    let pages = all_pages(
        &app,
        PRODUCTS,
        "products",
        json!({ "order": [{ "field": "NAME" }] }),
    )
    .await;
    let got: Vec<(String, String)> = pages
        .iter()
        .map(|n| {
            (
                n["name"].as_str().expect("name").to_string(),
                n["sku"].as_str().expect("sku").to_string(),
            )
        })
        .collect();
    assert_eq!(got, by_name_sku);
    let pages = all_pages(
        &app,
        PRODUCTS,
        "products",
        json!({ "order": [{ "field": "SKU", "direction": "DESC" }] }),
    )
    .await;
    let skus: Vec<&str> = pages
        .iter()
        .map(|n| n["sku"].as_str().expect("sku"))
        .collect();
    let mut expected_skus: Vec<&str> = expected.keys().map(String::as_str).collect();
    expected_skus.reverse();
    assert_eq!(skus, expected_skus);

    // startsWith on the SKU.
    let pages = all_pages(
        &app,
        PRODUCTS,
        "products",
        json!({ "where": { "sku": { "startsWith": "lay-" } } }),
    )
    .await;
    let skus: Vec<&str> = pages
        .iter()
        .map(|n| n["sku"].as_str().expect("sku"))
        .collect();
    let expected_lay: Vec<&str> = expected
        .keys()
        .map(String::as_str)
        .filter(|s| s.starts_with("lay-"))
        .collect();
    assert!(!expected_lay.is_empty());
    assert_eq!(skus, expected_lay);
}
on_both_databases!(counts_and_products_page_in_order);

async fn a_product_provider_keeps_counts_exact(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let write = |name: &str, data: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "entity = \"product\"\nkey = \"sku\"\n[source]\nkind = \"file\"\npath = \"{}\"\n[fields]\nsku = \"sku\"\nname = \"name\"\ndescription = \"description\"\n",
                file(data).display()
            ),
        )
        .expect("provider file");
        load_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let sample = write("sample-products", "products_first499_twice.csv");
    let edits = write("product-edits", "products_upsert_edits.csv");
    for provider in [&sample, &edits] {
        let summary = crate::common::run_provider(
            &app,
            provider,
            &tributary::hosts::HostRules::default(),
            &crate::common::outbound(),
            RunMode::Full,
        )
        .await;
        assert_eq!(summary.error, None);
        assert_eq!(summary.rejected, 0);
    }
    let expected = expected_from(&["products_first499_twice.csv", "products_upsert_edits.csv"]);
    assert_eq!(stored(&app).await, expected);
    assert_counts_exact(&app, &expected).await;
    let lay = entity::product::Entity::find_by_id("lay-raise-best-end".to_string())
        .one(&app.db)
        .await
        .expect("query")
        .expect("product");
    assert_eq!(lay.provider, "product-edits");

    // The importer and the provider read rows alike: importing the last file changes nothing.
    let again = import(&app, "products_upsert_edits.csv").await;
    assert_eq!(
        again.counts,
        UpsertCounts {
            inserted: 0,
            updated: 0,
            unchanged: 6,
            superseded: 0
        }
    );
    assert_counts_exact(&app, &expected).await;
}
on_both_databases!(a_product_provider_keeps_counts_exact);

async fn command_line_import(backend: Backend) {
    use std::io::Write;
    let (url, _dir) = crate::common::database_url(backend).await;
    let work = tempfile::tempdir().expect("dir");
    // The sample gzipped, and a file with one bad row (no SKU) on line 3.
    let gz = work.path().join("products.csv.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("gz"),
        flate2::Compression::fast(),
    );
    encoder
        .write_all(&std::fs::read(file("products_first499_twice.csv")).expect("sample"))
        .expect("write");
    encoder.finish().expect("finish");
    let bad = work.path().join("bad.csv");
    std::fs::write(
        &bad,
        "name,sku,description\r\nA,a-1,x\r\nB,,y\r\nC,c-1,\"multi\nline\"\r\n",
    )
    .expect("bad file");

    let run = |path: &Path| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"));
        for (key, _) in std::env::vars() {
            if key.starts_with("TRIBUTARY_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .env("DATABASE_URL", &url)
            .args(["import", "product"])
            .arg(path)
            .output()
            .expect("run tributary")
    };
    let output = run(&gz);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("imported 998 rows from")
            && stdout.contains("499 inserted, 0 updated, 0 unchanged, 499 superseded, 0 rejected"),
        "{stdout}"
    );
    let output = run(&bad);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("2 inserted, 0 updated, 0 unchanged, 0 superseded, 1 rejected"),
        "{stdout}"
    );

    let db = sea_orm::Database::connect(url.as_str())
        .await
        .expect("connect");
    let rejected = entity::rejected_record::Entity::find()
        .all(&db)
        .await
        .expect("rejections");
    let rejected: Vec<(String, Option<i64>, String, Option<String>)> = rejected
        .into_iter()
        .map(|r| (r.provider, r.line, r.reason, r.payload))
        .collect();
    assert_eq!(
        rejected,
        vec![(
            "import:product".to_string(),
            Some(3),
            "sku: missing".to_string(),
            Some("B,,y".to_string())
        )]
    );
    let c1 = entity::product::Entity::find_by_id("c-1".to_string())
        .one(&db)
        .await
        .expect("query")
        .expect("c-1");
    assert_eq!(c1.description.as_deref(), Some("multi\nline"));
    let total = entity::product_count::Entity::find()
        .all(&db)
        .await
        .expect("counts")
        .iter()
        .map(|c| c.count)
        .sum::<i64>();
    assert_eq!(total, 501);
}
on_both_databases!(command_line_import);

/// A file that breaks part way (a gzip cut short): what was read before the break is stored
/// with exact counts and the run is failed naming the file; the whole file afterwards
/// completes the set.
async fn a_broken_file_keeps_what_was_read(backend: Backend) {
    use std::io::Write;
    let app = TestApp::spawn(backend).await;
    let work = tempfile::tempdir().expect("dir");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(&std::fs::read(file("products_first499_twice.csv")).expect("sample"))
        .expect("write");
    let whole = encoder.finish().expect("finish");
    let cut = work.path().join("cut.csv.gz");
    std::fs::write(&cut, &whole[..whole.len() / 3]).expect("cut file");

    let error = import::import_file(&app.db, EntityKind::Product, &cut, |_| {})
        .await
        .expect_err("a cut gzip fails");
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: ", cut.display())),
        "{error}"
    );
    let run = entity::ingest_run::Entity::find()
        .one(&app.db)
        .await
        .expect("runs")
        .expect("the import's run");
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some(error.to_string().as_str()));

    let expected = expected_from(&["products_first499_twice.csv"]);
    let kept = stored(&app).await;
    assert!(
        !kept.is_empty() && kept.len() < expected.len(),
        "{}",
        kept.len()
    );
    // Each stored product is one of the file's rows for its SKU (the first copy of the sample
    // repeats in the second, so a SKU read only once has the same values).
    for (sku, values) in &kept {
        assert_eq!(expected.get(sku), Some(values), "{sku}");
    }
    assert_counts_exact(&app, &kept).await;
    assert_eq!(
        run.inserted,
        kept.len() as i64,
        "the run's counters match the rows"
    );

    import(&app, "products_first499_twice.csv").await;
    assert_eq!(stored(&app).await, expected);
    assert_counts_exact(&app, &expected).await;
}
on_both_databases!(a_broken_file_keeps_what_was_read);

/// Line ends of a bare CR, or a quote never closed, would make the rest of a file one field:
/// the import fails naming the line instead, and keeps the rows before it.
async fn unreadable_line_ends_and_quotes_fail_naming_the_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let bare_cr = dir.path().join("mac.csv");
    std::fs::write(&bare_cr, "name,sku,description\rLamp,a-1,x\rDesk,b-2,y\r").expect("write");
    let error = import::import_file(&app.db, EntityKind::Product, &bare_cr, |_| {})
        .await
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: line 1: lines end with a carriage return alone (CR, the old Mac line end); \
             convert the file to LF or CRLF line ends",
            bare_cr.display()
        )
    );
    assert!(stored(&app).await.is_empty());

    let unclosed = dir.path().join("quote.csv");
    std::fs::write(
        &unclosed,
        "name,sku,description\nLamp,a-1,x\n\"Desk,b-2,y\nChair,c-3,z\n",
    )
    .expect("write");
    let error = import::import_file(&app.db, EntityKind::Product, &unclosed, |_| {})
        .await
        .expect_err("refused");
    assert!(
        error.to_string().ends_with(
            "line 3: a quoted field is not closed before the end of the file (a `\"` without \
             its closing `\"`); every row from line 3 on was read as one field"
        ),
        "{error}"
    );
    assert_eq!(
        stored(&app).await.into_keys().collect::<Vec<_>>(),
        ["a-1".to_string()]
    );
    crate::common::assert_invariants(&app.db).await;
}
on_both_databases!(unreadable_line_ends_and_quotes_fail_naming_the_line);

/// An import into the empty table is a first load: its indexes are dropped for the load and
/// built again at the end, exactly as the migrations made them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_load_builds_every_index_again() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn(Backend::Postgres).await;
    let indexes = || async {
        app.db
            .query_all_raw(Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT indexname, indexdef FROM pg_indexes
                 WHERE tablename IN ('products', 'product_counts') ORDER BY 1",
            ))
            .await
            .expect("pg_indexes")
            .into_iter()
            .map(|row| {
                let name: String = row.try_get("", "indexname").expect("name");
                let def: String = row.try_get("", "indexdef").expect("definition");
                (name, def)
            })
            .collect::<Vec<_>>()
    };
    let before = indexes().await;
    assert_eq!(before.len(), 5, "{before:?}");
    import(&app, "products_first499_twice.csv").await;
    assert_eq!(indexes().await, before);
    let expected = expected_from(&["products_first499_twice.csv"]);
    assert_eq!(stored(&app).await, expected);
    assert_counts_exact(&app, &expected).await;
}
