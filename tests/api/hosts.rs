//! Hosts merged across security tools: the shipped Qualys and CrowdStrike providers read the
//! real Silk API documents over HTTP from a local stand-in with the API's pagination, and the
//! 14 documents become the 8 machines of the ground truth — in either order, and again without
//! change.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::mock_provider::{MockConfig, MockProvider, silk_hosts};
use crate::common::{Backend, TestApp};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tributary::hosts::HostRules;
use tributary::ingest::{self, RunSummary};
use tributary::providers::Provider;
use tributary::providers::load::load_file;
use tributary::store::runs::{RunMode, RunStatus};

const TOKEN: &str = "silk-test-token";

/// The shipped provider file, with the base URL pointed at the stand-in. The token still
/// comes from `${SILK_TOKEN}`, as in production.
fn shipped(dir: &Path, tool: &str, base_url: &str) -> Provider {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("providers/{tool}.toml"));
    let text = std::fs::read_to_string(&source).expect("shipped provider file");
    assert!(
        text.contains("${SILK_BASE_URL}"),
        "{tool}.toml reads SILK_BASE_URL"
    );
    let path = dir.join(format!("{tool}.toml"));
    std::fs::write(&path, text.replace("${SILK_BASE_URL}", base_url)).expect("write");
    load_file(&path).unwrap_or_else(|e| panic!("{tool}.toml: {e}"))
}

async fn run(app: &TestApp, provider: &Provider, rules: &HostRules) -> RunSummary {
    let summary = crate::common::run_provider(
        app,
        provider,
        rules,
        &crate::common::outbound(),
        RunMode::Incremental,
    )
    .await;
    assert_eq!(
        summary.status,
        RunStatus::Succeeded,
        "{}: {:?}",
        provider.name,
        summary.error
    );
    summary
}

const HOSTS: &str = r#"{
  hosts(orderBy: [{field: HOSTNAME}], first: 100) {
    nodes {
      id hostname fqdn os platform cloudProvider cloudInstanceId
      privateIps publicIps macs firstSeen lastSeen observationCount stale
      fieldSources { field providers }
      observations { provider externalId matchedBy hostname macs }
    }
  }
}"#;

async fn hosts(app: &TestApp) -> Vec<Value> {
    let data = app.query(HOSTS, json!({})).await;
    data["hosts"]["nodes"].as_array().expect("nodes").clone()
}

/// A host without what depends on the order of ingestion (ids, which observation created the
/// host) — what must be the same whichever tool is read first.
fn content(host: &Value) -> Value {
    let mut host = host.clone();
    let object = host.as_object_mut().expect("object");
    object.remove("id");
    for o in object["observations"].as_array_mut().expect("observations") {
        o.as_object_mut().expect("observation").remove("matchedBy");
    }
    host
}

/// The ground truth of `../shared/data/hosts/SOURCES.md`, one line per machine: hostname,
/// instance id, MAC, private addresses, public address, and who reports it under which id.
fn expected() -> Vec<Value> {
    let ec2 = |name: &str,
               instance: &str,
               mac: &str,
               ipv4: &str,
               ipv6: &str,
               public: &str,
               qualys: &str,
               crowdstrike: &str,
               first: &str,
               last: &str| {
        json!({
            "hostname": name,
            "fqdn": name,
            "os": "Amazon Linux 2",
            "platform": "Linux",
            "cloudProvider": "AWS",
            "cloudInstanceId": instance,
            "privateIps": [ipv4, ipv6],
            "publicIps": [public],
            "macs": [mac],
            "firstSeen": first,
            "lastSeen": last,
            "observationCount": 2,
            "stale": false,
            "observations": [
                { "provider": "crowdstrike", "externalId": crowdstrike, "hostname": name, "macs": [mac] },
                { "provider": "qualys", "externalId": qualys, "hostname": name, "macs": [mac] },
            ],
        })
    };
    vec![
        json!({
            "hostname": "ec2amaz-e8fae79",
            "fqdn": "ec2amaz-e8fae79.workgroup",
            "os": "Microsoft Windows Server 2019 Datacenter 10.0.17763 64-bit N/A Build 17763 UBR 3232",
            "platform": "Windows",
            "cloudProvider": "AWS",
            "cloudInstanceId": "i-04a7635ee51c50ea0",
            "privateIps": ["172.31.18.214", "fe80::2d90:664c:3e51:4e7"],
            "publicIps": ["34.236.143.31"],
            "macs": ["0a:1d:96:2e:f5:17"],
            "firstSeen": "2022-08-18T23:48:20Z",
            "lastSeen": "2023-07-26T06:50:58Z",
            "observationCount": 1,
            "stale": false,
            "observations": [
                { "provider": "qualys", "externalId": "305017223", "hostname": "ec2amaz-e8fae79", "macs": ["0a:1d:96:2e:f5:17"] },
            ],
        }),
        ec2(
            "ip-172-31-14-41.ec2.internal",
            "i-0cd2bfdc02f0d9aed",
            "02:cd:09:69:8d:21",
            "172.31.14.41",
            "fe80::cd:9ff:fe69:8d21",
            "3.237.183.51",
            "305005279",
            "924adf156a6540b9a7447c9c5842ff62",
            "2022-08-18T22:17:37Z",
            "2023-02-07T20:46:58Z",
        ),
        ec2(
            "ip-172-31-19-223.ec2.internal",
            "i-0f74daf3d7225083a",
            "0a:9a:0e:ba:3f:d9",
            "172.31.19.223",
            "fe80::89a:eff:feba:3fd9",
            "18.212.216.193",
            "305003660",
            "d670f1b6abae4ba2a0c80ad949970264",
            "2022-08-18T22:18:40Z",
            "2023-07-26T04:27:35Z",
        ),
        ec2(
            "ip-172-31-27-66.ec2.internal",
            "i-00243621465aa8bd0",
            "0a:ef:8a:22:3a:8d",
            "172.31.27.66",
            "fe80::8ef:8aff:fe22:3a8d",
            "54.147.184.66",
            "305005680",
            "e2dbf1b0506e415588b370fb80d7db99",
            "2022-08-18T22:19:39Z",
            "2023-07-19T10:43:57Z",
        ),
        ec2(
            "ip-172-31-60-172.ec2.internal",
            "i-0f7b47bb35e801dcd",
            "06:d5:ae:47:27:73",
            "172.31.60.172",
            "fe80::4d5:aeff:fe47:2773",
            "54.237.28.30",
            "305019294",
            "100900110d1442989a7f40f363b3bca6",
            "2022-08-18T23:49:40Z",
            "2023-04-03T07:55:48Z",
        ),
        ec2(
            "ip-172-31-93-76.ec2.internal",
            "i-086fc5a571e41b095",
            "12:5e:2e:db:58:99",
            "172.31.93.76",
            "fe80::105e:2eff:fedb:5899",
            "52.201.231.187",
            "305004025",
            "e64d9e3eb9f24f44818240d7f9ad4ebc",
            "2022-08-18T22:23:03Z",
            "2023-03-16T13:34:47Z",
        ),
        ec2(
            "ip-172-31-94-229.ec2.internal",
            "i-04d75f5d8db35c016",
            "12:7c:01:82:6b:4f",
            "172.31.94.229",
            "fe80::107c:1ff:fe82:6b4f",
            "54.175.33.9",
            "305005702",
            "6b9c530bdaa44cb080df9d8b9c8b7c28",
            "2022-08-18T22:22:07Z",
            "2023-04-03T07:53:45Z",
        ),
        json!({
            "hostname": "yoavs-mbp-2.lan",
            "fqdn": null,
            "os": "Ventura (13)",
            "platform": "Mac",
            "cloudProvider": null,
            "cloudInstanceId": null,
            "privateIps": ["192.168.86.151"],
            "publicIps": ["98.109.97.138"],
            "macs": ["a0:78:17:89:1a:fa"],
            "firstSeen": "2023-03-28T14:56:10Z",
            "lastSeen": "2023-04-03T07:17:35Z",
            "observationCount": 1,
            "stale": false,
            "observations": [
                { "provider": "crowdstrike", "externalId": "3023b0ecd1444cf3b0b0958cb437964c", "hostname": "yoavs-mbp-2.lan", "macs": ["a0:78:17:89:1a:fa"] },
            ],
        }),
    ]
}

/// The fields compared with the ground truth (sources are checked on their own).
fn truth_view(host: &Value) -> Value {
    let mut host = content(host);
    host.as_object_mut().expect("object").remove("fieldSources");
    host
}

fn sources(host: &Value) -> BTreeMap<String, Vec<String>> {
    host["fieldSources"]
        .as_array()
        .expect("fieldSources")
        .iter()
        .map(|s| {
            let providers = s["providers"]
                .as_array()
                .expect("providers")
                .iter()
                .map(|p| p.as_str().expect("text").to_string())
                .collect();
            (s["field"].as_str().expect("field").to_string(), providers)
        })
        .collect()
}

fn by_hostname<'a>(hosts: &'a [Value], name: &str) -> &'a Value {
    hosts
        .iter()
        .find(|h| h["hostname"] == name)
        .unwrap_or_else(|| panic!("no host {name}"))
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("n")
}

async fn fourteen_documents_are_eight_hosts_in_either_order(backend: Backend) {
    // SAFETY of the test: every test sets the same value; only provider runs read it.
    unsafe { std::env::set_var("SILK_TOKEN", TOKEN) };
    let mock = MockProvider::start(MockConfig {
        silk_token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let qualys = shipped(dir.path(), "qualys", &mock.base_url);
    let crowdstrike = shipped(dir.path(), "crowdstrike", &mock.base_url);
    let rules = HostRules::default();

    // Qualys first.
    let app = TestApp::spawn(backend).await;
    for provider in [&qualys, &crowdstrike] {
        let summary = run(&app, provider, &rules).await;
        // Every host reached, the seventh included, despite the API's 500 past the end.
        assert_eq!(summary.fetched, 7, "{}", provider.name);
        assert_eq!(summary.counts.inserted, 7, "{}", provider.name);
        assert_eq!(summary.rejected, 0, "{}", provider.name);
    }
    let first = hosts(&app).await;
    assert_eq!(first.len(), 8);
    assert_eq!(
        first.iter().map(truth_view).collect::<Vec<_>>(),
        expected(),
        "the 8 machines of the ground truth"
    );
    assert_eq!(count(&app, "host_observations").await, 14);
    assert_eq!(count(&app, "host_conflicts").await, 0);
    // One fragment on the interface reads the fields a host and an observation share.
    let shared = app
        .query(
            r#"fragment m on MachineReport { hostname os cloudInstanceId macs privateIps lastSeen }
               { hosts(orderBy: [{field: HOSTNAME}], first: 100) {
                   nodes { ...m observations { ...m } } } }"#,
            json!({}),
        )
        .await;
    let keep = [
        "hostname",
        "os",
        "cloudInstanceId",
        "macs",
        "privateIps",
        "lastSeen",
    ];
    let picked = |v: &Value| -> Value {
        keep.iter()
            .map(|k| (k.to_string(), v[*k].clone()))
            .collect()
    };
    for (read, host) in shared["hosts"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .zip(&first)
    {
        assert_eq!(picked(read), picked(host));
        let observed: Vec<Value> = read["observations"]
            .as_array()
            .expect("observations")
            .iter()
            .map(|o| o["hostname"].clone())
            .collect();
        let expected: Vec<Value> = host["observations"]
            .as_array()
            .expect("observations")
            .iter()
            .map(|o| o["hostname"].clone())
            .collect();
        assert_eq!(observed, expected);
    }

    // Qualys created the hosts; CrowdStrike joined them by instance id, the Mac made its own.
    let web = by_hostname(&first, "ip-172-31-93-76.ec2.internal");
    assert_eq!(web["observations"][0]["matchedBy"], "cloud_instance_id");
    assert_eq!(web["observations"][1]["matchedBy"], Value::Null);
    // Without priorities, the most recent report decides: CrowdStrike saw this one last
    // (2023-03-16 against Qualys' 2022-08-31), Qualys saw ip-172-31-19-223 last.
    let web_sources = sources(web);
    assert_eq!(web_sources["hostname"], ["crowdstrike"]);
    assert_eq!(web_sources["os"], ["crowdstrike"]);
    assert_eq!(
        web_sources["fqdn"],
        ["qualys"],
        "only Qualys reports an FQDN"
    );
    assert_eq!(web_sources["macs"], ["crowdstrike", "qualys"]);
    let other = sources(by_hostname(&first, "ip-172-31-19-223.ec2.internal"));
    assert_eq!(other["hostname"], ["qualys"]);
    assert_eq!(other["platform"], ["qualys"]);

    // The raw payload is kept as the API served it.
    let data = app
        .query(
            r#"query($id: ID!) { host(id: $id) { observations { provider externalId raw } } }"#,
            json!({ "id": web["id"] }),
        )
        .await;
    let observations = data["host"]["observations"].as_array().expect("list");
    let served = |tool: &str, key: &str, id: &Value| -> Value {
        silk_hosts(tool)
            .iter()
            .map(|raw| serde_json::from_str::<Value>(raw.get()).expect("JSON"))
            .find(|doc| doc[key] == *id)
            .expect("served document")
    };
    assert_eq!(
        observations[0]["raw"],
        served(
            "crowdstrike",
            "device_id",
            &json!("e64d9e3eb9f24f44818240d7f9ad4ebc")
        )
    );
    assert_eq!(
        observations[1]["raw"],
        served("qualys", "id", &json!(305004025))
    );

    // Both again: nothing changes.
    for provider in [&qualys, &crowdstrike] {
        let summary = run(&app, provider, &rules).await;
        assert_eq!(summary.fetched, 7, "{}", provider.name);
        assert_eq!(summary.counts.unchanged, 7, "{}", provider.name);
        assert_eq!(summary.counts.inserted + summary.counts.updated, 0);
    }
    assert_eq!(hosts(&app).await, first);
    assert_eq!(count(&app, "host_observations").await, 14);

    // CrowdStrike first, on an empty database: the same 8 hosts.
    let reversed = TestApp::spawn(backend).await;
    for provider in [&crowdstrike, &qualys] {
        let summary = run(&reversed, provider, &rules).await;
        assert_eq!(summary.counts.inserted, 7, "{}", provider.name);
    }
    let second = hosts(&reversed).await;
    assert_eq!(
        second.iter().map(content).collect::<Vec<_>>(),
        first.iter().map(content).collect::<Vec<_>>(),
    );
    let web = by_hostname(&second, "ip-172-31-93-76.ec2.internal");
    assert_eq!(web["observations"][0]["matchedBy"], Value::Null);
    assert_eq!(web["observations"][1]["matchedBy"], "cloud_instance_id");

    // A priority from settings overrides recency, field by field.
    let mut priority = HostRules::default();
    priority.field_priority.insert(
        "default".into(),
        vec!["qualys".into(), "crowdstrike".into()],
    );
    priority
        .field_priority
        .insert("platform".into(), vec!["crowdstrike".into()]);
    let ranked = TestApp::spawn(backend).await;
    run(&ranked, &crowdstrike, &priority).await;
    run(&ranked, &qualys, &priority).await;
    let ranked_hosts = hosts(&ranked).await;
    let web = sources(by_hostname(&ranked_hosts, "ip-172-31-93-76.ec2.internal"));
    assert_eq!(web["hostname"], ["qualys"]);
    assert_eq!(web["os"], ["qualys"]);
    assert_eq!(web["platform"], ["crowdstrike"]);
}
on_both_databases!(fourteen_documents_are_eight_hosts_in_either_order);

async fn hosts_are_found_by_any_identifier_and_go_stale(backend: Backend) {
    unsafe { std::env::set_var("SILK_TOKEN", TOKEN) };
    let mock = MockProvider::start(MockConfig {
        silk_token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let app = TestApp::spawn(backend).await;
    let rules = HostRules::default();
    for tool in ["qualys", "crowdstrike"] {
        run(&app, &shipped(dir.path(), tool, &mock.base_url), &rules).await;
    }
    let names = |data: &Value| -> Vec<String> {
        data["hosts"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|h| h["hostname"].as_str().expect("hostname").to_string())
            .collect()
    };
    let find = |filter: Value| {
        let app = &app;
        async move {
            let data = app
                .query(
                    "query($w: HostWhere) { hosts(where: $w, orderBy: [{field: HOSTNAME}]) { nodes { hostname } } }",
                    json!({ "w": filter }),
                )
                .await;
            names(&data)
        }
    };
    let web = vec!["ip-172-31-93-76.ec2.internal".to_string()];
    assert_eq!(find(json!({ "ip": "52.201.231.187" })).await, web);
    assert_eq!(find(json!({ "ip": "172.31.93.76" })).await, web);
    assert_eq!(
        find(json!({ "ip": "fe80:0:0:0:105e:2eff:fedb:5899" })).await,
        web
    );
    assert_eq!(find(json!({ "mac": "12-5E-2E-DB-58-99" })).await, web);
    assert_eq!(
        find(json!({ "cloudInstanceId": "I-086FC5A571E41B095" })).await,
        web
    );
    assert_eq!(
        find(json!({ "hostname": { "startsWith": "ip-172-31-9" } })).await,
        [
            "ip-172-31-93-76.ec2.internal",
            "ip-172-31-94-229.ec2.internal"
        ]
    );
    assert_eq!(
        find(json!({ "provider": "qualys", "os": { "startsWith": "Microsoft" } })).await,
        ["ec2amaz-e8fae79"]
    );
    assert_eq!(find(json!({ "provider": "crowdstrike" })).await.len(), 7);
    assert_eq!(
        find(json!({ "lastSeen": { "gte": "2023-07-01T00:00:00Z" } })).await,
        [
            "ec2amaz-e8fae79",
            "ip-172-31-19-223.ec2.internal",
            "ip-172-31-27-66.ec2.internal"
        ]
    );
    assert!(find(json!({ "stale": true })).await.is_empty());

    let bad = app
        .graphql(
            r#"{ hosts(where: {ip: "300.1.2.3"}) { nodes { id } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("where.ip"),
        "{bad}"
    );

    // Two days without a report: stale, and still there.
    let two_days_ago = chrono::Utc::now() - chrono::Duration::hours(48);
    let backend_kind = app.db.get_database_backend();
    let sql = match backend_kind {
        sea_orm::DbBackend::Postgres => {
            "UPDATE hosts SET last_reported_at = $1 WHERE hostname = $2"
        }
        _ => "UPDATE hosts SET last_reported_at = ? WHERE hostname = ?",
    };
    app.db
        .execute_raw(Statement::from_sql_and_values(
            backend_kind,
            sql,
            [two_days_ago.into(), "yoavs-mbp-2.lan".into()],
        ))
        .await
        .expect("age the laptop");
    assert_eq!(find(json!({ "stale": true })).await, ["yoavs-mbp-2.lan"]);
    assert_eq!(find(json!({ "stale": false })).await.len(), 7);
    let data = app
        .query(
            r#"{ hosts(where: {stale: true}) { nodes { stale lastReportedAt } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["hosts"]["nodes"][0]["stale"], true);

    // Reported again, unchanged: current again, and nothing else moves.
    let summary = run(
        &app,
        &shipped(dir.path(), "crowdstrike", &mock.base_url),
        &rules,
    )
    .await;
    assert_eq!(summary.counts.unchanged, 7);
    assert!(find(json!({ "stale": true })).await.is_empty());
}
on_both_databases!(hosts_are_found_by_any_identifier_and_go_stale);

/// A push provider of hosts, for observations written in the test.
fn push_provider(dir: &Path, name: &str) -> Provider {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        r#"
entity = "host"
[source]
kind = "push"
[fields]
id = "id"
hostname = "hostname"
cloud_instance_id = "instance"
macs = { path = "macs", transforms = ["mac"] }
ips = { path = "ips", transforms = ["ip"] }
last_seen = { path = "last_seen", transforms = ["timestamp"] }
"#,
    )
    .expect("write");
    load_file(&path).unwrap_or_else(|e| panic!("{name}.toml: {e}"))
}

async fn conflicts_are_reported_not_merged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let a = push_provider(dir.path(), "tool-a");
    let b = push_provider(dir.path(), "tool-b");
    let rules = HostRules::default();
    let push = |provider: &Provider, records: Value| {
        let db = app.db.clone();
        let provider = provider.clone();
        let rules = rules.clone();
        async move {
            let records = records.as_array().expect("array").clone();
            let summary = ingest::push(&db, &provider, &rules, records)
                .await
                .expect("push");
            assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
            summary
        }
    };
    push(
        &a,
        json!([
            { "id": "a1", "hostname": "alpha", "instance": "i-1", "macs": ["0A:00:00:00:00:01"], "ips": ["10.0.0.1"] },
            { "id": "a2", "hostname": "beta", "instance": "i-2", "macs": ["0a:00:00:00:00:02"] },
            { "id": "a3", "hostname": "gamma", "macs": ["02:42:ac:11:00:02"] },
        ]),
    )
    .await;
    let summary = push(
        &b,
        json!([
            // Instance i-1 says alpha; MAC …:02 says beta: joins alpha, conflict with beta.
            { "id": "b1", "hostname": "alpha", "instance": "i-1", "macs": ["0a-00-00-00-00-02"] },
            // Shares only an IP with alpha: an IP alone never merges.
            { "id": "b2", "hostname": "delta", "ips": ["10.0.0.1"] },
            // Docker's bridge MAC is on every Docker host: never merges.
            { "id": "b3", "hostname": "epsilon", "macs": ["02:42:ac:11:00:02"] },
        ]),
    )
    .await;
    assert_eq!(summary.counts.inserted, 3);

    let data = app
        .query(
            r#"{
              hosts(orderBy: [{field: HOSTNAME}]) { nodes { hostname observationCount macs } }
              hostConflicts { nodes { kind value provider externalId host { hostname } otherHost { hostname } } }
            }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["hosts"]["nodes"],
        json!([
            // The merged host shows what its observations report, the contested MAC included.
            { "hostname": "alpha", "observationCount": 2, "macs": ["0a:00:00:00:00:01", "0a:00:00:00:00:02"] },
            { "hostname": "beta", "observationCount": 1, "macs": ["0a:00:00:00:00:02"] },
            { "hostname": "delta", "observationCount": 1, "macs": [] },
            { "hostname": "epsilon", "observationCount": 1, "macs": ["02:42:ac:11:00:02"] },
            { "hostname": "gamma", "observationCount": 1, "macs": ["02:42:ac:11:00:02"] },
        ])
    );
    assert_eq!(
        data["hostConflicts"]["nodes"],
        json!([{
            "kind": "mac",
            "value": "0a:00:00:00:00:02",
            "provider": "tool-b",
            "externalId": "b1",
            "host": { "hostname": "alpha" },
            "otherHost": { "hostname": "beta" },
        }])
    );
    // Both hosts claim the MAC now: both are found by it, and the next observation that
    // carries only that MAC is ambiguous too.
    let found = app
        .query(
            r#"{ hosts(where: {mac: "0a:00:00:00:00:02"}, orderBy: [{field: HOSTNAME}]) { nodes { hostname } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        found["hosts"]["nodes"],
        json!([{ "hostname": "alpha" }, { "hostname": "beta" }])
    );
    let shared = app
        .query(
            r#"{ hosts(where: {mac: "02:42:ac:11:00:02"}, orderBy: [{field: HOSTNAME}]) { nodes { hostname } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        shared["hosts"]["nodes"],
        json!([{ "hostname": "epsilon" }, { "hostname": "gamma" }])
    );

    // The same reports again: no new host, no new conflict.
    let again = push(
        &b,
        json!([
            { "id": "b1", "hostname": "alpha", "instance": "i-1", "macs": ["0a-00-00-00-00-02"] },
            { "id": "b2", "hostname": "delta", "ips": ["10.0.0.1"] },
            { "id": "b3", "hostname": "epsilon", "macs": ["02:42:ac:11:00:02"] },
        ]),
    )
    .await;
    assert_eq!(again.counts.unchanged, 3);
    assert_eq!(count(&app, "hosts").await, 5);
    assert_eq!(count(&app, "host_conflicts").await, 1);

    let summary = push(&b, json!([{ "id": "b4", "macs": ["0a:00:00:00:00:02"] }])).await;
    assert_eq!(summary.counts.inserted, 1);
    let data = app
        .query(
            r#"{ hostConflicts(first: 10) { nodes { externalId host { hostname } otherHost { hostname } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["hostConflicts"]["nodes"][1],
        json!({ "externalId": "b4", "host": { "hostname": "alpha" }, "otherHost": { "hostname": "beta" } })
    );
    assert_eq!(
        count(&app, "hosts").await,
        5,
        "b4 joined a host, it made none"
    );
}
on_both_databases!(conflicts_are_reported_not_merged);

/// A report whose time has more digits than the database keeps is unchanged when it comes
/// again, on PostgreSQL (microseconds) as on SQLite.
async fn a_report_sent_again_is_unchanged_whatever_its_time_precision(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let a = push_provider(dir.path(), "tool-a");
    let rules = HostRules::default();
    let report =
        json!({ "id": "t1", "hostname": "tau", "last_seen": "2023-03-16T13:34:47.1234567Z" });
    let mut counts = Vec::new();
    for _ in 0..2 {
        let summary = ingest::push(&app.db, &a, &rules, vec![report.clone()])
            .await
            .expect("push");
        assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
        counts.push((
            summary.counts.inserted,
            summary.counts.updated,
            summary.counts.unchanged,
        ));
    }
    assert_eq!(counts, [(1, 0, 0), (0, 0, 1)]);
    let data = app
        .query("{ hosts { nodes { lastSeen } } }", json!({}))
        .await;
    assert_eq!(
        data["hosts"]["nodes"],
        json!([{ "lastSeen": "2023-03-16T13:34:47.123456Z" }])
    );
}
on_both_databases!(a_report_sent_again_is_unchanged_whatever_its_time_precision);
