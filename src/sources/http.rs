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

use super::auth::{Authenticator, Credentials};
use super::outbound::{self, Outbound};
use crate::providers::definition::{Auth, HttpMethod, Retry};

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
    /// The outbound policy refused the address: never retried.
    #[error("provider {provider}: {method} {url}: {refused}")]
    Refused {
        provider: String,
        method: &'static str,
        url: String,
        refused: Box<outbound::Refused>,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A provider's HTTP client: one connection pool, one rate limit, one retry policy.
#[derive(Clone)]
pub struct Client {
    /// The provider's name, for errors that must say whose request it was.
    provider: Arc<str>,
    http: reqwest::Client,
    outbound: Outbound,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    retry: Retry,
    /// Query parameters whose values are secret.
    secret_params: Arc<Vec<String>>,
    /// `source.auth`: credentials for every request (shared by clones: one OAuth2 token).
    auth: Option<Authenticator>,
}

impl Client {
    pub fn new(
        provider: &str,
        timeout: Duration,
        rate_limit: Option<f64>,
        retry: Retry,
        secret_params: Vec<String>,
        outbound: &Outbound,
    ) -> Result<Client, FetchError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(outbound.resolver())
            .redirect(outbound.redirect_policy())
            .build()
            .map_err(|e| FetchError::Invalid(format!("HTTP client: {e}")))?;
        let limiter = match rate_limit {
            Some(per_second) if per_second > 0.0 => {
                // A rate so small that one request's period overflows `Duration` (say 1e-320/s)
                // is refused rather than left to panic.
                let period = Duration::try_from_secs_f64(1.0 / per_second)
                    .map_err(|_| FetchError::Invalid("rate_limit: too low".into()))?;
                let quota = Quota::with_period(period)
                    .ok_or_else(|| FetchError::Invalid("rate_limit: too high".into()))?
                    .allow_burst(NonZeroU32::MIN);
                Some(Arc::new(RateLimiter::direct(quota)))
            }
            _ => None,
        };
        Ok(Client {
            provider: Arc::from(provider),
            http,
            outbound: outbound.clone(),
            limiter,
            retry,
            secret_params: Arc::new(secret_params),
            auth: None,
        })
    }

    /// Sends `auth`'s credentials with every request of this client.
    pub fn with_auth(mut self, auth: Option<&Auth>) -> Result<Client, FetchError> {
        self.auth = auth
            .map(Authenticator::new)
            .transpose()
            .map_err(FetchError::Invalid)?;
        Ok(self)
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
        if let Err(refused) = self.outbound.check_url(&request.url) {
            return Err(self.refused(method_name, &request.url, refused));
        }
        let mut attempts = self.retry.attempts.max(1);
        // A 401 renews an OAuth2 token once per request.
        let mut renewed = false;
        let mut backoff = Duration::from_millis(self.retry.initial_backoff_ms);
        let max_backoff = Duration::from_millis(self.retry.max_backoff_ms);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            let (sent, used) = match self.credentials().await {
                Ok(credentials) => (
                    self.send_once(request, credentials.as_ref()).await,
                    credentials,
                ),
                Err(error) if error.retryable => (Err(Sent::Failed(error.message)), None),
                Err(error) => {
                    return Err(FetchError::Failed {
                        method: method_name,
                        url: self.display_url(&request.url),
                        reason: error.message,
                        attempts: attempt,
                    });
                }
            };
            let outcome = match sent {
                Err(Sent::Refused(refused)) => {
                    return Err(self.refused(method_name, &request.url, refused));
                }
                Err(Sent::Failed(reason)) => Err(reason),
                // The same body would come again: retrying only costs memory and time.
                Err(Sent::TooLarge) => {
                    return Err(FetchError::Failed {
                        method: method_name,
                        url: self.display_url(&request.url),
                        reason: format!(
                            "the body is larger than {} MiB, the most one provider response may hold",
                            MAX_BODY_BYTES >> 20
                        ),
                        attempts: attempt,
                    });
                }
                Ok(response) => Ok(response),
            };
            let (retry_after, failure) = match outcome {
                Ok(response) => {
                    let status = response.status;
                    if expected.contains(&status.as_u16()) {
                        return Ok(response);
                    }
                    if status.is_success() {
                        match valid(&response.body) {
                            Ok(()) => return Ok(response),
                            // The content type tells an HTML error page from a cut-off body.
                            Err(reason) => (
                                None,
                                Err(format!(
                                    "unreadable body ({reason}; {} bytes, content-type {})",
                                    response.body.len(),
                                    content_type(&response.headers)
                                )),
                            ),
                        }
                    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        (retry_after(&response.headers), Ok(status))
                    } else if let (StatusCode::UNAUTHORIZED, false, Some(auth), Some(used)) =
                        (status, renewed, &self.auth, &used)
                        && auth.renews()
                    {
                        // The token was revoked or expired early: one new token, one more try.
                        renewed = true;
                        attempts += 1;
                        auth.reject(used).await;
                        continue;
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

    fn refused(
        &self,
        method: &'static str,
        url: &url::Url,
        refused: outbound::Refused,
    ) -> FetchError {
        FetchError::Refused {
            provider: self.provider.to_string(),
            method,
            url: self.display_url(url),
            refused: Box::new(refused),
        }
    }

    /// The credentials for the next request, if the source has `auth`.
    async fn credentials(&self) -> Result<Option<Credentials>, super::auth::AuthError> {
        match &self.auth {
            Some(auth) => auth.credentials(&self.http, &self.outbound).await.map(Some),
            None => Ok(None),
        }
    }

    async fn send_once(
        &self,
        request: &Request,
        credentials: Option<&Credentials>,
    ) -> Result<Response, Sent> {
        let method = match request.method {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
        };
        let mut builder = self.http.request(method, request.url.clone());
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Sent::Failed(format!("bad header name {name:?}")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| Sent::Failed(format!("bad value for header {name}")))?;
            value.set_sensitive(true);
            builder = builder.header(name, value);
        }
        // Already sensitive; `source.headers` holds no second set (checked on load).
        for (name, value) in credentials.map_or(&[][..], |c| c.headers.as_slice()) {
            builder = builder.header(name, value.clone());
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let mut response = builder.send().await.map_err(describe)?;
        let status = response.status();
        let headers = response.headers().clone();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(Sent::TooLarge);
        }
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(Sent::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body: body.freeze(),
        })
    }
}

/// Largest response body read from a provider. A page or document beyond it is a fault (a
/// body that never ends, or a hostile one), and reading on would grow memory without bound.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Why one attempt got no response.
enum Sent {
    /// The body passed [`MAX_BODY_BYTES`].
    TooLarge,
    /// The outbound policy refused the address (at resolution or on a redirect).
    Refused(outbound::Refused),
    Failed(String),
}

/// A transport error in a few words, never with the URL (it may carry secrets).
fn describe(error: reqwest::Error) -> Sent {
    if let Some(refused) = outbound::refusal_in(&error) {
        return Sent::Refused(refused);
    }
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
    // The innermost cause says what happened ("connection closed before message completed").
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause.and_then(std::error::Error::source) {
        cause = Some(inner);
    }
    let detail = cause.map(|s| format!(": {s}")).unwrap_or_default();
    Sent::Failed(format!("{kind}{detail}"))
}

/// The response's content type as sent, for error messages.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "not given".to_string(), |v| format!("{v:?}"))
}

/// `Retry-After`: a number of seconds, or an HTTP date (RFC 9110); at most five minutes.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, std::time::SystemTime::now())
}

fn retry_after_at(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        // A date in the past means "now".
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(Duration::from_secs(300)))
}

/// The `rel="next"` target of the `Link` headers (RFC 8288: a URL may hold commas, a link may
/// have several relation types), resolved against the request's URL. A header that cannot be
/// read is an error: taking it for "no next page" would end the listing early.
pub fn next_link(headers: &HeaderMap, base: &url::Url) -> Result<Option<String>, String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let text = value
            .to_str()
            .map_err(|_| "the Link header is not ASCII text".to_string())?;
        let links = http_link::parse_link_header(text, base)
            .map_err(|e| format!("the Link header {text:?} cannot be read: {e}"))?;
        if let Some(next) = links.iter().find(|l| l.rel.eq_ignore_ascii_case("next")) {
            return Ok(Some(next.target.to_string()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_as_rfc_8288_writes_them() {
        let base = url::Url::parse("https://api.example.com/items?page=2").expect("url");
        let next = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(
                    reqwest::header::LINK,
                    HeaderValue::from_str(value).expect("header"),
                );
            }
            next_link(&headers, &base)
        };
        assert_eq!(
            next(&[
                "<https://api.example.com/items?page=1>; rel=\"prev\", <https://api.example.com/items?page=3>; rel=\"next\""
            ]),
            Ok(Some("https://api.example.com/items?page=3".to_string()))
        );
        // A comma inside the URL, and a link that is both next and last.
        assert_eq!(
            next(&["<https://api.example.com/items?ids=1,2&page=3>; rel=\"next last\""]),
            Ok(Some(
                "https://api.example.com/items?ids=1,2&page=3".to_string()
            ))
        );
        // Relative targets, relation types in any case, the link in a second header.
        assert_eq!(
            next(&["</items?page=1>; rel=prev", "</items?page=3>; rel=NEXT"]),
            Ok(Some("https://api.example.com/items?page=3".to_string()))
        );
        assert_eq!(next(&["</items?page=1>; rel=\"prev\""]), Ok(None));
        assert_eq!(next(&[]), Ok(None));
        assert!(next(&["https://no-brackets; rel=next"]).is_err());
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 10:00:00 GMT").expect("date");
        let wait = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("header"));
            retry_after_at(&headers, now)
        };
        assert_eq!(wait("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            wait("Wed, 02 Dec 2026 10:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(wait("Wed, 02 Dec 2026 09:59:00 GMT"), Some(Duration::ZERO));
        assert_eq!(wait("3600"), Some(Duration::from_secs(300)));
        assert_eq!(wait("soon"), None);
    }

    #[test]
    fn a_rate_limit_too_low_to_represent_is_an_error() {
        // Found by the provider-file property tests: 1 / 5e-324 is infinite.
        let error = Client::new(
            "test",
            Duration::from_secs(1),
            Some(5e-324),
            Retry::default(),
            vec![],
            &Outbound::default(),
        )
        .err()
        .expect("refused");
        assert_eq!(error.to_string(), "rate_limit: too low");
    }

    #[test]
    fn secrets_are_hidden_from_shown_urls() {
        let client = Client::new(
            "test",
            Duration::from_secs(1),
            None,
            Retry::default(),
            vec!["api_key".into()],
            &Outbound::default(),
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
