//! Source authentication at run time: the header(s) each request of an HTTP source carries,
//! from its expanded `source.auth`. Bearer, basic and header credentials are built once.
//! OAuth2 client credentials (RFC 6749 §4.4) fetch a token through the provider's own HTTP
//! client (so the token request passes the same outbound policy and resolver), keep it until
//! shortly before it expires, and drop it when the provider answers 401 with it.
//!
//! Secrets never leave this module in text: header values are marked sensitive, and errors
//! name the token URL (query values hidden) and the status or OAuth error code, never the
//! client secret, the token or the token endpoint's body.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{
    ClientId, ClientSecret, EndpointNotSet, EndpointSet, RequestTokenError, Scope, TokenResponse,
    TokenUrl,
};
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};

use super::outbound::{self, Outbound};
use crate::providers::definition::Auth;

/// The largest token endpoint answer read: a token response is a few hundred bytes.
const MAX_TOKEN_BODY: usize = 64 << 10;

/// The longest error description from a token endpoint that is shown.
const MAX_DESCRIPTION: usize = 200;

/// How a source's requests are authenticated. Cloning shares the OAuth2 token cache, so
/// listing pages and `follow` requests use one token.
#[derive(Clone)]
pub struct Authenticator(Arc<Method>);

enum Method {
    /// Headers that never change during a run (bearer, basic, header).
    Fixed(Vec<(HeaderName, HeaderValue)>),
    OAuth2(Box<OAuth2>),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Method::Fixed(headers) => f
                .debug_struct("Authenticator")
                .field(
                    "headers",
                    &headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                )
                .finish_non_exhaustive(),
            Method::OAuth2(oauth) => f
                .debug_struct("Authenticator")
                .field("token_url", &oauth.shown_url)
                .finish_non_exhaustive(),
        }
    }
}

/// What one request carries, and which token it was (to tell a rejected token from a newer
/// one).
pub struct Credentials {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    generation: Option<u64>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("generation", &self.generation)
            .finish()
    }
}

/// Credentials could not be had. `retryable`: a transport error, or a 5xx/429 from the token
/// endpoint, which another attempt may get past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub message: String,
    pub retryable: bool,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

struct OAuth2 {
    client: TokenClient,
    token_url: url::Url,
    /// The token URL as errors show it.
    shown_url: String,
    /// Kept to scrub it from a token endpoint's error description, should one echo it.
    secret: ClientSecret,
    scopes: Vec<Scope>,
    audience: Option<String>,
    /// Held while a token is fetched, so concurrent requests wait for that one fetch.
    cache: tokio::sync::Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    token: Option<Token>,
    /// Tokens fetched so far; each token's number is its generation.
    fetched: u64,
}

struct Token {
    header: HeaderValue,
    generation: u64,
    /// When to fetch the next one; `None` (no `expires_in`): keep it until a 401.
    renew_at: Option<Instant>,
}

impl Token {
    fn credentials(&self) -> Credentials {
        Credentials {
            headers: vec![(AUTHORIZATION, self.header.clone())],
            generation: Some(self.generation),
        }
    }
}

impl Authenticator {
    /// From an expanded `source.auth`. The error names the key, never a value.
    pub fn new(auth: &Auth) -> Result<Authenticator, String> {
        let method = match auth {
            Auth::Bearer { token } => Method::Fixed(vec![(
                AUTHORIZATION,
                sensitive(&format!("Bearer {token}"), "source.auth.token")?,
            )]),
            Auth::Basic { username, password } => Method::Fixed(vec![(
                AUTHORIZATION,
                sensitive(&basic(username, password), "source.auth.password")?,
            )]),
            Auth::Header { name, value } => {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| "source.auth.name: not a valid HTTP header name".to_string())?;
                Method::Fixed(vec![(name, sensitive(value, "source.auth.value")?)])
            }
            Auth::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scopes,
                audience,
            } => {
                let parsed = url::Url::parse(token_url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .ok_or_else(|| {
                        "source.auth.token_url: not an http:// or https:// URL".to_string()
                    })?;
                let client = BasicClient::new(ClientId::new(client_id.clone()))
                    .set_client_secret(ClientSecret::new(client_secret.clone()))
                    .set_token_uri(TokenUrl::from_url(parsed.clone()));
                Method::OAuth2(Box::new(OAuth2 {
                    client,
                    shown_url: shown_url(&parsed),
                    token_url: parsed,
                    secret: ClientSecret::new(client_secret.clone()),
                    scopes: scopes.iter().cloned().map(Scope::new).collect(),
                    audience: audience.clone(),
                    cache: tokio::sync::Mutex::new(Cache::default()),
                }))
            }
        };
        Ok(Authenticator(Arc::new(method)))
    }

    /// The headers for the next request; for OAuth2 the cached token, or a new one when there
    /// is none or it is about to expire. `http` is the provider's client: the token request
    /// goes where its requests may go, and nowhere else.
    pub async fn credentials(
        &self,
        http: &reqwest::Client,
        outbound: &Outbound,
    ) -> Result<Credentials, AuthError> {
        match &*self.0 {
            Method::Fixed(headers) => Ok(Credentials {
                headers: headers.clone(),
                generation: None,
            }),
            Method::OAuth2(oauth) => oauth.credentials(http, outbound).await,
        }
    }

    /// Whether a 401 may be answered by fetching new credentials (OAuth2 only: the others
    /// would send the same ones again).
    pub fn renews(&self) -> bool {
        matches!(&*self.0, Method::OAuth2(_))
    }

    /// The provider refused `used` (HTTP 401): forget that token, unless another request has
    /// already replaced it, so that one new token is fetched however many requests were
    /// refused at once.
    pub async fn reject(&self, used: &Credentials) {
        if let (Method::OAuth2(oauth), Some(generation)) = (&*self.0, used.generation) {
            let mut cache = oauth.cache.lock().await;
            if cache
                .token
                .as_ref()
                .is_some_and(|t| t.generation == generation)
            {
                cache.token = None;
            }
        }
    }
}

impl OAuth2 {
    async fn credentials(
        &self,
        http: &reqwest::Client,
        outbound: &Outbound,
    ) -> Result<Credentials, AuthError> {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        if let Some(token) = &cache.token
            && token.renew_at.is_none_or(|at| now < at)
        {
            return Ok(token.credentials());
        }
        let generation = cache.fetched + 1;
        let token = self.fetch(http, outbound, generation).await?;
        cache.fetched = generation;
        let credentials = token.credentials();
        cache.token = Some(token);
        Ok(credentials)
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        outbound: &Outbound,
        generation: u64,
    ) -> Result<Token, AuthError> {
        if let Err(refused) = outbound.check_url(&self.token_url) {
            return Err(self.fail(refused.to_string(), false));
        }
        // The status is not part of the crate's errors; the transport notes it here.
        let status = AtomicU16::new(0);
        let send = Transport {
            http,
            status: &status,
        };
        let mut exchange = self
            .client
            .exchange_client_credentials()
            .add_scopes(self.scopes.iter().cloned());
        if let Some(audience) = &self.audience {
            exchange = exchange.add_extra_param("audience", audience.clone());
        }
        let asked_at = Instant::now();
        let answer = exchange.request_async(&send).await;
        let status = status.load(Ordering::Relaxed);
        let response = answer.map_err(|e| self.failure(e, status))?;
        let mut header =
            HeaderValue::from_str(&format!("Bearer {}", response.access_token().secret()))
                .map_err(|_| {
                    self.fail(
                        "the access token cannot be sent in a header (it holds a line break or a control character)"
                            .to_string(),
                        false,
                    )
                })?;
        header.set_sensitive(true);
        tracing::debug!(
            token_url = %self.shown_url,
            expires_in_secs = response.expires_in().map(|d| d.as_secs()),
            "fetched an OAuth2 access token"
        );
        Ok(Token {
            header,
            generation,
            // Counted from when it was asked for: the token's life began no earlier.
            renew_at: response
                .expires_in()
                .map(|life| asked_at + renew_after(life)),
        })
    }

    fn fail(&self, reason: String, retryable: bool) -> AuthError {
        AuthError {
            message: format!("OAuth2 token request to {}: {reason}", self.shown_url),
            retryable,
        }
    }

    /// What went wrong with the token request, in words that hold no secret: the body of an
    /// answer is never shown (it may hold a token), only its status and OAuth error code.
    fn failure(
        &self,
        error: RequestTokenError<TokenTransport, BasicErrorResponse>,
        status: u16,
    ) -> AuthError {
        let busy = status == 429 || status >= 500;
        match error {
            RequestTokenError::ServerResponse(answer) => {
                let description = answer
                    .error_description()
                    .map(|d| format!(" ({})", self.scrub(d)))
                    .unwrap_or_default();
                self.fail(
                    format!(
                        "HTTP {status}, error `{}`{description}",
                        answer.error().as_ref()
                    ),
                    busy,
                )
            }
            RequestTokenError::Request(TokenTransport::Send(error)) => {
                match outbound::refusal_in(&error) {
                    Some(refused) => self.fail(refused.to_string(), false),
                    None => self.fail(describe(&error), true),
                }
            }
            RequestTokenError::Request(TokenTransport::TooLarge) => self.fail(
                format!(
                    "HTTP {status}, an answer larger than {} KiB",
                    MAX_TOKEN_BODY >> 10
                ),
                false,
            ),
            RequestTokenError::Request(TokenTransport::Malformed) => {
                self.fail("an answer that cannot be read".to_string(), true)
            }
            RequestTokenError::Parse(error, _body) => self.fail(
                format!(
                    "HTTP {status}, not an OAuth2 token response (at `{}`)",
                    error.path()
                ),
                busy,
            ),
            // The crate's own words: an empty body or a content type that is not JSON.
            RequestTokenError::Other(reason) => {
                self.fail(format!("HTTP {status}, {}", self.scrub(&reason)), busy)
            }
        }
    }

    /// A text from the token endpoint as it may be shown: the client secret hidden, one short
    /// line.
    fn scrub(&self, text: &str) -> String {
        let secret = self.secret.secret();
        let text = if secret.is_empty() {
            text.to_string()
        } else {
            text.replace(secret.as_str(), "***")
        };
        let mut shown: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_DESCRIPTION)
            .collect();
        if text.chars().count() > MAX_DESCRIPTION {
            shown.push('…');
        }
        shown
    }
}

/// How long a token that lives `lifetime` is used: until 10% of its life, or a minute,
/// whichever is less, is left, so a request never leaves with a token about to expire.
pub fn renew_after(lifetime: Duration) -> Duration {
    lifetime - (lifetime / 10).min(Duration::from_secs(60))
}

/// `username:password` for HTTP Basic (RFC 7617).
fn basic(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    )
}

fn sensitive(text: &str, key: &str) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::from_str(text).map_err(|_| {
        format!("{key}: not usable in a header after `${{…}}` expansion (a line break or a control character)")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// A token URL as errors show it: no password, query values hidden (they may be keys).
fn shown_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    shown.set_fragment(None);
    if url.query().is_some() {
        let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        shown
            .query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|k| (k.as_str(), "***")));
    }
    shown.to_string()
}

/// Why the token request got no answer.
#[derive(Debug, thiserror::Error)]
enum TokenTransport {
    /// Kept without its URL; shown only through [`describe`].
    #[error("the token request failed")]
    Send(reqwest::Error),
    #[error("the token endpoint's answer is too large")]
    TooLarge,
    #[error("the token endpoint's answer cannot be read")]
    Malformed,
}

/// The provider's client as the crate's HTTP client, noting the answer's status.
struct Transport<'a> {
    http: &'a reqwest::Client,
    status: &'a AtomicU16,
}

impl<'c> oauth2::AsyncHttpClient<'c> for Transport<'_> {
    type Error = TokenTransport;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<oauth2::HttpResponse, TokenTransport>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send_token_request(self.http, request, self.status))
    }
}

/// Sends the crate's token request with the provider's client, noting the status and
/// reading at most [`MAX_TOKEN_BODY`] bytes.
async fn send_token_request(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
    status: &AtomicU16,
) -> Result<oauth2::HttpResponse, TokenTransport> {
    let request =
        reqwest::Request::try_from(request).map_err(|e| TokenTransport::Send(e.without_url()))?;
    let mut response = http
        .execute(request)
        .await
        .map_err(|e| TokenTransport::Send(e.without_url()))?;
    status.store(response.status().as_u16(), Ordering::Relaxed);
    let mut builder = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_TOKEN_BODY as u64)
    {
        return Err(TokenTransport::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| TokenTransport::Send(e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_TOKEN_BODY {
            return Err(TokenTransport::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    builder.body(body).map_err(|_| TokenTransport::Malformed)
}

/// A transport error in a few words, never with the URL.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // The innermost cause says what happened ("connection refused").
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause.and_then(std::error::Error::source) {
        cause = Some(inner);
    }
    match cause {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &Auth) -> Vec<(String, String)> {
        let authenticator = Authenticator::new(auth).expect("valid");
        let Method::Fixed(headers) = &*authenticator.0 else {
            panic!("fixed headers expected");
        };
        assert!(headers.iter().all(|(_, v)| v.is_sensitive()));
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().expect("ASCII header").to_string()))
            .collect()
    }

    #[test]
    fn fixed_kinds_build_their_headers() {
        assert_eq!(
            headers(&Auth::Bearer {
                token: "t0k3n".into()
            }),
            [("authorization".to_string(), "Bearer t0k3n".to_string())]
        );
        // RFC 7617's own example.
        assert_eq!(
            headers(&Auth::Basic {
                username: "Aladdin".into(),
                password: "open sesame".into()
            }),
            [(
                "authorization".to_string(),
                "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==".to_string()
            )]
        );
        assert_eq!(
            headers(&Auth::Header {
                name: "X-Api-Key".into(),
                value: "k3y".into()
            }),
            [("x-api-key".to_string(), "k3y".to_string())]
        );
    }

    #[test]
    fn bad_values_name_the_key_not_the_value() {
        let error = Authenticator::new(&Auth::Bearer {
            token: "line\nbreak-s3cret".into(),
        })
        .expect_err("a line break cannot be sent");
        assert_eq!(
            error,
            "source.auth.token: not usable in a header after `${…}` expansion (a line break or a control character)"
        );
        let error = Authenticator::new(&Auth::Header {
            name: "X Api Key".into(),
            value: "v".into(),
        })
        .expect_err("a space in a header name");
        assert_eq!(error, "source.auth.name: not a valid HTTP header name");
        let error = Authenticator::new(&Auth::Oauth2ClientCredentials {
            token_url: "ftp://auth.example.com/token".into(),
            client_id: "id".into(),
            client_secret: "s3cret".into(),
            scopes: vec![],
            audience: None,
        })
        .expect_err("not http");
        assert_eq!(
            error,
            "source.auth.token_url: not an http:// or https:// URL"
        );
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        // A tenth early for short lives, a minute early for long ones.
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(
            renew_after(Duration::from_secs(600)),
            Duration::from_secs(540)
        );
        assert_eq!(
            renew_after(Duration::from_secs(300)),
            Duration::from_secs(270)
        );
        assert_eq!(
            renew_after(Duration::from_secs(1)),
            Duration::from_millis(900)
        );
        assert_eq!(renew_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn debug_and_errors_show_no_secret() {
        let auth = Auth::Oauth2ClientCredentials {
            token_url: "https://u:pw@auth.example.com/oauth/token?key=k3y#x".into(),
            client_id: "client-id".into(),
            client_secret: "s3cret".into(),
            scopes: vec!["read".into()],
            audience: Some("api".into()),
        };
        let shown = format!("{auth:?}");
        assert_eq!(
            shown,
            "Auth { kind: \"oauth2_client_credentials\", scopes: [\"read\"], .. }"
        );
        let authenticator = Authenticator::new(&auth).expect("valid");
        let shown = format!("{authenticator:?}");
        assert!(
            shown.contains("https://u@auth.example.com/oauth/token?key=***"),
            "{shown}"
        );
        for secret in ["pw", "k3y", "s3cret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let Method::OAuth2(oauth) = &*authenticator.0 else {
            panic!("oauth2");
        };
        assert_eq!(
            oauth.scrub("secret s3cret\nis wrong"),
            "secret *** is wrong"
        );
        assert_eq!(oauth.scrub(&"x".repeat(300)).chars().count(), 201);
        let fixed = format!(
            "{:?}",
            Authenticator::new(&Auth::Basic {
                username: "me".into(),
                password: "pa55".into()
            })
            .expect("valid")
        );
        assert!(
            !fixed.contains("pa55") && !fixed.contains("Basic"),
            "{fixed}"
        );
        assert_eq!(
            format!(
                "{:?}",
                Auth::Header {
                    name: "X-Api-Key".into(),
                    value: "k3y".into()
                }
            ),
            "Auth { kind: \"header\", name: \"X-Api-Key\", .. }"
        );
    }

    #[tokio::test]
    async fn a_rejected_token_is_forgotten_only_once() {
        let auth = Authenticator::new(&Auth::Oauth2ClientCredentials {
            token_url: "https://auth.example.com/token".into(),
            client_id: "id".into(),
            client_secret: "s3cret".into(),
            scopes: vec![],
            audience: None,
        })
        .expect("valid");
        assert!(auth.renews());
        let Method::OAuth2(oauth) = &*auth.0 else {
            panic!("oauth2");
        };
        let token = |generation: u64| Token {
            header: HeaderValue::from_static("Bearer t"),
            generation,
            renew_at: None,
        };
        {
            let mut cache = oauth.cache.lock().await;
            cache.token = Some(token(2));
            cache.fetched = 2;
        }
        let used = |generation| Credentials {
            headers: vec![],
            generation: Some(generation),
        };
        // A request refused with an older token leaves the newer one in place.
        auth.reject(&used(1)).await;
        assert!(oauth.cache.lock().await.token.is_some());
        auth.reject(&used(2)).await;
        assert!(oauth.cache.lock().await.token.is_none());
        // Fixed credentials are not renewed.
        let fixed = Authenticator::new(&Auth::Bearer { token: "t".into() }).expect("valid");
        assert!(!fixed.renews());
    }
}
