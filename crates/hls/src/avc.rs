//! Annex B access units to fMP4 samples: parameter sets out of the sample, into `avcC`.

use bytes::{Bytes, BytesMut};
use greenroom_media::h264::{AvcDecoderConfig, annexb_to_nals};

use crate::VideoTrack;

/// One access unit split for fMP4.
#[derive(Debug, Clone, Default)]
pub(crate) struct SplitAccessUnit {
    /// The NAL units other than SPS, PPS and access unit delimiters, each with a 4-byte
    /// length.
    pub avcc: Bytes,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
    pub idr: bool,
}

pub(crate) fn split_access_unit(annexb: &[u8]) -> SplitAccessUnit {
    let mut out = SplitAccessUnit::default();
    let mut avcc = BytesMut::with_capacity(annexb.len() + 16);
    for nal in annexb_to_nals(annexb) {
        let Some(&header) = nal.first() else {
            continue;
        };
        match header & 0x1f {
            7 => out.sps.push(Bytes::copy_from_slice(nal)),
            8 => out.pps.push(Bytes::copy_from_slice(nal)),
            9 => {}
            kind => {
                out.idr |= kind == 5;
                let Ok(len) = u32::try_from(nal.len()) else {
                    continue;
                };
                avcc.extend_from_slice(&len.to_be_bytes());
                avcc.extend_from_slice(nal);
            }
        }
    }
    out.avcc = avcc.freeze();
    out
}

/// The track for in-band parameter sets, sized by the SPS (`None` if they do not parse).
pub(crate) fn track_from_parameter_sets(sps: &[Bytes], pps: &[Bytes]) -> Option<VideoTrack> {
    let config = AvcDecoderConfig::from_parameter_sets(sps, pps).ok()?;
    let (width, height) = config.resolution()?;
    Some(VideoTrack {
        avc_config: Bytes::from(config.to_record()),
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_sets_leave_the_sample_and_make_the_track() {
        let sps = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
        let pps = [0x68, 0xce, 0x38, 0x80];
        let mut au = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1];
        au.extend_from_slice(&sps);
        au.extend_from_slice(&[0, 0, 1]);
        au.extend_from_slice(&pps);
        au.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
        let split = split_access_unit(&au);
        assert!(split.idr);
        assert_eq!(&split.avcc[..], &[0, 0, 0, 3, 0x65, 0x88, 0x84]);
        let track = track_from_parameter_sets(&split.sps, &split.pps).expect("track");
        assert_eq!((track.width, track.height), (1280, 720));
        assert_eq!(track.codec_string(), "avc1.42c01f");
    }
}
