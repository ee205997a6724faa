//! GraphiQL as a person uses it: headless Chromium opens the page the server serves (no
//! internet: every asset comes from the server), runs a query, and the result shows on the page.

use crate::common::{Backend, TestApp};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_runs_a_query_in_a_real_browser() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let page = format!("{}/graphql", app.address);
    let text =
        crate::common::browser::run_query_in_graphiql(&page, "{ serverInfo { version database } }")
            .await
            .unwrap_or_else(|e| panic!("GraphiQL in Chromium: {e}"));
    let shown: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(
        shown,
        json!({ "data": { "serverInfo": { "version": env!("CARGO_PKG_VERSION"), "database": "SQLITE" } } })
    );
}

#[tokio::test]
async fn graphiql_assets_are_served_by_the_server() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let page = app.get("/graphql").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("html");
    // Nothing is loaded from another host.
    assert!(
        !html.contains("unpkg.com") && !html.contains("cdn.jsdelivr"),
        "{html}"
    );
    for asset in [
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
        "graphiql.min.css",
    ] {
        assert!(
            html.contains(&format!("/graphiql/{asset}")),
            "page links {asset}"
        );
        let response = app.get(&format!("/graphiql/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset}");
        let body = response.bytes().await.expect("body");
        assert!(
            body.len() > 10_000,
            "{asset} is the real bundle ({} bytes)",
            body.len()
        );
    }
    assert_eq!(app.get("/graphiql/nope.js").await.status(), 404);
}
