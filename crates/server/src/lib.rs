//! greenroom: the binary's library: configuration, wiring, the HTTP API, the web pages and
//! shutdown. `main.rs` only parses the command line and calls [`run`].
//!
//! Routes: `/api/v1/streams...` (admin bearer token; the status of one stream is public),
//! `/whip/...` and `/whep/...` (greenroom-ingest), `/studio/{id}`, `/watch/{id}`,
//! `/dashboard`, `/static/{file}` (embedded pages), `/healthz`, `/metrics` (Prometheus),
//! `/api/v1/openapi.json` (the OpenAPI
//! description); anything else is a JSON 404.
//!
//! Invariants:
//! - the configuration is validated before anything starts; an invalid one exits with status 2;
//! - every error answer is JSON `{"error":{"code","message"}}`; a 500 logs its detail and
//!   answers a generic message;
//! - URLs in answers are absolute, built on the public URL;
//! - secrets (admin token, stream keys, database password, TURN credential, playback key,
//!   Stripe keys, JWT secret) are never logged and are redacted from `Debug` and
//!   `check-config`;
//! - WHEP and HLS of a paid stream, and replays of its recordings, need a signed playback token
//!   for that stream and right (see [`access`]); whether a stream is paid is answered from
//!   memory, never read from the database per segment.

pub mod access;
pub mod admin_token;
pub mod api;
pub mod app;
pub mod authority;
pub mod config;
pub mod hls;
pub mod hls_http;
pub mod live_events;
pub mod openapi;
pub mod pages;
pub mod recording;
pub mod serve;
pub mod sources;

use std::io::IsTerminal;

use thiserror::Error;
use tracing_subscriber::EnvFilter;

use crate::config::{Cli, CommandKind, Config, ConfigError};

/// Why the binary stops with a failure.
#[derive(Debug, Error)]
pub enum RunError {
    /// Exit status 2.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// Exit status 1.
    #[error("{0:#}")]
    Serve(anyhow::Error),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) => 2,
            RunError::Serve(_) => 1,
        }
    }
}

/// Runs the command the command line names.
pub fn run(cli: Cli) -> Result<(), RunError> {
    let (kind, args) = cli.into_command();
    let config = Config::load(args)?;
    match kind {
        CommandKind::CheckConfig => {
            let json =
                serde_json::to_string_pretty(&config).map_err(|err| RunError::Serve(err.into()))?;
            println!("{json}");
            Ok(())
        }
        CommandKind::Serve => {
            tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::new(&config.log))
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .init();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|err| RunError::Serve(err.into()))?;
            runtime
                .block_on(serve::serve(config))
                .map_err(RunError::Serve)
        }
    }
}
