//! `${VAR}` references in provider files, expanded from the environment when a run starts, so
//! secrets live in memory only while a run needs them. The one place they are expanded: the
//! run takes an expanded copy of its provider ([`expand_provider`]) and reads everything from it.

use super::Provider;
use super::definition::{FieldSpec, Pagination, Source, Transform, TransformWith, WindowEnd};
use super::load::LoadError;
use super::shape::child;
use super::validate::is_http_url;

/// Expands `${VAR}` references from `env` (`|name| std::env::var(name).ok()` for the process
/// environment). `$${` stands for a literal `${`; a `$` not followed by `{` is kept as it is.
/// Values are inserted as they are, never expanded again. The error names the variable, never
/// a value.
pub fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err("`${` without a closing `}`".to_string());
            };
            let name = &after[..end];
            if crate::sources::incremental::REQUEST_VARS.contains(&name) {
                // Filled in per request (`${cursor}`, `${window.from}`, …), not from the
                // environment.
                out.push_str(&tail[..end + 3]);
                rest = &after[end + 1..];
                continue;
            }
            if !valid_var_name(name) {
                return Err(
                    "`${…}` must hold a variable name: letters, digits and `_`, not starting with a digit"
                        .to_string(),
                );
            }
            match env(name) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("environment variable `{name}` is not set")),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A copy of `provider` with `${VAR}` expanded in the request URL, header values, query
/// values, body strings, `source.auth` strings and `sha256` keys. Called when a run starts;
/// the copy holds secrets, so it is dropped when the run ends and never logged. An unset
/// variable is an error naming the file, the key and the variable.
pub fn expand_provider(
    provider: &Provider,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Provider, LoadError> {
    let fail = |key: String, message: String| LoadError {
        file: provider.path.clone(),
        key,
        message,
    };
    let mut out = provider.clone();
    if let Source::Http(http) = &mut out.def.source {
        http.url = expand_env(&http.url, env).map_err(|m| fail("source.url".to_string(), m))?;
        if !is_http_url(&http.url) {
            return Err(fail(
                "source.url".to_string(),
                "after `${…}` expansion, not an http:// or https:// URL".to_string(),
            ));
        }
        for (name, value) in http.headers.iter_mut() {
            *value =
                expand_env(value, env).map_err(|m| fail(format!("source.headers.{name}"), m))?;
        }
        for (name, value) in http.query.iter_mut() {
            *value = expand_env(value, env).map_err(|m| fail(format!("source.query.{name}"), m))?;
        }
        if let Some(body) = &mut http.body {
            expand_json(body, "source.body", env).map_err(|(key, m)| fail(key, m))?;
        }
        if let Some(auth) = &mut http.auth {
            expand_auth(auth, env).map_err(|(key, m)| fail(key, m))?;
        }
        if let Pagination::Window(window) = &mut http.pagination
            && let WindowEnd::Head(head) = &mut window.end
        {
            if let Some(url) = &mut head.url {
                *url = expand_env(url, env)
                    .map_err(|m| fail("source.pagination.end.url".to_string(), m))?;
            }
            if let Some(body) = &mut head.body {
                expand_json(body, "source.pagination.end.body", env)
                    .map_err(|(key, m)| fail(key, m))?;
            }
        }
    }
    if let Source::Kafka(kafka) = &mut out.def.source {
        kafka.brokers =
            expand_env(&kafka.brokers, env).map_err(|m| fail("source.brokers".to_string(), m))?;
        for (i, topic) in kafka.topics.iter_mut().enumerate() {
            *topic = expand_env(topic, env).map_err(|m| fail(format!("source.topics[{i}]"), m))?;
        }
        if let Some(group) = &mut kafka.group {
            *group = expand_env(group, env).map_err(|m| fail("source.group".to_string(), m))?;
        }
        for (name, value) in kafka.properties.0.iter_mut() {
            *value =
                expand_env(value, env).map_err(|m| fail(format!("source.properties.{name}"), m))?;
        }
    }
    for (name, spec) in out.def.fields.iter_mut() {
        if let FieldSpec::Full(table) = spec {
            for (i, transform) in table.transforms.iter_mut().enumerate() {
                if let Transform::With(TransformWith::Sha256 { key }) = transform {
                    *key = expand_env(key, env).map_err(|m| {
                        fail(format!("fields.{name}.transforms[{i}].sha256.key"), m)
                    })?;
                }
            }
        }
    }
    Ok(out)
}

/// `${VAR}` in every string of `source.auth`; the token URL must still be an http(s) URL.
fn expand_auth(
    auth: &mut super::definition::Auth,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (String, String)> {
    use super::definition::Auth;
    let one = |text: &mut String, key: &str| -> Result<(), (String, String)> {
        *text = expand_env(text, env).map_err(|m| (format!("source.auth.{key}"), m))?;
        Ok(())
    };
    match auth {
        Auth::Bearer { token } => one(token, "token")?,
        Auth::Basic { username, password } => {
            one(username, "username")?;
            one(password, "password")?;
        }
        Auth::Header { value, .. } => one(value, "value")?,
        Auth::Oauth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scopes,
            audience,
        } => {
            one(token_url, "token_url")?;
            if !is_http_url(token_url) {
                return Err((
                    "source.auth.token_url".to_string(),
                    "after `${…}` expansion, not an http:// or https:// URL".to_string(),
                ));
            }
            one(client_id, "client_id")?;
            one(client_secret, "client_secret")?;
            for (i, scope) in scopes.iter_mut().enumerate() {
                one(scope, &format!("scopes[{i}]"))?;
            }
            if let Some(audience) = audience {
                one(audience, "audience")?;
            }
        }
    }
    Ok(())
}

fn expand_json(
    value: &mut serde_json::Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (String, String)> {
    match value {
        serde_json::Value::String(s) => {
            *s = expand_env(s, env).map_err(|m| (path.to_string(), m))?;
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_json(item, &format!("{path}[{i}]"), env)?;
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                expand_json(item, &child(path, key), env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The query parameters of an HTTP source whose values come from the environment (`${VAR}`,
/// in `query` or in the URL itself): API keys, shown as `***` wherever a URL is shown.
pub fn secret_query_params(source: &super::definition::HttpSource) -> Vec<String> {
    let mut names: Vec<String> = match source.url.split_once('?') {
        Some((_, query)) => query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(_, value)| value.contains("${"))
            .map(|(name, _)| name.to_string())
            .collect(),
        None => Vec::new(),
    };
    names.extend(
        source
            .query
            .iter()
            .filter(|(_, value)| value.contains("${"))
            .map(|(name, _)| name.clone()),
    );
    names
}

/// A variable name: letters, digits and `_`, not starting with a digit.
pub(super) fn valid_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_provider_expands_every_auth_string() {
        use crate::providers::definition::Auth;
        use crate::providers::load::fixtures::{good, http};
        let provider = good(&http(
            "[source.auth]\nkind = \"oauth2_client_credentials\"\ntoken_url = \"${AUTH_BASE}/token\"\nclient_id = \"${CLIENT_ID}\"\nclient_secret = \"${CLIENT_SECRET}\"\nscopes = [\"${SCOPE}\", \"write\"]\naudience = \"${AUDIENCE}\"",
            "",
        ));
        let env = |name: &str| match name {
            "AUTH_BASE" => Some("https://auth.example.com".to_string()),
            "CLIENT_ID" => Some("tributary".to_string()),
            "CLIENT_SECRET" => Some("s3cr3t".to_string()),
            "SCOPE" => Some("read".to_string()),
            "AUDIENCE" => Some("https://api.example.com".to_string()),
            _ => None,
        };
        let expanded = expand_provider(&provider, &env).expect("all variables set");
        let Source::Http(source) = &expanded.def.source else {
            panic!("an http source");
        };
        let Some(Auth::Oauth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scopes,
            audience,
        }) = &source.auth
        else {
            panic!("oauth2 client credentials");
        };
        assert_eq!(
            (
                token_url.as_str(),
                client_id.as_str(),
                client_secret.as_str()
            ),
            ("https://auth.example.com/token", "tributary", "s3cr3t")
        );
        assert_eq!(scopes, &["read", "write"]);
        assert_eq!(audience.as_deref(), Some("https://api.example.com"));
        // Debug output of the expanded source shows no secret.
        assert!(!format!("{source:?}").contains("s3cr3t"));

        let error = |unset: &str| {
            let env = |name: &str| if name == unset { None } else { env(name) };
            let error = expand_provider(&provider, &env).expect_err("a variable is unset");
            assert!(!error.to_string().contains("s3cr3t"), "{error}");
            format!("{}: {}", error.key, error.message)
        };
        assert_eq!(
            error("CLIENT_SECRET"),
            "source.auth.client_secret: environment variable `CLIENT_SECRET` is not set"
        );
        assert_eq!(
            error("SCOPE"),
            "source.auth.scopes[0]: environment variable `SCOPE` is not set"
        );
        assert_eq!(
            error("AUDIENCE"),
            "source.auth.audience: environment variable `AUDIENCE` is not set"
        );
        assert_eq!(
            error("AUTH_BASE"),
            "source.auth.token_url: environment variable `AUTH_BASE` is not set"
        );
        let not_a_url = |name: &str| match name {
            "AUTH_BASE" => Some("auth.example.com".to_string()),
            _ => env(name),
        };
        let error = expand_provider(&provider, &not_a_url).expect_err("not a URL");
        assert_eq!(
            format!("{}: {}", error.key, error.message),
            "source.auth.token_url: after `${…}` expansion, not an http:// or https:// URL"
        );

        for (table, key) in [
            ("kind = \"bearer\"\ntoken = \"${T}\"", "token"),
            (
                "kind = \"basic\"\nusername = \"${T}\"\npassword = \"p\"",
                "username",
            ),
            (
                "kind = \"basic\"\nusername = \"u\"\npassword = \"${T}\"",
                "password",
            ),
            (
                "kind = \"header\"\nname = \"X-Api-Key\"\nvalue = \"${T}\"",
                "value",
            ),
        ] {
            let provider = good(&http(&format!("[source.auth]\n{table}"), ""));
            let error = expand_provider(&provider, &|_| None).expect_err("T is unset");
            assert_eq!(error.key, format!("source.auth.{key}"));
            let expanded =
                expand_provider(&provider, &|_| Some("s3cr3t".to_string())).expect("T is set");
            let Source::Http(source) = &expanded.def.source else {
                panic!("an http source");
            };
            let shown = format!("{source:?}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
            let value = match source.auth.as_ref() {
                Some(Auth::Bearer { token }) => token,
                Some(Auth::Basic { username, .. }) if key == "username" => username,
                Some(Auth::Basic { password, .. }) => password,
                Some(Auth::Header { value, .. }) => value,
                other => panic!("{other:?}"),
            };
            assert_eq!(value, "s3cr3t");
        }
    }

    #[test]
    fn expand_env_replaces_variables_and_never_shows_values() {
        let env = |name: &str| match name {
            "SILK_TOKEN" => Some("s3cr3t".to_string()),
            "EMPTY" => Some(String::new()),
            "TRICKY" => Some("${SILK_TOKEN}".to_string()),
            _ => None,
        };
        assert_eq!(
            expand_env("plain $5 text", &env).as_deref(),
            Ok("plain $5 text")
        );
        assert_eq!(
            expand_env("Bearer ${SILK_TOKEN}!", &env).as_deref(),
            Ok("Bearer s3cr3t!")
        );
        assert_eq!(expand_env("a${EMPTY}b", &env).as_deref(), Ok("ab"));
        // A value is inserted as it is, never expanded again.
        assert_eq!(
            expand_env("${TRICKY}", &env).as_deref(),
            Ok("${SILK_TOKEN}")
        );
        assert_eq!(
            expand_env("$${SILK_TOKEN}", &env).as_deref(),
            Ok("${SILK_TOKEN}")
        );
        assert_eq!(
            expand_env("${SILK_TOKEN}${UNSET_VAR}", &env),
            Err("environment variable `UNSET_VAR` is not set".to_string())
        );
        assert_eq!(
            expand_env("${SILK_TOKEN", &env),
            Err("`${` without a closing `}`".to_string())
        );
        assert!(expand_env("${}", &env).is_err());
        // Request variables are left for each request to fill in.
        assert_eq!(
            expand_env("from=${window.from}&since=${cursor}", &env).as_deref(),
            Ok("from=${window.from}&since=${cursor}")
        );
        assert!(expand_env("${A-B}", &env).is_err());
    }
}
