//! Sequence number and timestamp rewriting for one subscriber's output stream.
//!
//! The output is divided into segments: a segment starts at a layer switch, at a publisher
//! restart, or at the very first forwarded packet, and within a segment the output is the input
//! shifted by a constant offset. At a segment start the offsets are chosen so the output stays
//! continuous: the first sequence number is one past the highest so far, and the first
//! timestamp advances the last one by the wall-clock time since the last forwarded packet.

use std::time::Instant;

/// How many sequence numbers behind the highest one duplicates are detected.
const HISTORY: u64 = 128;

/// Input position of the current segment.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Extended input sequence number of the segment's first packet.
    start_ext: u64,
    /// Highest extended input sequence number seen in the segment.
    highest_ext: u64,
    /// Added (wrapping) to an extended input sequence number to get the extended output one.
    seq_offset: u64,
    /// Added (wrapping) to an input timestamp to get the output one.
    ts_offset: u32,
    /// Bit `k` set: the packet `highest_ext - k` was forwarded.
    forwarded: u128,
}

/// Rewritten sequence number and timestamp of one forwarded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MungedRtp {
    pub sequence_number: u16,
    pub timestamp: u32,
    /// Whether this packet is the newest of its segment (not a late, reordered one).
    pub newest: bool,
}

/// Sequence number and timestamp state of one output stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct RtpMunger {
    segment: Option<Segment>,
    /// Highest extended output sequence number, once anything was forwarded.
    highest_out_ext: Option<u64>,
    /// Output timestamp of the newest forwarded packet and when it was forwarded.
    last_out: Option<(u32, Instant)>,
}

impl RtpMunger {
    /// Whether the next packet must start a new segment (nothing forwarded since the last
    /// [`end_segment`](Self::end_segment)).
    pub fn needs_segment(&self) -> bool {
        self.segment.is_none()
    }

    /// Ends the current segment: the input's sequence and timestamp spaces will change.
    pub fn end_segment(&mut self) {
        self.segment = None;
    }

    /// Starts a new segment at this packet and maps it.
    pub fn start_segment(
        &mut self,
        now: Instant,
        sequence_number: u16,
        timestamp: u32,
        clock_rate: u32,
    ) -> MungedRtp {
        // Extended numbers start one cycle up so packets just before the start compare lower.
        let start_ext = (1 << 16) + u64::from(sequence_number);
        let out_first = self
            .highest_out_ext
            .map_or(u64::from(sequence_number), |highest| {
                highest.wrapping_add(1)
            });
        let ts_first = match self.last_out {
            Some((last_ts, last_at)) => last_ts.wrapping_add(elapsed_ticks(
                now.saturating_duration_since(last_at).as_nanos(),
                clock_rate,
            )),
            None => timestamp,
        };
        self.segment = Some(Segment {
            start_ext,
            highest_ext: start_ext,
            seq_offset: out_first.wrapping_sub(start_ext),
            ts_offset: ts_first.wrapping_sub(timestamp),
            forwarded: 1,
        });
        self.highest_out_ext = Some(out_first);
        self.last_out = Some((ts_first, now));
        MungedRtp {
            sequence_number: out_first as u16,
            timestamp: ts_first,
            newest: true,
        }
    }

    /// Maps a packet of the current segment; `None` when it must be dropped: there is no
    /// segment, it precedes the segment start, or it was already forwarded.
    pub fn munge(
        &mut self,
        now: Instant,
        sequence_number: u16,
        timestamp: u32,
    ) -> Option<MungedRtp> {
        let segment = self.segment.as_mut()?;
        let delta = i64::from(sequence_number.wrapping_sub(segment.highest_ext as u16) as i16);
        let ext = segment.highest_ext.checked_add_signed(delta)?;
        if ext < segment.start_ext {
            return None;
        }
        let newest = ext > segment.highest_ext;
        if newest {
            let shift = ext - segment.highest_ext;
            segment.forwarded = if shift >= HISTORY {
                0
            } else {
                segment.forwarded << shift
            };
            segment.forwarded |= 1;
            segment.highest_ext = ext;
        } else {
            let age = segment.highest_ext - ext;
            if age < HISTORY {
                let bit = 1u128 << age;
                if segment.forwarded & bit != 0 {
                    return None;
                }
                segment.forwarded |= bit;
            }
        }
        let out_ext = ext.wrapping_add(segment.seq_offset);
        let out_ts = timestamp.wrapping_add(segment.ts_offset);
        if newest {
            self.highest_out_ext = Some(out_ext);
            self.last_out = Some((out_ts, now));
        }
        Some(MungedRtp {
            sequence_number: out_ext as u16,
            timestamp: out_ts,
            newest,
        })
    }
}

/// `nanos` of wall-clock time in RTP ticks at `clock_rate`, wrapped to 32 bits, at least 1.
fn elapsed_ticks(nanos: u128, clock_rate: u32) -> u32 {
    let ticks = (nanos * u128::from(clock_rate) / 1_000_000_000) as u32;
    ticks.max(1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn first_segment_keeps_input_numbers() {
        let now = Instant::now();
        let mut munger = RtpMunger::default();
        assert!(munger.needs_segment());
        assert_eq!(munger.munge(now, 1, 1), None);
        let first = munger.start_segment(now, 65_534, 4_000_000_000, 90_000);
        assert_eq!(
            (first.sequence_number, first.timestamp),
            (65_534, 4_000_000_000)
        );
        let next = munger
            .munge(now, 65_535, 4_000_003_000)
            .map(|m| m.sequence_number);
        assert_eq!(next, Some(65_535));
        let wrapped = munger
            .munge(now, 0, 4_000_006_000)
            .map(|m| m.sequence_number);
        assert_eq!(wrapped, Some(0));
    }

    #[test]
    fn new_segment_continues_sequence_and_timestamp() {
        let t0 = Instant::now();
        let mut munger = RtpMunger::default();
        munger.start_segment(t0, 100, 1_000, 90_000);
        munger.munge(t0, 101, 1_000);
        munger.end_segment();
        let t1 = t0 + Duration::from_millis(100);
        let first = munger.start_segment(t1, 40_000, 77, 90_000);
        assert_eq!(first.sequence_number, 102);
        assert_eq!(first.timestamp, 1_000 + 9_000);
        let next = munger.munge(t1, 40_001, 77 + 3_000);
        assert_eq!(
            next.map(|m| (m.sequence_number, m.timestamp)),
            Some((103, 13_000))
        );
    }

    #[test]
    fn same_instant_switch_still_advances_timestamp() {
        let t0 = Instant::now();
        let mut munger = RtpMunger::default();
        munger.start_segment(t0, 1, u32::MAX, 90_000);
        munger.end_segment();
        let first = munger.start_segment(t0, 9, 5, 90_000);
        assert_eq!(first.timestamp, 0);
    }

    #[test]
    fn reordered_duplicate_and_early_packets() {
        let now = Instant::now();
        let mut munger = RtpMunger::default();
        munger.start_segment(now, 10, 0, 90_000);
        munger.end_segment();
        // Second segment starts at input 500 -> output 11.
        munger.start_segment(now, 500, 0, 90_000);
        assert_eq!(munger.munge(now, 499, 0), None, "before the segment start");
        let late = munger
            .munge(now, 502, 0)
            .map(|m| (m.sequence_number, m.newest));
        assert_eq!(late, Some((13, true)));
        let reordered = munger
            .munge(now, 501, 0)
            .map(|m| (m.sequence_number, m.newest));
        assert_eq!(reordered, Some((12, false)));
        assert_eq!(munger.munge(now, 501, 0), None, "duplicate");
        assert_eq!(munger.munge(now, 502, 0), None, "duplicate of the newest");
        assert_eq!(munger.munge(now, 500, 0), None, "duplicate of the start");
    }

    #[test]
    fn elapsed_ticks_is_at_least_one_and_wraps() {
        assert_eq!(elapsed_ticks(0, 90_000), 1);
        assert_eq!(elapsed_ticks(1_000_000_000, 48_000), 48_000);
        let long = u128::from(u32::MAX) * 1_000_000_000 / 90_000 + 1_000_000_000;
        assert!(elapsed_ticks(long, 90_000) < 200_000);
    }
}
