//! greenroom-ingest: the WHIP and WHEP HTTP resources (RFC 9725 and its egress twin).
//!
//! [`router`] answers `POST /whip/{stream}` (a publisher's SDP offer), `POST /whep/{stream}`
//! (a viewer's offer, `?layer=q|h|f` caps its simulcast layer) and the session resources
//! `/whip|whep/{stream}/{session}` (`PATCH` trickle ICE / ICE restart, `PATCH` a viewer's layer
//! with JSON, `DELETE`). Media is the [`greenroom_rtc::RtcEngine`]'s business; who may publish
//! or watch a stream is the business of a [`StreamAuthority`] the binary provides.
//!
//! Invariants:
//! - every answer, errors and preflights included, carries the CORS headers;
//! - every error is JSON `{"error":{"code","message"}}` with a stable `code`; bad input is
//!   never a 500, and a 500 logs its detail and answers a generic message;
//! - the content type is checked before anything else, then the authority, then the body is
//!   read (at most [`MAX_BODY_BYTES`]), then the engine is asked;
//! - `POST` and `PATCH` on WHIP need the stream key or a playback token with the publish
//!   right; `POST` on WHEP of a paid stream needs a playback token with the watch right (the
//!   authority decides; tokens come as `Authorization: Bearer` or `?token=`); `DELETE` of a
//!   session (WHIP or WHEP) and the WHEP `PATCH` need only the session URL, whose random id is
//!   the capability;
//! - ETags are sent quoted and passed to the engine bare (`If-Match: "x"` becomes `x`).
//!
//! RTMP publishes ([`rtmp`], [`rtmp_publish`]) and RTSP pulls ([`rtsp`]) feed the same engine
//! through [`bridge`].

mod authority;
pub mod bridge;
mod error;
mod frame_taps;
mod http_util;
pub mod rtmp;
pub mod rtmp_publish;
pub mod rtsp;
pub mod transcode;
mod whep;
mod whip;

use axum::Router;
use axum::middleware;
use axum::routing::{patch, post};
use greenroom_rtc::RtcEngine;

pub use authority::{KeyedStream, StreamAuthority};
pub use error::{IngestError, error_response};
pub use frame_taps::{FrameTaps, SharedFrameTaps};

/// Largest SDP offer, trickle fragment or JSON body accepted (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the WHIP/WHEP handlers share.
#[derive(Debug, Clone)]
pub struct IngestState<A> {
    pub engine: RtcEngine,
    pub authority: A,
}

impl<A: StreamAuthority> IngestState<A> {
    pub fn new(engine: RtcEngine, authority: A) -> IngestState<A> {
        IngestState { engine, authority }
    }
}

/// The WHIP and WHEP routes, with CORS on every answer.
pub fn router<A: StreamAuthority>(state: IngestState<A>) -> Router {
    Router::new()
        .route(
            "/whip/{stream_id}",
            post(whip::publish::<A>).options(http_util::options_endpoint),
        )
        .route(
            "/whip/{stream_id}/{session_id}",
            patch(whip::patch_session::<A>)
                .delete(whip::delete_session::<A>)
                .options(http_util::options_session),
        )
        .route(
            "/whep/{stream_id}",
            post(whep::subscribe::<A>).options(http_util::options_endpoint),
        )
        .route(
            "/whep/{stream_id}/{session_id}",
            patch(whep::patch_session::<A>)
                .delete(whep::delete_session::<A>)
                .options(http_util::options_session),
        )
        .method_not_allowed_fallback(http_util::method_not_allowed)
        .layer(middleware::map_response(http_util::add_cors_headers))
        .with_state(state)
}
