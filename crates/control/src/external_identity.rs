//! External identity: JWTs from a trusted identity provider stand for greenroom accounts.
//!
//! The operator configures one key: an HS256 shared secret, or a PEM public key whose type picks
//! the algorithm (RSA: RS256, EC: ES256), plus the expected issuer and audience. A token is
//! accepted only when it is signed with exactly that algorithm and key (never `none`, never an
//! HMAC made with a public key), names the issuer and the audience, has a `sub` and an `exp`,
//! and is within its `exp`/`nbf` with 60 s of leeway. Time is an argument, never read here.
//!
//! The account a token maps to is keyed by `"{iss}|{sub}"` (see
//! [`Store::account_for_external`](crate::Store::account_for_external)).

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::ControlError;
use crate::account::Role;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 60;
/// Shortest HS256 secret accepted, in bytes.
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// Longest token accepted, in bytes.
pub const MAX_IDENTITY_TOKEN_BYTES: usize = 8 * 1024;
/// Longest `sub` accepted, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 255;
/// The claim that makes an account a creator (`"greenroom_role": "creator"`).
pub const ROLE_CLAIM: &str = "greenroom_role";

/// The key tokens are verified with.
#[derive(Clone)]
pub enum IdentityKey {
    /// A shared secret: HS256.
    Hs256(Vec<u8>),
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`): RS256 for RSA, ES256 for P-256.
    PublicKeyPem(Vec<u8>),
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityKey::Hs256(_) => f.write_str("Hs256(<redacted>)"),
            IdentityKey::PublicKeyPem(_) => f.write_str("PublicKeyPem(..)"),
        }
    }
}

/// What the identity provider is.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub key: IdentityKey,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry (alone or among others).
    pub audience: String,
}

/// What a verified token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalClaims {
    /// `"{iss}|{sub}"`: unique across issuers, stored as the account's `external_subject`.
    pub subject: String,
    /// The `email` claim, if any (not checked here).
    pub email: Option<String>,
    /// The `name` claim, if any.
    pub name: Option<String>,
    /// [`Role::Creator`] only when `greenroom_role` is `"creator"`.
    pub role: Role,
}

/// Verifies identity tokens with one configured key.
#[derive(Clone)]
pub struct ExternalIdentity {
    key: DecodingKey,
    algorithm: Algorithm,
    validation: Validation,
    issuer: String,
}

impl std::fmt::Debug for ExternalIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalIdentity")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    iss: String,
    exp: f64,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    greenroom_role: Option<String>,
}

fn invalid(reason: impl Into<String>) -> ControlError {
    ControlError::InvalidIdentityToken {
        reason: reason.into(),
    }
}

impl ExternalIdentity {
    /// A verifier for `config`. Fails (with [`ControlError::InvalidIdentityToken`]) on an HS256
    /// secret under 32 bytes, a PEM that is neither an RSA nor an EC public key, or an empty
    /// issuer or audience.
    pub fn new(config: IdentityConfig) -> Result<ExternalIdentity, ControlError> {
        if config.issuer.trim().is_empty() || config.audience.trim().is_empty() {
            return Err(invalid("the issuer and the audience must not be empty"));
        }
        let (key, algorithm) = match &config.key {
            IdentityKey::Hs256(secret) => {
                if secret.len() < MIN_HS256_SECRET_BYTES {
                    return Err(invalid(format!(
                        "the HS256 secret needs at least {MIN_HS256_SECRET_BYTES} bytes"
                    )));
                }
                (DecodingKey::from_secret(secret), Algorithm::HS256)
            }
            IdentityKey::PublicKeyPem(pem) => {
                let text = String::from_utf8_lossy(pem);
                if text.contains("PRIVATE KEY") {
                    return Err(invalid(
                        "the key file holds a private key; give the public key only",
                    ));
                }
                if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
                    (key, Algorithm::RS256)
                } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
                    (key, Algorithm::ES256)
                } else {
                    return Err(invalid(
                        "the key file is not a PEM RSA or EC (P-256) public key",
                    ));
                }
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Time is checked below against the caller's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Ok(ExternalIdentity {
            key,
            algorithm,
            validation,
            issuer: config.issuer,
        })
    }

    /// The algorithm tokens must be signed with: `HS256`, `RS256` or `ES256`.
    pub fn algorithm(&self) -> &'static str {
        match self.algorithm {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            _ => "HS256",
        }
    }

    /// The claims of a genuine token for this issuer and audience, valid at `now_unix`
    /// (seconds); [`ControlError::InvalidIdentityToken`] for anything else.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<ExternalClaims, ControlError> {
        if token.len() > MAX_IDENTITY_TOKEN_BYTES {
            return Err(invalid("the token is too long"));
        }
        let data = jsonwebtoken::decode::<RawClaims>(token, &self.key, &self.validation)
            .map_err(|err| invalid(format!("{err}")))?;
        let claims = data.claims;
        let now = now_unix as f64;
        if claims.exp + LEEWAY_SECS as f64 <= now {
            return Err(invalid("the token has expired"));
        }
        if let Some(nbf) = claims.nbf
            && nbf - LEEWAY_SECS as f64 > now
        {
            return Err(invalid("the token is not valid yet"));
        }
        let sub = claims.sub.trim();
        if sub.is_empty() || sub.len() > MAX_SUBJECT_BYTES || sub.chars().any(|c| c.is_control()) {
            return Err(invalid("the sub claim is empty, too long or not text"));
        }
        let role = if claims.greenroom_role.as_deref() == Some("creator") {
            Role::Creator
        } else {
            Role::Viewer
        };
        Ok(ExternalClaims {
            subject: format!("{}|{sub}", claims.iss),
            email: claims.email.filter(|e| !e.trim().is_empty()),
            name: claims.name.filter(|n| !n.trim().is_empty()),
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &[u8] = b"an-hs256-secret-of-at-least-32-bytes!";
    const NOW: i64 = 1_750_000_000;
    // Test keys made with `openssl genpkey` (RSA 2048, EC P-256); they protect nothing.
    const RSA_PRIVATE: &[u8] = include_bytes!("../tests/data/jwt_rs256_private.pem");
    const RSA_PUBLIC: &[u8] = include_bytes!("../tests/data/jwt_rs256_public.pem");
    const EC_PRIVATE: &[u8] = include_bytes!("../tests/data/jwt_es256_private.pem");
    const EC_PUBLIC: &[u8] = include_bytes!("../tests/data/jwt_es256_public.pem");

    fn config(key: IdentityKey) -> IdentityConfig {
        IdentityConfig {
            key,
            issuer: "https://id.example.com".to_owned(),
            audience: "greenroom".to_owned(),
        }
    }

    fn hs() -> ExternalIdentity {
        ExternalIdentity::new(config(IdentityKey::Hs256(SECRET.to_vec()))).expect("hs256")
    }

    fn claims() -> serde_json::Value {
        json!({
            "iss": "https://id.example.com",
            "aud": "greenroom",
            "sub": "user-42",
            "exp": NOW + 300,
            "email": "ada@example.com",
            "name": "Ada",
        })
    }

    fn sign(alg: Algorithm, key: &EncodingKey, claims: &serde_json::Value) -> String {
        encode(&Header::new(alg), claims, key).expect("sign")
    }

    fn hs_token(claims: &serde_json::Value) -> String {
        sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), claims)
    }

    fn refused(identity: &ExternalIdentity, token: &str) -> bool {
        matches!(
            identity.verify(token, NOW),
            Err(ControlError::InvalidIdentityToken { .. })
        )
    }

    #[test]
    fn an_hs256_token_maps_to_issuer_and_subject() {
        let verified = hs().verify(&hs_token(&claims()), NOW).expect("valid");
        assert_eq!(
            verified,
            ExternalClaims {
                subject: "https://id.example.com|user-42".to_owned(),
                email: Some("ada@example.com".to_owned()),
                name: Some("Ada".to_owned()),
                role: Role::Viewer,
            }
        );
        let mut creator = claims();
        creator["greenroom_role"] = json!("creator");
        creator["aud"] = json!(["other", "greenroom"]);
        let verified = hs().verify(&hs_token(&creator), NOW).expect("valid");
        assert_eq!(verified.role, Role::Creator);
        let mut admin = claims();
        admin["greenroom_role"] = json!("admin");
        assert_eq!(
            hs().verify(&hs_token(&admin), NOW).expect("valid").role,
            Role::Viewer
        );
    }

    #[test]
    fn expiry_and_not_before_have_a_minute_of_leeway() {
        let mut c = claims();
        c["exp"] = json!(NOW - 30);
        assert!(hs().verify(&hs_token(&c), NOW).is_ok(), "within leeway");
        c["exp"] = json!(NOW - 61);
        assert!(refused(&hs(), &hs_token(&c)));
        let mut c = claims();
        c["nbf"] = json!(NOW + 30);
        assert!(hs().verify(&hs_token(&c), NOW).is_ok(), "within leeway");
        c["nbf"] = json!(NOW + 120);
        assert!(refused(&hs(), &hs_token(&c)));
    }

    #[test]
    fn wrong_issuer_audience_missing_claims_and_forgeries_are_refused() {
        for (name, value) in [
            ("iss", json!("https://evil.example.com")),
            ("aud", json!("someone-else")),
            ("sub", json!("")),
        ] {
            let mut c = claims();
            c[name] = value;
            assert!(refused(&hs(), &hs_token(&c)), "{name}");
        }
        for missing in ["exp", "iss", "aud", "sub"] {
            let mut c = claims();
            c.as_object_mut().map(|o| o.remove(missing));
            assert!(refused(&hs(), &hs_token(&c)), "without {missing}");
        }
        let forged = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
            &claims(),
        );
        assert!(refused(&hs(), &forged));
        let token = hs_token(&claims());
        let (head, _) = token.rsplit_once('.').expect("three parts");
        assert!(refused(&hs(), &format!("{head}.")), "signature stripped");
        for junk in ["", "a.b.c", "not a token", &"x".repeat(10_000)] {
            assert!(refused(&hs(), junk), "{junk:.20}");
        }
        // `alg: none`, hand-made.
        let none_header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
        let body = base64_url(claims().to_string().as_bytes());
        assert!(refused(&hs(), &format!("{none_header}.{body}.")));
        assert!(ExternalIdentity::new(config(IdentityKey::Hs256(b"short".to_vec()))).is_err());
    }

    fn base64_url(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn rs256_keys_verify_rs256_and_refuse_hs256_made_with_the_public_key() {
        let identity =
            ExternalIdentity::new(config(IdentityKey::PublicKeyPem(RSA_PUBLIC.to_vec())))
                .expect("rsa public key");
        assert_eq!(identity.algorithm(), "RS256");
        let key = EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa private key");
        let token = sign(Algorithm::RS256, &key, &claims());
        assert_eq!(
            identity.verify(&token, NOW).expect("valid").subject,
            "https://id.example.com|user-42"
        );
        // The classic confusion: an HMAC keyed with the public key's bytes.
        let confused = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(RSA_PUBLIC),
            &claims(),
        );
        assert!(refused(&identity, &confused));
        // Another RSA algorithm than the one configured.
        assert!(refused(&identity, &sign(Algorithm::RS512, &key, &claims())));
    }

    #[test]
    fn es256_keys_verify_es256_only() {
        let identity = ExternalIdentity::new(config(IdentityKey::PublicKeyPem(EC_PUBLIC.to_vec())))
            .expect("ec public key");
        assert_eq!(identity.algorithm(), "ES256");
        let key = EncodingKey::from_ec_pem(EC_PRIVATE).expect("ec private key");
        assert!(
            identity
                .verify(&sign(Algorithm::ES256, &key, &claims()), NOW)
                .is_ok()
        );
        let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa private key");
        assert!(refused(&identity, &sign(Algorithm::RS256, &rsa, &claims())));
        let mut expired = claims();
        expired["exp"] = json!(NOW - 3600);
        assert!(refused(&identity, &sign(Algorithm::ES256, &key, &expired)));
    }

    #[test]
    fn unusable_key_files_are_refused() {
        for pem in [
            b"not a pem".to_vec(),
            RSA_PRIVATE.to_vec(),
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_vec(),
        ] {
            assert!(ExternalIdentity::new(config(IdentityKey::PublicKeyPem(pem))).is_err());
        }
        let mut empty = config(IdentityKey::Hs256(SECRET.to_vec()));
        empty.issuer = " ".to_owned();
        assert!(ExternalIdentity::new(empty).is_err());
    }
}
