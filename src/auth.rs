//! Who is calling: an admin (a configured bearer token) or anyone. Mutations and push endpoints
//! need an admin unless no token is configured and the server only listens on loopback.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::settings::Settings;

/// The caller of one request, as the GraphQL layer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Anonymous,
}

/// What the server allows, fixed at startup.
#[derive(Clone)]
pub struct Policy {
    tokens: std::sync::Arc<Vec<SecretString>>,
    /// Mutations without a token are allowed (loopback listener with no tokens, or the
    /// explicit setting).
    open_mutations: bool,
    pub protect_queries: bool,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "listening on {0} (not a loopback address) with no auth.admin_tokens: anyone who can reach it could trigger ingestion. Set TRIBUTARY_AUTH__ADMIN_TOKENS='[\"<token>\"]', or auth.allow_unauthenticated_mutations = true to accept that"
)]
pub struct UnsafeListener(pub std::net::SocketAddr);

impl Policy {
    pub fn from_settings(settings: &Settings) -> Result<Policy, UnsafeListener> {
        let tokens = settings.auth.admin_tokens.clone();
        let loopback = settings.listen.ip().is_loopback();
        let open_mutations =
            tokens.is_empty() && (loopback || settings.auth.allow_unauthenticated_mutations);
        if tokens.is_empty() && !loopback && !settings.auth.allow_unauthenticated_mutations {
            return Err(UnsafeListener(settings.listen));
        }
        if open_mutations {
            tracing::warn!(
                listen = %settings.listen,
                "no auth.admin_tokens configured: mutations are accepted without a token"
            );
        }
        Ok(Policy {
            tokens: std::sync::Arc::new(tokens),
            open_mutations,
            protect_queries: settings.auth.protect_queries,
        })
    }

    /// Checks a presented token against every configured one, in constant time.
    pub fn caller(&self, token: Option<&str>) -> Caller {
        let Some(token) = token else {
            return Caller::Anonymous;
        };
        let matched = self.tokens.iter().fold(subtle::Choice::from(0), |any, t| {
            any | t.expose_secret().as_bytes().ct_eq(token.as_bytes())
        });
        if bool::from(matched) {
            Caller::Admin
        } else {
            Caller::Anonymous
        }
    }

    /// The caller of an HTTP request (`Authorization: Bearer …`).
    pub fn caller_of(&self, headers: &HeaderMap) -> Caller {
        self.caller(bearer(headers))
    }

    /// May this caller change things?
    pub fn may_mutate(&self, caller: Caller) -> bool {
        caller == Caller::Admin || self.open_mutations
    }

    /// May this caller read?
    pub fn may_query(&self, caller: Caller) -> bool {
        !self.protect_queries || caller == Caller::Admin
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}
