//! Logging: `tracing` with an env filter (`RUST_LOG`, default `info`), human-readable or JSON
//! (`LOG_FORMAT=json`). Turn spans carry the conversation, inbox and message ids.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; logs go to stderr so stdout stays for the program's output.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
