//! HTTP requests to providers: retries with exponential backoff and jitter (honouring
//! `Retry-After` on 429/503), a per-request timeout, a shared rate limit, and URLs shown without
//! their secrets.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use crate::providers::definition::{HttpMethod, Retry};

/// One request to make, with `${VAR}`s already expanded. Its `Debug` shows no header values
/// and no body: they may hold secrets.
#[derive(Clone)]
pub struct Request {
    pub method: HttpMethod,
    pub url: url::Url,
    pub headers: BTreeMap<String, String>,
    pub body: Option<serde_json::Value>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url.path())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A response the caller accepted: 2xx, or one of the statuses it said it expects.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{method} {url}: HTTP {status} after {attempts} attempt(s)")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("{method} {url}: {reason} after {attempts} attempt(s)")]
    Failed {
        method: &'static str,
        url: String,
        reason: String,
        attempts: u32,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A provider's HTTP client: one connection pool, one rate limit, one retry policy.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    retry: Retry,
    /// Query parameters whose values are secret.
    secret_params: Arc<Vec<String>>,
}

impl Client {
    pub fn new(
        timeout: Duration,
        rate_limit: Option<f64>,
        retry: Retry,
        secret_params: Vec<String>,
    ) -> Result<Client, FetchError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Invalid(format!("HTTP client: {e}")))?;
        let limiter = match rate_limit {
            Some(per_second) if per_second > 0.0 => {
                let period = Duration::from_secs_f64(1.0 / per_second);
                let quota = Quota::with_period(period)
                    .ok_or_else(|| FetchError::Invalid("rate_limit: too high".into()))?
                    .allow_burst(NonZeroU32::MIN);
                Some(Arc::new(RateLimiter::direct(quota)))
            }
            _ => None,
        };
        Ok(Client {
            http,
            limiter,
            retry,
            secret_params: Arc::new(secret_params),
        })
    }

    /// The URL as it may be shown: secret query values replaced by `***`.
    pub fn display_url(&self, url: &url::Url) -> String {
        let mut shown = url.clone();
        if shown.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let hidden = self.secret_params.iter().any(|s| *s == k);
                    (
                        k.into_owned(),
                        if hidden { "***".into() } else { v.into_owned() },
                    )
                })
                .collect();
            shown.query_pairs_mut().clear().extend_pairs(pairs);
        }
        let _ = shown.set_password(None);
        shown.to_string()
    }

    /// Sends `request`, retrying transport errors, timeouts, 5xx and 429 — except statuses in
    /// `expected`, which are returned as they are (an API's way of saying "past the end"). The
    /// body is checked with `valid` (a truncated JSON page is retried like a failed request).
    pub async fn fetch(
        &self,
        request: &Request,
        expected: &[u16],
        valid: &(dyn Fn(&[u8]) -> Result<(), String> + Sync),
    ) -> Result<Response, FetchError> {
        let method_name = match request.method {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        };
        let attempts = self.retry.attempts.max(1);
        let mut backoff = Duration::from_millis(self.retry.initial_backoff_ms);
        let max_backoff = Duration::from_millis(self.retry.max_backoff_ms);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            let outcome = self.send_once(request).await;
            let (retry_after, failure) = match outcome {
                Ok(response) => {
                    let status = response.status;
                    if expected.contains(&status.as_u16()) {
                        return Ok(response);
                    }
                    if status.is_success() {
                        match valid(&response.body) {
                            Ok(()) => return Ok(response),
                            Err(reason) => (None, Err(format!("unreadable body ({reason})"))),
                        }
                    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        (retry_after(&response.headers), Ok(status))
                    } else {
                        // 4xx other than 429: retrying will not help.
                        return Err(FetchError::Status {
                            method: method_name,
                            url: self.display_url(&request.url),
                            status: status.as_u16(),
                            attempts: attempt,
                        });
                    }
                }
                Err(reason) => (None, Err(reason)),
            };
            if attempt >= attempts {
                let url = self.display_url(&request.url);
                return Err(match failure {
                    Ok(status) => FetchError::Status {
                        method: method_name,
                        url,
                        status: status.as_u16(),
                        attempts: attempt,
                    },
                    Err(reason) => FetchError::Failed {
                        method: method_name,
                        url,
                        reason,
                        attempts: attempt,
                    },
                });
            }
            // Full jitter keeps many clients from retrying in step; the server's Retry-After,
            // when given, is a floor.
            let jittered = backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
            let wait = retry_after.map_or(jittered, |ra| ra.max(jittered));
            tracing::debug!(
                url = %self.display_url(&request.url),
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying provider request"
            );
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(max_backoff);
        }
    }

    async fn send_once(&self, request: &Request) -> Result<Response, String> {
        let method = match request.method {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
        };
        let mut builder = self.http.request(method, request.url.clone());
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("bad header name {name:?}"))?;
            let mut value =
                HeaderValue::from_str(value).map_err(|_| format!("bad value for header {name}"))?;
            value.set_sensitive(true);
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(describe)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(describe)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// A transport error in a few words, never with the URL (it may carry secrets).
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    let error = error.without_url();
    let detail = std::error::Error::source(&error)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!("{kind}{detail}")
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(300)))
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let (target, params) = part.split_once(';')?;
            let is_next = params
                .split(';')
                .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://api.example.com/items?page=1>; rel=\"prev\", <https://api.example.com/items?page=3>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.example.com/items?page=3")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn secrets_are_hidden_from_shown_urls() {
        let client = Client::new(
            Duration::from_secs(1),
            None,
            Retry::default(),
            vec!["api_key".into()],
        )
        .expect("client");
        let url =
            url::Url::parse("https://u:pw@api.example.com/x?api_key=s3cret&skip=10").expect("url");
        assert_eq!(
            client.display_url(&url),
            "https://u@api.example.com/x?api_key=***&skip=10"
        );
    }
}
