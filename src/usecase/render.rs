//! Render: a namespace's effective configuration in the application's own form, which its settings parser
//! reads as it is. `env` is python-dotenv's `KEY='value'` (`\\`, `\'` and `${` written so that python-dotenv
//! reads the value back unchanged), with integers in the application's units, lists and JSON as JSON text; `json` is one
//! object of typed values; `yaml` is the same object as YAML (each value written in YAML's JSON-compatible
//! flow style, so no YAML library is needed to write it and any YAML 1.2 parser reads it).
//!
//! The values are what the application's next start should use: the stored value of a restart-required
//! key even while this server still runs with its boot value. Only keys set in the store or the process
//! environment are rendered, unless the caller asks for the defaults too; an application then falls back
//! to its own defaults, which the catalog mirrors.
//!
//! Secrets leave the store only with `include_secrets`, and each such render appends a `SecretsRendered`
//! event naming who, which namespace and which keys, never the values; the event is written before the
//! text is returned, so an unrecorded render cannot happen.

use crate::error::Error;
use crate::ledger::{Ledger, WriteContext};
use cfgledger_events::catalog::SettingSpec;
use cfgledger_events::event::StoredValue;
use cfgledger_events::{namespace, Command};
use cfgledger_projections::ValueSource;
use serde_json::{Map, Value};
use std::str::FromStr;

/// The form of a render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenderFormat {
    #[default]
    Env,
    Json,
    Yaml,
}

impl RenderFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            RenderFormat::Env => "env",
            RenderFormat::Json => "json",
            RenderFormat::Yaml => "yaml",
        }
    }

    /// The media type the API answers with.
    pub fn content_type(self) -> &'static str {
        match self {
            RenderFormat::Env => "text/plain; charset=utf-8",
            RenderFormat::Json => "application/json",
            RenderFormat::Yaml => "application/yaml",
        }
    }
}

impl FromStr for RenderFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "env" => Ok(RenderFormat::Env),
            "json" => Ok(RenderFormat::Json),
            "yaml" | "yml" => Ok(RenderFormat::Yaml),
            other => Err(Error::input(format!("format expects env, json or yaml; got {other:?}"))),
        }
    }
}

/// What to render.
#[derive(Debug, Clone, Default)]
pub struct RenderRequest {
    /// The namespace (the default one when `None`).
    pub namespace: Option<String>,
    pub format: RenderFormat,
    /// Render sensitive keys in plaintext (recorded in the audit trail); otherwise they are left out.
    pub include_secrets: bool,
    /// Also render keys at their catalog default.
    pub include_defaults: bool,
    /// The instance asking (its id and labels): an active rollout's values replace the main ones for the
    /// instances it serves (`cfgledger_events::rollout::Rollout::serves`).
    pub instance: Option<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A render and what it holds.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub namespace: String,
    pub format: RenderFormat,
    /// The log's head the render answers for, and its hash.
    pub seq: u64,
    pub head_hash: String,
    /// The file's text.
    pub text: String,
    /// Sensitive keys rendered in plaintext.
    pub secrets: Vec<String>,
}

/// Renders a namespace. With `include_secrets`, the render is recorded in the audit trail first.
pub async fn render(ledger: &Ledger, req: &RenderRequest, ctx: WriteContext) -> Result<Rendered, Error> {
    let catalog = ledger.catalog();
    let ns = super::settings::namespaces(catalog, req.namespace.as_deref())?;
    let [ns] = ns.as_slice() else {
        return Err(Error::input("a render is of one namespace; name it, not *"));
    };
    let ns = ns.to_string();
    // cfgledger's own secrets (its admin API's signing key) would let a reader mint tokens for the store
    // itself: they never leave, whoever asks.
    if req.include_secrets && ns == namespace::OWN {
        return Err(Error::Coded {
            code: crate::error::ErrorCode::Forbidden,
            message: "cfgledger's own secrets never leave the store: render its namespace without secrets".into(),
            details: Value::Null,
        });
    }
    let snap = ledger.snapshot();
    // The rollout values meant for this instance, by key, with the name they are sealed under.
    let mut rollout_values: std::collections::BTreeMap<&str, (&StoredValue, String)> = Default::default();
    for r in snap.state.rollouts().values().filter(|r| r.started.namespace == ns) {
        if r.serves(req.instance.as_deref(), &req.labels) {
            for c in &r.started.changes {
                let sealed_as = cfgledger_events::rollout::secret_name(r.id(), &c.key);
                rollout_values.insert(c.key.as_str(), (&c.value, sealed_as));
            }
        }
    }
    let mut values: Vec<(&SettingSpec, Value)> = Vec::new();
    let mut secrets = Vec::new();
    let mut left_out = Vec::new();
    for spec in catalog.specs().iter().filter(|s| s.namespace == ns && !s.bootstrap) {
        let Some(view) = snap.view(&spec.id) else { continue };
        // The value the application's next start uses: a rollout's value meant for this instance, a pending
        // restart-required value, else the one in force.
        let rollout_value = rollout_values.get(spec.id.as_str());
        let (value, source) = match (rollout_value, &view.pending) {
            (Some((value, _)), _) => (Some(*value), ValueSource::Db),
            (None, Some((value, source))) => (value.as_ref(), *source),
            (None, None) => (view.value.as_ref(), view.source),
        };
        let Some(value) = value else { continue };
        if source == ValueSource::Default && !req.include_defaults {
            continue;
        }
        if spec.sensitive {
            if !req.include_secrets {
                left_out.push(spec.env_name.clone());
                continue;
            }
            secrets.push(spec.id.clone());
        }
        let plain = match value {
            StoredValue::Plain(v) => v.clone(),
            StoredValue::Sealed(text) => {
                let sealed_as = rollout_value.map_or(spec.id.as_str(), |(_, name)| name.as_str());
                let bytes = crate::crypto::open_setting(ledger.secret_box(), sealed_as, text)?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Secret(format!("the value of {} does not decode: {e}", spec.id)))?
            }
        };
        values.push((spec, plain));
    }
    let mut answers_for = snap.head;
    if !secrets.is_empty() {
        let cmd = Command::RecordSecretsRendered {
            namespace: ns.clone(),
            format: req.format.as_str().to_string(),
            keys: secrets.clone(),
        };
        let outcome = ledger.execute_async(cmd, ctx).await?;
        // The record of this render changes no setting: when it came right after the state rendered, the
        // render answers for it too, so a follower is at the head at once instead of one event behind.
        if let Some((first, last)) = outcome.seqs {
            if first == answers_for.seq + 1 && outcome.head.seq == last {
                answers_for = outcome.head;
            }
        }
    }
    let store_id = snap.state.store.as_ref().map(|s| s.store_id.clone()).unwrap_or_default();
    let application = catalog.namespace(&ns).map(|n| n.application.clone()).unwrap_or_else(|| ns.clone());
    let mut header = vec![format!(
        "{application} settings ({ns}) rendered by cfgledger from store {store_id} at seq {} (head {})",
        answers_for.seq,
        answers_for.hash.to_hex()
    )];
    if !left_out.is_empty() {
        header.push(format!(
            "{} secrets left out (render with --include-secrets): {}",
            left_out.len(),
            left_out.join(", ")
        ));
    }
    let named: Vec<(&str, &Value)> = values.iter().map(|(spec, v)| (spec.env_name.as_str(), v)).collect();
    let text = format_text(req.format, &header, &named)?;
    Ok(Rendered {
        namespace: ns,
        format: req.format,
        seq: answers_for.seq,
        head_hash: answers_for.hash.to_hex(),
        text,
        secrets: secrets.iter().map(|k| namespace::split(k).1.to_string()).collect(),
    })
}

/// The labels of a render's `labels=` (a JSON object of strings), as the instance sent them.
pub fn parse_labels(text: Option<&str>) -> Result<std::collections::BTreeMap<String, String>, Error> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(Default::default()),
        Some(t) => serde_json::from_str(t)
            .map_err(|_| Error::input("labels expects a JSON object of strings, such as {\"zone\":\"eu\"}")),
    }
}

/// The text of a render in `format`: the `header` lines as comments (env and yaml; JSON has none), then each
/// name with its value. `agent render` writes its files through here too, so a file is the same whether the
/// server or an agent wrote it.
pub fn format_text(format: RenderFormat, header: &[String], values: &[(&str, &Value)]) -> Result<String, Error> {
    let comments: String = header.iter().map(|line| format!("# {line}\n")).collect();
    Ok(match format {
        RenderFormat::Env => {
            let mut out = comments;
            for (name, v) in values {
                out.push_str(name);
                out.push('=');
                out.push_str(&env_quote(&cfgledger_events::value::to_text(v)));
                out.push('\n');
            }
            out
        }
        RenderFormat::Json => {
            let map: Map<String, Value> = values.iter().map(|(n, v)| (n.to_string(), (*v).clone())).collect();
            let mut text = serde_json::to_string_pretty(&Value::Object(map))
                .map_err(|e| Error::internal("cannot encode the render", e))?;
            text.push('\n');
            text
        }
        RenderFormat::Yaml => {
            let mut out = comments;
            if values.is_empty() {
                out.push_str("{}\n");
            }
            for (name, v) in values {
                let json = serde_json::to_string(v).map_err(|e| Error::internal("cannot encode the render", e))?;
                out.push_str(&format!("{name}: {json}\n"));
            }
            out
        }
    })
}

/// What python-dotenv reads back as `${`: a reference to a variable nobody sets, whose default is `$`,
/// followed by `{`. python-dotenv expands `${...}` inside quotes of both kinds and has no escape for `$`.
const DOLLAR_BRACE: &str = "${_CFGLEDGER_UNSET_:-$}{";

/// A value in python-dotenv's single quotes, which it reads back as exactly `text`: `\` and `'` escaped,
/// `${` written so that it is not expanded, new lines kept as they are (a quoted value may span lines).
pub fn env_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("${") {
            out.push_str(DOLLAR_BRACE);
            rest = &rest[2..];
            continue;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            other => out.push(other),
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_read_back_through_our_own_dotenv_parser() {
        for value in ["plain", "it's", "back\\slash", "${HOME} stays", "a$b ${", "two\nlines", "#not a comment", ""] {
            let line = format!("K={}\n", env_quote(value));
            let parsed = crate::envfile::parse("render", &line).unwrap();
            assert_eq!(parsed[0].value, value, "{line:?}");
        }
    }
}
