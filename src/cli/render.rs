//! `cfgledger render`: a namespace's effective configuration in its application's own form, on standard
//! output or written atomically to `--out` (a temporary file beside it, fsync, rename, mode 0600), on the
//! store or through `--server`. Secrets only with `--include-secrets`, which is recorded in the audit trail.

use super::{emit, Globals};
use crate::error::Error;
use crate::model::RenderQuery;
use crate::usecase::block_on;
use crate::usecase::render::{self, RenderFormat, RenderRequest};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// `env` (python-dotenv's KEY='value', which the gateway reads as it is), `json` or `yaml`.
    #[arg(long, default_value = "env")]
    format: String,
    /// The namespace: `mcpgateway` (the default), `cfgledger`, or another application's.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Render sensitive keys in plaintext (recorded in the audit trail: who, which namespace, which keys).
    #[arg(long)]
    include_secrets: bool,
    /// Also render keys at their catalog default (otherwise the application applies its own defaults).
    #[arg(long)]
    include_defaults: bool,
    /// Write the file here, atomically and with mode 0600, instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Why: recorded in the audit trail with a render that includes secrets.
    #[arg(long)]
    reason: Option<String>,
    /// Render as this instance sees it: an active rollout's values where it serves the instance.
    #[arg(long, value_name = "ID")]
    instance: Option<String>,
    /// A label of the instance (repeatable): role=canary.
    #[arg(long = "label", value_name = "K=V")]
    labels: Vec<String>,
}

pub fn run(g: &Globals, args: RenderArgs) -> Result<(), Error> {
    let format: RenderFormat = args.format.parse()?;
    let mut labels = std::collections::BTreeMap::new();
    for label in &args.labels {
        let (k, v) = label
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Error::input(format!("--label expects NAME=VALUE; got {label:?}")))?;
        labels.insert(k.to_string(), v.to_string());
    }
    let text = match &g.server {
        Some(server) => {
            let query = RenderQuery {
                format: Some(format.as_str().to_string()),
                namespace: args.namespace.clone(),
                include_secrets: args.include_secrets,
                include_defaults: args.include_defaults,
                reason: args.reason.clone(),
                instance: args.instance.clone(),
                labels: (!labels.is_empty())
                    .then(|| serde_json::to_string(&labels))
                    .transpose()
                    .map_err(|e| Error::internal("cannot encode the labels", e))?,
            };
            server.get_text("/admin/config/render", &query)?
        }
        None => {
            let ledger = g.open_existing_ledger()?;
            let req = RenderRequest {
                namespace: args.namespace.clone(),
                format,
                include_secrets: args.include_secrets,
                include_defaults: args.include_defaults,
                instance: args.instance.clone(),
                labels,
            };
            block_on(render::render(&ledger, &req, g.context("render", args.reason.clone())))?.text
        }
    };
    match &args.out {
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::BrokenPipe),
                Err(e) => Err(Error::io("cannot write to standard output", e)),
                Ok(()) => Ok(()),
            }
        }
        Some(path) => {
            write_atomically(path, text.as_bytes())?;
            let lines = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
            emit(format!("rendered {lines} setting(s) to {} ({})", path.display(), format.as_str()))
        }
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never a part
/// (`cfgledger_client::files`: a temporary file beside it with mode 0600, synced, renamed, the directory
/// synced; a symbolic link is followed).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    cfgledger_client::files::write_atomically(path, bytes)
        .map_err(|e| Error::io(format!("cannot write {} atomically", path.display()), e))
}
