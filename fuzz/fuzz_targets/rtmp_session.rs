//! Arbitrary bytes into greenroom's RTMP `ServerSession` after a completed handshake.
//!
//! Input layout: byte 0 picks the starting state (bit 0: after an accepted publish, else a
//! fresh session; bit 1: accept publish requests, else reject them); byte 1 + 1 is the slice
//! size the rest is fed in. The only failure is a panic (or an abort, e.g. stack overflow).
#![no_main]

use greenroom_ingest::rtmp::amf0::{self, Amf0Value};
use greenroom_ingest::rtmp::chunk::{ChunkEncoder, message_type};
use greenroom_ingest::rtmp::{RtmpEvent, ServerSession, ServerSessionConfig};
use libfuzzer_sys::fuzz_target;

fn command(enc: &ChunkEncoder, stream_id: u32, values: &[Amf0Value], out: &mut bytes::BytesMut) {
    let body = amf0::encode_all(values);
    enc.encode(3, message_type::COMMAND_AMF0, stream_id, 0, &body, out);
}

fn published_session() -> ServerSession {
    let s = |v: &str| Amf0Value::String(v.to_owned());
    let enc = ChunkEncoder::new();
    let mut b = bytes::BytesMut::new();
    let app = Amf0Value::Object(vec![("app".to_owned(), s("live"))]);
    command(
        &enc,
        0,
        &[s("connect"), Amf0Value::Number(1.0), app],
        &mut b,
    );
    command(
        &enc,
        0,
        &[s("createStream"), Amf0Value::Number(2.0), Amf0Value::Null],
        &mut b,
    );
    let publish = [
        s("publish"),
        Amf0Value::Number(3.0),
        Amf0Value::Null,
        s("KEY"),
        s("live"),
    ];
    command(&enc, 1, &publish, &mut b);
    let mut session = ServerSession::new(ServerSessionConfig::default());
    if session.handle_input(&b).is_ok() {
        while session.poll_event().is_some() {}
        session.accept_publish();
    }
    session
}

fuzz_target!(|data: &[u8]| {
    let (mode, step, rest) = match data {
        [mode, step, rest @ ..] => (*mode, usize::from(*step) + 1, rest),
        _ => return,
    };
    let mut session = if mode & 1 == 1 {
        published_session()
    } else {
        ServerSession::new(ServerSessionConfig::default())
    };
    for piece in rest.chunks(step) {
        let result = session.handle_input(piece);
        while let Some(event) = session.poll_event() {
            if let RtmpEvent::PublishRequested { .. } = event {
                if mode & 2 == 2 {
                    session.accept_publish();
                } else {
                    session.reject_publish("fuzz");
                }
            }
        }
        while session.poll_output().is_some() {}
        if result.is_err() {
            break;
        }
    }
});
