//! A plugin's secrets (`[plugins.NAME] secrets`), read from the environment or a file when
//! the plugin loads. Values never leave this type except through the `secrets` capability:
//! `Debug` prints names only, and [`Secrets::redact`] replaces every value with `[secret]`
//! in whatever the plugin writes — log lines, stdout, errors, replies.

use std::collections::BTreeMap;

use crate::config::SecretSource;

/// What a secret's value is replaced with.
pub const REDACTED: &str = "[secret]";
/// Largest secret file read.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

#[derive(Default, Clone)]
pub struct Secrets {
    values: BTreeMap<String, String>,
    /// What [`Secrets::redact`] hides: every value, and its JSON-escaped form where that
    /// differs (a reply in JSON format carries it so); longest first, so a secret that
    /// contains another is hidden whole.
    forms: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values.keys()).finish()
    }
}

impl Secrets {
    /// Read every configured secret. A missing variable or unreadable file refuses the
    /// plugin (it would fail at its first call otherwise); the error names the source, never
    /// a value.
    pub fn load(table: Option<&BTreeMap<String, SecretSource>>) -> Result<Secrets, String> {
        let mut values = BTreeMap::new();
        for (name, source) in table.into_iter().flatten() {
            let value = match (&source.env, &source.file) {
                (Some(var), None) => std::env::var(var).map_err(|_| {
                    format!("secret {name:?}: environment variable {var} is not set")
                })?,
                (None, Some(path)) => read_file(path)
                    .map_err(|why| format!("secret {name:?}: {}: {why}", path.display()))?,
                _ => return Err(format!("secret {name:?}: set exactly one of env or file")),
            };
            if value.is_empty() {
                return Err(format!("secret {name:?} is empty"));
            }
            values.insert(name.clone(), value);
        }
        Ok(Secrets::of(values))
    }

    /// Secrets given directly (`slashd plugin run --secret NAME=VALUE`); empty values are
    /// refused as they are in config.
    pub fn from_values(values: BTreeMap<String, String>) -> Result<Secrets, String> {
        if let Some((name, _)) = values.iter().find(|(_, v)| v.is_empty()) {
            return Err(format!("secret {name:?} is empty"));
        }
        Ok(Secrets::of(values))
    }

    fn of(values: BTreeMap<String, String>) -> Secrets {
        let mut forms: Vec<String> = Vec::new();
        for value in values.values() {
            let escaped = serde_json::to_string(value).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            for form in [value.as_str(), escaped] {
                if !form.is_empty() && !forms.iter().any(|f| f == form) {
                    forms.push(form.to_string());
                }
            }
        }
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        Secrets { values, forms }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `text` with every secret value replaced by `[secret]`.
    pub fn redact(&self, text: &str) -> String {
        self.forms.iter().fold(text.to_string(), |text, form| {
            text.replace(form.as_str(), REDACTED)
        })
    }

    /// [`Secrets::redact`] of an owned text: no copy when there is nothing to hide (the
    /// usual case, on every reply).
    pub fn redact_owned(&self, text: String) -> String {
        if self.forms.is_empty() {
            return text;
        }
        self.redact(&text)
    }

    /// [`Secrets::redact`] inside every string of a JSON value.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        if self.forms.is_empty() {
            return;
        }
        match value {
            serde_json::Value::String(s) => *s = self.redact(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    if let Some(mut v) = map.remove(&key) {
                        self.redact_json(&mut v);
                        map.insert(self.redact(&key), v);
                    }
                }
            }
            _ => {}
        }
    }
}

fn read_file(path: &std::path::Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.kind().to_string())?;
    if meta.len() > MAX_SECRET_BYTES {
        return Err(format!("larger than {MAX_SECRET_BYTES} bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.kind().to_string())?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        let secrets = Secrets::of(
            [("a", "s3cr3t-token"), ("b", "s3cr3t"), ("c", "q\"uo\nte")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        );
        let check = |text: &str, expected: &str| assert_eq!(secrets.redact(text), expected);
        check("token s3cr3t-token!", "token [secret]!");
        check("s3cr3t and s3cr3t-token", "[secret] and [secret]");
        check("nothing here", "nothing here");
        check("raw q\"uo\nte", "raw [secret]");
        check(r#"{"k":"q\"uo\nte"}"#, r#"{"k":"[secret]"}"#);
        let mut json = serde_json::json!({"k": ["s3cr3t", 1], "s3cr3t": "x"});
        secrets.redact_json(&mut json);
        assert_eq!(
            json,
            serde_json::json!({"k": ["[secret]", 1], "[secret]": "x"})
        );
        assert_eq!(format!("{secrets:?}"), r#"["a", "b", "c"]"#);
    }

    #[test]
    fn sources() {
        let env = |var: &str| SecretSource {
            env: Some(var.into()),
            file: None,
        };
        let table: BTreeMap<String, SecretSource> =
            [("t".to_string(), env("SLASHD_TEST_SURELY_UNSET_VAR"))].into();
        let err = Secrets::load(Some(&table)).unwrap_err();
        assert!(
            err.contains("SLASHD_TEST_SURELY_UNSET_VAR is not set"),
            "{err}"
        );
        let file = SecretSource {
            env: None,
            file: Some("/nonexistent/secret".into()),
        };
        let table: BTreeMap<String, SecretSource> = [("f".to_string(), file)].into();
        assert!(Secrets::load(Some(&table))
            .unwrap_err()
            .contains("/nonexistent/secret"));
    }
}
