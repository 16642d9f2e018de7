//! Shared test setup: a real engine on loopback, a map-backed authority, request helpers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use greenroom_ingest::{IngestError, IngestState, StreamAuthority};
use greenroom_rtc::client::{Client, ClientKind};
use greenroom_rtc::{IceServer, RtcConfig, RtcEngine};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const LIVE: &str = "livestreamaaaaaa";
pub const LIVE_KEY: &str = "sk_live_key_0123456789abcdefghijk";
pub const ENDED: &str = "endedstreamaaaaa";
pub const ENDED_KEY: &str = "sk_ended_key_0123456789abcdefghij";
/// The authority fails internally for this stream.
pub const BROKEN: &str = "brokenstreamaaaa";
/// A paid stream: watching needs the token `watch:paidstreamaaaaaa`.
pub const PAID: &str = "paidstreamaaaaaa";
pub const PAID_KEY: &str = "sk_paid_key_0123456789abcdefghijk";
/// A cancelled stream: publishing is an invalid transition.
pub const CANCELLED: &str = "cancelledstreama";
pub const CANCELLED_KEY: &str = "sk_cancelled_key_0123456789abcdef";
/// Playback tokens the test authority understands: `{right}:{stream}` is genuine and valid,
/// these two are expired and forged.
pub const EXPIRED_TOKEN: &str = "gr1.expired";
pub const FORGED_TOKEN: &str = "gr1.forged";

/// The playback token for `right` (`watch` or `publish`) on `stream`.
pub fn playback_token(right: &str, stream: &str) -> String {
    format!("gr1.{right}:{stream}")
}

/// What the test authority checks a playback token with: its right and stream, or the error.
/// When the test's watch tokens expire (Unix seconds): far ahead.
pub const PAID_TOKEN_EXPIRY: i64 = 4_102_444_800;

fn check_token(token: &str, stream: &str, right: &str) -> Result<(), IngestError> {
    match token {
        EXPIRED_TOKEN => Err(IngestError::TokenExpired),
        FORGED_TOKEN => Err(IngestError::InvalidToken {
            reason: "the signature does not match".to_owned(),
        }),
        _ if token == playback_token(right, stream) => Ok(()),
        _ if token.starts_with("gr1.") => Err(IngestError::TokenWrongStream {
            stream: stream.to_owned(),
        }),
        _ => Err(IngestError::InvalidToken {
            reason: "not a playback token".to_owned(),
        }),
    }
}

#[derive(Clone)]
pub struct TestAuthority {
    streams: Arc<HashMap<&'static str, (&'static str, bool)>>,
}

impl TestAuthority {
    pub fn new() -> TestAuthority {
        let mut streams = HashMap::new();
        streams.insert(LIVE, (LIVE_KEY, false));
        streams.insert(ENDED, (ENDED_KEY, true));
        streams.insert(PAID, (PAID_KEY, false));
        streams.insert(CANCELLED, (CANCELLED_KEY, true));
        TestAuthority {
            streams: Arc::new(streams),
        }
    }

    fn lookup(&self, stream_id: &str) -> Result<(&'static str, bool), IngestError> {
        if stream_id == BROKEN {
            return Err(IngestError::internal("database is on fire (secret detail)"));
        }
        self.streams
            .get(stream_id)
            .copied()
            .ok_or_else(|| IngestError::StreamNotFound {
                stream: stream_id.to_owned(),
            })
    }
}

impl StreamAuthority for TestAuthority {
    async fn authorize_publish(
        &self,
        stream_id: &str,
        bearer: Option<&str>,
    ) -> Result<(), IngestError> {
        let (key, ended) = self.lookup(stream_id)?;
        match bearer {
            Some(token) if token.starts_with("gr1.") => check_token(token, stream_id, "publish")?,
            Some(token) if token == key => {}
            _ => return Err(IngestError::Unauthorized),
        }
        if stream_id == CANCELLED {
            return Err(IngestError::InvalidTransition {
                stream: stream_id.to_owned(),
                state: "cancelled",
                action: "publish",
            });
        }
        if ended {
            return Err(IngestError::StreamEnded {
                stream: stream_id.to_owned(),
            });
        }
        Ok(())
    }

    async fn authorize_watch(
        &self,
        stream_id: &str,
        token: Option<&str>,
    ) -> Result<Option<i64>, IngestError> {
        let (_, ended) = self.lookup(stream_id)?;
        if ended {
            return Err(IngestError::StreamEnded {
                stream: stream_id.to_owned(),
            });
        }
        if stream_id == PAID {
            let token = token.ok_or_else(|| IngestError::TokenRequired {
                stream: stream_id.to_owned(),
            })?;
            check_token(token, stream_id, "watch")?;
            return Ok(Some(PAID_TOKEN_EXPIRY));
        }
        Ok(None)
    }
}

pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A real engine on 127.0.0.1, any port, one worker, one STUN and one TURN server.
pub async fn engine() -> RtcEngine {
    RtcEngine::start(RtcConfig {
        bind_ip: LOOPBACK,
        udp_port: 0,
        workers: 1,
        detach_viewers: true,
        advertise_ips: Vec::new(),
        ice_servers: vec![
            IceServer {
                urls: vec!["stun:stun.example.net:3478".to_owned()],
                username: None,
                credential: None,
            },
            IceServer {
                urls: vec!["turn:turn.example.net:3478?transport=udp".to_owned()],
                username: Some("alice".to_owned()),
                credential: Some("s3cret".to_owned()),
            },
        ],
    })
    .await
    .expect("the engine starts on loopback")
}

pub async fn app() -> (Router, RtcEngine) {
    let engine = engine().await;
    let router = greenroom_ingest::router(IngestState::new(engine.clone(), TestAuthority::new()));
    (router, engine)
}

/// A real offer from the rtc crate's client.
pub fn publisher_offer() -> String {
    Client::new(ClientKind::Publisher { simulcast: true }, LOOPBACK)
        .and_then(|client| client.offer_sdp())
        .expect("the test publisher makes an offer")
}

pub fn viewer_offer() -> String {
    Client::new(ClientKind::Viewer, LOOPBACK)
        .and_then(|client| client.offer_sdp())
        .expect("the test viewer makes an offer")
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `code` of a JSON error body.
    pub fn error_code(&self) -> String {
        let json: serde_json::Value =
            serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null);
        json["error"]["code"]
            .as_str()
            .unwrap_or("<no code>")
            .to_owned()
    }

    pub fn error_message(&self) -> String {
        let json: serde_json::Value =
            serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null);
        json["error"]["message"].as_str().unwrap_or("").to_owned()
    }

    /// Asserts the status, the JSON error code and the CORS headers.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(self.header(header::CONTENT_TYPE), Some("application/json"));
        assert_eq!(self.error_code(), code, "body: {}", self.text());
        assert_cors(self);
    }
}

pub fn assert_cors(answer: &Answer) {
    assert_eq!(
        answer.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("*"),
        "CORS on {}",
        answer.status
    );
    assert_eq!(
        answer.header(header::ACCESS_CONTROL_EXPOSE_HEADERS),
        Some("Location, ETag, Link, Accept-Patch, Accept-Post")
    );
}

pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("the router answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("the body is read").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A request builder shortcut: method, uri, headers, body.
pub fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).expect("a valid test request")
}

pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// A trickle fragment with one host candidate and no credentials.
pub const TRICKLE_FRAGMENT: &str =
    "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n";

/// A fragment with new ICE credentials: an ICE restart.
pub const RESTART_FRAGMENT: &str = "a=ice-ufrag:newu\r\na=ice-pwd:newpasswordnewpassword12\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host\r\n";
