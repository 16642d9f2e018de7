//! Real VP8 for load: frames of an IVF file, which a publishing [`Client`](super::Client) sends
//! in a loop (one clip per simulcast layer).

use bytes::Bytes;

use crate::RtcError;

/// VP8 frames read from an IVF file, sent in a loop by a publishing
/// [`Client`](super::Client).
#[derive(Debug, Clone)]
pub struct MediaClip {
    pub(super) frames: Vec<Bytes>,
    width: u16,
    height: u16,
}

impl MediaClip {
    /// Reads an IVF file of VP8 (`ffmpeg ... -c:v libvpx clip.ivf`) whose first frame is a
    /// key frame.
    pub fn from_ivf(data: &[u8]) -> Result<MediaClip, RtcError> {
        let invalid =
            |reason: &str| RtcError::UnsupportedMedia(format!("not a VP8 IVF clip: {reason}"));
        if data.len() < 32 || &data[0..4] != b"DKIF" {
            return Err(invalid("no DKIF header"));
        }
        if &data[8..12] != b"VP80" {
            return Err(invalid("the codec is not VP8"));
        }
        let header_len = usize::from(u16::from_le_bytes([data[6], data[7]]));
        let width = u16::from_le_bytes([data[12], data[13]]);
        let height = u16::from_le_bytes([data[14], data[15]]);
        let mut frames = Vec::new();
        let mut at = header_len.max(32);
        while at + 12 <= data.len() {
            let size = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            let start = at + 12;
            let end = start
                .checked_add(size as usize)
                .filter(|end| *end <= data.len())
                .ok_or_else(|| invalid("a frame runs past the end of the file"))?;
            if size > 0 {
                frames.push(Bytes::copy_from_slice(&data[start..end]));
            }
            at = end;
        }
        match frames.first() {
            None => Err(invalid("no frames")),
            Some(first) if first[0] & 0x01 != 0 => {
                Err(invalid("the first frame is not a key frame"))
            }
            Some(_) => Ok(MediaClip {
                frames,
                width,
                height,
            }),
        }
    }

    /// Reads an IVF file.
    pub fn load(path: &std::path::Path) -> Result<MediaClip, RtcError> {
        let data = std::fs::read(path).map_err(|source| {
            RtcError::UnsupportedMedia(format!("cannot read {}: {source}", path.display()))
        })?;
        MediaClip::from_ivf(&data)
    }

    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivf(fourcc: &[u8; 4], frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"DKIF");
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&32u16.to_le_bytes());
        out.extend_from_slice(fourcc);
        out.extend_from_slice(&640u16.to_le_bytes());
        out.extend_from_slice(&360u16.to_le_bytes());
        out.extend_from_slice(&[0; 16]);
        for (i, frame) in frames.iter().enumerate() {
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(i as u64).to_le_bytes());
            out.extend_from_slice(frame);
        }
        out
    }

    const KEY: &[u8] = &[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];
    const DELTA: &[u8] = &[0x11, 0x02, 0x00, 0xaa];

    #[test]
    fn an_ivf_clip_is_read_frame_by_frame() {
        let clip = MediaClip::from_ivf(&ivf(b"VP80", &[KEY, DELTA, DELTA])).expect("clip");
        assert_eq!(clip.frames(), 3);
        assert_eq!(clip.size(), (640, 360));
        assert_eq!(&clip.frames[1][..], DELTA);
    }

    #[test]
    fn clips_greenroom_cannot_send_are_refused() {
        for (what, data) in [
            ("not IVF", b"RIFF....".to_vec()),
            ("VP9", ivf(b"VP90", &[KEY])),
            ("starts with a delta frame", ivf(b"VP80", &[DELTA, KEY])),
            ("no frames", ivf(b"VP80", &[])),
        ] {
            assert!(
                matches!(
                    MediaClip::from_ivf(&data),
                    Err(RtcError::UnsupportedMedia(_))
                ),
                "{what}"
            );
        }
        let mut truncated = ivf(b"VP80", &[KEY, DELTA]);
        truncated.truncate(truncated.len() - 2);
        assert!(MediaClip::from_ivf(&truncated).is_err());
    }
}
