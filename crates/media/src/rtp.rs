//! RTP payload formats: H.264 packetization mode 1 (RFC 6184) in both directions and Opus
//! (RFC 7587) packetization.
//!
//! Only payloads are produced here: RTP headers, sequence numbers, timestamps and SSRCs are
//! the caller's, since they depend on the session that sends them.

mod frame_assembler;
mod h264_depacketizer;
mod h264_packetizer;
mod opus_packetizer;

pub use frame_assembler::RtpFrameAssembler;
pub use h264_depacketizer::H264Depacketizer;
pub use h264_packetizer::H264Packetizer;
pub use opus_packetizer::OpusPacketizer;

use bytes::Bytes;

/// One RTP packet's payload and marker bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPayload {
    /// The payload bytes, after the RTP header.
    pub payload: Bytes,
    /// The RTP marker bit: for video, the last packet of an access unit.
    pub marker: bool,
}
