//! A viewer connection's SRTP keys, taken from its DTLS handshake.
//!
//! webrtc-rs keeps a connection's SRTP contexts to itself, but it lets each connection choose
//! its cryptographic provider, and the DTLS-SRTP exporter (RFC 5764 §4.2) runs through that
//! provider: the TLS PRF over the master secret, seeded with the label `EXTRACTOR-dtls_srtp`
//! and both randoms. [`KeyCapture`] is a provider that hands every operation to the default one
//! and remembers that secret and seed, plus which SRTP protection profile the connection then
//! builds its contexts for (GCM builds an AEAD, AES-CM a stream cipher). From those it derives
//! the same keying material webrtc-rs does and builds SRTP contexts of its own: one for the
//! connection's outbound RTP and RTCP, which webrtc-rs then never encrypts itself, and one for
//! the viewer's RTCP once greenroom reads it without webrtc-rs (see [`super::ice`]).

use std::sync::{Arc, Mutex};

use rtc::crypto::ActiveKeyExchange;
use rtc::crypto::{
    AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher, CryptoAlgorithm,
    CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac, PublicKey, RTCCrypto,
    RTCCryptoProvider, RTCRandom, SignatureScheme, SigningKey, StreamCipher, StreamCipherAlgorithm,
};
use rtc::srtp::config::{Config, LABEL_EXTRACTOR_DTLS_SRTP};
use rtc::srtp::context::Context;
use rtc::srtp::option::srtcp_replay_protection;
use rtc::srtp::protection_profile::ProtectionProfile;

/// SRTCP indices remembered against replays of the peer's RTCP.
const RTCP_REPLAY_WINDOW: usize = 128;
/// Length of a TLS master secret (RFC 5246 §8.1).
const MASTER_SECRET_LEN: usize = 48;

#[derive(Default)]
struct Captured {
    /// The master secret and the exporter seed (label, client random, server random).
    exporter: Option<(Vec<u8>, Vec<u8>)>,
    /// The profile of the first SRTP cipher built after the export.
    profile: Option<ProtectionProfile>,
}

/// The provider; see the module docs. One per connection.
pub(crate) struct KeyCapture {
    crypto: Capturing,
}

struct Capturing {
    inner: Arc<dyn RTCCryptoProvider>,
    captured: Arc<Mutex<Captured>>,
}

impl KeyCapture {
    pub(crate) fn new() -> Result<Arc<KeyCapture>, CryptoError> {
        Ok(Arc::new(KeyCapture {
            crypto: Capturing {
                inner: rtc::crypto::default_provider()?,
                captured: Arc::default(),
            },
        }))
    }

    /// The SRTP context for this side's outbound RTP and RTCP, once the handshake has exported
    /// its keys. `is_client`: this side is the DTLS client.
    pub(crate) fn outbound_context(&self, is_client: bool) -> Option<Context> {
        self.context(is_client, true)
    }

    /// The SRTP context for the peer's RTCP (replay-protected), once the handshake has
    /// exported its keys. `is_client`: this side is the DTLS client.
    pub(crate) fn inbound_context(&self, is_client: bool) -> Option<Context> {
        self.context(is_client, false)
    }

    fn context(&self, is_client: bool, local: bool) -> Option<Context> {
        let captured = self.crypto.captured.lock().ok()?;
        let (secret, seed) = captured.exporter.as_ref()?;
        let profile = captured.profile?;
        let mut config = Config {
            profile,
            ..Default::default()
        };
        let crypto = self.crypto.inner.crypto();
        let material = p_sha256(crypto, secret, seed, config.keying_material_len()).ok()?;
        config
            .set_session_keys_from_keying_material(&material, is_client)
            .ok()?;
        let (key, salt, replay) = if local {
            (
                &config.keys.local_master_key,
                &config.keys.local_master_salt,
                None,
            )
        } else {
            (
                &config.keys.remote_master_key,
                &config.keys.remote_master_salt,
                Some(srtcp_replay_protection(RTCP_REPLAY_WINDOW)),
            )
        };
        Context::new(key, salt, profile, None, replay, crypto).ok()
    }
}

/// The TLS 1.2 PRF's P_SHA256 (RFC 5246 §5), as the DTLS exporter runs it.
fn p_sha256(
    crypto: &dyn RTCCrypto,
    secret: &[u8],
    seed: &[u8],
    len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let mut mac = crypto.new_hmac(HmacAlgorithm::Sha256, secret)?;
    let mut a = seed.to_vec();
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        let mut next = vec![0; mac.output_len()];
        mac.sign(&[&a], &mut next)?;
        a = next;
        let mut block = vec![0; mac.output_len()];
        mac.sign(&[&a, seed], &mut block)?;
        out.extend_from_slice(&block);
    }
    out.truncate(len);
    Ok(out)
}

impl RTCCryptoProvider for KeyCapture {
    fn name(&self) -> &'static str {
        self.crypto.inner.name()
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        &self.crypto
    }

    fn random(&self) -> &dyn RTCRandom {
        self.crypto.inner.random()
    }
}

impl Capturing {
    fn note_profile(&self, profile: ProtectionProfile) {
        if let Ok(mut captured) = self.captured.lock()
            && captured.exporter.is_some()
            && captured.profile.is_none()
        {
            captured.profile = Some(profile);
        }
    }
}

/// An HMAC-SHA256 keyed with a master secret: notices the exporter's first round.
struct Watched {
    inner: Box<dyn Mac>,
    key: Vec<u8>,
    captured: Arc<Mutex<Captured>>,
}

impl Mac for Watched {
    fn output_len(&self) -> usize {
        self.inner.output_len()
    }

    fn sign(&mut self, input: &[&[u8]], output: &mut [u8]) -> Result<(), CryptoError> {
        // P_hash's A(1) = HMAC(secret, seed): the seed alone, label first.
        if let [seed] = input
            && seed.starts_with(LABEL_EXTRACTOR_DTLS_SRTP.as_bytes())
            && let Ok(mut captured) = self.captured.lock()
        {
            captured.exporter = Some((self.key.clone(), seed.to_vec()));
            captured.profile = None;
        }
        self.inner.sign(input, output)
    }

    fn verify(&mut self, input: &[&[u8]], expected: &[u8]) -> Result<(), CryptoError> {
        self.inner.verify(input, expected)
    }
}

impl RTCCrypto for Capturing {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        self.inner.crypto().supports(algorithm)
    }

    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.crypto().hash(algorithm, data)
    }

    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }

    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        let inner = self.inner.crypto().new_hmac(algorithm, key)?;
        if algorithm == HmacAlgorithm::Sha256 && key.len() == MASTER_SECRET_LEN {
            return Ok(Box::new(Watched {
                inner,
                key: key.to_vec(),
                captured: self.captured.clone(),
            }));
        }
        Ok(inner)
    }

    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        if algorithm == StreamCipherAlgorithm::Aes128Ctr {
            // The connection offers no AES-CM profile with a 32-bit tag (see `peer::build`).
            self.note_profile(ProtectionProfile::Aes128CmHmacSha1_80);
        }
        self.inner.crypto().new_stream_cipher(algorithm, key)
    }

    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        match algorithm {
            AeadAlgorithm::Aes128Gcm => self.note_profile(ProtectionProfile::AeadAes128Gcm),
            AeadAlgorithm::Aes256Gcm => self.note_profile(ProtectionProfile::AeadAes256Gcm),
            _ => {}
        }
        self.inner.crypto().new_aead(algorithm, key)
    }

    fn new_cbc(
        &self,
        algorithm: CbcAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner.crypto().new_cbc(algorithm, key)
    }

    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        self.inner.crypto().start_key_exchange(algorithm)
    }

    fn generate_signing_key(
        &self,
        scheme: SignatureScheme,
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().generate_signing_key(scheme)
    }

    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().import_signing_key(scheme, pkcs8_der)
    }

    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner
            .crypto()
            .verify_signature(scheme, public_key, message, signature)
    }
}

/// A capture that has seen the exporter's first PRF round over a master secret of `secret`
/// bytes and randoms of `random` bytes, as a handshake runs it.
#[cfg(test)]
fn exported_for_tests(secret: u8, random: u8) -> Arc<KeyCapture> {
    let keys = KeyCapture::new().expect("a built-in crypto provider");
    let mut mac = keys
        .crypto()
        .new_hmac(HmacAlgorithm::Sha256, &[secret; MASTER_SECRET_LEN])
        .expect("HMAC-SHA256");
    let mut seed = LABEL_EXTRACTOR_DTLS_SRTP.as_bytes().to_vec();
    seed.extend([random; 64]);
    let mut out = [0u8; 32];
    mac.sign(&[&seed], &mut out).expect("sign");
    keys
}

/// A capture that has seen an AES-128-GCM handshake's export (the same one every call), as
/// both ends of one connection would.
#[cfg(test)]
pub(crate) fn keyed_for_tests() -> Arc<KeyCapture> {
    let keys = exported_for_tests(6, 8);
    keys.crypto()
        .new_aead(AeadAlgorithm::Aes128Gcm, &[2; 16])
        .expect("AES-128-GCM");
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
            .collect()
    }

    /// The TLS 1.2 PRF (SHA-256) test vector published with RFC 5246's errata discussions
    /// (secret, "test label" and seed below, 100 bytes out).
    #[test]
    fn p_sha256_matches_the_tls12_prf_vector() {
        let provider = rtc::crypto::default_provider().expect("a built-in crypto provider");
        let secret = hex("9bbe436ba940f017b17652849a71db35");
        let mut seed = b"test label".to_vec();
        seed.extend(hex("a0ba9f936cda311827a6f796ffd5198c"));
        let out = p_sha256(provider.crypto(), &secret, &seed, 100).expect("PRF output");
        assert_eq!(
            out,
            hex(concat!(
                "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a",
                "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab",
                "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701",
                "87347b66"
            ))
        );
    }

    /// The exporter's first PRF round is noticed, and the profile is the first SRTP cipher
    /// built after it, not the DTLS record cipher built before.
    #[test]
    fn the_exporter_round_and_the_following_srtp_cipher_are_captured() {
        let keys = KeyCapture::new().expect("a built-in crypto provider");
        let crypto = keys.crypto();
        let secret = [7u8; MASTER_SECRET_LEN];
        // Before the export: a DTLS record cipher and another PRF round.
        crypto
            .new_aead(AeadAlgorithm::Aes256Gcm, &[1; 32])
            .expect("AES-256-GCM");
        let mut out = [0u8; 32];
        let mut mac = crypto
            .new_hmac(HmacAlgorithm::Sha256, &secret)
            .expect("HMAC-SHA256");
        mac.sign(&[&b"key expansion0123"[..]], &mut out)
            .expect("sign");
        assert!(
            keys.outbound_context(false).is_none(),
            "nothing exported yet"
        );
        let mut seed = LABEL_EXTRACTOR_DTLS_SRTP.as_bytes().to_vec();
        seed.extend([9u8; 64]);
        mac.sign(&[&seed], &mut out).expect("sign");
        assert!(
            keys.outbound_context(false).is_none(),
            "profile not known yet"
        );
        crypto
            .new_aead(AeadAlgorithm::Aes128Gcm, &[2; 16])
            .expect("AES-128-GCM");
        let captured = keys.crypto.captured.lock().expect("not poisoned");
        assert!(matches!(
            captured.profile,
            Some(ProtectionProfile::AeadAes128Gcm)
        ));
        assert_eq!(
            captured
                .exporter
                .as_ref()
                .map(|(k, s)| (k.clone(), s.clone())),
            Some((secret.to_vec(), seed))
        );
        drop(captured);
        assert!(keys.outbound_context(true).is_some());
        assert!(keys.outbound_context(false).is_some());
    }

    #[test]
    fn an_aes_cm_connection_is_keyed_for_aes_cm() {
        let keys = exported_for_tests(3, 5);
        let crypto = keys.crypto();
        crypto
            .new_stream_cipher(StreamCipherAlgorithm::Aes128Ctr, &[4; 16])
            .expect("AES-128-CTR");
        // A later AEAD (the other direction's context) does not change the answer.
        crypto
            .new_aead(AeadAlgorithm::Aes128Gcm, &[2; 16])
            .expect("AES-128-GCM");
        assert!(matches!(
            keys.crypto.captured.lock().expect("not poisoned").profile,
            Some(ProtectionProfile::Aes128CmHmacSha1_80)
        ));
        assert!(keys.outbound_context(false).is_some());
    }

    /// Both ends keyed from the same handshake: what one side's outbound context seals, the
    /// other's inbound context opens, once; a replay is refused.
    #[test]
    fn the_inbound_context_opens_what_the_peer_sealed() {
        let (client, server) = (keyed_for_tests(), keyed_for_tests());
        let mut sealing = client.outbound_context(true).expect("client keys");
        let mut opening = server.inbound_context(false).expect("server keys");
        // A receiver report: V=2, RC=0, PT=201, length 1, SSRC.
        let report = [0x80, 201, 0, 1, 1, 2, 3, 4];
        let sealed = sealing.encrypt_rtcp(&report).expect("sealed");
        assert_ne!(&sealed[..], &report[..]);
        let opened = opening.decrypt_rtcp(&sealed).expect("opened");
        assert_eq!(&opened[..], &report[..]);
        assert!(
            opening.decrypt_rtcp(&sealed).is_err(),
            "a replay is refused"
        );
        // The server's own outbound keys are not the client's.
        let mut wrong = server.outbound_context(false).expect("server keys");
        let other = wrong.encrypt_rtcp(&report).expect("sealed");
        assert!(opening.decrypt_rtcp(&other).is_err());
    }
}
