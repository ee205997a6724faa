//! `${VAR}` references in provider files, expanded from the environment when a run starts, so
//! secrets live in memory only while a run needs them. The one place they are expanded: the
//! run takes an expanded copy of its provider ([`expand_provider`]) and reads everything from it.

use super::Provider;
use super::definition::{FieldSpec, Source, Transform, TransformWith};
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
/// values, body strings and `sha256` keys. Called when a run starts; the copy holds secrets,
/// so it is dropped when the run ends and never logged. An unset variable is an error naming
/// the file, the key and the variable.
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
        assert!(expand_env("${A-B}", &env).is_err());
    }
}
