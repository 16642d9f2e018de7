//! The RTMP chunk stream: a bounded, sans-IO decoder of the peer's chunks into messages, and an
//! encoder of the server's messages.
//!
//! Invariants of [`ChunkDecoder`]:
//! - each chunk stream id has its own header state and its own reassembly buffer, so chunks of
//!   different chunk streams may interleave;
//! - a message's declared length is checked against [`ChunkLimits`] when its first chunk header
//!   arrives, and buffers grow only as bytes arrive (a declared length never allocates);
//! - the bytes held in all reassembly buffers together never exceed
//!   [`ChunkLimits::max_reassembly_bytes`]; at most [`ChunkLimits::max_chunk_streams`] chunk
//!   streams exist; the unparsed input is at most one header (18 bytes) plus the caller's slice;
//! - Set Chunk Size and Abort are applied by the decoder itself, before the next chunk is read;
//! - timestamps are absolute, u32 milliseconds that wrap (deltas are added with wrapping).

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::RtmpError;

/// RTMP message type ids.
pub mod message_type {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;

    /// Audio, video and aggregate messages may be large; everything else is small.
    pub fn is_media(message_type: u8) -> bool {
        matches!(message_type, AUDIO | VIDEO | AGGREGATE)
    }
}

/// The chunk stream id of protocol control messages.
pub const CONTROL_CSID: u32 = 2;
/// The largest chunk stream id (3-byte basic header: 64 + 65535).
pub const MAX_CSID: u32 = 65_599;
/// The default chunk size before any Set Chunk Size.
pub const DEFAULT_CHUNK_SIZE: usize = 128;
/// Larger chunk sizes are accepted but capped here: a message is at most 16 MiB - 1 anyway.
pub const MAX_CHUNK_SIZE: usize = 16 * 1024 * 1024;
const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;

/// Bounds of a [`ChunkDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest audio, video or aggregate message.
    pub max_message_len: usize,
    /// Largest message of any other type (commands, metadata, control).
    pub max_command_len: usize,
    /// How many chunk stream ids may carry state.
    pub max_chunk_streams: usize,
    /// Bytes held in all reassembly buffers together.
    pub max_reassembly_bytes: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_message_len: 8 * 1024 * 1024,
            max_command_len: 64 * 1024,
            max_chunk_streams: 64,
            max_reassembly_bytes: 16 * 1024 * 1024,
        }
    }
}

/// One reassembled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub csid: u32,
    pub message_type: u8,
    pub stream_id: u32,
    /// Absolute timestamp (wrapping), in milliseconds.
    pub timestamp_ms: u32,
    pub payload: Bytes,
}

#[derive(Debug, Default)]
struct ChunkStream {
    timestamp_ms: u32,
    /// The timestamp field of the last header (a delta, or the absolute time after format 0).
    delta_ms: u32,
    length: usize,
    message_type: u8,
    stream_id: u32,
    /// Whether the last header carried an extended timestamp (so do its format 3 chunks).
    extended: bool,
    /// A message is being assembled in `payload`.
    in_progress: bool,
    payload: BytesMut,
}

#[derive(Debug, Clone, Copy)]
enum ReadState {
    Header,
    Payload { csid: u32, remaining: usize },
}

struct ParsedHeader {
    consumed: usize,
    fmt: u8,
    csid: u32,
    timestamp_field: u32,
    extended: bool,
    length: usize,
    message_type: u8,
    stream_id: u32,
}

/// Decodes the peer's chunk stream into [`Message`]s.
#[derive(Debug)]
pub struct ChunkDecoder {
    limits: ChunkLimits,
    chunk_size: usize,
    input: BytesMut,
    state: ReadState,
    streams: HashMap<u32, ChunkStream>,
    buffered: usize,
    bytes_received: u64,
}

impl ChunkDecoder {
    pub fn new(limits: ChunkLimits) -> ChunkDecoder {
        ChunkDecoder {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            input: BytesMut::new(),
            state: ReadState::Header,
            streams: HashMap::new(),
            buffered: 0,
            bytes_received: 0,
        }
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Every byte pushed so far (for acknowledgements).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Bytes held in reassembly buffers and unparsed input.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered + self.input.len()
    }

    /// Adds bytes read from the peer; call [`ChunkDecoder::poll_message`] until it gives `None`.
    pub fn push(&mut self, bytes: &[u8]) {
        self.bytes_received += bytes.len() as u64;
        self.input.extend_from_slice(bytes);
    }

    /// The next complete message, `None` when more input is needed.
    pub fn poll_message(&mut self) -> Result<Option<Message>, RtmpError> {
        loop {
            match self.state {
                ReadState::Header => {
                    let Some(header) = self.parse_header()? else {
                        return Ok(None);
                    };
                    self.input.advance(header.consumed);
                    let (csid, remaining) = self.apply_header(&header)?;
                    if remaining == 0 {
                        if let Some(message) = self.complete(csid)? {
                            return Ok(Some(message));
                        }
                    } else {
                        self.state = ReadState::Payload { csid, remaining };
                    }
                }
                ReadState::Payload { csid, remaining } => {
                    let n = remaining.min(self.input.len());
                    if n == 0 {
                        return Ok(None);
                    }
                    if self.buffered + n > self.limits.max_reassembly_bytes {
                        return Err(RtmpError::ReassemblyLimit {
                            csid,
                            buffered: self.buffered + n,
                            limit: self.limits.max_reassembly_bytes,
                        });
                    }
                    let bytes = self.input.split_to(n);
                    let stream = self.stream_mut(csid)?;
                    stream.payload.extend_from_slice(&bytes);
                    self.buffered += n;
                    if n < remaining {
                        self.state = ReadState::Payload {
                            csid,
                            remaining: remaining - n,
                        };
                        return Ok(None);
                    }
                    self.state = ReadState::Header;
                    if let Some(message) = self.complete(csid)? {
                        return Ok(Some(message));
                    }
                }
            }
        }
    }

    fn stream_mut(&mut self, csid: u32) -> Result<&mut ChunkStream, RtmpError> {
        // The state machine only names chunk streams it created; be total all the same.
        self.streams
            .get_mut(&csid)
            .ok_or(RtmpError::MissingPreviousHeader { csid, fmt: 3 })
    }

    /// Parses the chunk header at the start of the input without consuming it.
    fn parse_header(&self) -> Result<Option<ParsedHeader>, RtmpError> {
        let input = &self.input[..];
        let Some(&first) = input.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match input.get(1) {
                Some(&b) => (64 + u32::from(b), 2),
                None => return Ok(None),
            },
            1 => match (input.get(1), input.get(2)) {
                (Some(&lo), Some(&hi)) => (64 + u32::from(lo) + 256 * u32::from(hi), 3),
                _ => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        if input.len() < pos + header_len {
            return Ok(None);
        }
        let previous = self.streams.get(&csid);
        if fmt != 0 && previous.is_none() {
            return Err(RtmpError::MissingPreviousHeader { csid, fmt });
        }
        let be24 = |b: &[u8]| (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let h = &input[pos..pos + header_len];
        let mut parsed = ParsedHeader {
            consumed: 0,
            fmt,
            csid,
            timestamp_field: 0,
            extended: false,
            length: previous.map_or(0, |p| p.length),
            message_type: previous.map_or(0, |p| p.message_type),
            stream_id: previous.map_or(0, |p| p.stream_id),
        };
        if fmt < 3 {
            parsed.timestamp_field = be24(&h[0..3]);
            parsed.extended = parsed.timestamp_field == EXTENDED_TIMESTAMP;
        } else {
            parsed.extended = previous.is_some_and(|p| p.extended);
        }
        if fmt < 2 {
            parsed.length = be24(&h[3..6]) as usize;
            parsed.message_type = h[6];
        }
        if fmt == 0 {
            parsed.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
        }
        pos += header_len;
        if parsed.extended {
            let Some(ext) = input.get(pos..pos + 4) else {
                return Ok(None);
            };
            if fmt < 3 {
                parsed.timestamp_field = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
            }
            pos += 4;
        }
        parsed.consumed = pos;
        Ok(Some(parsed))
    }

    /// Applies a parsed header to its chunk stream; returns the chunk's payload length.
    fn apply_header(&mut self, h: &ParsedHeader) -> Result<(u32, usize), RtmpError> {
        if !self.streams.contains_key(&h.csid) {
            if self.streams.len() >= self.limits.max_chunk_streams {
                return Err(RtmpError::TooManyChunkStreams {
                    csid: h.csid,
                    limit: self.limits.max_chunk_streams,
                });
            }
            self.streams.insert(h.csid, ChunkStream::default());
        }
        let chunk_size = self.chunk_size;
        let limits = self.limits;
        let stream = self.stream_mut(h.csid)?;
        if stream.in_progress {
            if h.fmt != 3 {
                return Err(RtmpError::InterruptedMessage {
                    csid: h.csid,
                    fmt: h.fmt,
                    message_type: stream.message_type,
                    received: stream.payload.len(),
                    length: stream.length,
                });
            }
            // A continuation chunk: its header (and extended timestamp) repeat the first one.
            let remaining = stream.length - stream.payload.len();
            return Ok((h.csid, remaining.min(chunk_size)));
        }
        match h.fmt {
            0 => {
                stream.timestamp_ms = h.timestamp_field;
                stream.delta_ms = h.timestamp_field;
            }
            1 | 2 => {
                stream.delta_ms = h.timestamp_field;
                stream.timestamp_ms = stream.timestamp_ms.wrapping_add(h.timestamp_field);
            }
            _ => stream.timestamp_ms = stream.timestamp_ms.wrapping_add(stream.delta_ms),
        }
        if h.fmt < 3 {
            stream.extended = h.extended;
        }
        stream.length = h.length;
        stream.message_type = h.message_type;
        stream.stream_id = h.stream_id;
        let limit = if message_type::is_media(h.message_type) {
            limits.max_message_len
        } else {
            limits.max_command_len
        };
        if h.length > limit {
            return Err(RtmpError::MessageTooLarge {
                csid: h.csid,
                message_type: h.message_type,
                length: h.length,
                limit,
            });
        }
        stream.in_progress = true;
        Ok((h.csid, h.length.min(chunk_size)))
    }

    /// Ends a chunk; returns the message if it is complete (control messages are applied here).
    fn complete(&mut self, csid: u32) -> Result<Option<Message>, RtmpError> {
        let stream = self.stream_mut(csid)?;
        if stream.payload.len() < stream.length {
            return Ok(None);
        }
        stream.in_progress = false;
        let payload = stream.payload.split().freeze();
        let message = Message {
            csid,
            message_type: stream.message_type,
            stream_id: stream.stream_id,
            timestamp_ms: stream.timestamp_ms,
            payload,
        };
        self.buffered -= message.payload.len();
        match message.message_type {
            message_type::SET_CHUNK_SIZE => {
                let size = control_u32(&message)?;
                if size == 0 || size > 0x7fff_ffff {
                    return Err(RtmpError::InvalidChunkSize { size });
                }
                self.chunk_size = (size as usize).min(MAX_CHUNK_SIZE);
            }
            message_type::ABORT => {
                let aborted = control_u32(&message)?;
                if let Some(stream) = self.streams.get_mut(&aborted) {
                    self.buffered -= stream.payload.len();
                    stream.payload.clear();
                    stream.in_progress = false;
                }
            }
            _ => {}
        }
        Ok(Some(message))
    }
}

/// The 4-byte big-endian value of a protocol control message.
pub(crate) fn control_u32(message: &Message) -> Result<u32, RtmpError> {
    match message.payload.get(..4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(RtmpError::InvalidControlMessage {
            message_type: message.message_type,
            length: message.payload.len(),
        }),
    }
}

/// Encodes the server's messages into chunks (format 0 first chunk, format 3 continuations).
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: usize,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

impl ChunkEncoder {
    pub fn new() -> ChunkEncoder {
        ChunkEncoder::default()
    }

    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Appends one message. `csid` must be in `2..=MAX_CSID` and the payload below 16 MiB;
    /// both hold for every message the server makes.
    pub fn encode(
        &self,
        csid: u32,
        message_type: u8,
        stream_id: u32,
        timestamp_ms: u32,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        let extended = timestamp_ms >= EXTENDED_TIMESTAMP;
        let ts_field = timestamp_ms.min(EXTENDED_TIMESTAMP);
        let length = payload.len().min(0xFF_FFFF) as u32;
        let payload = &payload[..length as usize];
        put_basic_header(out, 0, csid);
        out.put_uint(u64::from(ts_field), 3);
        out.put_uint(u64::from(length), 3);
        out.put_u8(message_type);
        out.put_u32_le(stream_id);
        if extended {
            out.put_u32(timestamp_ms);
        }
        let mut chunks = payload.chunks(self.chunk_size.max(1));
        if let Some(first) = chunks.next() {
            out.put_slice(first);
        }
        for chunk in chunks {
            put_basic_header(out, 3, csid);
            if extended {
                out.put_u32(timestamp_ms);
            }
            out.put_slice(chunk);
        }
    }

    /// Set Chunk Size; later messages use the new size.
    pub fn set_chunk_size(&mut self, size: u32, out: &mut BytesMut) {
        let size = size.clamp(1, MAX_CHUNK_SIZE as u32);
        self.encode(
            CONTROL_CSID,
            message_type::SET_CHUNK_SIZE,
            0,
            0,
            &size.to_be_bytes(),
            out,
        );
        self.chunk_size = size as usize;
    }

    pub fn window_ack_size(&self, size: u32, out: &mut BytesMut) {
        let payload = size.to_be_bytes();
        self.encode(
            CONTROL_CSID,
            message_type::WINDOW_ACK_SIZE,
            0,
            0,
            &payload,
            out,
        );
    }

    pub fn acknowledgement(&self, sequence_number: u32, out: &mut BytesMut) {
        let payload = sequence_number.to_be_bytes();
        self.encode(
            CONTROL_CSID,
            message_type::ACKNOWLEDGEMENT,
            0,
            0,
            &payload,
            out,
        );
    }

    /// Set Peer Bandwidth with limit type 2 (dynamic).
    pub fn set_peer_bandwidth(&self, size: u32, out: &mut BytesMut) {
        let mut payload = [2u8; 5];
        payload[..4].copy_from_slice(&size.to_be_bytes());
        self.encode(
            CONTROL_CSID,
            message_type::SET_PEER_BANDWIDTH,
            0,
            0,
            &payload,
            out,
        );
    }

    /// User Control event with a 4-byte argument (Stream Begin = 0, Ping Response = 7, ...).
    pub fn user_control(&self, event: u16, argument: u32, out: &mut BytesMut) {
        let mut payload = [0u8; 6];
        payload[..2].copy_from_slice(&event.to_be_bytes());
        payload[2..].copy_from_slice(&argument.to_be_bytes());
        self.encode(
            CONTROL_CSID,
            message_type::USER_CONTROL,
            0,
            0,
            &payload,
            out,
        );
    }
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        2..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let id = csid.clamp(64, MAX_CSID) - 64;
            out.put_u8(fmt | 1);
            out.put_u16_le(id as u16);
        }
    }
}

#[cfg(test)]
#[path = "chunk_tests.rs"]
mod tests;
