//! GraphiQL, served by the server itself so it works without internet access.
//!
//! The third-party assets (React, ReactDOM, GraphiQL's UMD bundle and stylesheet) are installed
//! from npm at build time by `build.rs` (pinned by `graphiql/package-lock.json`) and embedded in
//! the binary. The bootstrap script lives in `src/graphiql_init.js`, so the page needs no inline
//! script and its Content-Security-Policy allows scripts from the server only.
//!
//! If the build could not install the assets (no npm), the crate still builds and `GET /graphql`
//! serves a notice instead; `POST /graphql` is unaffected.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Whether `build.rs` bundled the real assets (`false`: placeholders were embedded).
const BUNDLED: bool = matches!(env!("GRAPHIQL_ASSETS_BUNDLED").as_bytes(), b"1");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The assets served under `/graphiql/{name}`: (name, content type, bytes).
const ASSETS: [(&str, &str, &[u8]); 5] = [
    (
        "react.production.min.js",
        JS,
        include_bytes!(concat!(
            env!("OUT_DIR"),
            "/graphiql/react.production.min.js"
        )),
    ),
    (
        "react-dom.production.min.js",
        JS,
        include_bytes!(concat!(
            env!("OUT_DIR"),
            "/graphiql/react-dom.production.min.js"
        )),
    ),
    (
        "graphiql.min.js",
        JS,
        include_bytes!(concat!(env!("OUT_DIR"), "/graphiql/graphiql.min.js")),
    ),
    (
        "graphiql.min.css",
        CSS,
        include_bytes!(concat!(env!("OUT_DIR"), "/graphiql/graphiql.min.css")),
    ),
    ("init.js", JS, include_bytes!("graphiql_init.js")),
];

/// Scripts only from this server; GraphiQL sets inline styles and ships its fonts and a few
/// images as `data:` URLs. `connect-src 'self'` covers both POST /graphql and the same-origin
/// WebSocket at /graphql/ws.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page, with every asset URL carrying a version derived from the embedded bytes, so the
/// assets can be cached for a long time and still change with each build that changes them.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = DefaultHasher::new();
    for (name, _, body) in ASSETS {
        name.hash(&mut hasher);
        body.hash(&mut hasher);
    }
    let version = format!("{:016x}", hasher.finish());
    include_str!("graphiql.html").replace("{{ASSET_VERSION}}", &version)
});

const NOT_BUNDLED_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Tributary · GraphiQL unavailable</title>
<style>body{font-family:sans-serif;max-width:40em;margin:3em auto;line-height:1.5}</style></head>
<body>
<h1>GraphiQL is not available in this build</h1>
<p>The GraphiQL assets were not bundled in this build, because npm could not install them when
the server was compiled.</p>
<p>The GraphQL API itself works: send queries with <code>POST /graphql</code>
(subscriptions: WebSocket at <code>/graphql/ws</code>).</p>
<p>To get GraphiQL, install Node.js with npm on the build machine and rebuild the server.</p>
</body>
</html>
"#;

/// GET /graphql: the GraphiQL page (queries POST /graphql, subscriptions /graphql/ws).
pub async fn page() -> Response {
    let body: &'static str = if BUNDLED {
        PAGE.as_str()
    } else {
        NOT_BUNDLED_PAGE
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// GET /graphiql/{file}: one embedded asset, with a long Cache-Control and correct Content-Type;
/// 404 for unknown names.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some(&(_, content_type, body)) if BUNDLED => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response(),
        _ => {
            tracing::debug!(file, bundled = BUNDLED, "GraphiQL asset not found");
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                if BUNDLED {
                    "no such GraphiQL asset"
                } else {
                    "GraphiQL assets were not bundled in this build"
                },
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body_text(response: Response) -> String {
        let bytes = to_bytes(response.into_body(), usize::MAX).await;
        String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
    }

    fn header_of(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn page_is_html_with_csp() {
        let response = page().await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/html"));
        assert!(
            header_of(&response, header::CONTENT_SECURITY_POLICY).contains("script-src 'self';")
        );
        let html = body_text(response).await;
        if BUNDLED {
            for (name, _, _) in ASSETS {
                assert!(
                    html.contains(&format!("/graphiql/{name}?v=")),
                    "{name} not referenced"
                );
            }
            assert!(!html.contains("{{"), "unreplaced placeholder in page");
        } else {
            assert!(html.contains("not bundled in this build"));
            assert!(html.contains("POST /graphql"));
        }
    }

    #[tokio::test]
    async fn assets_have_types_and_unknown_names_404() {
        let response = asset(Path("graphiql.min.css".to_owned())).await;
        if BUNDLED {
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(header_of(&response, header::CONTENT_TYPE), CSS);
            assert!(header_of(&response, header::CACHE_CONTROL).contains("max-age="));
            assert!(body_text(response).await.len() > 10_000);
            let response = asset(Path("init.js".to_owned())).await;
            assert_eq!(header_of(&response, header::CONTENT_TYPE), JS);
        } else {
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
        }
        for unknown in ["nope.js", "../Cargo.toml", ""] {
            let response = asset(Path(unknown.to_owned())).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{unknown:?}");
        }
    }
}
