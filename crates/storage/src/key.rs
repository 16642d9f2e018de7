//! Object keys: validation, and the content type a key's extension implies.

use crate::StorageError;

/// Longest key accepted, in bytes (S3's own limit).
pub const MAX_KEY_LEN: usize = 1024;

/// Checks an object key: non-empty, at most [`MAX_KEY_LEN`] bytes, no leading `/`, no
/// backslash, no control character (NUL included), and no empty, `.` or `..` segment between
/// slashes (so `a//b` and a trailing `/` are refused too). A valid key is always a relative
/// path that stays inside the directory it is joined to.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() {
        return Err(invalid(key, "empty"));
    }
    check_common(key)?;
    if key.ends_with('/') {
        return Err(invalid(key, "ends with '/'"));
    }
    check_segments(key, key)
}

/// Checks a listing or deletion prefix: empty (everything), or the rules of [`validate_key`]
/// except that it may end with `/` ("dir-like" prefixes such as `recordings/abc/`).
pub fn validate_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_common(prefix)?;
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    if body.is_empty() {
        return Err(invalid(prefix, "is only '/'"));
    }
    check_segments(prefix, body)
}

fn check_common(key: &str) -> Result<(), StorageError> {
    if key.len() > MAX_KEY_LEN {
        return Err(invalid(key, "longer than 1024 bytes"));
    }
    if key.starts_with('/') {
        return Err(invalid(key, "starts with '/'"));
    }
    if key.contains('\\') {
        return Err(invalid(key, "contains a backslash"));
    }
    if key.contains('\0') {
        return Err(invalid(key, "contains NUL"));
    }
    if key.chars().any(char::is_control) {
        return Err(invalid(key, "contains a control character"));
    }
    Ok(())
}

fn check_segments(key: &str, body: &str) -> Result<(), StorageError> {
    for segment in body.split('/') {
        match segment {
            "" => return Err(invalid(key, "has an empty segment ('//')")),
            "." => return Err(invalid(key, "has a '.' segment")),
            ".." => return Err(invalid(key, "has a '..' segment")),
            _ => {}
        }
    }
    Ok(())
}

fn invalid(key: &str, reason: &'static str) -> StorageError {
    // Keep the error small even for a 1 MB "key" from the network.
    let mut shown: String = key.chars().take(128).collect();
    if shown.len() < key.len() {
        shown.push('…');
    }
    StorageError::InvalidKey { key: shown, reason }
}

/// The content type implied by a key's extension (case-insensitive): the HLS and replay files
/// greenroom writes, `application/octet-stream` for anything else.
pub fn content_type_for(key: &str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    let Some((_, ext)) = name.rsplit_once('.') else {
        return "application/octet-stream";
    };
    match ext.to_ascii_lowercase().as_str() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "mp4" => "video/mp4",
        "m4s" => "video/iso.segment",
        "ts" => "video/mp2t",
        "aac" => "audio/aac",
        "vtt" => "text/vtt",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(key: &str) -> &'static str {
        match validate_key(key) {
            Err(StorageError::InvalidKey { reason, .. }) => reason,
            other => panic!("{key:?} should be invalid, got {other:?}"),
        }
    }

    #[test]
    fn accepts_ordinary_keys() {
        for key in [
            "a",
            "recordings/abc/index.m3u8",
            "recordings/abc/seg_00001.m4s",
            "x..y/file..mp4",
            ".hidden",
            "a b/ü.json",
            &"k".repeat(MAX_KEY_LEN),
        ] {
            assert!(validate_key(key).is_ok(), "{key:?}");
        }
    }

    #[test]
    fn refuses_bad_keys() {
        assert_eq!(reason(""), "empty");
        assert_eq!(reason("/etc/passwd"), "starts with '/'");
        assert_eq!(reason("../x"), "has a '..' segment");
        assert_eq!(reason("a/../../x"), "has a '..' segment");
        assert_eq!(reason("a/.."), "has a '..' segment");
        assert_eq!(reason(".."), "has a '..' segment");
        assert_eq!(reason("a/./b"), "has a '.' segment");
        assert_eq!(reason("a//b"), "has an empty segment ('//')");
        assert_eq!(reason("a/"), "ends with '/'");
        assert_eq!(reason("a\\..\\b"), "contains a backslash");
        assert_eq!(reason("a\0b"), "contains NUL");
        assert_eq!(reason("a\nb"), "contains a control character");
        assert_eq!(
            reason(&"k".repeat(MAX_KEY_LEN + 1)),
            "longer than 1024 bytes"
        );
    }

    #[test]
    fn long_keys_are_cut_in_the_error() {
        let err = validate_key(&"k".repeat(100_000)).err();
        let Some(StorageError::InvalidKey { key, .. }) = err else {
            panic!("expected InvalidKey");
        };
        assert!(key.len() < 200);
    }

    #[test]
    fn prefixes_may_be_empty_or_dir_like() {
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("recordings/abc/").is_ok());
        assert!(validate_prefix("recordings/ab").is_ok());
        assert!(validate_prefix("/").is_err());
        assert!(validate_prefix("a//").is_err());
        assert!(validate_prefix("../").is_err());
        assert!(validate_prefix("/abs/").is_err());
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type_for("r/a/index.m3u8"),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type_for("r/a/INIT.MP4"), "video/mp4");
        assert_eq!(content_type_for("r/a/seg1.m4s"), "video/iso.segment");
        assert_eq!(content_type_for("thumb.jpg"), "image/jpeg");
        assert_eq!(content_type_for("meta.json"), "application/json");
        assert_eq!(content_type_for("r.d/noext"), "application/octet-stream");
        assert_eq!(content_type_for("blob.bin"), "application/octet-stream");
    }
}
