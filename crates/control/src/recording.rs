//! The recording record: one live session of a stream kept as an HLS replay.

use serde::Serialize;

use crate::ControlError;

/// Longest rendition name a recording lists, in bytes.
pub const MAX_VARIANT_NAME_BYTES: usize = 32;

/// The stored lifecycle of a recording: `recording` becomes `ready` or `failed`, both final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatus {
    /// The session is live and segments are still being written.
    Recording,
    /// The session ended and the replay is complete.
    Ready,
    /// The recorder gave up; what was written may be incomplete.
    Failed,
}

impl RecordingStatus {
    pub(crate) fn as_db(self) -> &'static str {
        match self {
            RecordingStatus::Recording => "recording",
            RecordingStatus::Ready => "ready",
            RecordingStatus::Failed => "failed",
        }
    }

    pub(crate) fn from_db(value: &str) -> Option<RecordingStatus> {
        match value {
            "recording" => Some(RecordingStatus::Recording),
            "ready" => Some(RecordingStatus::Ready),
            "failed" => Some(RecordingStatus::Failed),
            _ => None,
        }
    }

    /// Whether the recording can change status no more (`ready` or `failed`).
    pub fn is_final(self) -> bool {
        self != RecordingStatus::Recording
    }
}

/// One recorded live session of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recording {
    /// 16 lowercase base32 characters, like a stream id.
    pub id: String,
    pub stream_id: String,
    pub status: RecordingStatus,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    /// Unix milliseconds; set once the recording is ready or failed.
    pub ended_at_ms: Option<i64>,
    /// Media time recorded so far.
    pub duration_ms: i64,
    /// Bytes written so far, every rendition included.
    pub size_bytes: i64,
    /// Segments written so far.
    pub segments: i64,
    /// The rendition names, e.g. `["1080p", "720p"]`.
    pub variants: Vec<String>,
    pub has_thumbnail: bool,
    /// Unix milliseconds after which the replay may be deleted; `None` = kept.
    pub expires_at_ms: Option<i64>,
}

impl Recording {
    /// Where the recording's files live in storage: `recordings/{stream_id}/{id}/`.
    pub fn storage_prefix(&self) -> String {
        format!("recordings/{}/{}/", self.stream_id, self.id)
    }
}

/// Checks the rendition names of recording `id` and joins them for the `variants` column.
pub(crate) fn encode_variants(id: &str, variants: &[String]) -> Result<String, ControlError> {
    for name in variants {
        let valid = !name.is_empty()
            && name.len() <= MAX_VARIANT_NAME_BYTES
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(ControlError::InvalidRecordingProgress {
                id: id.to_owned(),
                reason: format!(
                    "rendition name {name:?} must be 1 to {MAX_VARIANT_NAME_BYTES} characters \
                     from A-Z a-z 0-9 _ - ."
                ),
            });
        }
    }
    Ok(variants.join(","))
}

/// The rendition names stored in the `variants` column.
pub(crate) fn decode_variants(column: &str) -> Vec<String> {
    if column.is_empty() {
        Vec::new()
    } else {
        column.split(',').map(str::to_owned).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|&name| name.to_owned()).collect()
    }

    #[test]
    fn variants_round_trip_through_the_column() {
        for list in [
            &[][..],
            &["1080p"][..],
            &["1080p", "720p", "audio_only"][..],
        ] {
            let encoded = encode_variants("r", &names(list)).expect("valid");
            assert_eq!(decode_variants(&encoded), names(list));
        }
        assert_eq!(
            encode_variants("r", &names(&["1080p", "720p"])).ok(),
            Some("1080p,720p".to_owned())
        );
    }

    #[test]
    fn variant_names_that_would_break_the_column_are_refused() {
        for bad in ["", "a,b", "../x", "with space", "é", &"x".repeat(33)] {
            assert!(
                matches!(
                    encode_variants("r", &names(&["ok", bad])),
                    Err(ControlError::InvalidRecordingProgress { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_storage_prefix_names_the_stream_and_the_recording() {
        let recording = Recording {
            id: "bbbbbbbbbbbbbbbb".to_owned(),
            stream_id: "aaaaaaaaaaaaaaaa".to_owned(),
            status: RecordingStatus::Recording,
            started_at_ms: 0,
            ended_at_ms: None,
            duration_ms: 0,
            size_bytes: 0,
            segments: 0,
            variants: Vec::new(),
            has_thumbnail: false,
            expires_at_ms: None,
        };
        assert_eq!(
            recording.storage_prefix(),
            "recordings/aaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbb/"
        );
    }

    #[test]
    fn statuses_round_trip_and_only_recording_is_open() {
        for status in [
            RecordingStatus::Recording,
            RecordingStatus::Ready,
            RecordingStatus::Failed,
        ] {
            assert_eq!(RecordingStatus::from_db(status.as_db()), Some(status));
        }
        assert_eq!(RecordingStatus::from_db("done"), None);
        assert!(!RecordingStatus::Recording.is_final());
        assert!(RecordingStatus::Ready.is_final());
        assert!(RecordingStatus::Failed.is_final());
    }
}
