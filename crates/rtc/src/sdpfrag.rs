//! `application/trickle-ice-sdpfrag` bodies (RFC 8840) as WHIP/WHEP `PATCH` carries them.

/// What a fragment says.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SdpFrag {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    /// `(mid, candidate-attribute value)`; the value is without the `a=` prefix.
    pub candidates: Vec<(Option<String>, String)>,
    pub end_of_candidates: bool,
}

/// Parses a fragment. Unknown lines are ignored; a candidate line that is not `a=candidate:`
/// shaped is an error.
pub(crate) fn parse(body: &str) -> Result<SdpFrag, String> {
    let mut frag = SdpFrag::default();
    let mut mid: Option<String> = None;
    for raw in body.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
            frag.ufrag = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
            frag.pwd = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("a=mid:") {
            mid = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("a=candidate:") {
            if v.split_whitespace().count() < 8 {
                return Err(format!("malformed candidate line: {line}"));
            }
            frag.candidates
                .push((mid.clone(), format!("candidate:{v}")));
        } else if line == "a=end-of-candidates" {
            frag.end_of_candidates = true;
        } else if !(line.starts_with("a=") || line.starts_with("m=") || line.starts_with("c=")) {
            return Err(format!("not an SDP fragment line: {line}"));
        }
    }
    Ok(frag)
}

/// Replaces the ICE credentials of a full SDP (every occurrence) — used to build the new offer
/// of an ICE restart from the previous one.
pub(crate) fn replace_credentials(sdp: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.starts_with("a=ice-ufrag:") {
            out.push_str(&format!("a=ice-ufrag:{ufrag}\r\n"));
        } else if trimmed.starts_with("a=ice-pwd:") {
            out.push_str(&format!("a=ice-pwd:{pwd}\r\n"));
        } else if trimmed.starts_with("a=candidate:") || trimmed == "a=end-of-candidates" {
            // candidates belong to the old generation
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Builds the answer fragment of an ICE restart: new local credentials and candidates.
pub(crate) fn answer_fragment(sdp: &str) -> String {
    let mut out = String::new();
    let mut in_first_media = false;
    let mut seen_media = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if line.starts_with("m=") {
            if seen_media {
                break;
            }
            seen_media = true;
            in_first_media = true;
        }
        if line.starts_with("a=ice-ufrag:")
            || line.starts_with("a=ice-pwd:")
            || line.starts_with("a=ice-lite")
            || line.starts_with("a=group:BUNDLE")
            || (in_first_media
                && (line.starts_with("m=")
                    || line.starts_with("a=mid:")
                    || line.starts_with("a=candidate:")
                    || line == "a=end-of-candidates"))
        {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trickle_and_restart_fragments() {
        let body = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\na=end-of-candidates\r\n";
        let frag = parse(body).expect("valid fragment");
        assert_eq!(frag.ufrag.as_deref(), Some("EsAw"));
        assert_eq!(frag.pwd.as_deref(), Some("P2uYro0UCOQ4zxjKXaWCBui1"));
        assert_eq!(frag.candidates.len(), 1);
        assert_eq!(frag.candidates[0].0.as_deref(), Some("0"));
        assert!(
            frag.candidates[0]
                .1
                .starts_with("candidate:1387637174 1 udp")
        );
        assert!(frag.end_of_candidates);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("hello world").is_err());
        assert!(parse("a=candidate:1 1 udp").is_err());
    }

    #[test]
    fn replaces_credentials_and_drops_old_candidates() {
        let sdp = "v=0\r\na=ice-ufrag:old\r\na=ice-pwd:oldpwd\r\na=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\na=mid:0\r\n";
        let out = replace_credentials(sdp, "new", "newpwd");
        assert!(out.contains("a=ice-ufrag:new\r\n"));
        assert!(out.contains("a=ice-pwd:newpwd\r\n"));
        assert!(!out.contains("candidate"));
        assert!(out.contains("a=mid:0"));
    }
}
