//! The source URL: credentials split off for retina, a redacted form for people.

use crate::rtsp::RtspError;

/// Longest source URL accepted (bytes).
pub const MAX_URL_BYTES: usize = 2048;

/// A parsed `rtsp://` / `rtsps://` URL without its credentials, and the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceUrl {
    /// The URL with user and password removed.
    url: url::Url,
    /// Percent-decoded user and password.
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SourceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SourceUrl").field(&self.redacted()).finish()
    }
}

impl SourceUrl {
    pub fn parse(text: &str) -> Result<SourceUrl, RtspError> {
        let invalid = |reason: &str| RtspError::InvalidUrl {
            reason: reason.to_owned(),
        };
        if text.len() > MAX_URL_BYTES {
            return Err(invalid("longer than 2048 bytes"));
        }
        let mut url = url::Url::parse(text.trim()).map_err(|e| RtspError::InvalidUrl {
            reason: e.to_string(),
        })?;
        if url.scheme() != "rtsp" && url.scheme() != "rtsps" {
            return Err(invalid("the scheme must be rtsp:// or rtsps://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = percent_decode(url.username());
            let password = percent_decode(url.password().unwrap_or(""));
            // Clearing cannot fail on a URL with a host.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some((user, password))
        };
        Ok(SourceUrl { url, credentials })
    }

    /// The URL to connect to, without credentials.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    pub fn credentials(&self) -> Option<retina::client::Credentials> {
        self.credentials
            .as_ref()
            .map(|(username, password)| retina::client::Credentials {
                username: username.clone(),
                password: password.clone(),
            })
    }

    /// The URL for people: `rtsp://user:***@host/path` (the user stays, the password never).
    pub fn redacted(&self) -> String {
        redact(
            &self.url,
            self.credentials.as_ref().map(|(user, _)| user.as_str()),
        )
    }
}

/// `text` with its password masked (`***`), for showing a stored source URL. Text that does
/// not parse is shown as its scheme and `(invalid)` only, as it may hold anything.
pub fn redacted_url(text: &str) -> String {
    match SourceUrl::parse(text) {
        Ok(url) => url.redacted(),
        Err(_) => "(invalid URL)".to_owned(),
    }
}

fn redact(url: &url::Url, user: Option<&str>) -> String {
    let Some(user) = user else {
        return url.to_string();
    };
    let mut shown = url.clone();
    // Re-encode the user the way the URL parser does; the password becomes a mask.
    let _ = shown.set_username(user);
    let _ = shown.set_password(Some("***"));
    shown.to_string().replace("%2A%2A%2A@", "***@")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_off_and_decoded() {
        let url =
            SourceUrl::parse("rtsp://admin:p%40ss:w0rd@cam.local:554/stream1?x=1").expect("valid");
        assert_eq!(url.url().as_str(), "rtsp://cam.local:554/stream1?x=1");
        let creds = url.credentials().expect("credentials");
        assert_eq!(creds.username, "admin");
        assert_eq!(creds.password, "p@ss:w0rd");
        let shown = url.redacted();
        assert_eq!(shown, "rtsp://admin:***@cam.local:554/stream1?x=1");
        assert!(!format!("{url:?}").contains("w0rd"));
    }

    #[test]
    fn urls_without_credentials_stay_as_they_are() {
        let url = SourceUrl::parse("rtsp://10.0.0.5/live").expect("valid");
        assert!(url.credentials().is_none());
        assert_eq!(url.redacted(), "rtsp://10.0.0.5/live");
        assert_eq!(redacted_url("rtsp://u:secret@h/p"), "rtsp://u:***@h/p");
        assert!(!redacted_url("nonsense with secret").contains("secret"));
    }

    #[test]
    fn only_rtsp_urls_with_a_host() {
        assert!(SourceUrl::parse("rtsps://cam.example/x").is_ok());
        for bad in ["http://cam/x", "rtsp://", "rtsp:///path", "cam:554", ""] {
            assert!(SourceUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(SourceUrl::parse(&format!("rtsp://h/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
