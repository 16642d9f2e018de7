use thiserror::Error;

/// Why an AMF0 value could not be decoded. Offsets are from the start of the decoded buffer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Amf0Error {
    /// The buffer ended inside a value.
    #[error("AMF0 truncated at offset {offset}: {needed} more bytes needed")]
    Truncated { offset: usize, needed: usize },
    /// A type marker greenroom does not know or does not accept (reference, AMF3 switch, ...).
    #[error("unsupported AMF0 marker 0x{marker:02x} at offset {offset}")]
    UnsupportedMarker { marker: u8, offset: usize },
    /// Objects and arrays nest deeper than the limit.
    #[error("AMF0 nesting deeper than {limit} at offset {offset}")]
    TooDeep { limit: usize, offset: usize },
    /// More values in one message than the limit.
    #[error("more than {limit} AMF0 values in one message (at offset {offset})")]
    TooManyElements { limit: usize, offset: usize },
    /// A string is not UTF-8.
    #[error("AMF0 string at offset {offset} is not UTF-8")]
    InvalidUtf8 { offset: usize },
    /// An encoded value would be larger than the limit.
    #[error("AMF0 encoding larger than {limit} bytes")]
    EncodingTooLarge { limit: usize },
}

/// Everything an RTMP connection can fail with. Every error ends the connection it happened on
/// and only that one.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RtmpError {
    /// The RTMP handshake (C0/C1/C2) was refused by `rml_rtmp`.
    #[error("RTMP handshake failed: {reason}")]
    Handshake { reason: String },
    /// A chunk with header format 1, 2 or 3 arrived on a chunk stream that has no previous header.
    #[error("chunk stream {csid}: header format {fmt} without a previous header")]
    MissingPreviousHeader { csid: u32, fmt: u8 },
    /// A new message header (format 0, 1 or 2) arrived while a message was half assembled.
    #[error(
        "chunk stream {csid}: new header (format {fmt}) while message type {message_type} \
         has {received} of {length} bytes"
    )]
    InterruptedMessage {
        csid: u32,
        fmt: u8,
        message_type: u8,
        received: usize,
        length: usize,
    },
    /// More chunk streams are live than the limit.
    #[error("chunk stream {csid}: more than {limit} chunk streams in use")]
    TooManyChunkStreams { csid: u32, limit: usize },
    /// A message announces a length above the limit for its type.
    #[error("chunk stream {csid}: message type {message_type} of {length} bytes exceeds {limit}")]
    MessageTooLarge {
        csid: u32,
        message_type: u8,
        length: usize,
        limit: usize,
    },
    /// The half-assembled messages of all chunk streams together exceed the limit.
    #[error("chunk stream {csid}: reassembly buffers would hold {buffered} bytes, limit {limit}")]
    ReassemblyLimit {
        csid: u32,
        buffered: usize,
        limit: usize,
    },
    /// Set Chunk Size with 0 or the reserved top bit set.
    #[error("invalid chunk size {size}")]
    InvalidChunkSize { size: u32 },
    /// A protocol control or user control message has the wrong length.
    #[error("message type {message_type} has invalid length {length}")]
    InvalidControlMessage { message_type: u8, length: usize },
    /// An AMF0 command or data message could not be decoded.
    #[error("chunk stream {csid}: AMF0 in message type {message_type}: {source}")]
    Amf0 {
        csid: u32,
        message_type: u8,
        #[source]
        source: Amf0Error,
    },
    /// A command is malformed (missing name, transaction id, app or stream name).
    #[error("command {command:?}: {reason}")]
    InvalidCommand { command: String, reason: String },
    /// A command arrived in a state where it makes no sense (publish before connect, ...).
    #[error("command {command:?} not allowed {state}")]
    UnexpectedCommand {
        command: String,
        state: &'static str,
    },
    /// The peer asked to play a stream; this is an ingest server.
    #[error("play requests are not supported (ingest only)")]
    PlayNotSupported,
    /// The session was closed (publish rejected or ended) and takes no more input.
    #[error("the RTMP session is closed")]
    Closed,
    /// The peer sent nothing for too long.
    #[error("no data from the peer for {seconds} s")]
    IdleTimeout { seconds: u64 },
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}
