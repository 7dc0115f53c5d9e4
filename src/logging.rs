//! The server's own logs: tracing to stderr at the store's `LOG_LEVEL`, in its `LOG_FORMAT` (json or
//! text), both swapped live through tracing-subscriber's reload layers when the settings change, so the
//! server is the first consumer of its own hot reload.

use tracing_subscriber::layer::Layered;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

type WithFilter = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type FormatLayer = Box<dyn Layer<WithFilter> + Send + Sync>;

fn filter(level: &str) -> EnvFilter {
    EnvFilter::new(format!("cfgledger={level},tower_http={level}"))
}

fn format_layer(format: &str) -> FormatLayer {
    // Colours only on a terminal: a log file or a collector gets no escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        "text" => Box::new(layer),
        _ => Box::new(layer.json()),
    }
}

/// Handles on the installed subscriber's level and format.
pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
    format: reload::Handle<FormatLayer, WithFilter>,
    current: (String, String),
}

impl Logging {
    /// Installs the global subscriber; `None` when one is already installed (a library embedding us).
    pub fn init(level: &str, format: &str) -> Option<Logging> {
        let (filter_layer, filter) = reload::Layer::new(filter(level));
        let (fmt_layer, format_handle) = reload::Layer::new(format_layer(format));
        tracing_subscriber::registry().with(filter_layer).with(fmt_layer).try_init().ok()?;
        Some(Logging { filter, format: format_handle, current: (level.to_string(), format.to_string()) })
    }

    /// Switches to `level` and `format` if they differ from what is in force.
    pub fn apply(&mut self, level: &str, format: &str) {
        if self.current.0 != level {
            match self.filter.reload(filter(level)) {
                Ok(()) => tracing::info!(level, "log level changed"),
                Err(e) => tracing::warn!(error = %e, "could not change the log level"),
            }
        }
        if self.current.1 != format {
            match self.format.reload(format_layer(format)) {
                Ok(()) => tracing::info!(format, "log format changed"),
                Err(e) => tracing::warn!(error = %e, "could not change the log format"),
            }
        }
        self.current = (level.to_string(), format.to_string());
    }
}
