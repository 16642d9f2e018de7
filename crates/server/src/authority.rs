//! Who may publish and watch: the control plane's streams and signed playback tokens, behind
//! the ingest trait.
//!
//! - Publishing (WHIP) takes the stream key (compared in constant time) or a playback token
//!   with the publish right for the stream; RTMP takes the key. A cancelled stream is an
//!   invalid transition (409), an ended one `stream_ended`. The stream is marked started when
//!   its media first arrives (the engine's `Live` event, see `serve`), not when a publisher is
//!   let in: a publish attempt that never sends media leaves a scheduled stream cancellable.
//! - Watching (WHEP) a free stream needs nothing; a paid one a watch token for it, and the
//!   session ends when the token expires unless the viewer presents a fresh one (a `PATCH`
//!   of its session). Whether a stream is paid comes from the [`AccessCache`], not from a
//!   query per request.

use greenroom_control::playback_token::{PlaybackRight, PlaybackTokens};
use greenroom_control::{ControlError, Store, Stream};
use greenroom_ingest::{IngestError, KeyedStream, StreamAuthority};

use crate::access::{AccessCache, check_token, now_unix};

/// Checks WHIP stream keys and publish tokens against the store, WHEP watch tokens against the
/// signing key.
#[derive(Debug, Clone)]
pub struct ControlAuthority {
    store: Store,
    playback: PlaybackTokens,
    access: AccessCache,
}

impl ControlAuthority {
    pub fn new(store: Store, playback: PlaybackTokens, access: AccessCache) -> ControlAuthority {
        ControlAuthority {
            store,
            playback,
            access,
        }
    }

    /// The authority of an application's state.
    pub fn for_state(state: &crate::app::AppState) -> ControlAuthority {
        ControlAuthority::new(
            state.store.clone(),
            state.playback.clone(),
            state.access.clone(),
        )
    }
}

/// A cancelled stream cannot be published to (409 `invalid_transition`), an ended one has
/// ended (409 `stream_ended`).
fn refuse_final(stream: &Stream) -> Result<(), IngestError> {
    if stream.cancelled_at_ms.is_some() {
        return Err(IngestError::InvalidTransition {
            stream: stream.id.clone(),
            state: "cancelled",
            action: "publish",
        });
    }
    if stream.is_ended() {
        return Err(IngestError::StreamEnded {
            stream: stream.id.clone(),
        });
    }
    Ok(())
}

fn to_ingest(err: ControlError) -> IngestError {
    match err {
        ControlError::StreamNotFound { id } => IngestError::StreamNotFound { stream: id },
        ControlError::StreamEnded { id } => IngestError::StreamEnded { stream: id },
        ControlError::InvalidStreamKey { .. } => IngestError::Unauthorized,
        ControlError::InvalidTransition { id, state, action } => IngestError::InvalidTransition {
            stream: id,
            state,
            action,
        },
        other => IngestError::internal(other),
    }
}

/// Whether a presented credential is a playback token rather than a stream key.
fn is_playback_token(credential: &str) -> bool {
    credential.starts_with("gr1.")
}

impl StreamAuthority for ControlAuthority {
    async fn authorize_publish(
        &self,
        stream_id: &str,
        bearer: Option<&str>,
    ) -> Result<(), IngestError> {
        let Some(credential) = bearer else {
            return Err(IngestError::Unauthorized);
        };
        if is_playback_token(credential) {
            check_token(
                &self.playback,
                Some(credential),
                stream_id,
                PlaybackRight::Publish,
                now_unix(),
            )
            .map_err(|denied| denied.into_ingest(stream_id))?;
        }
        let stream = self.store.get_stream(stream_id).await.map_err(to_ingest)?;
        if !is_playback_token(credential) && !stream.stream_key.matches(credential) {
            return Err(IngestError::Unauthorized);
        }
        refuse_final(&stream)
    }

    async fn stream_for_key(&self, key: &str) -> Result<KeyedStream, IngestError> {
        let stream = self.store.stream_for_key(key).await.map_err(to_ingest)?;
        refuse_final(&stream)?;
        Ok(KeyedStream {
            id: stream.id,
            simulcast_ladder: stream.simulcast_ladder,
        })
    }

    async fn authorize_watch(
        &self,
        stream_id: &str,
        token: Option<&str>,
    ) -> Result<Option<i64>, IngestError> {
        let gate = self.access.stream(stream_id).await.map_err(to_ingest)?;
        if gate.ended {
            return Err(IngestError::StreamEnded {
                stream: stream_id.to_owned(),
            });
        }
        if !gate.paid {
            return Ok(None);
        }
        let claims = check_token(
            &self.playback,
            token,
            stream_id,
            PlaybackRight::Watch,
            now_unix(),
        )
        .map_err(|denied| denied.into_ingest(stream_id))?;
        Ok(Some(claims.exp))
    }
}
