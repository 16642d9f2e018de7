//! A viewer's connection after its handshake, carried without webrtc-rs.
//!
//! Once a viewer's DTLS handshake is done on both sides (its first RTCP proves it: SRTCP is
//! keyed from the handshake) and the direct path has its keys, the worker drops the viewer's
//! `RTCPeerConnection`, which keeps its negotiation, ICE agent, DTLS and interceptor state for
//! the life of the connection (most of what a viewer cost in memory). What is left to do on
//! the wire is small and done here and in [`super::Transport`]:
//! - answer the viewer's STUN binding requests (consent freshness, RFC 7675; checks after an
//!   ICE restart), authenticated with the session's ICE password, as an ICE-lite agent would
//!   (RFC 8445 §2.5): the viewer is the controlling agent and nominates; a nomination from a new
//!   address moves the media there;
//! - open the viewer's SRTCP (receiver reports, NACKs, transport-wide feedback, PLI/FIR, REMB)
//!   with a context keyed from the same handshake;
//! - notice the end: a DTLS alert (close_notify) from the viewer, or nothing authenticated from
//!   it for [`SILENCE_LIMIT`];
//! - restart ICE on a `PATCH` with new credentials: new local credentials, same candidates.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::crypto::RTCCrypto;
use rtc::stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter};
use rtc::stun::xoraddr::XorMappedAddress;

/// A viewer that sends nothing authenticated (STUN or RTCP) for this long is gone: viewers
/// send RTCP several times a second and consent checks every few seconds.
pub(crate) const SILENCE_LIMIT: Duration = Duration::from_secs(10);

/// The DTLS record content type of an alert (RFC 5246 §6.2.1).
const DTLS_ALERT: u8 = 21;

/// The ICE side of a viewer's connection after the handshake.
pub(crate) struct Responder {
    ufrag: String,
    pwd: String,
    /// The credentials before an ICE restart, accepted until the new ones are used.
    previous: Option<(String, String)>,
    remote_ufrag: String,
    /// The answer's ICE lines (credentials, first media section, candidates): what an ICE
    /// restart answers with, new credentials in.
    fragment: String,
    last_heard: Instant,
}

/// What a STUN datagram from the viewer asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Answered {
    /// The binding success response to send back.
    pub response: Vec<u8>,
    /// The request nominated its candidate pair (USE-CANDIDATE): media goes there.
    pub nominated: bool,
}

impl Responder {
    pub(crate) fn new(
        ufrag: String,
        pwd: String,
        remote_ufrag: String,
        fragment: String,
        now: Instant,
    ) -> Responder {
        Responder {
            ufrag,
            pwd,
            previous: None,
            remote_ufrag,
            fragment,
            last_heard: now,
        }
    }

    /// The viewer's current ICE username fragment.
    pub(crate) fn remote_ufrag(&self) -> &str {
        &self.remote_ufrag
    }

    /// Something authenticated came from the viewer.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// When the viewer counts as gone unless it is heard from again.
    pub(crate) fn deadline(&self) -> Instant {
        self.last_heard + SILENCE_LIMIT
    }

    /// An ICE restart: the viewer's new ufrag and the new local credentials. Returns the
    /// answer fragment to send back.
    pub(crate) fn restart(&mut self, remote_ufrag: String, ufrag: String, pwd: String) -> String {
        let fragment = with_credentials(&self.fragment, &ufrag, &pwd);
        let old_ufrag = std::mem::replace(&mut self.ufrag, ufrag);
        let old_pwd = std::mem::replace(&mut self.pwd, pwd);
        self.previous = Some((old_ufrag, old_pwd));
        self.remote_ufrag = remote_ufrag;
        self.fragment = fragment.clone();
        fragment
    }

    /// Answers a binding request that names this session's (or, until the restart is used,
    /// the previous) credentials and carries a valid MESSAGE-INTEGRITY; anything else gets
    /// no answer, as RFC 8445 §7.3 has it for a request that fails authentication.
    pub(crate) fn answer(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        crypto: &dyn RTCCrypto,
        now: Instant,
    ) -> Option<Answered> {
        let mut request = Message::new();
        request.unmarshal_binary(datagram).ok()?;
        if request.typ != BINDING_REQUEST {
            return None;
        }
        let username = request.get(ATTR_USERNAME).ok()?;
        let local = std::str::from_utf8(&username).ok()?.split(':').next()?;
        let current = local == self.ufrag;
        let pwd = if current {
            self.pwd.clone()
        } else {
            match &self.previous {
                Some((ufrag, pwd)) if ufrag == local => pwd.clone(),
                _ => return None,
            }
        };
        MessageIntegrity::check(&mut request, pwd.as_bytes(), crypto).ok()?;
        if current {
            self.previous = None;
        }
        let mut response = Message::new();
        let setters: [Box<dyn Setter + '_>; 5] = [
            Box::new(request.clone()),
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress {
                ip: from.ip(),
                port: from.port(),
            }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                pwd, crypto,
            )),
            Box::new(FINGERPRINT),
        ];
        response.build(&setters).ok()?;
        self.last_heard = now;
        Some(Answered {
            response: response.raw,
            nominated: request.contains(ATTR_USE_CANDIDATE),
        })
    }
}

/// Whether a datagram is a DTLS alert record (the viewer closing, or failing).
pub(crate) fn is_dtls_alert(datagram: &[u8]) -> bool {
    datagram.len() >= 13 && datagram[0] == DTLS_ALERT
}

/// Whether an RTP-range datagram (RFC 7983) is RTCP (RFC 5761 §4: payload types 192–223).
pub(crate) fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && matches!(datagram[0], 128..=191) && matches!(datagram[1], 192..=223)
}

/// The ICE lines of an answer fragment with other credentials.
fn with_credentials(fragment: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(fragment.len() + 16);
    for line in fragment.lines() {
        let line = line.trim_end();
        if line.starts_with("a=ice-ufrag:") {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str("a=ice-pwd:");
            out.push_str(pwd);
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::ice::attributes::use_candidate::UseCandidateAttr;
    use rtc::stun::message::{Getter, TransactionId};
    use rtc::stun::textattrs::Username;

    const FRAGMENT: &str = "a=ice-ufrag:localUfrag\r\na=ice-pwd:localPassword0123456789012\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n";

    fn crypto() -> std::sync::Arc<dyn rtc::crypto::RTCCryptoProvider> {
        rtc::crypto::default_provider().expect("a built-in crypto provider")
    }

    const PWD: &str = "localPassword0123456789012";

    fn responder(now: Instant) -> Responder {
        Responder::new(
            "localUfrag".into(),
            PWD.into(),
            "remote".into(),
            FRAGMENT.into(),
            now,
        )
    }

    /// Where the viewer's checks come from.
    fn viewer() -> SocketAddr {
        "127.0.0.1:40000".parse().expect("an address")
    }

    /// A binding request as a controlling agent sends it.
    fn request(
        crypto: &dyn RTCCrypto,
        username: &str,
        pwd: &str,
        nominate: bool,
    ) -> (Vec<u8>, [u8; 12]) {
        let mut m = Message::new();
        let mut setters: Vec<Box<dyn Setter + '_>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(Username::new(ATTR_USERNAME, username.to_owned())),
        ];
        if nominate {
            setters.push(Box::new(UseCandidateAttr::new()));
        }
        setters.push(Box::new(
            MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), crypto),
        ));
        setters.push(Box::new(FINGERPRINT));
        m.build(&setters).expect("a request");
        (m.raw.clone(), m.transaction_id.0)
    }

    #[test]
    fn an_authenticated_request_gets_a_signed_response_with_its_address() {
        let provider = crypto();
        let crypto = provider.crypto();
        let start = Instant::now();
        let mut ice = responder(start);
        let from = viewer();
        let (req, id) = request(crypto, "localUfrag:remote", PWD, false);
        let later = start + Duration::from_secs(3);
        let answered = ice.answer(&req, from, crypto, later).expect("answered");
        assert!(!answered.nominated);
        assert_eq!(ice.deadline(), later + SILENCE_LIMIT);
        let mut response = Message::new();
        response
            .unmarshal_binary(&answered.response)
            .expect("a STUN message");
        assert_eq!(response.typ, BINDING_SUCCESS);
        assert_eq!(response.transaction_id.0, id);
        MessageIntegrity::check(&mut response, PWD.as_bytes(), crypto)
            .expect("signed with the local password");
        let mut mapped = XorMappedAddress {
            ip: "0.0.0.0".parse().expect("an address"),
            port: 0,
        };
        mapped.get_from(&response).expect("a mapped address");
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);

        let (nominating, _) = request(crypto, "localUfrag:remote", PWD, true);
        assert!(
            ice.answer(&nominating, from, crypto, later)
                .expect("answered")
                .nominated
        );
    }

    #[test]
    fn wrong_credentials_and_other_messages_get_nothing() {
        let provider = crypto();
        let crypto = provider.crypto();
        let start = Instant::now();
        let mut ice = responder(start);
        let from = viewer();
        let (wrong_pwd, _) = request(crypto, "localUfrag:remote", "not the password", false);
        assert_eq!(ice.answer(&wrong_pwd, from, crypto, start), None);
        let (wrong_ufrag, _) = request(crypto, "otherUfrag:remote", PWD, false);
        assert_eq!(ice.answer(&wrong_ufrag, from, crypto, start), None);
        assert_eq!(ice.answer(&[0x80; 40], from, crypto, start), None);
        assert_eq!(
            ice.deadline(),
            start + SILENCE_LIMIT,
            "nothing authenticated was heard"
        );
    }

    #[test]
    fn a_restart_answers_new_credentials_and_accepts_the_old_until_the_new_are_used() {
        let provider = crypto();
        let crypto = provider.crypto();
        let now = Instant::now();
        let mut ice = responder(now);
        let from = viewer();
        let fragment = ice.restart("remote2".into(), "newUfrag".into(), "newPassword".into());
        assert!(fragment.contains("a=ice-ufrag:newUfrag\r\n"));
        assert!(fragment.contains("a=ice-pwd:newPassword\r\n"));
        assert!(fragment.contains("a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n"));
        assert!(!fragment.contains("localUfrag"));
        assert_eq!(ice.remote_ufrag(), "remote2");
        let (old, _) = request(crypto, "localUfrag:remote", PWD, false);
        assert!(
            ice.answer(&old, from, crypto, now).is_some(),
            "old still good"
        );
        let (new, _) = request(crypto, "newUfrag:remote2", "newPassword", true);
        assert!(ice.answer(&new, from, crypto, now).is_some());
        assert!(
            ice.answer(&old, from, crypto, now).is_none(),
            "old refused once the new ones are used"
        );
    }

    #[test]
    fn tells_rtcp_and_alerts_apart() {
        // Receiver report and PLI are RTCP; a VP8 RTP packet (PT 96, marker set) is not.
        assert!(is_rtcp(&[0x80, 201, 0, 1, 0, 0, 0, 1]));
        assert!(is_rtcp(&[0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]));
        assert!(!is_rtcp(&[0x80, 0x80 | 96, 0, 1, 0, 0, 0, 1]));
        let mut alert = vec![DTLS_ALERT, 0xfe, 0xfd];
        alert.extend([0; 16]);
        assert!(is_dtls_alert(&alert));
        let mut handshake = alert.clone();
        handshake[0] = 22;
        assert!(!is_dtls_alert(&handshake));
    }
}
