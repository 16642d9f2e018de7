//! The one typed configuration: a TOML file (`--config` / `GREENROOM_CONFIG`), then the
//! environment (`GREENROOM_<NAME>`), then flags. Flags beat the environment (clap reads both),
//! both beat the file, the file beats the defaults. Everything is validated before anything
//! starts; an invalid setting is a [`ConfigError`] (exit status 2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
pub use greenroom_control::wallet::TokenPack;
use greenroom_control::{Backend, Store};
use greenroom_rtc::{IceServer, RtcConfig};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Command line of the `greenroom` binary.
#[derive(Debug, Parser)]
#[command(
    name = "greenroom",
    version,
    about = "Self-hosted live streaming server"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve`, the default command.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Print the effective configuration as JSON (secrets redacted) and exit.
    CheckConfig(ServeArgs),
}

impl Cli {
    /// The command to run and its settings; no subcommand means `serve`.
    pub fn into_command(self) -> (CommandKind, ServeArgs) {
        match self.command {
            Some(Command::Serve(args)) => (CommandKind::Serve, args),
            Some(Command::CheckConfig(args)) => (CommandKind::CheckConfig, args),
            None => (CommandKind::Serve, self.serve),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Serve,
    CheckConfig,
}

/// Settings as flags and environment variables. `None` means "not given here".
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "GREENROOM_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address [default: 0.0.0.0:8080].
    #[arg(long, env = "GREENROOM_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Public base URL used in links [default: http://<http_addr>, 0.0.0.0 as 127.0.0.1].
    #[arg(long, env = "GREENROOM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// RTMP listen address for OBS/ffmpeg, or `off` [default: 0.0.0.0:1935].
    #[arg(long, env = "GREENROOM_RTMP_ADDR")]
    pub rtmp_addr: Option<String>,
    /// Directory for the SQLite database and the admin token [default: ./greenroom-data].
    #[arg(long, env = "GREENROOM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Admin API token [default: generated once, stored in <data_dir>/admin_token].
    #[arg(long, env = "GREENROOM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Database URL, sqlite://... or postgres://... (also read from DATABASE_URL)
    /// [default: sqlite://<data_dir>/greenroom.db].
    #[arg(long, env = "GREENROOM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// First WebRTC UDP port; worker i listens on port + i [default: 8189].
    #[arg(long, env = "GREENROOM_RTC_UDP_PORT")]
    pub rtc_udp_port: Option<u16>,
    /// WebRTC worker tasks (one UDP port each) [default: number of cores].
    #[arg(long, env = "GREENROOM_RTC_WORKERS")]
    pub rtc_workers: Option<usize>,
    /// Address the WebRTC UDP sockets bind to [default: 0.0.0.0].
    #[arg(long, env = "GREENROOM_RTC_BIND_IP")]
    pub rtc_bind_ip: Option<IpAddr>,
    /// Addresses announced in ICE candidates, comma-separated [default: the host's addresses].
    #[arg(long, env = "GREENROOM_RTC_ADVERTISE_IPS", value_delimiter = ',')]
    pub rtc_advertise_ips: Option<Vec<IpAddr>>,
    /// STUN/TURN server URLs, comma-separated (stun:, stuns:, turn:, turns:) [default: none].
    #[arg(long, env = "GREENROOM_ICE_SERVERS", value_delimiter = ',')]
    pub ice_servers: Option<Vec<String>>,
    /// Username for the TURN servers.
    #[arg(long, env = "GREENROOM_ICE_USERNAME", hide_env_values = true)]
    pub ice_username: Option<String>,
    /// Credential for the TURN servers.
    #[arg(long, env = "GREENROOM_ICE_CREDENTIAL", hide_env_values = true)]
    pub ice_credential: Option<String>,
    /// Log filter (tracing EnvFilter syntax) [default: info].
    #[arg(long, env = "GREENROOM_LOG")]
    pub log: Option<String>,
    /// HLS (and recordings) for every live stream: true or false [default: true].
    #[arg(long, env = "GREENROOM_HLS")]
    pub hls: Option<bool>,
    /// The HLS ladder: heights with optional bitrates, e.g. `1080:5M,720:2800k,480,360`
    /// [default: 1080:5M,720:2800k,480:1400k,360:800k].
    #[arg(long, env = "GREENROOM_HLS_LADDER")]
    pub hls_ladder: Option<String>,
    /// x264 preset of the HLS renditions [default: superfast].
    #[arg(long, env = "GREENROOM_HLS_PRESET")]
    pub hls_preset: Option<String>,
    /// HLS segment target duration in milliseconds, 1000..=10000 [default: 2000].
    #[arg(long, env = "GREENROOM_HLS_SEGMENT_MS")]
    pub hls_segment_ms: Option<u32>,
    /// LL-HLS part target duration in milliseconds, 100..=2000 and under the segment
    /// duration [default: 500].
    #[arg(long, env = "GREENROOM_HLS_PART_MS")]
    pub hls_part_ms: Option<u32>,
    /// Local object storage for recordings [default: DATA_DIR/media]; unused with S3.
    #[arg(long, env = "GREENROOM_STORAGE_DIR")]
    pub storage_dir: Option<PathBuf>,
    /// S3 bucket for recordings (turns S3 storage on).
    #[arg(long, env = "GREENROOM_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3 region [default: us-east-1].
    #[arg(long, env = "GREENROOM_S3_REGION")]
    pub s3_region: Option<String>,
    /// S3-compatible endpoint URL (MinIO, R2, ...) [default: AWS].
    #[arg(long, env = "GREENROOM_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "GREENROOM_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "GREENROOM_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), as MinIO wants: true or false.
    #[arg(long, env = "GREENROOM_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,
    /// Key prefix inside the bucket.
    #[arg(long, env = "GREENROOM_S3_PREFIX")]
    pub s3_prefix: Option<String>,
    /// Days a replay is kept after its session ends, unless its stream says otherwise
    /// [default: 7].
    #[arg(long, env = "GREENROOM_RECORDING_RETENTION_DAYS")]
    pub recording_retention_days: Option<u32>,
    /// How often expired replays are looked for, in seconds [default: 3600].
    #[arg(long, env = "GREENROOM_RETENTION_INTERVAL_SECS")]
    pub retention_interval_secs: Option<u64>,
    /// Key that signs playback tokens, at least 32 bytes; every node of a cluster needs the
    /// same [default: generated once, stored in <data_dir>/playback.key].
    #[arg(long, env = "GREENROOM_PLAYBACK_KEY", hide_env_values = true)]
    pub playback_key: Option<String>,
    /// Lifetime of watch and replay tokens in seconds, 10..=86400 [default: 600].
    #[arg(long, env = "GREENROOM_PLAYBACK_TOKEN_TTL_SECS")]
    pub playback_token_ttl_secs: Option<u64>,
    /// Stripe secret key (sk_... or rk_...); turns payments on.
    #[arg(long, env = "GREENROOM_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Signing secret of the Stripe webhook endpoint (whsec_...); needed with payments.
    #[arg(long, env = "GREENROOM_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
    /// Base URL of the Stripe API [default: https://api.stripe.com].
    #[arg(long, env = "GREENROOM_STRIPE_API_BASE")]
    pub stripe_api_base: Option<String>,
    /// Platform fee on passes and tips in basis points, 0..=5000 [default: 500 = 5 %].
    #[arg(long, env = "GREENROOM_PLATFORM_FEE_BPS")]
    pub platform_fee_bps: Option<u32>,
    /// Smallest tip in major units of the currency [default: 1].
    #[arg(long, env = "GREENROOM_TIP_MIN")]
    pub tip_min: Option<i64>,
    /// Largest tip in major units of the currency [default: 1000].
    #[arg(long, env = "GREENROOM_TIP_MAX")]
    pub tip_max: Option<i64>,
    /// ISO 4217 currency of tips and token packs [default: usd].
    #[arg(long, env = "GREENROOM_CURRENCY")]
    pub currency: Option<String>,
    /// Token packs for sale, `id:tokens:price_minor,...` in the currency
    /// [default: small:100:499,medium:500:1999,large:1200:3999].
    #[arg(long, env = "GREENROOM_TOKEN_PACKS")]
    pub token_packs: Option<String>,
    /// Shared secret of an identity provider signing HS256 JWTs (at least 32 bytes).
    #[arg(long, env = "GREENROOM_JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<String>,
    /// PEM public key of an identity provider signing RS256 (RSA) or ES256 (P-256) JWTs.
    #[arg(long, env = "GREENROOM_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// The `iss` identity tokens must carry (needed with a JWT key).
    #[arg(long, env = "GREENROOM_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` identity tokens must carry (needed with a JWT key).
    #[arg(long, env = "GREENROOM_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

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

/// Parses `id:tokens:price_minor,...` (empty: no packs) in `currency`.
pub fn parse_token_packs(text: &str, currency: &str) -> Result<Vec<TokenPack>, String> {
    let mut packs: Vec<TokenPack> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let fields: Vec<&str> = item.split(':').map(str::trim).collect();
        let [id, tokens, price] = fields[..] else {
            return Err(format!("{item:?} is not id:tokens:price_minor"));
        };
        if id.is_empty()
            || id.len() > 32
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "pack id {id:?} must be 1 to 32 characters from a-z 0-9 _ -"
            ));
        }
        if packs.iter().any(|p| p.id == id) {
            return Err(format!("pack id {id:?} is listed twice"));
        }
        let tokens: i64 = tokens
            .parse()
            .ok()
            .filter(|t| (1..=MAX_PACK_TOKENS).contains(t))
            .ok_or_else(|| format!("{item:?}: tokens must be 1..={MAX_PACK_TOKENS}"))?;
        let max_price = greenroom_control::money::major_to_minor(MAX_TIP, currency)
            .map_err(|err| err.to_string())?;
        let amount_minor: i64 = price
            .parse()
            .ok()
            .filter(|p| (1..=max_price).contains(p))
            .ok_or_else(|| format!("{item:?}: the price must be 1..={max_price} minor units"))?;
        packs.push(TokenPack {
            id: id.to_owned(),
            tokens,
            amount_minor,
            currency: currency.to_owned(),
        });
    }
    if packs.len() > MAX_TOKEN_PACKS {
        return Err(format!("at most {MAX_TOKEN_PACKS} packs"));
    }
    Ok(packs)
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

    /// Playback tokens, payments and external identity.
    fn validate_business(&mut self, token_packs: &str) -> Result<(), ConfigError> {
        use greenroom_control::playback_token::MIN_KEY_BYTES;
        if let Some(key) = &self.playback_key
            && key.len() < MIN_KEY_BYTES
        {
            return Err(invalid(
                "playback_key",
                format!("must have at least {MIN_KEY_BYTES} bytes"),
            ));
        }
        if !(10..=86_400).contains(&self.playback_token_ttl_secs) {
            return Err(invalid("playback_token_ttl_secs", "must be 10..=86400"));
        }
        match (&self.stripe_secret_key, &self.stripe_webhook_secret) {
            (None, None) => {}
            (Some(key), Some(secret)) => {
                if !(key.starts_with("sk_") || key.starts_with("rk_"))
                    || !key.chars().all(|c| c.is_ascii_graphic())
                {
                    return Err(invalid(
                        "stripe_secret_key",
                        "must be a Stripe secret key (sk_...) or restricted key (rk_...)",
                    ));
                }
                if !secret.starts_with("whsec_")
                    || secret.len() <= "whsec_".len()
                    || !secret.chars().all(|c| c.is_ascii_graphic())
                {
                    return Err(invalid(
                        "stripe_webhook_secret",
                        "must be a webhook signing secret (whsec_...)",
                    ));
                }
            }
            _ => {
                return Err(invalid(
                    "stripe_secret_key",
                    "set both GREENROOM_STRIPE_SECRET_KEY and GREENROOM_STRIPE_WEBHOOK_SECRET, \
                     or neither",
                ));
            }
        }
        if let Some(base) = self.stripe_api_base.take() {
            let base = base.trim().trim_end_matches('/').to_owned();
            if !(base.starts_with("http://") || base.starts_with("https://"))
                || base.contains(['?', '#', ' '])
            {
                return Err(invalid(
                    "stripe_api_base",
                    "must be an http:// or https:// URL",
                ));
            }
            self.stripe_api_base = Some(base);
        }
        if self.platform_fee_bps > MAX_PLATFORM_FEE_BPS {
            return Err(invalid(
                "platform_fee_bps",
                format!("must be 0..={MAX_PLATFORM_FEE_BPS} (0 % to 50 %)"),
            ));
        }
        self.currency = self.currency.trim().to_ascii_lowercase();
        if greenroom_control::money::currency_exponent(&self.currency).is_none() {
            return Err(invalid(
                "currency",
                format!("{:?} is not an ISO 4217 code like usd", self.currency),
            ));
        }
        if self.tip_min < 1 || self.tip_min > self.tip_max || self.tip_max > MAX_TIP {
            return Err(invalid(
                "tip_min",
                format!("tip limits must satisfy 1 <= tip_min <= tip_max <= {MAX_TIP}"),
            ));
        }
        self.token_packs = parse_token_packs(token_packs, &self.currency)
            .map_err(|reason| invalid("token_packs", reason))?;
        for (setting, value) in [
            ("jwt_issuer", &self.jwt_issuer),
            ("jwt_audience", &self.jwt_audience),
        ] {
            if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(setting, "must not be empty"));
            }
        }
        if let Some(identity) = self.identity_config()? {
            greenroom_control::ExternalIdentity::new(identity).map_err(|err| {
                let setting = if self.jwt_public_key_file.is_some() {
                    "jwt_public_key_file"
                } else {
                    "jwt_hs256_secret"
                };
                invalid(setting, err.to_string())
            })?;
        }
        Ok(())
    }

    /// The identity provider settings (the public key file read now), `None` when JWT
    /// sign-in is off.
    pub fn identity_config(
        &self,
    ) -> Result<Option<greenroom_control::IdentityConfig>, ConfigError> {
        use greenroom_control::{IdentityConfig, IdentityKey};
        let key = match (&self.jwt_hs256_secret, &self.jwt_public_key_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "jwt_hs256_secret",
                    "set GREENROOM_JWT_HS256_SECRET or GREENROOM_JWT_PUBLIC_KEY_FILE, not both",
                ));
            }
            (Some(secret), None) => IdentityKey::Hs256(secret.as_bytes().to_vec()),
            (None, Some(path)) => {
                let pem = std::fs::read(path).map_err(|err| {
                    invalid(
                        "jwt_public_key_file",
                        format!("cannot read {}: {err}", path.display()),
                    )
                })?;
                IdentityKey::PublicKeyPem(pem)
            }
            (None, None) => {
                if self.jwt_issuer.is_some() || self.jwt_audience.is_some() {
                    return Err(invalid(
                        "jwt_issuer",
                        "an issuer or audience needs GREENROOM_JWT_HS256_SECRET or \
                         GREENROOM_JWT_PUBLIC_KEY_FILE",
                    ));
                }
                return Ok(None);
            }
        };
        let (Some(issuer), Some(audience)) = (&self.jwt_issuer, &self.jwt_audience) else {
            return Err(invalid(
                "jwt_issuer",
                "JWT sign-in needs both GREENROOM_JWT_ISSUER and GREENROOM_JWT_AUDIENCE",
            ));
        };
        Ok(Some(IdentityConfig {
            key,
            issuer: issuer.trim().to_owned(),
            audience: audience.trim().to_owned(),
        }))
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
#[path = "config_tests.rs"]
mod tests;
