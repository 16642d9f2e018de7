//! Unit tests of [`super`].
use super::*;

fn decode_all(decoder: &mut ChunkDecoder, bytes: &[u8]) -> Result<Vec<Message>, RtmpError> {
    decoder.push(bytes);
    let mut out = Vec::new();
    while let Some(m) = decoder.poll_message()? {
        out.push(m);
    }
    Ok(out)
}

fn encode(enc: &ChunkEncoder, csid: u32, mtype: u8, sid: u32, ts: u32, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    enc.encode(csid, mtype, sid, ts, payload, &mut out);
    out
}

#[test]
fn basic_header_forms_roundtrip() {
    let enc = ChunkEncoder::new();
    for csid in [2, 3, 63, 64, 319, 320, 1000, MAX_CSID] {
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        let bytes = encode(&enc, csid, message_type::VIDEO, 1, 40, b"abc");
        let msgs = decode_all(&mut dec, &bytes).expect("decodes");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].csid, csid);
        assert_eq!(&msgs[0].payload[..], b"abc");
        assert_eq!(msgs[0].timestamp_ms, 40);
    }
}

#[test]
fn header_formats_1_2_3_add_deltas() {
    let mut b = Vec::new();
    // fmt 0: csid 4, ts 1000, len 2, type 9, stream 1
    b.extend_from_slice(&[0x04, 0x00, 0x03, 0xe8, 0, 0, 2, 9, 1, 0, 0, 0, 0xaa, 0xbb]);
    // fmt 1: delta 33, len 1, type 8
    b.extend_from_slice(&[0x44, 0, 0, 33, 0, 0, 1, 8, 0xcc]);
    // fmt 2: delta 40
    b.extend_from_slice(&[0x84, 0, 0, 40, 0xdd]);
    // fmt 3: delta 40 again
    b.push(0xc4);
    b.push(0xee);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let msgs = decode_all(&mut dec, &b).expect("decodes");
    let got: Vec<(u8, u32, u32, &[u8])> = msgs
        .iter()
        .map(|m| (m.message_type, m.stream_id, m.timestamp_ms, &m.payload[..]))
        .collect();
    assert_eq!(
        got,
        vec![
            (9, 1, 1000, &[0xaa, 0xbb][..]),
            (8, 1, 1033, &[0xcc][..]),
            (8, 1, 1073, &[0xdd][..]),
            (8, 1, 1113, &[0xee][..]),
        ]
    );
}

#[test]
fn format_3_after_format_0_repeats_the_absolute_timestamp_as_delta() {
    let mut b = vec![0x04, 0x00, 0x00, 0x0a, 0, 0, 1, 9, 1, 0, 0, 0, 0x01];
    b.extend_from_slice(&[0xc4, 0x02]);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let msgs = decode_all(&mut dec, &b).expect("decodes");
    assert_eq!(msgs[1].timestamp_ms, 20);
}

#[test]
fn timestamps_wrap_at_32_bits() {
    let enc = ChunkEncoder::new();
    let mut b = encode(&enc, 4, message_type::VIDEO, 1, u32::MAX - 10, b"x");
    b.extend_from_slice(&[0x84, 0, 0, 20, b'y']);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let msgs = decode_all(&mut dec, &b).expect("decodes");
    assert_eq!(msgs[0].timestamp_ms, u32::MAX - 10);
    assert_eq!(msgs[1].timestamp_ms, 9);
}

#[test]
fn extended_timestamps_in_first_and_continuation_chunks() {
    let enc = ChunkEncoder::new();
    let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let ts = 0x0100_0000 + 5;
    let b = encode(&enc, 6, message_type::VIDEO, 1, ts, &payload);
    // 12 header + 4 ext + 128, then 2 x (1 + 4 + ...)
    assert_eq!(b.len(), 12 + 4 + 300 + 2 * 5);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let msgs = decode_all(&mut dec, &b).expect("decodes");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].timestamp_ms, ts);
    assert_eq!(&msgs[0].payload[..], &payload[..]);
}

#[test]
fn byte_at_a_time_equals_all_at_once() {
    let mut enc = ChunkEncoder::new();
    let mut b = BytesMut::new();
    enc.set_chunk_size(100, &mut b);
    enc.encode(4, message_type::VIDEO, 1, 0, &[7u8; 1000], &mut b);
    enc.encode(5, message_type::AUDIO, 1, 0xFF_FFFF, &[8u8; 250], &mut b);
    let mut whole = ChunkDecoder::new(ChunkLimits::default());
    let expected = decode_all(&mut whole, &b).expect("decodes");
    let mut split = ChunkDecoder::new(ChunkLimits::default());
    let mut got = Vec::new();
    for byte in b.iter() {
        got.extend(decode_all(&mut split, &[*byte]).expect("decodes"));
    }
    assert_eq!(got, expected);
    assert_eq!(split.chunk_size(), 100);
    assert_eq!(split.buffered_bytes(), 0);
    assert_eq!(split.bytes_received(), b.len() as u64);
}

#[test]
fn interleaved_chunk_streams_assemble_separately() {
    // Two 200-byte messages on csids 4 and 5 with 128-byte chunks, interleaved.
    let mut b = Vec::new();
    b.extend_from_slice(&[0x04, 0, 0, 1, 0, 0, 200, 9, 1, 0, 0, 0]);
    b.extend_from_slice(&[1u8; 128]);
    b.extend_from_slice(&[0x05, 0, 0, 2, 0, 0, 200, 8, 1, 0, 0, 0]);
    b.extend_from_slice(&[2u8; 128]);
    b.push(0xc4);
    b.extend_from_slice(&[1u8; 72]);
    b.push(0xc5);
    b.extend_from_slice(&[2u8; 72]);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let msgs = decode_all(&mut dec, &b).expect("decodes");
    assert_eq!(msgs.len(), 2);
    assert!(msgs[0].payload.iter().all(|&x| x == 1) && msgs[0].payload.len() == 200);
    assert!(msgs[1].payload.iter().all(|&x| x == 2) && msgs[1].payload.len() == 200);
}

#[test]
fn set_chunk_size_zero_is_an_error_and_huge_is_capped() {
    let enc = ChunkEncoder::new();
    let zero = encode(
        &enc,
        2,
        message_type::SET_CHUNK_SIZE,
        0,
        0,
        &0u32.to_be_bytes(),
    );
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    assert!(matches!(
        decode_all(&mut dec, &zero),
        Err(RtmpError::InvalidChunkSize { size: 0 })
    ));
    let huge = encode(&enc, 2, 1, 0, 0, &0x7fff_ffffu32.to_be_bytes());
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    decode_all(&mut dec, &huge).expect("accepted");
    assert_eq!(dec.chunk_size(), MAX_CHUNK_SIZE);
    let top_bit = encode(&enc, 2, 1, 0, 0, &0x8000_0000u32.to_be_bytes());
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    assert!(decode_all(&mut dec, &top_bit).is_err());
    let short = encode(&enc, 2, 1, 0, 0, &[0, 1]);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    assert!(matches!(
        decode_all(&mut dec, &short),
        Err(RtmpError::InvalidControlMessage { .. })
    ));
}

#[test]
fn abort_discards_the_partial_message() {
    let enc = ChunkEncoder::new();
    let mut b = Vec::new();
    b.extend_from_slice(&[0x04, 0, 0, 1, 0, 0, 200, 9, 1, 0, 0, 0]);
    b.extend_from_slice(&[1u8; 128]);
    b.extend_from_slice(&encode(
        &enc,
        2,
        message_type::ABORT,
        0,
        0,
        &4u32.to_be_bytes(),
    ));
    b.extend_from_slice(&[0x44, 0, 0, 1, 0, 0, 3, 9, b'n', b'e', b'w']);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let msgs = decode_all(&mut dec, &b).expect("decodes");
    let video: Vec<_> = msgs.iter().filter(|m| m.message_type == 9).collect();
    assert_eq!(video.len(), 1);
    assert_eq!(&video[0].payload[..], b"new");
    assert_eq!(dec.buffered_bytes(), 0);
}

#[test]
fn limits_are_enforced() {
    let enc = ChunkEncoder::new();
    // Oversized media message: refused at its header, before any payload.
    let header = [0x04, 0, 0, 0, 0x90, 0, 0, 9, 1, 0, 0, 0];
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    assert!(matches!(
        decode_all(&mut dec, &header),
        Err(RtmpError::MessageTooLarge {
            csid: 4,
            message_type: 9,
            length: 0x90_0000,
            ..
        })
    ));
    // A command above 64 KiB.
    let big = encode(&enc, 3, message_type::COMMAND_AMF0, 0, 0, &[5u8; 70_000]);
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    assert!(matches!(
        decode_all(&mut dec, &big),
        Err(RtmpError::MessageTooLarge { .. })
    ));
    // Too many chunk streams.
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut b = BytesMut::new();
    for csid in 3..100 {
        enc.encode(csid, message_type::AUDIO, 1, 0, b"a", &mut b);
    }
    assert!(matches!(
        decode_all(&mut dec, &b),
        Err(RtmpError::TooManyChunkStreams { limit: 64, .. })
    ));
    // Reassembly budget over several chunk streams.
    let limits = ChunkLimits {
        max_reassembly_bytes: 1000,
        ..ChunkLimits::default()
    };
    let mut dec = ChunkDecoder::new(limits);
    let mut b = Vec::new();
    for csid in 3..20u8 {
        b.extend_from_slice(&[csid, 0, 0, 0, 0, 0x10, 0, 9, 1, 0, 0, 0]);
        b.extend_from_slice(&[0u8; 128]);
    }
    assert!(matches!(
        decode_all(&mut dec, &b),
        Err(RtmpError::ReassemblyLimit { limit: 1000, .. })
    ));
}

#[test]
fn header_without_previous_and_interrupted_message_are_errors() {
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    assert!(matches!(
        decode_all(&mut dec, &[0x44, 0, 0, 0, 0, 0, 1, 9, 0]),
        Err(RtmpError::MissingPreviousHeader { csid: 4, fmt: 1 })
    ));
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut b = vec![0x04, 0, 0, 1, 0, 0, 200, 9, 1, 0, 0, 0];
    b.extend_from_slice(&[1u8; 128]);
    b.extend_from_slice(&[0x84, 0, 0, 1]);
    assert!(matches!(
        decode_all(&mut dec, &b),
        Err(RtmpError::InterruptedMessage {
            csid: 4,
            received: 128,
            length: 200,
            ..
        })
    ));
}

#[test]
fn zero_length_messages_complete_at_their_header() {
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let msgs = decode_all(&mut dec, &[0x04, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0]).expect("ok");
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].payload.is_empty());
}
