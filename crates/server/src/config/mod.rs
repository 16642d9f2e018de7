//! The one typed configuration: a TOML file (`--config` / `GREENROOM_CONFIG`), then the
//! environment (`GREENROOM_<NAME>`), then flags. Flags beat the environment (clap reads both),
//! both beat the file, the file beats the defaults. Everything is validated before anything
//! starts; an invalid setting is a [`ConfigError`] (exit status 2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

pub use greenroom_control::wallet::TokenPack;
use greenroom_control::{Backend, Store};
use greenroom_rtc::{IceServer, RtcConfig};
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod business;
mod cli;

pub use business::parse_token_packs;
pub use cli::{Cli, Command, CommandKind, ServeArgs};

/// `[storage]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFile {
    pub dir: Option<PathBuf>,
    pub s3: Option<S3File>,
}

/// `[storage.s3]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3File {
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub path_style: Option<bool>,
    pub prefix: Option<String>,
}

/// S3 storage settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    #[serde(serialize_with = "redacted")]
    pub access_key_id: Option<String>,
    #[serde(serialize_with = "redacted")]
    pub secret_access_key: Option<String>,
    pub path_style: bool,
    pub prefix: String,
}

/// The configuration file: the same settings, snake_case keys, all optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub http_addr: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub rtmp_addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub admin_token: Option<String>,
    pub database_url: Option<String>,
    pub rtc_udp_port: Option<u16>,
    pub rtc_workers: Option<usize>,
    pub rtc_detach_viewers: Option<bool>,
    pub rtc_bind_ip: Option<IpAddr>,
    pub rtc_advertise_ips: Option<Vec<IpAddr>>,
    pub ice_servers: Option<Vec<String>>,
    pub ice_username: Option<String>,
    pub ice_credential: Option<String>,
    pub log: Option<String>,
    pub hls: Option<bool>,
    pub hls_ladder: Option<String>,
    pub hls_preset: Option<String>,
    pub hls_segment_ms: Option<u32>,
    pub hls_part_ms: Option<u32>,
    pub storage: Option<StorageFile>,
    pub recording_retention_days: Option<u32>,
    pub retention_interval_secs: Option<u64>,
    // Secrets (playback key, Stripe keys, JWT secret) come from the environment only.
    pub playback_token_ttl_secs: Option<u64>,
    pub stripe_api_base: Option<String>,
    pub platform_fee_bps: Option<u32>,
    pub tip_min: Option<i64>,
    pub tip_max: Option<i64>,
    pub currency: Option<String>,
    pub token_packs: Option<String>,
    pub jwt_public_key_file: Option<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
}

pub const DEFAULT_HLS_LADDER: &str = "1080:5M,720:2800k,480:1400k,360:800k";
pub const DEFAULT_HLS_PRESET: &str = "superfast";

pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
pub const DEFAULT_DATA_DIR: &str = "./greenroom-data";
pub const DEFAULT_RTC_UDP_PORT: u16 = 8189;
/// Greenroom at info; the WebRTC stack only when something is wrong (its DTLS layer warns about
/// every unknown TLS extension a browser offers).
pub const DEFAULT_RTMP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 1935);
pub const DEFAULT_LOG: &str =
    "info,rtc=warn,rtc_ice=warn,rtc_dtls=error,rtc_sctp=warn,rtc_srtp=warn,rtc_interceptor=warn";
const MIN_ADMIN_TOKEN_CHARS: usize = 16;
pub const DEFAULT_PLAYBACK_TOKEN_TTL_SECS: u64 = 600;
pub const DEFAULT_PLATFORM_FEE_BPS: u32 = 500;
/// Highest platform fee accepted (50 %).
pub const MAX_PLATFORM_FEE_BPS: u32 = 5000;
pub const DEFAULT_TIP_MIN: i64 = 1;
pub const DEFAULT_TIP_MAX: i64 = 1000;
/// Largest tip limit, in major units.
pub const MAX_TIP: i64 = 1_000_000;
pub const DEFAULT_CURRENCY: &str = "usd";
pub const DEFAULT_TOKEN_PACKS: &str = "small:100:499,medium:500:1999,large:1200:3999";
/// Most tokens in one pack.
pub const MAX_PACK_TOKENS: i64 = 1_000_000;
/// Most token packs on sale.
const MAX_TOKEN_PACKS: usize = 20;
const MAX_RTC_WORKERS: usize = 256;

/// The effective, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub http_addr: SocketAddr,
    /// Without a trailing slash. `None`: derived from the bound address at start-up.
    pub public_url: Option<String>,
    /// `None`: RTMP ingest is off.
    pub rtmp_addr: Option<SocketAddr>,
    pub data_dir: PathBuf,
    #[serde(serialize_with = "redacted")]
    pub admin_token: Option<String>,
    #[serde(serialize_with = "redacted")]
    pub database_url: Option<String>,
    pub rtc_udp_port: u16,
    pub rtc_workers: usize,
    pub rtc_detach_viewers: bool,
    pub rtc_bind_ip: IpAddr,
    pub rtc_advertise_ips: Vec<IpAddr>,
    pub ice_servers: Vec<String>,
    pub ice_username: Option<String>,
    #[serde(serialize_with = "redacted")]
    pub ice_credential: Option<String>,
    pub log: String,
    pub hls: bool,
    pub hls_ladder: String,
    pub hls_preset: String,
    pub hls_segment_ms: u32,
    pub hls_part_ms: u32,
    /// `None`: `data_dir/media`.
    pub storage_dir: Option<PathBuf>,
    /// `Some`: recordings go to S3.
    pub s3: Option<S3Settings>,
    pub recording_retention_days: u32,
    pub retention_interval_secs: u64,
    /// `None`: generated once and kept in `data_dir/playback.key`.
    #[serde(serialize_with = "redacted")]
    pub playback_key: Option<String>,
    pub playback_token_ttl_secs: u64,
    /// `Some`: payments are on.
    #[serde(serialize_with = "redacted")]
    pub stripe_secret_key: Option<String>,
    #[serde(serialize_with = "redacted")]
    pub stripe_webhook_secret: Option<String>,
    /// Without a trailing slash; `None`: Stripe's own.
    pub stripe_api_base: Option<String>,
    pub platform_fee_bps: u32,
    /// Tip limits in major units of `currency`, inclusive.
    pub tip_min: i64,
    pub tip_max: i64,
    /// Lowercase ISO 4217.
    pub currency: String,
    pub token_packs: Vec<TokenPack>,
    #[serde(serialize_with = "redacted")]
    pub jwt_hs256_secret: Option<String>,
    pub jwt_public_key_file: Option<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
}

fn redacted<S: serde::Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("<set>"),
        None => s.serialize_none(),
    }
}

/// A setting that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    ParseFile {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

impl Config {
    /// Resolves `args` (flags and `GREENROOM_*` already merged by clap) over the file they
    /// name, with `DATABASE_URL` from the process environment as the fallback database URL.
    pub fn load(args: ServeArgs) -> Result<Config, ConfigError> {
        let database_url_env = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty());
        Config::resolve(args, database_url_env)
    }

    /// Resolves and validates: `args` > `DATABASE_URL` (for the database only) > file > defaults.
    pub fn resolve(
        args: ServeArgs,
        database_url_env: Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let config = Config {
            http_addr: args
                .http_addr
                .or(file.http_addr)
                .unwrap_or(DEFAULT_HTTP_ADDR),
            public_url: args.public_url.or(file.public_url),
            rtmp_addr: parse_rtmp_addr(args.rtmp_addr.or(file.rtmp_addr))?,
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            admin_token: args.admin_token.or(file.admin_token),
            database_url: args.database_url.or(database_url_env).or(file.database_url),
            rtc_udp_port: args
                .rtc_udp_port
                .or(file.rtc_udp_port)
                .unwrap_or(DEFAULT_RTC_UDP_PORT),
            rtc_workers: args
                .rtc_workers
                .or(file.rtc_workers)
                .unwrap_or_else(default_workers),
            rtc_detach_viewers: args
                .rtc_detach_viewers
                .or(file.rtc_detach_viewers)
                .unwrap_or(true),
            rtc_bind_ip: args
                .rtc_bind_ip
                .or(file.rtc_bind_ip)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            rtc_advertise_ips: args
                .rtc_advertise_ips
                .or(file.rtc_advertise_ips)
                .unwrap_or_default(),
            ice_servers: args.ice_servers.or(file.ice_servers).unwrap_or_default(),
            ice_username: args.ice_username.or(file.ice_username),
            ice_credential: args.ice_credential.or(file.ice_credential),
            log: args
                .log
                .or(file.log)
                .unwrap_or_else(|| DEFAULT_LOG.to_owned()),
            hls: args.hls.or(file.hls).unwrap_or(true),
            hls_ladder: args
                .hls_ladder
                .or(file.hls_ladder)
                .unwrap_or_else(|| DEFAULT_HLS_LADDER.to_owned()),
            hls_preset: args
                .hls_preset
                .or(file.hls_preset)
                .unwrap_or_else(|| DEFAULT_HLS_PRESET.to_owned()),
            hls_segment_ms: args.hls_segment_ms.or(file.hls_segment_ms).unwrap_or(2000),
            hls_part_ms: args.hls_part_ms.or(file.hls_part_ms).unwrap_or(500),
            storage_dir: args
                .storage_dir
                .or(file.storage.as_ref().and_then(|s| s.dir.clone())),
            s3: {
                let f = file.storage.and_then(|s| s.s3).unwrap_or_default();
                args.s3_bucket.or(f.bucket).map(|bucket| S3Settings {
                    bucket,
                    region: args
                        .s3_region
                        .or(f.region)
                        .unwrap_or_else(|| "us-east-1".to_owned()),
                    endpoint: args.s3_endpoint.or(f.endpoint),
                    access_key_id: args.s3_access_key_id.or(f.access_key_id),
                    secret_access_key: args.s3_secret_access_key.or(f.secret_access_key),
                    path_style: args.s3_path_style.or(f.path_style).unwrap_or(false),
                    prefix: args.s3_prefix.or(f.prefix).unwrap_or_default(),
                })
            },
            recording_retention_days: args
                .recording_retention_days
                .or(file.recording_retention_days)
                .unwrap_or(7),
            retention_interval_secs: args
                .retention_interval_secs
                .or(file.retention_interval_secs)
                .unwrap_or(3600),
            playback_key: args.playback_key,
            playback_token_ttl_secs: args
                .playback_token_ttl_secs
                .or(file.playback_token_ttl_secs)
                .unwrap_or(DEFAULT_PLAYBACK_TOKEN_TTL_SECS),
            stripe_secret_key: args.stripe_secret_key,
            stripe_webhook_secret: args.stripe_webhook_secret,
            stripe_api_base: args.stripe_api_base.or(file.stripe_api_base),
            platform_fee_bps: args
                .platform_fee_bps
                .or(file.platform_fee_bps)
                .unwrap_or(DEFAULT_PLATFORM_FEE_BPS),
            tip_min: args.tip_min.or(file.tip_min).unwrap_or(DEFAULT_TIP_MIN),
            tip_max: args.tip_max.or(file.tip_max).unwrap_or(DEFAULT_TIP_MAX),
            currency: args
                .currency
                .or(file.currency)
                .unwrap_or_else(|| DEFAULT_CURRENCY.to_owned()),
            token_packs: Vec::new(),
            jwt_hs256_secret: args.jwt_hs256_secret,
            jwt_public_key_file: args.jwt_public_key_file.or(file.jwt_public_key_file),
            jwt_issuer: args.jwt_issuer.or(file.jwt_issuer),
            jwt_audience: args.jwt_audience.or(file.jwt_audience),
        };
        let token_packs = args
            .token_packs
            .or(file.token_packs)
            .unwrap_or_else(|| DEFAULT_TOKEN_PACKS.to_owned());
        config.validated(&token_packs)
    }

    fn validated(mut self, token_packs: &str) -> Result<Config, ConfigError> {
        if let Some(url) = self.public_url.take() {
            self.public_url = Some(validate_public_url(&url)?);
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if let Some(token) = &self.admin_token {
            if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                return Err(invalid(
                    "admin_token",
                    format!("must have at least {MIN_ADMIN_TOKEN_CHARS} characters"),
                ));
            }
            if !token.chars().all(|c| c.is_ascii_graphic()) {
                return Err(invalid(
                    "admin_token",
                    "must be printable ASCII without spaces",
                ));
            }
        }
        if let Some(url) = &self.database_url {
            Backend::from_url(url).map_err(|err| invalid("database_url", err.to_string()))?;
        }
        if !(1..=MAX_RTC_WORKERS).contains(&self.rtc_workers) {
            return Err(invalid(
                "rtc_workers",
                format!("must be between 1 and {MAX_RTC_WORKERS}"),
            ));
        }
        if self.rtc_udp_port != 0
            && usize::from(self.rtc_udp_port) + self.rtc_workers - 1 > usize::from(u16::MAX)
        {
            return Err(invalid(
                "rtc_udp_port",
                format!(
                    "ports {} to {} (one per worker) do not all exist",
                    self.rtc_udp_port,
                    usize::from(self.rtc_udp_port) + self.rtc_workers - 1
                ),
            ));
        }
        for ip in &self.rtc_advertise_ips {
            if ip.is_unspecified() {
                return Err(invalid(
                    "rtc_advertise_ips",
                    format!("{ip} cannot be announced to clients"),
                ));
            }
        }
        self.ice_servers = self
            .ice_servers
            .iter()
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        let mut needs_credentials = false;
        for url in &self.ice_servers {
            let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
            match scheme.as_str() {
                "stun" | "stuns" => {}
                "turn" | "turns" => needs_credentials = true,
                _ => {
                    return Err(invalid(
                        "ice_servers",
                        format!("{url:?} is not a stun:, stuns:, turn: or turns: URL"),
                    ));
                }
            }
            if url.len() <= scheme.len() + 1 || url.contains(['<', '>', '"', ' ']) {
                return Err(invalid(
                    "ice_servers",
                    format!("{url:?} is not a valid URL"),
                ));
            }
        }
        if needs_credentials && (self.ice_username.is_none() || self.ice_credential.is_none()) {
            return Err(invalid(
                "ice_servers",
                "TURN servers need GREENROOM_ICE_USERNAME and GREENROOM_ICE_CREDENTIAL",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .map_err(|err| invalid("log", format!("{:?}: {err}", self.log)))?;
        greenroom_hls::Rendition::parse_ladder(&self.hls_ladder)
            .map_err(|reason| invalid("hls_ladder", reason))?;
        if !greenroom_hls::transcode::PRESETS.contains(&self.hls_preset.as_str()) {
            return Err(invalid(
                "hls_preset",
                format!("{:?} is not an x264 preset", self.hls_preset),
            ));
        }
        if !(1000..=10_000).contains(&self.hls_segment_ms) {
            return Err(invalid("hls_segment_ms", "must be 1000..=10000"));
        }
        if !(100..=2000).contains(&self.hls_part_ms) || self.hls_part_ms >= self.hls_segment_ms {
            return Err(invalid(
                "hls_part_ms",
                "must be 100..=2000 and below the segment duration",
            ));
        }
        if !(1..=3650).contains(&self.recording_retention_days) {
            return Err(invalid("recording_retention_days", "must be 1..=3650"));
        }
        if !(1..=86_400).contains(&self.retention_interval_secs) {
            return Err(invalid("retention_interval_secs", "must be 1..=86400"));
        }
        self.validate_business(token_packs)?;
        if let Some(s3) = &self.s3 {
            if s3.bucket.trim().is_empty() {
                return Err(invalid("s3_bucket", "must not be empty"));
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                return Err(invalid(
                    "s3_access_key_id",
                    "set both the access key id and the secret access key, or neither",
                ));
            }
            if let Some(endpoint) = &s3.endpoint
                && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            {
                return Err(invalid("s3_endpoint", "must be an http:// or https:// URL"));
            }
        }
        Ok(self)
    }

    /// The HLS options these settings make.
    pub fn hls_options(&self) -> greenroom_hls::HlsOptions {
        greenroom_hls::HlsOptions {
            ladder: greenroom_hls::Rendition::parse_ladder(&self.hls_ladder)
                .unwrap_or_else(|_| greenroom_hls::Rendition::default_ladder()),
            segment_target: std::time::Duration::from_millis(u64::from(self.hls_segment_ms)),
            part_target: std::time::Duration::from_millis(u64::from(self.hls_part_ms)),
            encoder: greenroom_hls::transcode::EncoderOptions {
                preset: self.hls_preset.clone(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Where recordings are stored.
    pub fn storage_dir(&self) -> PathBuf {
        self.storage_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("media"))
    }

    /// The database to open: the configured URL, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| Store::sqlite_url(&self.data_dir))
    }

    /// The public URL: the configured one, or `http://` + the bound address with an
    /// unspecified IP replaced by loopback.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let ip = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, bound.port()))
    }

    /// STUN/TURN servers for the engine and the `Link` headers; TURN ones carry the credentials.
    pub fn ice_servers(&self) -> Vec<IceServer> {
        self.ice_servers
            .iter()
            .map(|url| {
                let turn = url.to_ascii_lowercase().starts_with("turn");
                IceServer {
                    urls: vec![url.clone()],
                    username: turn.then(|| self.ice_username.clone()).flatten(),
                    credential: turn.then(|| self.ice_credential.clone()).flatten(),
                }
            })
            .collect()
    }

    pub fn rtc_config(&self) -> RtcConfig {
        RtcConfig {
            bind_ip: self.rtc_bind_ip,
            udp_port: self.rtc_udp_port,
            workers: self.rtc_workers,
            detach_viewers: self.rtc_detach_viewers,
            advertise_ips: self.rtc_advertise_ips.clone(),
            ice_servers: self.ice_servers(),
        }
    }
}

/// The RTMP listen address: `off` (or empty) disables RTMP ingest.
fn parse_rtmp_addr(value: Option<String>) -> Result<Option<SocketAddr>, ConfigError> {
    match value.as_deref().map(str::trim) {
        None => Ok(Some(DEFAULT_RTMP_ADDR)),
        Some("") | Some("off") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            invalid(
                "rtmp_addr",
                format!("{text:?} is not an address like 0.0.0.0:1935 (or \"off\")"),
            )
        }),
    }
}

fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

fn validate_public_url(url: &str) -> Result<String, ConfigError> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            invalid(
                "public_url",
                format!("{url:?} must start with http:// or https://"),
            )
        })?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || rest.contains(['?', '#', ' ', '"', '<', '>']) {
        return Err(invalid(
            "public_url",
            format!("{url:?} needs a host and no query, fragment or spaces"),
        ));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests;
