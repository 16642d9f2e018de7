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
/// plane; tests with a map.
pub trait StreamAuthority: Clone + Send + Sync + 'static {
    /// A publisher presents `bearer` (the `Authorization: Bearer` token, if any) for `stream_id`.
    /// Expected errors: [`IngestError::StreamNotFound`], [`IngestError::Unauthorized`],
    /// [`IngestError::StreamEnded`].
    fn authorize_publish(
        &self,
        stream_id: &str,
        bearer: Option<&str>,
    ) -> impl Future<Output = Result<(), IngestError>> + Send;

    /// An RTMP publisher presents only a stream key: the stream it belongs to. Expected errors:
    /// [`IngestError::Unauthorized`] (no stream has this key), [`IngestError::StreamEnded`].
    fn stream_for_key(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<KeyedStream, IngestError>> + Send {
        let _ = key;
        async { Err(IngestError::Unauthorized) }
    }

    /// A viewer asks to watch `stream_id`. Expected errors: [`IngestError::StreamNotFound`],
    /// [`IngestError::StreamEnded`].
    fn authorize_watch(
        &self,
        stream_id: &str,
    ) -> impl Future<Output = Result<(), IngestError>> + Send;
}
