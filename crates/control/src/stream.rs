//! The stream record, its status, its key and how ids and keys are made.

use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::ControlError;

/// Longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

const ID_LEN: usize = 16;
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
const KEY_PREFIX: &str = "sk_";
const KEY_RANDOM_LEN: usize = 32;
const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The stored lifecycle of a stream. Idle and live are derived from the engine, not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamStatus {
    /// Created and not ended: may be published to and watched.
    Created,
    /// Ended by its owner; final.
    Ended,
}

impl StreamStatus {
    pub(crate) fn as_db(self) -> &'static str {
        match self {
            StreamStatus::Created => "created",
            StreamStatus::Ended => "ended",
        }
    }

    pub(crate) fn from_db(value: &str) -> Option<StreamStatus> {
        match value {
            "created" => Some(StreamStatus::Created),
            "ended" => Some(StreamStatus::Ended),
            _ => None,
        }
    }
}

/// A publisher's secret for one stream. `Debug` never shows it; compare with [`StreamKey::matches`].
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKey(String);

impl StreamKey {
    pub(crate) fn generate() -> StreamKey {
        StreamKey(format!(
            "{KEY_PREFIX}{}",
            random_string(KEY_ALPHABET, KEY_RANDOM_LEN)
        ))
    }

    pub(crate) fn from_db(value: String) -> StreamKey {
        StreamKey(value)
    }

    /// The key itself, for showing it to the stream's owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this key, compared in constant time (for equal lengths).
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl std::fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamKey(<redacted>)")
    }
}

/// One broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// 16 lowercase base32 characters.
    pub id: String,
    pub title: String,
    pub stream_key: StreamKey,
    pub status: StreamStatus,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds; set once the stream has ended.
    pub ended_at_ms: Option<i64>,
    /// The RTSP source the server pulls, if the stream has one.
    pub source: Option<StreamSource>,
    /// RTMP/RTSP sources are transcoded into a three-layer simulcast ladder (q, h, f).
    pub simulcast_ladder: bool,
    /// Each live session is recorded as an HLS replay.
    pub record: bool,
    /// How long its recordings are kept, from 1 to [`MAX_RECORDING_RETENTION_DAYS`] days;
    /// `None` = the server's default.
    pub recording_retention_days: Option<u32>,
    /// The channel it belongs to; `None` for streams an operator made with the admin token.
    pub channel_id: Option<String>,
    /// Free text shown on the watch page, at most [`MAX_DESCRIPTION_CHARS`] characters.
    pub description: String,
    /// When it is announced to start (unix ms), if it was scheduled.
    pub scheduled_at_ms: Option<i64>,
    /// When it first went live (unix ms); set once, by the first publish.
    pub started_at_ms: Option<i64>,
    /// When it was cancelled (unix ms); a cancelled stream is also ended and never went live.
    pub cancelled_at_ms: Option<i64>,
    /// Whether watching needs a grant.
    pub access: StreamAccess,
    /// Price in wallet tokens of enrolling in this stream alone; only paid streams have one.
    pub price_tokens: Option<i64>,
    /// Days after the stream ends during which grant holders may watch its replays; `None` =
    /// as long as the recordings are kept.
    pub replay_access_days: Option<u32>,
}

/// Whether watching a stream needs a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamAccess {
    /// Anyone may watch, without a token.
    #[default]
    Free,
    /// Watching needs a grant (a pass covering the stream, or tokens spent on it) and a
    /// playback token.
    Paid,
}

impl StreamAccess {
    /// `free` or `paid`, as stored and as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamAccess::Free => "free",
            StreamAccess::Paid => "paid",
        }
    }

    /// `free` or `paid`.
    pub fn parse(value: &str) -> Option<StreamAccess> {
        match value {
            "free" => Some(StreamAccess::Free),
            "paid" => Some(StreamAccess::Paid),
            _ => None,
        }
    }
}

/// Where a stream is in its lifecycle, derived from what is stored and whether the engine
/// sees it live (see [`Stream::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// Has a scheduled time and has never gone live.
    Scheduled,
    /// Not ended, not live: not scheduled, or started at least once.
    Idle,
    /// A publisher is sending media now.
    Live,
    /// Ended by its owner (after going live, or without a schedule); final.
    Ended,
    /// Cancelled before it ever went live; final.
    Cancelled,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Scheduled => "scheduled",
            StreamState::Idle => "idle",
            StreamState::Live => "live",
            StreamState::Ended => "ended",
            StreamState::Cancelled => "cancelled",
        }
    }
}

/// Longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 5000;
/// Highest token price of a stream.
pub const MAX_PRICE_TOKENS: i64 = 1_000_000;
/// Shortest and longest replay access, in days.
pub const MIN_REPLAY_ACCESS_DAYS: u32 = 1;
pub const MAX_REPLAY_ACCESS_DAYS: u32 = 3650;
/// How far ahead a stream may be scheduled (one year of 366 days), in milliseconds.
pub const MAX_SCHEDULE_AHEAD_MS: i64 = 366 * 24 * 3600 * 1000;

/// What a new stream is made of; [`Store::create_stream_from`](crate::Store::create_stream_from)
/// checks it. The default records every session with the server's default retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStream {
    /// Validated and trimmed with [`validate_title`].
    pub title: String,
    /// The RTSP source the server pulls, if any (checked with [`StreamSource::new`]).
    pub source: Option<StreamSource>,
    /// Transcode an RTMP/RTSP source into a three-layer simulcast ladder.
    pub simulcast_ladder: bool,
    /// Record each live session.
    pub record: bool,
    /// Checked with [`validate_recording_retention_days`]; `None` = the server's default.
    pub recording_retention_days: Option<u32>,
    /// The channel the stream goes in (must exist); `None` for an operator's stream.
    pub channel_id: Option<String>,
    /// At most [`MAX_DESCRIPTION_CHARS`] characters.
    pub description: String,
    /// A start time in the future (at most [`MAX_SCHEDULE_AHEAD_MS`] ahead) makes the stream
    /// `scheduled`.
    pub scheduled_at_ms: Option<i64>,
    pub access: StreamAccess,
    /// 1 to [`MAX_PRICE_TOKENS`]; only for paid streams.
    pub price_tokens: Option<i64>,
    /// [`MIN_REPLAY_ACCESS_DAYS`] to [`MAX_REPLAY_ACCESS_DAYS`].
    pub replay_access_days: Option<u32>,
}

impl Default for NewStream {
    fn default() -> NewStream {
        NewStream {
            title: String::new(),
            source: None,
            simulcast_ladder: false,
            record: true,
            recording_retention_days: None,
            channel_id: None,
            description: String::new(),
            scheduled_at_ms: None,
            access: StreamAccess::Free,
            price_tokens: None,
            replay_access_days: None,
        }
    }
}

/// Shortest recording retention a stream may set, in days.
pub const MIN_RECORDING_RETENTION_DAYS: u32 = 1;
/// Longest recording retention a stream may set, in days (about ten years).
pub const MAX_RECORDING_RETENTION_DAYS: u32 = 3650;

/// Checks a stream's recording retention: [`MIN_RECORDING_RETENTION_DAYS`] to
/// [`MAX_RECORDING_RETENTION_DAYS`] days.
pub fn validate_recording_retention_days(days: u32) -> Result<u32, ControlError> {
    if (MIN_RECORDING_RETENTION_DAYS..=MAX_RECORDING_RETENTION_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(ControlError::InvalidRetention {
            reason: format!(
                "recording_retention_days must be from {MIN_RECORDING_RETENTION_DAYS} to \
                 {MAX_RECORDING_RETENTION_DAYS}, not {days}"
            ),
        })
    }
}

fn invalid_setting(reason: impl Into<String>) -> ControlError {
    ControlError::InvalidStreamSetting {
        reason: reason.into(),
    }
}

/// Checks a description and returns it trimmed: at most [`MAX_DESCRIPTION_CHARS`]
/// characters; line breaks and tabs are the only control characters allowed.
pub fn validate_description(description: &str) -> Result<String, ControlError> {
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(invalid_setting(format!(
            "a description has at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    if description
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid_setting(
            "a description must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(description.to_owned())
}

/// Checks a scheduled start: after `now_ms` and at most [`MAX_SCHEDULE_AHEAD_MS`] later.
pub fn validate_schedule(at_ms: i64, now_ms: i64) -> Result<i64, ControlError> {
    if at_ms <= now_ms {
        return Err(invalid_setting("scheduled_at must be in the future"));
    }
    if at_ms > now_ms.saturating_add(MAX_SCHEDULE_AHEAD_MS) {
        return Err(invalid_setting(
            "scheduled_at must be at most a year from now",
        ));
    }
    Ok(at_ms)
}

/// Checks a token price: 1 to [`MAX_PRICE_TOKENS`].
pub fn validate_price_tokens(price: i64) -> Result<i64, ControlError> {
    if !(1..=MAX_PRICE_TOKENS).contains(&price) {
        return Err(invalid_setting(format!(
            "price_tokens must be from 1 to {MAX_PRICE_TOKENS}"
        )));
    }
    Ok(price)
}

/// Checks a replay access: [`MIN_REPLAY_ACCESS_DAYS`] to [`MAX_REPLAY_ACCESS_DAYS`] days.
pub fn validate_replay_access_days(days: u32) -> Result<u32, ControlError> {
    if !(MIN_REPLAY_ACCESS_DAYS..=MAX_REPLAY_ACCESS_DAYS).contains(&days) {
        return Err(invalid_setting(format!(
            "replay_access_days must be from {MIN_REPLAY_ACCESS_DAYS} to \
             {MAX_REPLAY_ACCESS_DAYS}"
        )));
    }
    Ok(days)
}

/// Checks how access and token price fit together: only a paid stream has a token price.
/// (A paid stream without a channel is watched by the admin only: no pass or token sale can
/// cover it.)
pub(crate) fn check_access(
    access: StreamAccess,
    price_tokens: Option<i64>,
) -> Result<(), ControlError> {
    if let Some(price) = price_tokens {
        validate_price_tokens(price)?;
        if access != StreamAccess::Paid {
            return Err(invalid_setting("only a paid stream has a token price"));
        }
    }
    Ok(())
}

/// A change to a stream's public settings with PATCH semantics: `None` leaves a setting as
/// it is; `Some(None)` clears a price or a replay access limit. Setting `access` to free also
/// clears the token price (giving a price with it is refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSettingsUpdate {
    pub description: Option<String>,
    pub access: Option<StreamAccess>,
    pub price_tokens: Option<Option<i64>>,
    pub replay_access_days: Option<Option<u32>>,
}

/// Longest source URL accepted, in bytes.
pub const MAX_SOURCE_URL_BYTES: usize = 2048;

/// How RTP travels from an RTSP source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceTransport {
    /// Interleaved in the RTSP TCP connection (the default).
    #[default]
    Tcp,
    /// RTP over UDP (LAN only).
    Udp,
}

impl SourceTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceTransport::Tcp => "tcp",
            SourceTransport::Udp => "udp",
        }
    }

    /// `tcp` or `udp`, as stored and as the API takes them.
    pub fn parse(value: &str) -> Option<SourceTransport> {
        match value {
            "tcp" => Some(SourceTransport::Tcp),
            "udp" => Some(SourceTransport::Udp),
            _ => None,
        }
    }
}

/// Where a stream pulls its media from: an `rtsp://` or `rtsps://` URL (credentials, if any,
/// in it) and the RTP transport. `Debug` masks the password.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamSource {
    pub url: String,
    pub transport: SourceTransport,
}

impl std::fmt::Debug for StreamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSource")
            .field("url", &redact_password(&self.url))
            .field("transport", &self.transport)
            .finish()
    }
}

impl StreamSource {
    /// Checks a source: `rtsp://` or `rtsps://` (any case), a host, an optional numeric port,
    /// at most [`MAX_SOURCE_URL_BYTES`], no whitespace or control characters. The URL is
    /// trimmed; the transport defaults to TCP.
    pub fn new(url: &str, transport: Option<&str>) -> Result<StreamSource, ControlError> {
        let invalid = |reason: &str| ControlError::InvalidSourceUrl {
            reason: reason.to_owned(),
        };
        let transport = match transport {
            None => SourceTransport::Tcp,
            Some(value) => SourceTransport::parse(value)
                .ok_or_else(|| invalid("source_transport must be \"tcp\" or \"udp\""))?,
        };
        let url = url.trim();
        if url.len() > MAX_SOURCE_URL_BYTES {
            return Err(invalid("the source URL is longer than 2048 bytes"));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "the source URL must not contain spaces or control characters",
            ));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid(
                "the source URL must start with rtsp:// or rtsps://",
            ));
        };
        if !scheme.eq_ignore_ascii_case("rtsp") && !scheme.eq_ignore_ascii_case("rtsps") {
            return Err(invalid(
                "the source URL must start with rtsp:// or rtsps://",
            ));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match host_port.strip_prefix('[') {
            // [IPv6]:port
            Some(v6) => match v6.split_once(']') {
                Some((host, after)) => (host, after.strip_prefix(':')),
                None => return Err(invalid("the source URL has an unclosed [IPv6] host")),
            },
            None => match host_port.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            },
        };
        if host.is_empty() {
            return Err(invalid("the source URL has no host"));
        }
        if let Some(port) = port
            && !port.is_empty()
            && port.parse::<u16>().is_err()
        {
            return Err(invalid(
                "the source URL's port is not a number from 0 to 65535",
            ));
        }
        Ok(StreamSource {
            url: url.to_owned(),
            transport,
        })
    }
}

/// `url` with the password of its user info replaced by `***`.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl Stream {
    pub fn is_ended(&self) -> bool {
        self.status == StreamStatus::Ended
    }

    /// Anyone may watch it without a token.
    pub fn is_free(&self) -> bool {
        self.access == StreamAccess::Free
    }

    /// Scheduled and never gone live.
    pub fn is_scheduled(&self) -> bool {
        self.status == StreamStatus::Created
            && self.scheduled_at_ms.is_some()
            && self.started_at_ms.is_none()
    }

    /// Its lifecycle state; `live` is whether the engine sees a publisher now (ignored for
    /// ended streams).
    pub fn state(&self, live: bool) -> StreamState {
        match self.status {
            StreamStatus::Ended if self.cancelled_at_ms.is_some() => StreamState::Cancelled,
            StreamStatus::Ended => StreamState::Ended,
            StreamStatus::Created if live => StreamState::Live,
            StreamStatus::Created if self.is_scheduled() => StreamState::Scheduled,
            StreamStatus::Created => StreamState::Idle,
        }
    }
}

/// Whether `id` has the shape of a stream id (so a lookup of anything else can answer "not
/// found" without a query). Recording ids have the same shape.
pub fn is_stream_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| ID_ALPHABET.contains(&b))
}

/// A fresh stream or recording id: [`ID_LEN`] lowercase base32 characters.
pub(crate) fn generate_id() -> String {
    random_string(ID_ALPHABET, ID_LEN)
}

/// Checks a title and returns it trimmed: 1 to [`MAX_TITLE_CHARS`] characters, no control
/// characters.
pub fn validate_title(title: &str) -> Result<String, ControlError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(ControlError::InvalidTitle {
            reason: "the title must not be empty".to_owned(),
        });
    }
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        return Err(ControlError::InvalidTitle {
            reason: format!(
                "the title has {chars} characters, at most {MAX_TITLE_CHARS} are allowed"
            ),
        });
    }
    if title.chars().any(char::is_control) {
        return Err(ControlError::InvalidTitle {
            reason: "the title must not contain control characters".to_owned(),
        });
    }
    Ok(title.to_owned())
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_documented_shape() {
        for _ in 0..100 {
            let id = generate_id();
            assert!(is_stream_id(&id), "{id}");
        }
        assert!(!is_stream_id("ABCDEFGHIJKLMNOP"));
        assert!(!is_stream_id("abc"));
        assert!(!is_stream_id("abcdefghijklmno1"));
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = StreamKey::generate();
        let text = key.expose();
        assert!(text.starts_with("sk_"));
        assert_eq!(text.len(), 3 + KEY_RANDOM_LEN);
        assert!(text[3..].bytes().all(|b| KEY_ALPHABET.contains(&b)));
        assert_ne!(key, StreamKey::generate());
    }

    #[test]
    fn key_matches_only_itself_and_debug_hides_it() {
        let key = StreamKey::generate();
        assert!(key.matches(key.expose()));
        assert!(!key.matches(""));
        assert!(!key.matches(&key.expose()[..10]));
        assert!(!key.matches(StreamKey::generate().expose()));
        assert!(!format!("{key:?}").contains(key.expose()));
    }

    #[test]
    fn sources_are_rtsp_urls_with_a_host() {
        let source = StreamSource::new(" rtsp://u:p@cam.local:554/s1 ", None).expect("valid");
        assert_eq!(source.url, "rtsp://u:p@cam.local:554/s1");
        assert_eq!(source.transport, SourceTransport::Tcp);
        let udp = StreamSource::new("RTSPS://[::1]:8554/x", Some("udp")).expect("valid");
        assert_eq!(udp.transport, SourceTransport::Udp);
        assert!(StreamSource::new("rtsp://10.0.0.2", None).is_ok());
        for bad in [
            "",
            "http://cam/x",
            "rtsp://",
            "rtsp:///x",
            "rtsp://u:p@/x",
            "rtsp://cam:99999/x",
            "rtsp://cam/a b",
            "rtsp://[::1/x",
            "cam.local/x",
        ] {
            assert!(
                matches!(
                    StreamSource::new(bad, None),
                    Err(ControlError::InvalidSourceUrl { .. })
                ),
                "{bad}"
            );
        }
        assert!(StreamSource::new("rtsp://cam/x", Some("sctp")).is_err());
        assert!(StreamSource::new(&format!("rtsp://cam/{}", "a".repeat(2100)), None).is_err());
    }

    #[test]
    fn source_debug_hides_the_password() {
        let source = StreamSource::new("rtsp://admin:hunter2@cam/x", None).expect("valid");
        let shown = format!("{source:?}");
        assert!(shown.contains("admin:***@cam/x"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn retention_is_one_day_to_ten_years() {
        assert_eq!(validate_recording_retention_days(1).ok(), Some(1));
        assert_eq!(validate_recording_retention_days(3650).ok(), Some(3650));
        for bad in [0, 3651, u32::MAX] {
            let err = validate_recording_retention_days(bad).err();
            assert!(
                matches!(err, Some(ControlError::InvalidRetention { .. })),
                "{bad}"
            );
            let text = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(text.contains("1 to 3650"), "{text}");
        }
        assert!(NewStream::default().record);
    }

    #[test]
    fn stream_settings_are_bounded() {
        assert_eq!(
            validate_description("  hi\nthere ").ok().as_deref(),
            Some("hi\nthere")
        );
        assert!(validate_description(&"é".repeat(MAX_DESCRIPTION_CHARS)).is_ok());
        assert!(validate_description(&"é".repeat(MAX_DESCRIPTION_CHARS + 1)).is_err());
        assert!(validate_description("a\u{0}b").is_err());
        assert!(validate_schedule(1_001, 1_000).is_ok());
        assert!(validate_schedule(1_000, 1_000).is_err());
        assert!(validate_schedule(1_000 + MAX_SCHEDULE_AHEAD_MS, 1_000).is_ok());
        assert!(validate_schedule(1_001 + MAX_SCHEDULE_AHEAD_MS, 1_000).is_err());
        assert!(validate_schedule(i64::MAX, i64::MAX - 5).is_ok());
        assert!(validate_schedule(i64::MIN, 0).is_err());
        for ok in [1, MAX_PRICE_TOKENS] {
            assert!(validate_price_tokens(ok).is_ok());
        }
        for bad in [0, -1, MAX_PRICE_TOKENS + 1] {
            assert!(validate_price_tokens(bad).is_err());
        }
        assert!(validate_replay_access_days(0).is_err());
        assert!(validate_replay_access_days(1).is_ok());
        assert!(validate_replay_access_days(3650).is_ok());
        assert!(validate_replay_access_days(3651).is_err());
        assert!(check_access(StreamAccess::Paid, Some(10)).is_ok());
        assert!(check_access(StreamAccess::Paid, None).is_ok());
        assert!(check_access(StreamAccess::Free, None).is_ok());
        assert!(check_access(StreamAccess::Free, Some(10)).is_err());
        assert!(check_access(StreamAccess::Paid, Some(0)).is_err());
    }

    #[test]
    fn state_follows_the_lifecycle() {
        let mut stream = Stream {
            id: generate_id(),
            title: "t".to_owned(),
            stream_key: StreamKey::generate(),
            status: StreamStatus::Created,
            created_at_ms: 1,
            ended_at_ms: None,
            source: None,
            simulcast_ladder: false,
            record: true,
            recording_retention_days: None,
            channel_id: None,
            description: String::new(),
            scheduled_at_ms: None,
            started_at_ms: None,
            cancelled_at_ms: None,
            access: StreamAccess::Free,
            price_tokens: None,
            replay_access_days: None,
        };
        assert_eq!(stream.state(false), StreamState::Idle);
        assert_eq!(stream.state(true), StreamState::Live);
        stream.scheduled_at_ms = Some(10);
        assert_eq!(stream.state(false), StreamState::Scheduled);
        assert_eq!(stream.state(true), StreamState::Live);
        stream.started_at_ms = Some(11);
        assert_eq!(stream.state(false), StreamState::Idle);
        stream.status = StreamStatus::Ended;
        assert_eq!(stream.state(true), StreamState::Ended);
        stream.cancelled_at_ms = Some(12);
        assert_eq!(stream.state(false).as_str(), "cancelled");
        assert!(stream.is_free());
        assert_eq!(StreamAccess::parse("paid"), Some(StreamAccess::Paid));
        assert_eq!(StreamAccess::parse("Paid"), None);
        assert_eq!(StreamAccess::Free.as_str(), "free");
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(validate_title("  Hello  ").ok().as_deref(), Some("Hello"));
        assert!(validate_title("").is_err());
        assert!(validate_title("   ").is_err());
        assert!(validate_title(&"é".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(validate_title(&"é".repeat(MAX_TITLE_CHARS + 1)).is_err());
        assert!(validate_title("a\u{7}b").is_err());
    }
}
