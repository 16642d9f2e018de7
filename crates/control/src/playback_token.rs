//! Signed, short-lived playback tokens (DESIGN decision 5): a token names one stream, one
//! right and an expiry, and is checked against the signing key alone, so media paths never ask
//! the database. Revocation works by not issuing the next token.
//!
//! Format: `gr1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "gr1." + claims part))>`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ControlError;

const PREFIX: &str = "gr1.";
/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 1024;
/// Shortest signing key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaybackRight {
    /// Publish (WHIP).
    Publish,
    /// Watch live: WHEP and the live HLS.
    Watch,
    /// Watch the stream's replays.
    Replay,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybackClaims {
    /// The stream id.
    pub stream: String,
    pub right: PlaybackRight,
    /// Unix seconds after which the token is refused.
    pub exp: i64,
    /// Who it was issued to (an account id), for logs and audits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

impl PlaybackClaims {
    /// Whether these claims let their holder do `right` on `stream` (replay rights do not
    /// open the live stream, and the other way round).
    pub fn allows(&self, stream: &str, right: PlaybackRight) -> bool {
        self.stream == stream && self.right == right
    }
}

/// Issues and checks tokens with one HMAC key.
#[derive(Clone)]
pub struct PlaybackTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for PlaybackTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackTokens").finish_non_exhaustive()
    }
}

impl PlaybackTokens {
    /// A signer with `key` (at least 32 bytes of secret).
    pub fn new(key: &[u8]) -> Result<PlaybackTokens, ControlError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(ControlError::InvalidToken {
                reason: format!("the signing key needs at least {MIN_KEY_BYTES} bytes"),
            });
        }
        Ok(PlaybackTokens { key: key.to_vec() })
    }

    /// A signed token for `claims`.
    pub fn issue(&self, claims: &PlaybackClaims) -> String {
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let body = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
        let mac = URL_SAFE_NO_PAD.encode(self.mac(body.as_bytes()));
        format!("{body}.{mac}")
    }

    /// The claims of a genuine, unexpired token (checked in constant time).
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<PlaybackClaims, ControlError> {
        let invalid = |reason: &str| ControlError::InvalidToken {
            reason: reason.to_owned(),
        };
        if token.len() > MAX_TOKEN_BYTES || !token.starts_with(PREFIX) {
            return Err(invalid("not a greenroom playback token"));
        }
        let (body, mac) = token
            .rsplit_once('.')
            .ok_or_else(|| invalid("not a greenroom playback token"))?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| invalid("the signature is not base64url"))?;
        if !bool::from(mac.as_slice().ct_eq(self.mac(body.as_bytes()).as_slice())) {
            return Err(invalid("the signature does not match"));
        }
        let json = URL_SAFE_NO_PAD
            .decode(&body[PREFIX.len()..])
            .map_err(|_| invalid("the claims are not base64url"))?;
        let claims: PlaybackClaims =
            serde_json::from_slice(&json).map_err(|_| invalid("the claims do not parse"))?;
        if claims.exp <= now_unix {
            return Err(ControlError::TokenExpired { exp: claims.exp });
        }
        Ok(claims)
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return Vec::new();
        };
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tokens() -> PlaybackTokens {
        PlaybackTokens::new(&[7u8; 32]).expect("key")
    }

    fn claims(exp: i64) -> PlaybackClaims {
        PlaybackClaims {
            stream: "abcdefghijklmnop".to_owned(),
            right: PlaybackRight::Watch,
            exp,
            sub: Some("viewer-1".to_owned()),
        }
    }

    #[test]
    fn a_token_round_trips_until_it_expires() {
        let token = tokens().issue(&claims(1000));
        assert!(token.starts_with("gr1."));
        let verified = tokens().verify(&token, 999).expect("valid");
        assert!(verified.allows("abcdefghijklmnop", PlaybackRight::Watch));
        assert!(!verified.allows("abcdefghijklmnop", PlaybackRight::Replay));
        assert!(!verified.allows("another-stream00", PlaybackRight::Watch));
        assert!(matches!(
            tokens().verify(&token, 1000),
            Err(ControlError::TokenExpired { exp: 1000 })
        ));
    }

    #[test]
    fn forged_and_altered_tokens_are_refused() {
        let token = tokens().issue(&claims(1000));
        let other = PlaybackTokens::new(&[8u8; 32]).expect("key");
        assert!(other.verify(&token, 0).is_err());
        // Claims swapped for a longer expiry, signature kept.
        let longer = tokens().issue(&claims(9999));
        let (body, _) = longer.rsplit_once('.').expect("dot");
        let (_, mac) = token.rsplit_once('.').expect("dot");
        assert!(tokens().verify(&format!("{body}.{mac}"), 0).is_err());
        for junk in [
            "",
            "gr1.",
            "gr1..",
            "gr0.x.y",
            "gr1.!!!.???",
            &"a".repeat(2000),
        ] {
            assert!(tokens().verify(junk, 0).is_err(), "{junk}");
        }
        assert!(PlaybackTokens::new(b"short").is_err());
    }

    proptest! {
        #[test]
        fn flipping_any_character_breaks_the_token(index in 0usize..200, with in "[A-Za-z0-9_.-]") {
            let token = tokens().issue(&claims(1000));
            let index = index % token.len();
            let mut changed: Vec<char> = token.chars().collect();
            let replacement = with.chars().next().unwrap_or('x');
            prop_assume!(changed[index] != replacement);
            changed[index] = replacement;
            let changed: String = changed.into_iter().collect();
            prop_assert!(tokens().verify(&changed, 0).is_err());
        }
    }
}
