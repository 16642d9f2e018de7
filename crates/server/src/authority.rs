//! Who may publish and watch: the control plane's streams, behind the ingest trait.

use greenroom_control::{ControlError, Store};
use greenroom_ingest::{IngestError, KeyedStream, StreamAuthority};

/// Checks WHIP stream keys and WHEP stream states against the store.
#[derive(Debug, Clone)]
pub struct ControlAuthority {
    store: Store,
}

impl ControlAuthority {
    pub fn new(store: Store) -> ControlAuthority {
        ControlAuthority { store }
    }
}

fn to_ingest(err: ControlError) -> IngestError {
    match err {
        ControlError::StreamNotFound { id } => IngestError::StreamNotFound { stream: id },
        ControlError::StreamEnded { id } => IngestError::StreamEnded { stream: id },
        ControlError::InvalidStreamKey { .. } => IngestError::Unauthorized,
        other => IngestError::internal(other),
    }
}

impl StreamAuthority for ControlAuthority {
    async fn authorize_publish(
        &self,
        stream_id: &str,
        bearer: Option<&str>,
    ) -> Result<(), IngestError> {
        self.store
            .verify_stream_key(stream_id, bearer)
            .await
            .map(drop)
            .map_err(to_ingest)
    }

    async fn stream_for_key(&self, key: &str) -> Result<KeyedStream, IngestError> {
        self.store
            .stream_for_key(key)
            .await
            .map(|stream| KeyedStream {
                id: stream.id,
                simulcast_ladder: stream.simulcast_ladder,
            })
            .map_err(to_ingest)
    }

    async fn authorize_watch(&self, stream_id: &str) -> Result<(), IngestError> {
        let stream = self.store.get_stream(stream_id).await.map_err(to_ingest)?;
        if stream.is_ended() {
            return Err(IngestError::StreamEnded { stream: stream.id });
        }
        Ok(())
    }
}
