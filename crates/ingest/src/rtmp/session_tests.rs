//! Unit tests of [`super`].
use super::*;

/// A minimal scripted publisher built on greenroom's own encoder.
struct Peer {
    enc: ChunkEncoder,
}

impl Peer {
    fn command(&self, stream_id: u32, values: &[Amf0Value]) -> BytesMut {
        let mut out = BytesMut::new();
        let body = amf0::encode_all(values);
        self.enc
            .encode(3, message_type::COMMAND_AMF0, stream_id, 0, &body, &mut out);
        out
    }
}

fn s(v: &str) -> Amf0Value {
    Amf0Value::String(v.to_owned())
}

fn n(v: f64) -> Amf0Value {
    Amf0Value::Number(v)
}

fn decode_output(session: &mut ServerSession) -> Vec<Message> {
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    while let Some(bytes) = session.poll_output() {
        dec.push(&bytes);
    }
    let mut out = Vec::new();
    while let Some(m) = dec.poll_message().expect("server output decodes") {
        out.push(m);
    }
    out
}

fn command_names(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.message_type == message_type::COMMAND_AMF0)
        .filter_map(|m| {
            let values = amf0::decode_all(&m.payload, Amf0Limits::default()).ok()?;
            let name = values.first()?.as_str()?.to_owned();
            let code = values
                .get(3)
                .and_then(|v| v.property("code"))
                .and_then(Amf0Value::as_str)
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            Some(format!("{name}{code}"))
        })
        .collect()
}

fn connect_and_publish(session: &mut ServerSession, key: &str) {
    let peer = Peer {
        enc: ChunkEncoder::new(),
    };
    let app = Amf0Value::Object(vec![("app".to_owned(), s("live"))]);
    session
        .handle_input(&peer.command(0, &[s("connect"), n(1.0), app]))
        .expect("connect");
    session
        .handle_input(&peer.command(0, &[s("releaseStream"), n(2.0), Amf0Value::Null, s(key)]))
        .expect("releaseStream");
    session
        .handle_input(&peer.command(0, &[s("FCPublish"), n(3.0), Amf0Value::Null, s(key)]))
        .expect("FCPublish");
    session
        .handle_input(&peer.command(0, &[s("createStream"), n(4.0), Amf0Value::Null]))
        .expect("createStream");
    session
        .handle_input(&peer.command(
            1,
            &[s("publish"), n(5.0), Amf0Value::Null, s(key), s("live")],
        ))
        .expect("publish");
}

#[test]
fn command_flow_answers_like_a_media_server() {
    let mut session = ServerSession::new(ServerSessionConfig::default());
    connect_and_publish(&mut session, "KEY?token=1");
    assert_eq!(
        session.poll_event(),
        Some(RtmpEvent::PublishRequested {
            app: "live".into(),
            stream_key: "KEY".into()
        })
    );
    session.accept_publish();
    let out = decode_output(&mut session);
    let types: Vec<u8> = out.iter().map(|m| m.message_type).collect();
    assert_eq!(&types[..4], &[1, 5, 6, 4]);
    assert_eq!(
        command_names(&out),
        vec![
            "_result NetConnection.Connect.Success",
            "onFCPublish NetStream.Publish.Start",
            "_result",
            "onStatus NetStream.Publish.Start",
        ]
    );
    let create_result = out
        .iter()
        .filter(|m| m.message_type == message_type::COMMAND_AMF0)
        .nth(2)
        .expect("createStream answer");
    let values = amf0::decode_all(&create_result.payload, Amf0Limits::default()).expect("ok");
    assert_eq!(values[1], n(4.0));
    assert_eq!(values[3], n(1.0));
    assert!(session.is_publishing());
}

#[test]
fn reject_sends_bad_name_and_closes() {
    let mut session = ServerSession::new(ServerSessionConfig::default());
    connect_and_publish(&mut session, "nope");
    assert!(matches!(
        session.poll_event(),
        Some(RtmpEvent::PublishRequested { .. })
    ));
    session.reject_publish("unknown stream key");
    assert!(session.is_closed());
    let out = decode_output(&mut session);
    assert_eq!(
        command_names(&out).last().map(String::as_str),
        Some("onStatus NetStream.Publish.BadName")
    );
    // Later input is ignored.
    session.handle_input(&[0xff; 100]).expect("ignored");
    assert_eq!(session.poll_event(), None);
}

#[test]
fn media_before_accept_is_dropped_and_after_accept_is_an_event() {
    let mut session = ServerSession::new(ServerSessionConfig::default());
    connect_and_publish(&mut session, "k");
    let enc = ChunkEncoder::new();
    let mut b = BytesMut::new();
    enc.encode(6, message_type::VIDEO, 1, 10, &[0x17, 0x00], &mut b);
    session.handle_input(&b).expect("ok");
    assert!(matches!(
        session.poll_event(),
        Some(RtmpEvent::PublishRequested { .. })
    ));
    assert_eq!(session.poll_event(), None);
    session.accept_publish();
    session.handle_input(&b).expect("ok");
    assert_eq!(
        session.poll_event(),
        Some(RtmpEvent::Video {
            timestamp_ms: 10,
            body: Bytes::from_static(&[0x17, 0x00])
        })
    );
    // Media on another message stream is not this publish's.
    let mut other = BytesMut::new();
    enc.encode(6, message_type::AUDIO, 7, 10, &[0xaf, 0x00], &mut other);
    session.handle_input(&other).expect("ok");
    assert_eq!(session.poll_event(), None);
}

#[test]
fn metadata_and_unpublish() {
    let mut session = ServerSession::new(ServerSessionConfig::default());
    connect_and_publish(&mut session, "k");
    session.poll_event();
    session.accept_publish();
    let peer = Peer {
        enc: ChunkEncoder::new(),
    };
    let meta = Amf0Value::EcmaArray(vec![("width".into(), n(320.0))]);
    let body = amf0::encode_all(&[s("@setDataFrame"), s("onMetaData"), meta]);
    let mut b = BytesMut::new();
    peer.enc
        .encode(4, message_type::DATA_AMF0, 1, 0, &body, &mut b);
    session.handle_input(&b).expect("ok");
    let Some(RtmpEvent::Metadata(m)) = session.poll_event() else {
        panic!("metadata expected");
    };
    assert_eq!(m.number("width"), Some(320.0));
    session
        .handle_input(&peer.command(0, &[s("FCUnpublish"), n(6.0), Amf0Value::Null, s("k")]))
        .expect("ok");
    session
        .handle_input(&peer.command(0, &[s("deleteStream"), n(7.0), Amf0Value::Null, n(1.0)]))
        .expect("ok");
    assert_eq!(session.poll_event(), Some(RtmpEvent::Unpublished));
    assert_eq!(session.poll_event(), None);
    assert!(!session.is_publishing());
}

#[test]
fn play_is_refused() {
    let mut session = ServerSession::new(ServerSessionConfig::default());
    let peer = Peer {
        enc: ChunkEncoder::new(),
    };
    let app = Amf0Value::Object(vec![("app".to_owned(), s("live"))]);
    session
        .handle_input(&peer.command(0, &[s("connect"), n(1.0), app]))
        .expect("connect");
    session
        .handle_input(&peer.command(0, &[s("createStream"), n(2.0), Amf0Value::Null]))
        .expect("createStream");
    let err = session
        .handle_input(&peer.command(1, &[s("play"), n(0.0), Amf0Value::Null, s("k")]))
        .expect_err("must fail");
    assert!(matches!(err, RtmpError::PlayNotSupported));
    assert!(session.is_closed());
    let out = decode_output(&mut session);
    assert_eq!(
        command_names(&out).last().map(String::as_str),
        Some("onStatus NetStream.Play.Failed")
    );
}

#[test]
fn commands_out_of_order_are_errors() {
    let peer = Peer {
        enc: ChunkEncoder::new(),
    };
    let mut session = ServerSession::new(ServerSessionConfig::default());
    let err = session
        .handle_input(&peer.command(1, &[s("publish"), n(5.0), Amf0Value::Null, s("k")]))
        .expect_err("must fail");
    assert!(matches!(err, RtmpError::UnexpectedCommand { .. }), "{err}");
    let mut session = ServerSession::new(ServerSessionConfig::default());
    let err = session
        .handle_input(&peer.command(0, &[s("connect"), n(1.0), Amf0Value::Null]))
        .expect_err("must fail");
    assert!(matches!(err, RtmpError::InvalidCommand { .. }), "{err}");
    let mut session = ServerSession::new(ServerSessionConfig::default());
    let err = session
        .handle_input(&peer.command(0, &[n(1.0)]))
        .expect_err("must fail");
    assert!(matches!(err, RtmpError::InvalidCommand { .. }), "{err}");
}

#[test]
fn acknowledgements_follow_the_peer_window_and_pings_are_answered() {
    let mut session = ServerSession::new(ServerSessionConfig::default());
    let enc = ChunkEncoder::new();
    let mut b = BytesMut::new();
    enc.window_ack_size(1000, &mut b);
    enc.user_control(USER_CONTROL_PING_REQUEST, 42, &mut b);
    session.handle_input(&b).expect("ok");
    let pong = decode_output(&mut session)
        .into_iter()
        .find(|m| m.message_type == message_type::USER_CONTROL)
        .expect("ping response");
    assert_eq!(&pong.payload[..], &[0, 7, 0, 0, 0, 42]);
    let mut total = b.len();
    let mut acks = Vec::new();
    for _ in 0..7 {
        let mut b = BytesMut::new();
        enc.encode(
            3,
            message_type::SET_PEER_BANDWIDTH,
            0,
            0,
            &[0u8; 400],
            &mut b,
        );
        total += b.len();
        session.handle_input(&b).expect("ok");
        for m in decode_output(&mut session) {
            if m.message_type == message_type::ACKNOWLEDGEMENT {
                acks.push(control_u32(&m).expect("4 bytes"));
            }
        }
    }
    assert_eq!(acks.len(), 2, "{acks:?} after {total} bytes");
    assert!(acks[0] >= 1000 && acks[1] >= 2000);
}
