//! The recordings' queries: a recording is created `recording` when a live session starts,
//! its counters move forward while segments are written, and it ends `ready` or `failed`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, now_ms};
use crate::recording::{decode_variants, encode_variants};
use crate::stream::{generate_id, is_stream_id};
use crate::{ControlError, Recording, RecordingStatus};

const RECORDING_COLUMNS: &str = "id, stream_id, status, started_at_ms, ended_at_ms, \
     duration_ms, size_bytes, segments, variants, has_thumbnail, expires_at_ms";

impl Store {
    /// Starts a recording of a live session of `stream_id`: status `recording`, started now.
    /// Answers not found or ended for such streams; whether the stream wants its sessions
    /// recorded ([`Stream::record`](crate::Stream::record)) is the caller's to check.
    pub async fn start_recording(&self, stream_id: &str) -> Result<Recording, ControlError> {
        let stream = self.get_stream(stream_id).await?;
        if stream.is_ended() {
            return Err(ControlError::StreamEnded { id: stream.id });
        }
        let recording = Recording {
            id: generate_id(),
            stream_id: stream.id,
            status: RecordingStatus::Recording,
            started_at_ms: now_ms(),
            ended_at_ms: None,
            duration_ms: 0,
            size_bytes: 0,
            segments: 0,
            variants: Vec::new(),
            has_thumbnail: false,
            expires_at_ms: None,
        };
        sqlx::query(
            "INSERT INTO recordings (id, stream_id, status, started_at_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&recording.id)
        .bind(&recording.stream_id)
        .bind(recording.status.as_db())
        .bind(recording.started_at_ms)
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("starting a recording"))?;
        tracing::info!(stream = %recording.stream_id, recording = %recording.id, "recording started");
        Ok(recording)
    }

    /// Records how far a recording has come. Counts must not be negative; rendition names are
    /// 1 to 32 characters from `A-Z a-z 0-9 _ - .`. Only a recording in progress changes: a
    /// ready or failed one is returned as it is.
    pub async fn update_recording_progress(
        &self,
        id: &str,
        duration_ms: i64,
        size_bytes: i64,
        segments: i64,
        variants: &[String],
        has_thumbnail: bool,
    ) -> Result<Recording, ControlError> {
        for (name, value) in [
            ("duration_ms", duration_ms),
            ("size_bytes", size_bytes),
            ("segments", segments),
        ] {
            if value < 0 {
                return Err(ControlError::InvalidRecordingProgress {
                    id: id.to_owned(),
                    reason: format!("{name} is negative ({value})"),
                });
            }
        }
        let variants = encode_variants(id, variants)?;
        if !is_stream_id(id) {
            return Err(ControlError::RecordingNotFound { id: id.to_owned() });
        }
        let updated = sqlx::query(
            "UPDATE recordings SET duration_ms = $1, size_bytes = $2, segments = $3, \
             variants = $4, has_thumbnail = $5 WHERE id = $6 AND status = $7",
        )
        .bind(duration_ms)
        .bind(size_bytes)
        .bind(segments)
        .bind(variants)
        .bind(i64::from(has_thumbnail))
        .bind(id)
        .bind(RecordingStatus::Recording.as_db())
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("updating a recording's progress"))?;
        let recording = self.get_recording(id).await?;
        if updated.rows_affected() == 0 {
            tracing::debug!(
                recording = %recording.id,
                status = recording.status.as_db(),
                "progress for a finished recording ignored"
            );
        }
        Ok(recording)
    }

    /// Marks a recording `ready`, ended now, to expire at `expires_at_ms` (`None` = kept).
    /// Only a recording in progress changes: finishing a ready or failed one changes nothing
    /// and returns it as it is.
    pub async fn finish_recording(
        &self,
        id: &str,
        expires_at_ms: Option<i64>,
    ) -> Result<Recording, ControlError> {
        if !is_stream_id(id) {
            return Err(ControlError::RecordingNotFound { id: id.to_owned() });
        }
        let updated = sqlx::query(
            "UPDATE recordings SET status = $1, ended_at_ms = $2, expires_at_ms = $3 \
             WHERE id = $4 AND status = $5",
        )
        .bind(RecordingStatus::Ready.as_db())
        .bind(now_ms())
        .bind(expires_at_ms)
        .bind(id)
        .bind(RecordingStatus::Recording.as_db())
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("finishing a recording"))?;
        let recording = self.get_recording(id).await?;
        if updated.rows_affected() > 0 {
            tracing::info!(
                stream = %recording.stream_id,
                recording = %recording.id,
                duration_ms = recording.duration_ms,
                size_bytes = recording.size_bytes,
                "recording ready"
            );
        }
        Ok(recording)
    }

    /// Marks a recording `failed`, ended now, and logs `reason` (it is not stored). Only a
    /// recording in progress changes: a ready or failed one is returned as it is.
    pub async fn fail_recording(&self, id: &str, reason: &str) -> Result<Recording, ControlError> {
        if !is_stream_id(id) {
            return Err(ControlError::RecordingNotFound { id: id.to_owned() });
        }
        let updated = sqlx::query(
            "UPDATE recordings SET status = $1, ended_at_ms = $2 WHERE id = $3 AND status = $4",
        )
        .bind(RecordingStatus::Failed.as_db())
        .bind(now_ms())
        .bind(id)
        .bind(RecordingStatus::Recording.as_db())
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("failing a recording"))?;
        let recording = self.get_recording(id).await?;
        if updated.rows_affected() > 0 {
            tracing::warn!(
                stream = %recording.stream_id,
                recording = %recording.id,
                reason,
                "recording failed"
            );
        }
        Ok(recording)
    }

    /// The recording with this id.
    pub async fn get_recording(&self, id: &str) -> Result<Recording, ControlError> {
        let not_found = || ControlError::RecordingNotFound { id: id.to_owned() };
        if !is_stream_id(id) {
            return Err(not_found());
        }
        let row = sqlx::query(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("reading a recording"))?;
        row.as_ref()
            .map(recording_from_row)
            .transpose()?
            .ok_or_else(not_found)
    }

    /// The recordings of a stream, newest first. Answers not found for an unknown stream.
    pub async fn list_recordings(&self, stream_id: &str) -> Result<Vec<Recording>, ControlError> {
        let stream = self.get_stream(stream_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE stream_id = $1 \
             ORDER BY started_at_ms DESC, id DESC"
        ))
        .bind(&stream.id)
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing a stream's recordings"))?;
        rows.iter().map(recording_from_row).collect()
    }

    /// The recordings still `recording`, oldest first: after a restart, the server finishes or
    /// fails them.
    pub async fn recordings_in_progress(&self) -> Result<Vec<Recording>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE status = $1 \
             ORDER BY started_at_ms, id"
        ))
        .bind(RecordingStatus::Recording.as_db())
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing recordings in progress"))?;
        rows.iter().map(recording_from_row).collect()
    }

    /// At most `limit` recordings, of any status, whose expiry is at or before `now_ms`,
    /// soonest expired first.
    pub async fn expired_recordings(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Recording>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings \
             WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= $1 \
             ORDER BY expires_at_ms, id LIMIT $2"
        ))
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing expired recordings"))?;
        rows.iter().map(recording_from_row).collect()
    }

    /// Sets when a recording expires (`None` = kept until deleted), whatever its status.
    pub async fn set_recording_expiry(
        &self,
        id: &str,
        expires_at_ms: Option<i64>,
    ) -> Result<Recording, ControlError> {
        if !is_stream_id(id) {
            return Err(ControlError::RecordingNotFound { id: id.to_owned() });
        }
        let updated = sqlx::query("UPDATE recordings SET expires_at_ms = $1 WHERE id = $2")
            .bind(expires_at_ms)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(ControlError::database("setting a recording's expiry"))?;
        if updated.rows_affected() == 0 {
            return Err(ControlError::RecordingNotFound { id: id.to_owned() });
        }
        self.get_recording(id).await
    }

    /// Deletes a recording's row (its files are the caller's); whether there was one.
    pub async fn delete_recording(&self, id: &str) -> Result<bool, ControlError> {
        if !is_stream_id(id) {
            return Ok(false);
        }
        let deleted = sqlx::query("DELETE FROM recordings WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(ControlError::database("deleting a recording"))?;
        let deleted = deleted.rows_affected() > 0;
        if deleted {
            tracing::info!(recording = %id, "recording deleted");
        }
        Ok(deleted)
    }
}

fn recording_from_row(row: &AnyRow) -> Result<Recording, ControlError> {
    let decode = |source| ControlError::Database {
        operation: "decoding a recording row",
        source,
    };
    let id: String = row.try_get("id").map_err(decode)?;
    let status: String = row.try_get("status").map_err(decode)?;
    let status =
        RecordingStatus::from_db(&status).ok_or_else(|| ControlError::RecordingCorrupt {
            id: id.clone(),
            reason: format!("unknown status {status:?}"),
        })?;
    let variants: String = row.try_get("variants").map_err(decode)?;
    let has_thumbnail: i64 = row.try_get("has_thumbnail").map_err(decode)?;
    Ok(Recording {
        stream_id: row.try_get("stream_id").map_err(decode)?,
        status,
        started_at_ms: row.try_get("started_at_ms").map_err(decode)?,
        ended_at_ms: row.try_get("ended_at_ms").map_err(decode)?,
        duration_ms: row.try_get("duration_ms").map_err(decode)?,
        size_bytes: row.try_get("size_bytes").map_err(decode)?,
        segments: row.try_get("segments").map_err(decode)?,
        variants: decode_variants(&variants),
        has_thumbnail: has_thumbnail != 0,
        expires_at_ms: row.try_get("expires_at_ms").map_err(decode)?,
        id,
    })
}
