use std::future::Future;

use crate::IngestError;

/// The stream a publisher's key belongs to, with what its publish needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedStream {
    pub id: String,
    /// Transcode the source into a three-layer simulcast ladder.
    pub simulcast_ladder: bool,
}

/// Decides who may publish to and watch a stream. The binary implements it with the control
/// plane (stream keys, signed playback tokens, whether a stream is paid); tests with a map.
pub trait StreamAuthority: Clone + Send + Sync + 'static {
    /// A publisher presents `bearer` (the `Authorization: Bearer` token, if any) for
    /// `stream_id`: the stream key, or a playback token with the publish right for this stream.
    /// Expected errors: [`IngestError::StreamNotFound`], [`IngestError::Unauthorized`] (no or
    /// a wrong key), [`IngestError::InvalidToken`], [`IngestError::TokenExpired`],
    /// [`IngestError::TokenWrongStream`], [`IngestError::StreamEnded`],
    /// [`IngestError::InvalidTransition`] (e.g. a cancelled stream).
    fn authorize_publish(
        &self,
        stream_id: &str,
        bearer: Option<&str>,
    ) -> impl Future<Output = Result<(), IngestError>> + Send;

    /// An RTMP publisher presents only a stream key: the stream it belongs to. Expected errors:
    /// [`IngestError::Unauthorized`] (no stream has this key), [`IngestError::StreamEnded`],
    /// [`IngestError::InvalidTransition`].
    fn stream_for_key(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<KeyedStream, IngestError>> + Send {
        let _ = key;
        async { Err(IngestError::Unauthorized) }
    }

    /// A viewer asks to watch `stream_id`, presenting `token` (from `Authorization: Bearer` or
    /// `?token=`, if any). A free stream needs none; a paid one a playback token with the watch
    /// right for this stream. Answers until when (Unix seconds) the viewer may watch: the
    /// token's expiry, `None` for a free stream. Expected errors:
    /// [`IngestError::StreamNotFound`], [`IngestError::StreamEnded`],
    /// [`IngestError::TokenRequired`], [`IngestError::InvalidToken`],
    /// [`IngestError::TokenExpired`], [`IngestError::TokenWrongStream`].
    fn authorize_watch(
        &self,
        stream_id: &str,
        token: Option<&str>,
    ) -> impl Future<Output = Result<Option<i64>, IngestError>> + Send;
}
