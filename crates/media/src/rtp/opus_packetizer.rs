//! Opus RTP packetization (RFC 7587): one Opus packet per RTP packet, marker bit clear.

use bytes::Bytes;

use super::RtpPayload;

/// Puts each Opus packet (as an encoder produces it) in its own RTP payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpusPacketizer;

impl OpusPacketizer {
    /// A packetizer.
    pub fn new() -> OpusPacketizer {
        OpusPacketizer
    }

    /// Appends the payload carrying `frame`. An empty frame (not a valid Opus packet, which
    /// has at least its TOC byte) produces nothing.
    pub fn packetize(&mut self, frame: &[u8], out: &mut Vec<RtpPayload>) {
        if frame.is_empty() {
            return;
        }
        out.push(RtpPayload {
            payload: Bytes::copy_from_slice(frame),
            marker: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_per_packet() {
        let mut packetizer = OpusPacketizer::new();
        let mut out = Vec::new();
        packetizer.packetize(&[0xfc, 0x01, 0x02], &mut out);
        packetizer.packetize(&[], &mut out);
        packetizer.packetize(&[0x78], &mut out);
        assert_eq!(
            out,
            vec![
                RtpPayload {
                    payload: Bytes::from_static(&[0xfc, 0x01, 0x02]),
                    marker: false
                },
                RtpPayload {
                    payload: Bytes::from_static(&[0x78]),
                    marker: false
                },
            ]
        );
    }
}
