//! [`ServerSession`]: the server side of one RTMP connection after the handshake, sans-IO and
//! time-free.
//!
//! Feed it the peer's bytes with [`ServerSession::handle_input`], write what
//! [`ServerSession::poll_output`] gives, and act on [`ServerSession::poll_event`]. A publish
//! request waits for [`ServerSession::accept_publish`] or [`ServerSession::reject_publish`].
//!
//! Invariants:
//! - a connection may publish once; audio, video and metadata count only on the accepted
//!   publish's message stream and only while it is published;
//! - connect is answered at once (the app is judged with the stream key, at publish);
//! - play is refused (this is an ingest server);
//! - after an error or a rejection the session takes no more input: the caller writes the
//!   pending output and closes the connection.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tracing::debug;

use super::amf0::{self, Amf0Limits, Amf0Value};
use super::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, Message, control_u32, message_type};
use super::error::RtmpError;

/// Chunk stream of the server's connection-level commands (`_result`, `onFCPublish`).
const COMMAND_CSID: u32 = 3;
/// Chunk stream of the server's stream-level messages (`onStatus`).
const STREAM_CSID: u32 = 5;
/// How many `createStream` calls one connection may make.
const MAX_STREAMS: u32 = 8;
const USER_CONTROL_STREAM_BEGIN: u16 = 0;
const USER_CONTROL_PING_REQUEST: u16 = 6;
const USER_CONTROL_PING_RESPONSE: u16 = 7;

/// How the server side of a connection behaves and what it accepts.
#[derive(Debug, Clone)]
pub struct ServerSessionConfig {
    /// Chunk size the server sends with (announced at start).
    pub chunk_size: u32,
    /// Window Acknowledgement Size asked of the peer.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth sent to the peer (limit type dynamic).
    pub peer_bandwidth: u32,
    /// `fmsVer` in the connect answer.
    pub fms_version: String,
    pub chunk_limits: ChunkLimits,
    pub amf0_limits: Amf0Limits,
}

impl Default for ServerSessionConfig {
    fn default() -> Self {
        ServerSessionConfig {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            fms_version: "FMS/3,0,1,123".to_owned(),
            chunk_limits: ChunkLimits::default(),
            amf0_limits: Amf0Limits::default(),
        }
    }
}

/// `onMetaData` of a publish (`width`, `height`, `framerate`, `videocodecid`, `encoder`, ...).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamMetadata {
    pub properties: Vec<(String, Amf0Value)>,
}

impl StreamMetadata {
    pub fn number(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Amf0Value::as_number)
    }

    pub fn string(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Amf0Value::as_str)
    }

    fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// What a [`ServerSession`] tells its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum RtmpEvent {
    /// The peer wants to publish `stream_key` (any `?query` removed) on `app`; answer with
    /// [`ServerSession::accept_publish`] or [`ServerSession::reject_publish`].
    PublishRequested { app: String, stream_key: String },
    /// `@setDataFrame onMetaData` (or a bare `onMetaData`) of the accepted publish.
    Metadata(StreamMetadata),
    /// An FLV video tag body (no tag header) with its absolute DTS.
    Video { timestamp_ms: u32, body: Bytes },
    /// An FLV audio tag body (no tag header) with its absolute timestamp.
    Audio { timestamp_ms: u32, body: Bytes },
    /// The peer ended the publish (`FCUnpublish`, `deleteStream` or `closeStream`).
    Unpublished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingConnect,
    Connected,
    PublishRequested { stream_id: u32 },
    Publishing { stream_id: u32 },
    Unpublished,
    Closed,
}

impl State {
    fn describe(self) -> &'static str {
        match self {
            State::AwaitingConnect => "before connect",
            State::Connected => "after connect",
            State::PublishRequested { .. } => "while a publish is being decided",
            State::Publishing { .. } => "while publishing",
            State::Unpublished => "after unpublish",
            State::Closed => "after close",
        }
    }
}

/// The server side of one RTMP connection, after the handshake.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerSessionConfig,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    output: BytesMut,
    events: VecDeque<RtmpEvent>,
    state: State,
    app: String,
    stream_key: String,
    streams_created: u32,
    peer_window_ack_size: u32,
    last_ack_sent: u64,
    peer_acknowledged: u32,
}

impl ServerSession {
    /// A session for a connection whose handshake just completed. Its first output announces
    /// the server's chunk size.
    pub fn new(config: ServerSessionConfig) -> ServerSession {
        let mut session = ServerSession {
            decoder: ChunkDecoder::new(config.chunk_limits),
            encoder: ChunkEncoder::new(),
            output: BytesMut::new(),
            events: VecDeque::new(),
            state: State::AwaitingConnect,
            app: String::new(),
            stream_key: String::new(),
            streams_created: 0,
            peer_window_ack_size: 0,
            last_ack_sent: 0,
            peer_acknowledged: 0,
            config,
        };
        session
            .encoder
            .set_chunk_size(session.config.chunk_size, &mut session.output);
        session
    }

    /// Processes bytes from the peer. An error is fatal: write the pending output, then close.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), RtmpError> {
        if self.state == State::Closed {
            return Ok(());
        }
        let result = self.process(bytes);
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    /// Bytes to write to the peer, in order.
    pub fn poll_output(&mut self) -> Option<Bytes> {
        if self.output.is_empty() {
            None
        } else {
            Some(self.output.split().freeze())
        }
    }

    pub fn poll_event(&mut self) -> Option<RtmpEvent> {
        self.events.pop_front()
    }

    /// Answers the pending publish with `NetStream.Publish.Start`; media events follow.
    pub fn accept_publish(&mut self) {
        let State::PublishRequested { stream_id } = self.state else {
            return;
        };
        self.encoder
            .user_control(USER_CONTROL_STREAM_BEGIN, stream_id, &mut self.output);
        let description = format!("{} is now published.", self.stream_key);
        self.on_status(stream_id, "status", "NetStream.Publish.Start", &description);
        self.state = State::Publishing { stream_id };
    }

    /// Answers the pending publish with `NetStream.Publish.BadName` and closes the session:
    /// write the pending output, then close the connection.
    pub fn reject_publish(&mut self, description: &str) {
        if let State::PublishRequested { stream_id } = self.state {
            self.on_status(stream_id, "error", "NetStream.Publish.BadName", description);
        }
        self.state = State::Closed;
    }

    /// Whether the session takes no more input (after an error or a rejection).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether an accepted publish is running.
    pub fn is_publishing(&self) -> bool {
        matches!(self.state, State::Publishing { .. })
    }

    /// The last acknowledgement the peer sent (bytes it received from us, wrapping).
    pub fn peer_acknowledged(&self) -> u32 {
        self.peer_acknowledged
    }

    fn process(&mut self, bytes: &[u8]) -> Result<(), RtmpError> {
        self.decoder.push(bytes);
        while let Some(message) = self.decoder.poll_message()? {
            self.handle_message(message)?;
            if self.state == State::Closed {
                return Ok(());
            }
        }
        let received = self.decoder.bytes_received();
        let window = u64::from(self.peer_window_ack_size);
        if window > 0 && received - self.last_ack_sent >= window {
            // The sequence number is the byte count so far, modulo 2^32.
            self.encoder
                .acknowledgement(received as u32, &mut self.output);
            self.last_ack_sent = received;
        }
        Ok(())
    }

    fn handle_message(&mut self, message: Message) -> Result<(), RtmpError> {
        match message.message_type {
            message_type::VIDEO | message_type::AUDIO => {
                self.handle_media(message);
                Ok(())
            }
            message_type::COMMAND_AMF0 => {
                let values = self.decode_amf0(&message, 0)?;
                self.handle_command(&message, values)
            }
            message_type::COMMAND_AMF3 => {
                // An AMF3 command is a format byte (0) followed by AMF0 values.
                let values = self.decode_amf0(&message, 1)?;
                self.handle_command(&message, values)
            }
            message_type::DATA_AMF0 => {
                let values = self.decode_amf0(&message, 0)?;
                self.handle_data(&message, values);
                Ok(())
            }
            message_type::DATA_AMF3 => {
                let values = self.decode_amf0(&message, 1)?;
                self.handle_data(&message, values);
                Ok(())
            }
            message_type::WINDOW_ACK_SIZE => {
                self.peer_window_ack_size = control_u32(&message)?;
                Ok(())
            }
            message_type::ACKNOWLEDGEMENT => {
                self.peer_acknowledged = control_u32(&message)?;
                Ok(())
            }
            message_type::USER_CONTROL => self.handle_user_control(&message),
            // Set Chunk Size and Abort were applied by the decoder; the rest is not used by
            // publishers (peer bandwidth, shared objects, aggregates).
            other => {
                debug!(
                    message_type = other,
                    len = message.payload.len(),
                    "RTMP message ignored"
                );
                Ok(())
            }
        }
    }

    fn decode_amf0(&self, message: &Message, skip: usize) -> Result<Vec<Amf0Value>, RtmpError> {
        let body = message.payload.get(skip..).unwrap_or_default();
        amf0::decode_all(body, self.config.amf0_limits).map_err(|source| RtmpError::Amf0 {
            csid: message.csid,
            message_type: message.message_type,
            source,
        })
    }

    fn handle_media(&mut self, message: Message) {
        let State::Publishing { stream_id } = self.state else {
            return;
        };
        if message.stream_id != stream_id || message.payload.is_empty() {
            return;
        }
        let timestamp_ms = message.timestamp_ms;
        let body = message.payload;
        self.events
            .push_back(if message.message_type == message_type::VIDEO {
                RtmpEvent::Video { timestamp_ms, body }
            } else {
                RtmpEvent::Audio { timestamp_ms, body }
            });
    }

    fn handle_user_control(&mut self, message: &Message) -> Result<(), RtmpError> {
        let p = &message.payload;
        if p.len() < 2 {
            return Err(RtmpError::InvalidControlMessage {
                message_type: message.message_type,
                length: p.len(),
            });
        }
        let event = u16::from_be_bytes([p[0], p[1]]);
        if event == USER_CONTROL_PING_REQUEST
            && let Some(ts) = p.get(2..6)
        {
            let ts = u32::from_be_bytes([ts[0], ts[1], ts[2], ts[3]]);
            self.encoder
                .user_control(USER_CONTROL_PING_RESPONSE, ts, &mut self.output);
        }
        Ok(())
    }

    fn handle_data(&mut self, message: &Message, values: Vec<Amf0Value>) {
        let State::Publishing { stream_id } = self.state else {
            return;
        };
        if message.stream_id != stream_id {
            return;
        }
        let mut values = values.into_iter();
        let mut name = values.next();
        if name.as_ref().and_then(Amf0Value::as_str) == Some("@setDataFrame") {
            name = values.next();
        }
        if name.as_ref().and_then(Amf0Value::as_str) != Some("onMetaData") {
            return;
        }
        if let Some(Amf0Value::Object(properties) | Amf0Value::EcmaArray(properties)) =
            values.next()
        {
            self.events
                .push_back(RtmpEvent::Metadata(StreamMetadata { properties }));
        }
    }

    fn handle_command(
        &mut self,
        message: &Message,
        values: Vec<Amf0Value>,
    ) -> Result<(), RtmpError> {
        let mut values = values.into_iter();
        let Some(Amf0Value::String(name)) = values.next() else {
            return Err(RtmpError::InvalidCommand {
                command: String::new(),
                reason: "the command name is not a string".to_owned(),
            });
        };
        let transaction = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        let command_object = values.next().unwrap_or(Amf0Value::Null);
        let args: Vec<Amf0Value> = values.collect();
        match name.as_str() {
            "connect" => self.handle_connect(&name, transaction, &command_object),
            "releaseStream" | "FCPublish" => {
                self.require_connected(&name)?;
                if name == "FCPublish" {
                    let key = args.first().and_then(Amf0Value::as_str).unwrap_or_default();
                    let info = status_object("status", "NetStream.Publish.Start", key);
                    self.command(
                        COMMAND_CSID,
                        0,
                        &[
                            Amf0Value::String("onFCPublish".to_owned()),
                            Amf0Value::Number(0.0),
                            Amf0Value::Null,
                            info,
                        ],
                    );
                }
                Ok(())
            }
            "createStream" => {
                self.require_connected(&name)?;
                if self.streams_created >= MAX_STREAMS {
                    return Err(RtmpError::InvalidCommand {
                        command: name,
                        reason: format!("more than {MAX_STREAMS} streams"),
                    });
                }
                self.streams_created += 1;
                let stream_id = self.streams_created;
                self.command(
                    COMMAND_CSID,
                    0,
                    &[
                        Amf0Value::String("_result".to_owned()),
                        Amf0Value::Number(transaction),
                        Amf0Value::Null,
                        Amf0Value::Number(f64::from(stream_id)),
                    ],
                );
                Ok(())
            }
            "publish" => self.handle_publish(name, message.stream_id, &args),
            "FCUnpublish" | "deleteStream" | "closeStream" => {
                if let State::Publishing { .. } | State::PublishRequested { .. } = self.state {
                    self.state = State::Unpublished;
                    self.events.push_back(RtmpEvent::Unpublished);
                }
                Ok(())
            }
            "play" | "play2" => {
                self.on_status(
                    message.stream_id,
                    "error",
                    "NetStream.Play.Failed",
                    "this server only accepts publishing",
                );
                Err(RtmpError::PlayNotSupported)
            }
            _ => {
                debug!(command = %name, "RTMP command ignored");
                Ok(())
            }
        }
    }

    fn require_connected(&self, command: &str) -> Result<(), RtmpError> {
        if self.state == State::AwaitingConnect {
            return Err(RtmpError::UnexpectedCommand {
                command: command.to_owned(),
                state: self.state.describe(),
            });
        }
        Ok(())
    }

    fn handle_connect(
        &mut self,
        name: &str,
        transaction: f64,
        command_object: &Amf0Value,
    ) -> Result<(), RtmpError> {
        if self.state != State::AwaitingConnect {
            return Err(RtmpError::UnexpectedCommand {
                command: name.to_owned(),
                state: self.state.describe(),
            });
        }
        let Some(app) = command_object.property("app").and_then(Amf0Value::as_str) else {
            return Err(RtmpError::InvalidCommand {
                command: name.to_owned(),
                reason: "no app in the command object".to_owned(),
            });
        };
        self.app = app.trim_end_matches('/').to_owned();
        self.state = State::Connected;
        self.encoder
            .window_ack_size(self.config.window_ack_size, &mut self.output);
        self.encoder
            .set_peer_bandwidth(self.config.peer_bandwidth, &mut self.output);
        self.encoder
            .user_control(USER_CONTROL_STREAM_BEGIN, 0, &mut self.output);
        let properties = Amf0Value::Object(vec![
            (
                "fmsVer".to_owned(),
                Amf0Value::String(self.config.fms_version.clone()),
            ),
            ("capabilities".to_owned(), Amf0Value::Number(31.0)),
            ("mode".to_owned(), Amf0Value::Number(1.0)),
        ]);
        let Amf0Value::Object(mut info) = status_object(
            "status",
            "NetConnection.Connect.Success",
            "Connection succeeded.",
        ) else {
            return Ok(());
        };
        info.push(("objectEncoding".to_owned(), Amf0Value::Number(0.0)));
        self.command(
            COMMAND_CSID,
            0,
            &[
                Amf0Value::String("_result".to_owned()),
                Amf0Value::Number(transaction),
                properties,
                Amf0Value::Object(info),
            ],
        );
        Ok(())
    }

    fn handle_publish(
        &mut self,
        name: String,
        stream_id: u32,
        args: &[Amf0Value],
    ) -> Result<(), RtmpError> {
        if self.state != State::Connected {
            return Err(RtmpError::UnexpectedCommand {
                command: name,
                state: self.state.describe(),
            });
        }
        if stream_id == 0 || stream_id > self.streams_created {
            return Err(RtmpError::InvalidCommand {
                command: name,
                reason: format!("message stream {stream_id} was not created"),
            });
        }
        let raw_key = args.first().and_then(Amf0Value::as_str).unwrap_or_default();
        let stream_key = raw_key.split('?').next().unwrap_or_default();
        if stream_key.is_empty() {
            return Err(RtmpError::InvalidCommand {
                command: name,
                reason: "no stream name".to_owned(),
            });
        }
        self.stream_key = stream_key.to_owned();
        self.state = State::PublishRequested { stream_id };
        self.events.push_back(RtmpEvent::PublishRequested {
            app: self.app.clone(),
            stream_key: self.stream_key.clone(),
        });
        Ok(())
    }

    fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.command(
            STREAM_CSID,
            stream_id,
            &[
                Amf0Value::String("onStatus".to_owned()),
                Amf0Value::Number(0.0),
                Amf0Value::Null,
                status_object(level, code, description),
            ],
        );
    }

    fn command(&mut self, csid: u32, stream_id: u32, values: &[Amf0Value]) {
        let body = amf0::encode_all(values);
        self.encoder.encode(
            csid,
            message_type::COMMAND_AMF0,
            stream_id,
            0,
            &body,
            &mut self.output,
        );
    }
}

fn status_object(level: &str, code: &str, description: &str) -> Amf0Value {
    Amf0Value::Object(vec![
        ("level".to_owned(), Amf0Value::String(level.to_owned())),
        ("code".to_owned(), Amf0Value::String(code.to_owned())),
        (
            "description".to_owned(),
            Amf0Value::String(description.to_owned()),
        ),
    ])
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
