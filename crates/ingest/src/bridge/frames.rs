//! The source's frames for outputs that need whole frames (HLS, recording), handed over on the
//! network side as they arrive: no transcoder on the WebRTC side can hold them up.

use bytes::Bytes;
use greenroom_media::flv::{FlvAudio, FlvVideo};
use greenroom_media::h264::AvcDecoderConfig;
use greenroom_media::{FrameSink, SourceFrame};

/// Turns FLV tags (RTMP) or access units (RTSP) into [`SourceFrame`]s for a sink.
pub(super) struct FrameFeed {
    sink: Box<dyn FrameSink>,
    /// The H.264 configuration in force (RTMP): NAL length size and parameter sets.
    avc_config: Option<AvcDecoderConfig>,
}

impl FrameFeed {
    pub(super) fn new(sink: Box<dyn FrameSink>) -> FrameFeed {
        FrameFeed {
            sink,
            avc_config: None,
        }
    }

    /// An FLV video tag body: H.264 in Annex B, parameter sets before keyframes.
    pub(super) fn video_tag(&mut self, timestamp_ms: u32, body: &[u8]) {
        match greenroom_media::flv::parse_video_tag(body) {
            Ok(FlvVideo::AvcSequenceHeader { record }) => {
                if let Ok(config) = AvcDecoderConfig::parse(record) {
                    self.avc_config = Some(config);
                }
            }
            Ok(FlvVideo::AvcNalus {
                keyframe,
                composition_time_ms,
                avcc,
            }) => {
                let Some(config) = self.avc_config.as_ref() else {
                    return;
                };
                let Ok(body) =
                    greenroom_media::h264::avcc_to_annexb(avcc, usize::from(config.length_size))
                else {
                    return;
                };
                let mut data = Vec::with_capacity(body.len() + 64);
                if keyframe {
                    for set in config.sps.iter().chain(&config.pps) {
                        data.extend_from_slice(&[0, 0, 0, 1]);
                        data.extend_from_slice(set);
                    }
                }
                data.extend_from_slice(&body);
                let dts_90k = i64::from(timestamp_ms) * 90;
                self.sink.push(SourceFrame::H264 {
                    data: Bytes::from(data),
                    pts_90k: dts_90k + i64::from(composition_time_ms) * 90,
                    dts_90k,
                    keyframe,
                });
            }
            _ => {}
        }
    }

    /// An FLV audio tag body.
    pub(super) fn audio_tag(&mut self, timestamp_ms: u32, body: &[u8]) {
        match greenroom_media::flv::parse_audio_tag(body) {
            Ok(FlvAudio::AacSequenceHeader { config }) => {
                self.aac_config(Bytes::copy_from_slice(config));
            }
            Ok(FlvAudio::AacRaw { data }) => self.aac_raw(i64::from(timestamp_ms), data),
            _ => {}
        }
    }

    /// An RTSP access unit (presentation times only: decode order is arrival order).
    pub(super) fn annexb(&mut self, pts_90k: i64, access_unit: &Bytes) {
        let keyframe = greenroom_media::h264::annexb_to_nals(access_unit)
            .any(|nal| nal.first().is_some_and(|b| b & 0x1f == 5));
        self.sink.push(SourceFrame::H264 {
            data: access_unit.clone(),
            pts_90k,
            dts_90k: pts_90k,
            keyframe,
        });
    }

    pub(super) fn aac_config(&mut self, asc: Bytes) {
        self.sink.push(SourceFrame::AacConfig { asc });
    }

    pub(super) fn aac_raw(&mut self, pts_ms: i64, frame: &[u8]) {
        self.sink.push(SourceFrame::Aac {
            data: Bytes::copy_from_slice(frame),
            pts_90k: pts_ms * 90,
        });
    }
}
