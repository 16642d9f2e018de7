//! One movie fragment: `moof` (a `traf` per non-empty track) followed by one `mdat` holding
//! the video samples, then the audio samples.

use bytes::Bytes;

use super::boxes::BoxWriter;
use super::{AUDIO_TRACK_ID, Fmp4Error, VIDEO_TRACK_ID};
use crate::{AudioSample, VideoSample};

/// `tfhd` flags: `default-base-is-moof` (data offsets count from the start of the `moof`).
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `tfhd` flags: `default-sample-flags-present`.
const TFHD_DEFAULT_SAMPLE_FLAGS: u32 = 0x00_0020;
/// `trun` flags: data offset, sample duration, size, flags, composition time offset.
const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_DURATION: u32 = 0x00_0100;
const TRUN_SIZE: u32 = 0x00_0200;
const TRUN_FLAGS: u32 = 0x00_0400;
const TRUN_COMPOSITION_OFFSET: u32 = 0x00_0800;
/// Sample flags of a sync sample: `sample_depends_on` = 2 (does not depend on others).
pub(crate) const SYNC_SAMPLE: u32 = 0x0200_0000;
/// Sample flags of a non-sync sample: `sample_depends_on` = 1, `sample_is_non_sync_sample`.
pub(crate) const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// The video samples of a fragment, in decode order, with the decode time just past the last
/// one (the next sample's `dts`), which gives the last sample its duration.
#[derive(Debug, Clone, Copy, Default)]
pub struct VideoRun<'a> {
    pub samples: &'a [VideoSample],
    /// Decode time (90 kHz) where the last sample ends; ignored when `samples` is empty.
    pub end_dts: i64,
}

/// Per-sample `trun` values of the video run, validated.
struct VideoEntry {
    duration: u32,
    size: u32,
    flags: u32,
    composition_offset: i32,
}

/// Writes one fragment (`moof` + `mdat`) with fragment sequence number `sequence_number`.
///
/// Video samples need a non-negative first `dts`, strictly increasing `dts` (each duration
/// fits 32 bits) and `pts - dts` within `i32`; the first audio sample needs a non-negative
/// `pts`, and the audio samples are taken as contiguous (each lasts its `duration`). Fails
/// when both tracks are empty.
pub fn fragment(
    sequence_number: u32,
    video: VideoRun<'_>,
    audio: &[AudioSample],
) -> Result<Bytes, Fmp4Error> {
    let entries = video_entries(video)?;
    let audio_sizes = audio
        .iter()
        .map(|s| sample_size("audio", s.data.len(), s.pts))
        .collect::<Result<Vec<u32>, _>>()?;
    let video_base = match video.samples.first() {
        Some(first) => Some(non_negative("video", first.dts)?),
        None => None,
    };
    let audio_base = match audio.first() {
        Some(first) => Some(non_negative("audio", first.pts)?),
        None => None,
    };
    if video_base.is_none() && audio_base.is_none() {
        return Err(Fmp4Error::Empty);
    }
    let video_bytes: usize = video.samples.iter().map(|s| s.data.len()).sum();
    let audio_bytes: usize = audio.iter().map(|s| s.data.len()).sum();

    let mut w = BoxWriter::with_capacity(128 + 16 * entries.len() + 8 * audio.len());
    w.start(b"moof");
    w.start_full(b"mfhd", 0, 0);
    w.u32(sequence_number);
    w.end();
    // Where each trun's data_offset goes, and the offset of its data inside the mdat body.
    let mut offsets = Vec::with_capacity(2);
    if let Some(base) = video_base {
        w.start(b"traf");
        w.start_full(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF);
        w.u32(VIDEO_TRACK_ID);
        w.end();
        decode_time(&mut w, base);
        let flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS;
        w.start_full(b"trun", 1, flags | TRUN_COMPOSITION_OFFSET);
        w.u32(count(entries.len()));
        offsets.push((w.position(), 0));
        w.u32(0); // data_offset, patched below
        for entry in &entries {
            w.u32(entry.duration);
            w.u32(entry.size);
            w.u32(entry.flags);
            w.i32(entry.composition_offset);
        }
        w.end();
        w.end();
    }
    if let Some(base) = audio_base {
        w.start(b"traf");
        w.start_full(
            b"tfhd",
            0,
            TFHD_DEFAULT_BASE_IS_MOOF | TFHD_DEFAULT_SAMPLE_FLAGS,
        );
        w.u32(AUDIO_TRACK_ID);
        w.u32(SYNC_SAMPLE);
        w.end();
        decode_time(&mut w, base);
        w.start_full(b"trun", 0, TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE);
        w.u32(count(audio.len()));
        offsets.push((w.position(), video_bytes));
        w.u32(0); // data_offset, patched below
        for (sample, size) in audio.iter().zip(&audio_sizes) {
            w.u32(sample.duration);
            w.u32(*size);
        }
        w.end();
        w.end();
    }
    w.end(); // moof

    let moof_size = w.position();
    let body = video_bytes + audio_bytes;
    let large = u32::try_from(body + 8).is_err();
    let header = if large { 16 } else { 8 };
    for (at, within) in offsets {
        let offset =
            u32::try_from(moof_size + header + within).map_err(|_| Fmp4Error::TooLarge {
                len: moof_size + header + within,
            })?;
        w.patch_u32(at, offset);
    }
    if large {
        w.u32(1);
        w.bytes(b"mdat");
        w.u64((body + 16) as u64);
    } else {
        w.u32((body + 8) as u32);
        w.bytes(b"mdat");
    }
    let mut out = w.finish();
    out.reserve_exact(body);
    for sample in video.samples {
        out.extend_from_slice(&sample.data);
    }
    for sample in audio {
        out.extend_from_slice(&sample.data);
    }
    Ok(Bytes::from(out))
}

/// `tfdt` version 1: the 64-bit decode time of the first sample of the run.
fn decode_time(w: &mut BoxWriter, base: u64) {
    w.start_full(b"tfdt", 1, 0);
    w.u64(base);
    w.end();
}

fn count(len: usize) -> u32 {
    // The sample counts are bounded by the sample sizes' check (each sample is at least one
    // byte of a fragment that fits in memory); saturate rather than wrap regardless.
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn non_negative(track: &'static str, time: i64) -> Result<u64, Fmp4Error> {
    u64::try_from(time).map_err(|_| Fmp4Error::NegativeTime { track, time })
}

fn sample_size(track: &'static str, len: usize, time: i64) -> Result<u32, Fmp4Error> {
    u32::try_from(len).map_err(|_| Fmp4Error::SampleTooLarge { track, time, len })
}

fn video_entries(video: VideoRun<'_>) -> Result<Vec<VideoEntry>, Fmp4Error> {
    let samples = video.samples;
    let mut entries = Vec::with_capacity(samples.len());
    for (index, sample) in samples.iter().enumerate() {
        let next_dts = samples
            .get(index + 1)
            .map_or(video.end_dts, |next| next.dts);
        let duration = next_dts
            .checked_sub(sample.dts)
            .and_then(|d| u32::try_from(d).ok())
            .filter(|d| *d > 0)
            .ok_or(Fmp4Error::BadDuration {
                dts: sample.dts,
                next_dts,
            })?;
        let composition_offset = sample
            .pts
            .checked_sub(sample.dts)
            .and_then(|offset| i32::try_from(offset).ok())
            .ok_or(Fmp4Error::CompositionOffset {
                dts: sample.dts,
                pts: sample.pts,
            })?;
        entries.push(VideoEntry {
            duration,
            size: sample_size("video", sample.data.len(), sample.dts)?,
            flags: if sample.keyframe {
                SYNC_SAMPLE
            } else {
                NON_SYNC_SAMPLE
            },
            composition_offset,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::super::reader::{Traf, children, parse_fragment};
    use super::*;

    fn video(dts: i64, pts: i64, keyframe: bool, fill: u8, len: usize) -> VideoSample {
        VideoSample {
            data: Bytes::from(vec![fill; len]),
            dts,
            pts,
            keyframe,
        }
    }

    fn audio(pts: i64, fill: u8, len: usize) -> AudioSample {
        AudioSample {
            data: Bytes::from(vec![fill; len]),
            pts,
            duration: 1024,
        }
    }

    /// The bytes each sample of `traf` points at.
    fn sample_data<'a>(fragment: &'a [u8], traf: &Traf) -> Vec<&'a [u8]> {
        let mut at = traf.data_offset as usize;
        traf.samples
            .iter()
            .map(|s| {
                let data = &fragment[at..at + s.size as usize];
                at += s.size as usize;
                data
            })
            .collect()
    }

    #[test]
    fn video_and_audio_offsets_point_at_their_samples() {
        let v = [
            video(9000, 12000, true, 1, 100),
            video(12000, 18000, false, 2, 50),
            video(15000, 15000, false, 3, 30),
        ];
        let a = [audio(4800, 7, 20), audio(5824, 8, 21)];
        let out = fragment(
            7,
            VideoRun {
                samples: &v,
                end_dts: 18000,
            },
            &a,
        )
        .expect("fragment");
        let top: Vec<_> = children(&out).iter().map(|b| b.kind).collect();
        assert_eq!(top, [*b"moof", *b"mdat"]);
        let parsed = parse_fragment(&out);
        assert_eq!(parsed.sequence_number, 7);
        assert_eq!(parsed.trafs.len(), 2);

        let vt = &parsed.trafs[0];
        assert_eq!(vt.track_id, 1);
        assert_eq!(vt.base_decode_time, 9000);
        let durations: Vec<u32> = vt.samples.iter().map(|s| s.duration).collect();
        assert_eq!(durations, [3000, 3000, 3000]);
        let offsets: Vec<i32> = vt.samples.iter().map(|s| s.composition_offset).collect();
        assert_eq!(offsets, [3000, 6000, 0]);
        let flags: Vec<u32> = vt.samples.iter().map(|s| s.flags).collect();
        assert_eq!(flags, [SYNC_SAMPLE, NON_SYNC_SAMPLE, NON_SYNC_SAMPLE]);
        let data = sample_data(&out, vt);
        for (got, want) in data.iter().zip(&v) {
            assert_eq!(*got, &want.data[..]);
        }

        let at = &parsed.trafs[1];
        assert_eq!(at.track_id, 2);
        assert_eq!(at.base_decode_time, 4800);
        assert!(at.samples.iter().all(|s| s.duration == 1024));
        assert_eq!(at.default_flags, Some(SYNC_SAMPLE));
        let data = sample_data(&out, at);
        assert_eq!(data, [&a[0].data[..], &a[1].data[..]]);
        // Audio data ends the mdat, which ends the fragment.
        let end = at.data_offset as usize + 41;
        assert_eq!(end, out.len());
    }

    #[test]
    fn negative_composition_offsets_use_signed_trun() {
        let v = [video(3000, 0, true, 1, 4)];
        let out = fragment(
            1,
            VideoRun {
                samples: &v,
                end_dts: 6000,
            },
            &[],
        )
        .expect("fragment");
        let parsed = parse_fragment(&out);
        assert_eq!(parsed.trafs.len(), 1);
        assert_eq!(parsed.trafs[0].trun_version, 1);
        assert_eq!(parsed.trafs[0].samples[0].composition_offset, -3000);
    }

    #[test]
    fn audio_only_fragment() {
        let a = [audio(0, 1, 5)];
        let out = fragment(3, VideoRun::default(), &a).expect("fragment");
        let parsed = parse_fragment(&out);
        assert_eq!(parsed.trafs.len(), 1);
        assert_eq!(parsed.trafs[0].track_id, 2);
        assert_eq!(sample_data(&out, &parsed.trafs[0]), [&[1u8; 5][..]]);
    }

    #[test]
    fn invalid_runs_are_errors() {
        let v = [
            video(3000, 3000, true, 1, 4),
            video(3000, 3000, false, 1, 4),
        ];
        let run = VideoRun {
            samples: &v,
            end_dts: 9000,
        };
        assert_eq!(
            fragment(1, run, &[]),
            Err(Fmp4Error::BadDuration {
                dts: 3000,
                next_dts: 3000
            })
        );
        let v = [video(3000, 3000, true, 1, 4)];
        let run = VideoRun {
            samples: &v,
            end_dts: 2000,
        };
        assert!(matches!(
            fragment(1, run, &[]),
            Err(Fmp4Error::BadDuration { .. })
        ));
        let v = [video(-3000, 0, true, 1, 4)];
        let run = VideoRun {
            samples: &v,
            end_dts: 0,
        };
        assert!(matches!(
            fragment(1, run, &[]),
            Err(Fmp4Error::NegativeTime { .. })
        ));
        let v = [video(0, i64::from(i32::MAX) + 1, true, 1, 4)];
        let run = VideoRun {
            samples: &v,
            end_dts: 10,
        };
        assert!(matches!(
            fragment(1, run, &[]),
            Err(Fmp4Error::CompositionOffset { .. })
        ));
        assert_eq!(fragment(1, VideoRun::default(), &[]), Err(Fmp4Error::Empty));
    }
}
