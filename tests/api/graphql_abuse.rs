//! GraphQL abuse: queries nested too deep (by selection or by brackets), too wide, too long,
//! asking for too much per page, aliased a thousand times, carrying huge variables, piling up
//! directives or fragments, passing forged cursors, and introspection with limits on and off.
//! Each is refused with a clear message and `extensions.code`, answered within a generous
//! bound, and the server then still answers an ordinary query.

use std::time::Duration;

use crate::common::{Backend, TestApp};
use serde_json::{Value, json};
use tributary::entities::token::TokenRecord;

/// Far above what any of these takes; only there so a hang fails the test instead of the CI.
const BOUND: Duration = Duration::from_secs(5);

/// POSTs a raw body to `/graphql`: the status, and the body as JSON (or as a JSON string when
/// it is not JSON).
async fn post(app: &TestApp, body: Vec<u8>) -> (u16, Value) {
    let request = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body(body)
        .send();
    let response = tokio::time::timeout(BOUND, request)
        .await
        .unwrap_or_else(|_| panic!("no answer within {BOUND:?}"))
        .expect("POST /graphql");
    let status = response.status().as_u16();
    let text = tokio::time::timeout(BOUND, response.text())
        .await
        .unwrap_or_else(|_| panic!("no body within {BOUND:?}"))
        .expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The one error a refused operation answers with (HTTP 200, no data).
async fn refused(app: &TestApp, query: &str, variables: Value) -> Value {
    let body =
        serde_json::to_vec(&json!({ "query": query, "variables": variables })).expect("JSON");
    let (status, body) = post(app, body).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"].is_null(), "data despite the refusal: {body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    errors[0].clone()
}

/// The server still answers an ordinary query.
async fn still_answers(app: &TestApp) {
    let data = app.query("{ serverInfo { version } }", json!({})).await;
    assert_eq!(data["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
}

async fn selections_nested_deeper_than_max_depth_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // transfers, nodes, token: three levels per round. 15 deep is the default limit.
    let nested = |rounds: usize, leaf: &str| {
        let mut query = leaf.to_string();
        for _ in 0..rounds {
            query = format!("transfers(first: 1) {{ nodes {{ token {{ {query} }} }} }}");
        }
        format!("{{ {query} }}")
    };
    // 4 rounds, then transfers → nodes → logIndex: 15 deep.
    let ok = nested(4, "transfers(first: 1) { nodes { logIndex } }");
    let data = app.query(&ok, json!({})).await;
    assert_eq!(data["transfers"]["nodes"], json!([]));
    // 5 rounds and a leaf: 16 deep.
    let error = refused(&app, &nested(5, "address"), json!({})).await;
    assert_eq!(error["message"], "Query is nested too deep.");
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    still_answers(&app).await;
}
on_both_databases!(selections_nested_deeper_than_max_depth_are_refused);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brackets_nested_thousands_deep_are_refused_before_parsing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // The parser alone would stop at its stack limit with an error quoting the whole query
    // back. 12,000 levels fit inside the query size limit (64 KiB).
    let levels = 12_000;
    let selections = format!("{}{}", "{ a ".repeat(levels), "}".repeat(levels));
    let list = format!(
        "{{ serverInfo(x: {}1{}) {{ version }} }}",
        "[".repeat(levels),
        "]".repeat(levels)
    );
    let object = format!(
        "{{ serverInfo(x: {}1{}) {{ version }} }}",
        "{a: ".repeat(levels),
        "}".repeat(levels)
    );
    for (query, column) in [(selections, 129), (list, 47), (object, 137)] {
        let error = refused(&app, &query, json!({})).await;
        assert_eq!(
            error["message"],
            format!("Query nests `{{`, `[` or `(` more than 32 deep (at line 1, column {column}).")
        );
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    }
    // Fragments nest selections too: 40 spreads deep passes the recursion limit of 32.
    let mut fragments = String::from("{ ...F0 }\n");
    for i in 0..40 {
        fragments.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
    }
    fragments.push_str("fragment F40 on Query { serverInfo { version } }\n");
    let error = refused(&app, &fragments, json!({})).await;
    assert_eq!(
        error["message"],
        "The recursion depth of the query cannot be greater than `32`"
    );
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    still_answers(&app).await;
}

/// `count` aliases of one field: `a0: … a1: … …`.
fn aliased(count: usize, field: &str) -> String {
    let mut query = String::from("{");
    for i in 0..count {
        query.push_str(&format!(" a{i}: {field}"));
    }
    query.push_str(" }");
    query
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_thousands_of_fields_wide_is_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let wide = aliased(12_000, "serverInfo { version }");
    let error = refused(&app, &wide, json!({})).await;
    assert_eq!(
        error["message"],
        format!(
            "Query text is {} bytes, more than the 65536 allowed.",
            wide.len()
        )
    );
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    still_answers(&app).await;

    // With the text limit raised to the body limit, complexity refuses it: 24,000 > 20,000.
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.graphql.max_query_bytes = s.http.body_limit_bytes;
    })
    .await;
    let error = refused(&app, &wide, json!({})).await;
    assert_eq!(error["message"], "Query is too complex.");
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    // Half as wide fits, and every alias is answered.
    let data = app
        .query(&aliased(6_000, "serverInfo { version }"), json!({}))
        .await;
    assert_eq!(data.as_object().map(|o| o.len()), Some(6_000));
    assert_eq!(data["a5999"]["version"], env!("CARGO_PKG_VERSION"));
}

/// Every top-level list, with the arguments it needs.
const CONNECTIONS: [&str; 10] = [
    "tokens",
    "transfers",
    "hosts",
    "hostConflicts",
    "products",
    "productCounts",
    "events",
    "records(dataset: \"d\", ",
    "ingestRuns",
    "rejectedRecords",
];

async fn page_sizes_beyond_the_maximum_are_refused_naming_the_argument(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for connection in CONNECTIONS {
        let (field, open) = match connection.strip_suffix(", ") {
            Some(with_args) => (
                with_args.split('(').next().unwrap_or_default(),
                connection.to_string(),
            ),
            None => (connection, format!("{connection}(")),
        };
        for (argument, value) in [
            ("first", 1_000_000),
            ("last", 1_000_000),
            ("first", -1),
            ("last", 2_147_483_647),
        ] {
            let query = format!("{{ {open}{argument}: {value}) {{ nodes {{ __typename }} }} }}");
            let error = refused(&app, &query, json!({})).await;
            assert_eq!(
                error["message"],
                format!("`{argument}` must be between 0 and 1000, got {value}"),
                "{query}"
            );
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
            assert_eq!(error["path"], json!([field]));
        }
    }
    // The one nested list, `Token.transfers`, on a real token.
    let token = TokenRecord {
        address: [0xab; 20],
        symbol: Some("TKN".into()),
        name: None,
        decimals: Some(18),
        total_supply: None,
        block_number: None,
        block_timestamp: None,
    };
    tributary::store::tokens::upsert(&app.db, &[token])
        .await
        .expect("token stored");
    let address = format!("0x{}", "ab".repeat(20));
    for (argument, value) in [("first", 1_000_000), ("last", 1_000_000)] {
        let query = format!(
            "{{ token(address: \"{address}\") {{ symbol transfers({argument}: {value}) {{ nodes {{ logIndex }} }} }} }}"
        );
        let body = app.graphql(&query, json!({})).await;
        assert_eq!(
            body["errors"][0]["message"],
            format!("`{argument}` must be between 0 and 1000, got {value}")
        );
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(body["errors"][0]["path"], json!(["token", "transfers"]));
    }
    // A wide selection does not hide the argument's error behind the complexity limit.
    let query = "query($n: Int) { transfers(first: $n) { nodes { transactionHash logIndex value blockNumber blockTimestamp from to tokenAddress token { address symbol name decimals totalSupply blockNumber } } } }";
    let error = refused(&app, query, json!({ "n": 1_000_000 })).await;
    assert_eq!(
        error["message"],
        "`first` must be between 0 and 1000, got 1000000"
    );
    // The largest page that is allowed is answered.
    let data = app
        .query("{ ingestRuns(first: 1000) { nodes { id } } }", json!({}))
        .await;
    assert_eq!(data["ingestRuns"]["nodes"], json!([]));
    still_answers(&app).await;
}
on_both_databases!(page_sizes_beyond_the_maximum_are_refused_naming_the_argument);

async fn forged_cursors_are_refused_as_bad_cursors(backend: Backend) {
    use base64::Engine;
    let app = TestApp::spawn(backend).await;
    let forge =
        |body: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string());
    // `ingestRuns` is ordered by id, newest first: its cursors name the order `id:d`.
    for cursor in [
        forge(json!({ "o": "id:d", "k": [{ "s": "1; DROP TABLE ingest_runs" }] })),
        forge(json!({ "o": "id:d", "k": [{ "t": "2023-05-01T00:00:00Z" }] })),
        forge(json!({ "o": "id:d", "k": [{ "n": null }] })),
        forge(json!({ "o": "id:d", "k": [{ "i": 1 }, { "i": 2 }] })),
        forge(json!({ "o": "id:d", "k": [{ "i": "1" }] })),
        "%%%".to_string(),
        "x".repeat(10_000),
    ] {
        for argument in ["after", "before"] {
            let query =
                format!("query($c: String) {{ ingestRuns({argument}: $c) {{ nodes {{ id }} }} }}");
            let error = refused(&app, &query, json!({ "c": cursor })).await;
            assert_eq!(
                error["message"],
                format!(
                    "`{argument}` is not a cursor from this list (cursors are opaque: pass back `endCursor` or `startCursor` as received)"
                )
            );
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
        }
    }
    let other_order = forge(json!({ "o": "id:a", "k": [{ "i": 1 }] }));
    let error = refused(
        &app,
        "query($c: String) { ingestRuns(after: $c) { nodes { id } } }",
        json!({ "c": other_order }),
    )
    .await;
    assert_eq!(
        error["message"],
        "`after` was made for a different `orderBy`; start again without a cursor"
    );
    // A well-formed cursor of this list is read.
    let data = app
        .query(
            "query($c: String) { ingestRuns(after: $c) { nodes { id } } }",
            json!({ "c": forge(json!({ "o": "id:d", "k": [{ "i": 5 }] })) }),
        )
        .await;
    assert_eq!(data["ingestRuns"]["nodes"], json!([]));
    still_answers(&app).await;
}
on_both_databases!(forged_cursors_are_refused_as_bad_cursors);

async fn one_field_aliased_a_thousand_times_is_refused_by_complexity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // 1,000 × (100 rows × 2 fields): far above 20,000.
    let error = refused(
        &app,
        &aliased(1_000, "ingestRuns { nodes { id provider } }"),
        json!({}),
    )
    .await;
    assert_eq!(error["message"], "Query is too complex.");
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    // Ten small pages fit.
    let data = app
        .query(
            &aliased(10, "ingestRuns(first: 5) { nodes { id provider } }"),
            json!({}),
        )
        .await;
    assert_eq!(data["a9"]["nodes"], json!([]));
    still_answers(&app).await;
}
on_both_databases!(one_field_aliased_a_thousand_times_is_refused_by_complexity);

async fn huge_variables_are_refused_by_the_body_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let query = "query($blob: String) { serverInfo { version } }";
    // Over the 1 MiB body limit: 413 before anything is parsed.
    let huge = json!({ "query": query, "variables": { "blob": "x".repeat(2 * 1024 * 1024) } });
    let (status, _) = post(&app, serde_json::to_vec(&huge).expect("JSON")).await;
    assert_eq!(status, 413);
    // Many small variables, over the limit together.
    let many: serde_json::Map<String, Value> =
        (0..200_000).map(|i| (format!("v{i}"), json!(i))).collect();
    let (status, _) = post(
        &app,
        serde_json::to_vec(&json!({ "query": query, "variables": many })).expect("JSON"),
    )
    .await;
    assert_eq!(status, 413);
    // Large but under the limit: a filter value as long as the body allows, and variables the
    // query does not declare. Answered as usual.
    let filter = "query($blob: String) { ingestRuns(where: {provider: $blob}) { nodes { id } } }";
    for (query, variables, data) in [
        (
            filter,
            json!({ "blob": "x".repeat(900 * 1024) }),
            json!({ "ingestRuns": { "nodes": [] } }),
        ),
        (
            "{ serverInfo { version } }",
            json!({ "undeclared": vec![json!({"k": [1, 2, 3]}); 40_000] }),
            json!({ "serverInfo": { "version": env!("CARGO_PKG_VERSION") } }),
        ),
    ] {
        let (status, body) = post(
            &app,
            serde_json::to_vec(&json!({ "query": query, "variables": variables })).expect("JSON"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({ "data": data }));
    }
    still_answers(&app).await;
}
on_both_databases!(huge_variables_are_refused_by_the_body_limit);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directives_beyond_the_limit_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let query = format!(
        "{{ serverInfo {} {{ version }} }}",
        "@include(if: true) ".repeat(9)
    );
    let error = refused(&app, &query, json!({})).await;
    assert_eq!(
        error["message"],
        "The number of directives on the field `serverInfo` cannot be greater than `8`"
    );
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
    still_answers(&app).await;
}

/// GraphiQL's schema query: graphql-js `getIntrospectionQuery` as bundled with GraphiQL 3.8
/// (its TypeRef fragment nests `ofType` nine deep). `deprecated` adds what GraphiQL asks for
/// with `inputValueDeprecation`.
fn graphiql_introspection(deprecated: bool) -> String {
    let args = if deprecated {
        "(includeDeprecated: true)"
    } else {
        ""
    };
    let input_deprecation = if deprecated {
        "isDeprecated deprecationReason"
    } else {
        ""
    };
    let mut type_ref = String::from("kind name");
    for _ in 0..9 {
        type_ref = format!("kind name ofType {{ {type_ref} }}");
    }
    format!(
        r#"
query IntrospectionQuery {{
  __schema {{
    queryType {{ name }}
    mutationType {{ name }}
    subscriptionType {{ name }}
    types {{ ...FullType }}
    directives {{ name description locations args{args} {{ ...InputValue }} }}
  }}
}}
fragment FullType on __Type {{
  kind name description
  fields(includeDeprecated: true) {{
    name description
    args{args} {{ ...InputValue }}
    type {{ ...TypeRef }}
    isDeprecated deprecationReason
  }}
  inputFields{args} {{ ...InputValue }}
  interfaces {{ ...TypeRef }}
  enumValues(includeDeprecated: true) {{ name description isDeprecated deprecationReason }}
  possibleTypes {{ ...TypeRef }}
}}
fragment InputValue on __InputValue {{
  name description type {{ ...TypeRef }} defaultValue
  {input_deprecation}
}}
fragment TypeRef on __Type {{ {type_ref} }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_introspection_works_within_the_default_limits() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for deprecated in [false, true] {
        let body = serde_json::to_vec(&json!({
            "query": graphiql_introspection(deprecated),
            "operationName": "IntrospectionQuery"
        }))
        .expect("JSON");
        let (status, body) = post(&app, body).await;
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "{body}");
        let schema = &body["data"]["__schema"];
        assert_eq!(schema["queryType"]["name"], "QueryRoot");
        assert_eq!(schema["mutationType"]["name"], "MutationRoot");
        assert_eq!(schema["subscriptionType"]["name"], "SubscriptionRoot");
        let types = schema["types"].as_array().expect("types");
        let names: Vec<&str> = types.iter().filter_map(|t| t["name"].as_str()).collect();
        for expected in [
            "Transfer",
            "Token",
            "Host",
            "BigInt",
            "Bytes",
            "DateTime",
            "IngestRun",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_when_disabled_is_refused_clearly() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.graphql.introspection = false).await;
    for (query, line, column) in [
        (graphiql_introspection(false), 3, 3),
        ("{ __type(name: \"Transfer\") { name } }".to_string(), 1, 3),
        // Through a fragment, beside an ordinary field.
        (
            "query { ...Q }\nfragment Q on QueryRoot { serverInfo { version } ... on QueryRoot { __schema { queryType { name } } } }".to_string(),
            2,
            69,
        ),
    ] {
        let error = refused(&app, &query, json!({})).await;
        assert_eq!(
            error["message"],
            "Introspection is disabled on this server: `__schema` and `__type` are not answered."
        );
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(error["locations"], json!([{ "line": line, "column": column }]), "{query}");
    }
    // `__typename` is not introspection of the schema.
    let data = app
        .query("{ __typename serverInfo { version } }", json!({}))
        .await;
    assert_eq!(data["__typename"], "QueryRoot");
    still_answers(&app).await;
}

/// The same checks hold for operations sent over the WebSocket (`/graphql/ws`): each refused
/// with its error, and the connection then still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_limits_hold_over_the_websocket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.graphql.introspection = false).await;
    let mut ws = app.graphql_ws().await;
    let mut send = async |message: Value| {
        ws.send(Message::text(message.to_string()))
            .await
            .expect("send");
        loop {
            let message = tokio::time::timeout(BOUND, ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer within {BOUND:?}"))
                .expect("open")
                .expect("a message");
            if let Message::Text(text) = message {
                let message: Value = serde_json::from_str(&text).expect("JSON");
                if message["type"] != "complete" {
                    return message;
                }
            }
        }
    };
    let ack = send(json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(ack["type"], "connection_ack");
    let nested = format!("{{ serverInfo {}{} }}", "{".repeat(40), "}".repeat(40));
    for (id, query, message) in [
        (
            "1",
            nested.as_str(),
            "Query nests `{`, `[` or `(` more than 32 deep (at line 1, column 45).",
        ),
        (
            "2",
            "{ __schema { queryType { name } } }",
            "Introspection is disabled on this server: `__schema` and `__type` are not answered.",
        ),
    ] {
        let answer = send(json!({
            "id": id, "type": "subscribe", "payload": { "query": query }
        }))
        .await;
        assert_eq!(answer["id"], id, "{answer}");
        let errors = if answer["type"] == "error" {
            answer["payload"].clone()
        } else {
            answer["payload"]["errors"].clone()
        };
        assert_eq!(errors[0]["message"], message, "{answer}");
    }
    let answer = send(json!({
        "id": "3", "type": "subscribe", "payload": { "query": "{ serverInfo { version } }" }
    }))
    .await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(
        answer["payload"],
        json!({ "data": { "serverInfo": { "version": env!("CARGO_PKG_VERSION") } } })
    );
}
