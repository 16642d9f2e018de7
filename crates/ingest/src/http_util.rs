//! What WHIP and WHEP share: media types, bearer tokens, ETags, bodies, path extraction, the
//! `201 Created` and `PATCH` answers, CORS and preflights.

use axum::body::Body;
use axum::extract::{FromRequestParts, Path};
use axum::response::{IntoResponse, Response};
use greenroom_rtc::{Answer, IceServer, PatchOutcome, SessionId};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::{IngestError, MAX_BODY_BYTES};

pub(crate) const SDP: &str = "application/sdp";
pub(crate) const TRICKLE: &str = "application/trickle-ice-sdpfrag";
pub(crate) const JSON: &str = "application/json";

/// The `{stream_id}` of an endpoint URL.
pub(crate) struct StreamPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for StreamPath {
    type Rejection = IngestError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, IngestError> {
        let Path(stream) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|err| IngestError::InvalidRequest {
                reason: err.body_text(),
            })?;
        Ok(StreamPath(stream))
    }
}

/// The `{stream_id}/{session_id}` of a session URL.
pub(crate) struct SessionPath {
    pub stream: String,
    pub session: SessionId,
}

impl<S: Send + Sync> FromRequestParts<S> for SessionPath {
    type Rejection = IngestError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, IngestError> {
        let Path((stream, session)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|err| IngestError::InvalidRequest {
                reason: err.body_text(),
            })?;
        Ok(SessionPath {
            stream,
            session: SessionId(session),
        })
    }
}

/// The media type of the request (lowercase, without parameters).
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim();
    Some(essence.to_ascii_lowercase())
}

/// Fails with 415 unless the request's media type is `expected`.
pub(crate) fn require_media_type(
    headers: &HeaderMap,
    expected: &'static str,
) -> Result<(), IngestError> {
    if media_type(headers).as_deref() == Some(expected) {
        Ok(())
    } else {
        Err(IngestError::UnsupportedMediaType { expected })
    }
}

/// `?token=`: a playback token given in the URL (players that cannot set headers).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct TokenQuery {
    pub token: Option<String>,
}

/// The credential a request presents: the bearer token, else a non-empty `?token=`.
pub(crate) fn presented_token<'a>(
    headers: &'a HeaderMap,
    query: &'a TokenQuery,
) -> Option<&'a str> {
    bearer_token(headers).or(query
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty()))
}

/// `?token=` of a query string, or a 400.
pub(crate) fn token_query(
    query: Result<axum::extract::Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<TokenQuery, IngestError> {
    query
        .map(|axum::extract::Query(query)| query)
        .map_err(|err| IngestError::InvalidRequest {
            reason: err.body_text(),
        })
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The `If-Match` header as the engine takes it: `"x"` and `W/"x"` become `x`; `*` stays.
/// A header that is not text cannot match anything.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<String>, IngestError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| IngestError::InvalidRequest {
        reason: "the If-Match header is not ASCII".to_owned(),
    })?;
    let value = value.trim();
    let value = value.strip_prefix("W/").unwrap_or(value);
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Ok(Some(value.to_owned()))
}

/// Reads the whole body, at most [`MAX_BODY_BYTES`].
pub(crate) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, IngestError> {
    let too_large = IngestError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large),
        Err(err) => Err(IngestError::InvalidRequest {
            reason: format!("reading the body failed: {err}"),
        }),
    }
}

/// Reads an SDP offer or fragment: non-empty UTF-8.
pub(crate) async fn read_sdp(headers: &HeaderMap, body: Body) -> Result<String, IngestError> {
    let bytes = read_body(headers, body).await?;
    let text = String::from_utf8(bytes).map_err(|_| IngestError::InvalidSdp {
        reason: "the body is not UTF-8".to_owned(),
    })?;
    if text.trim().is_empty() {
        return Err(IngestError::InvalidSdp {
            reason: "the body is empty".to_owned(),
        });
    }
    Ok(text)
}

/// `"etag"`, quoted once.
fn quoted_etag(etag: &str) -> Result<HeaderValue, IngestError> {
    let quoted = if etag.starts_with('"') {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    };
    HeaderValue::from_str(&quoted).map_err(|_| {
        IngestError::internal(format!(
            "the engine made an ETag that is not a header value: {etag:?}"
        ))
    })
}

/// `Link: <url>; rel="ice-server"` values, one per URL (RFC 9725 §4.6).
fn ice_server_links(servers: &[IceServer]) -> Vec<HeaderValue> {
    let mut links = Vec::new();
    for server in servers {
        for url in &server.urls {
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            if let (Some(username), Some(credential)) = (&server.username, &server.credential) {
                link.push_str(&format!(
                    "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    quote_escape(username),
                    quote_escape(credential)
                ));
            }
            match HeaderValue::from_str(&link) {
                Ok(value) => links.push(value),
                Err(_) => {
                    tracing::warn!(%url, "ICE server cannot be put in a Link header; skipped")
                }
            }
        }
    }
    links
}

fn quote_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `201 Created` with the answer, the session URL and its ETag.
pub(crate) fn created(
    kind: &str,
    stream: &str,
    answer: Answer,
    ice_servers: &[IceServer],
) -> Result<Response, IngestError> {
    let location = format!("/{kind}/{stream}/{}", answer.session);
    let location = HeaderValue::from_str(&location).map_err(|_| {
        IngestError::internal(format!("session URL is not a header value: {location:?}"))
    })?;
    let mut response = (StatusCode::CREATED, answer.sdp).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    headers.insert(header::LOCATION, location);
    headers.insert(header::ETAG, quoted_etag(&answer.etag)?);
    headers.insert(ACCEPT_PATCH, HeaderValue::from_static(TRICKLE));
    for link in ice_server_links(ice_servers) {
        headers.append(header::LINK, link);
    }
    Ok(response)
}

/// `204` with the new ETag for trickled candidates, `200` with the fragment for an ICE restart.
pub(crate) fn patched(outcome: PatchOutcome) -> Result<Response, IngestError> {
    let (mut response, etag) = match outcome {
        PatchOutcome::Trickled { etag } => (StatusCode::NO_CONTENT.into_response(), etag),
        PatchOutcome::Restarted { sdpfrag, etag } => {
            let mut response = (StatusCode::OK, sdpfrag).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(TRICKLE));
            (response, etag)
        }
    };
    response
        .headers_mut()
        .insert(header::ETAG, quoted_etag(&etag)?);
    Ok(response)
}

const ACCEPT_PATCH: HeaderName = HeaderName::from_static("accept-patch");
const ACCEPT_POST: HeaderName = HeaderName::from_static("accept-post");

/// Preflight of `/whip/{stream}` and `/whep/{stream}`.
pub(crate) async fn options_endpoint() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(ACCEPT_POST, HeaderValue::from_static(SDP));
    response
}

/// Preflight of a session URL.
pub(crate) async fn options_session() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(ACCEPT_PATCH, HeaderValue::from_static(TRICKLE));
    response
}

pub(crate) async fn method_not_allowed() -> IngestError {
    IngestError::MethodNotAllowed
}

/// Adds the CORS headers to every answer.
pub(crate) async fn add_cors_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link, Accept-Patch, Accept-Post"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.append(name.clone(), value);
            }
        }
        map
    }

    #[test]
    fn media_type_ignores_parameters_and_case() {
        let h = headers(&[(header::CONTENT_TYPE, "Application/SDP; charset=utf-8")]);
        assert!(require_media_type(&h, SDP).is_ok());
        let h = headers(&[(header::CONTENT_TYPE, "text/plain")]);
        assert!(require_media_type(&h, SDP).is_err());
        assert!(require_media_type(&HeaderMap::new(), SDP).is_err());
    }

    #[test]
    fn bearer_tokens_are_extracted() {
        let h = headers(&[(header::AUTHORIZATION, "Bearer sk_abc")]);
        assert_eq!(bearer_token(&h), Some("sk_abc"));
        let h = headers(&[(header::AUTHORIZATION, "bearer   sk_abc ")]);
        assert_eq!(bearer_token(&h), Some("sk_abc"));
        let h = headers(&[(header::AUTHORIZATION, "Basic dXNlcg==")]);
        assert_eq!(bearer_token(&h), None);
        let h = headers(&[(header::AUTHORIZATION, "Bearer ")]);
        assert_eq!(bearer_token(&h), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn if_match_is_unquoted() {
        let get = |v: &str| if_match(&headers(&[(header::IF_MATCH, v)])).ok().flatten();
        assert_eq!(get("\"abc\""), Some("abc".to_owned()));
        assert_eq!(get("W/\"abc\""), Some("abc".to_owned()));
        assert_eq!(get("abc"), Some("abc".to_owned()));
        assert_eq!(get("*"), Some("*".to_owned()));
        assert_eq!(if_match(&HeaderMap::new()).ok().flatten(), None);
    }

    #[test]
    fn turn_links_carry_escaped_credentials() {
        let links = ice_server_links(&[
            IceServer {
                urls: vec!["stun:stun.example.net:3478".to_owned()],
                username: None,
                credential: None,
            },
            IceServer {
                urls: vec![
                    "turn:turn.example.net?transport=udp".to_owned(),
                    "turns:turn.example.net".to_owned(),
                ],
                username: Some("user".to_owned()),
                credential: Some("pa\"ss".to_owned()),
            },
        ]);
        let links: Vec<&str> = links.iter().filter_map(|v| v.to_str().ok()).collect();
        assert_eq!(
            links,
            [
                "<stun:stun.example.net:3478>; rel=\"ice-server\"",
                "<turn:turn.example.net?transport=udp>; rel=\"ice-server\"; username=\"user\"; credential=\"pa\\\"ss\"; credential-type=\"password\"",
                "<turns:turn.example.net>; rel=\"ice-server\"; username=\"user\"; credential=\"pa\\\"ss\"; credential-type=\"password\"",
            ]
        );
    }
}
