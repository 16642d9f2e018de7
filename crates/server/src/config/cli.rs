//! The command line: `greenroom [serve|check-config]` and every setting as a flag with its
//! `GREENROOM_*` environment variable.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Carry viewers without webrtc-rs once their handshake is done: true or false
    /// [default: true].
    #[arg(long, env = "GREENROOM_RTC_DETACH_VIEWERS")]
    pub rtc_detach_viewers: Option<bool>,
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
