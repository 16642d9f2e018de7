//! Media fixtures made with the real ffmpeg CLI and checks with ffprobe, shared by the
//! transcoder tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use greenroom_ingest::transcode::EncodedFrame;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => { return Err(format!($($t)*).into()) };
}

#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($t:tt)*) => { if !$cond { bail!($($t)*) } };
}

pub trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: &str) -> Result<T> {
        self.ok_or_else(|| what.into())
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| what().into())
    }
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|e| format!("{what}: {e}").into())
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| format!("{}: {e}", what()).into())
    }
}

pub fn per_second(d: Duration, seconds: f64) -> f64 {
    d.as_secs_f64() * 1000.0 / seconds
}

pub fn temp_dir(name: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("transcode-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

pub fn ffmpeg(args: &[&str]) -> Result<()> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .context("running ffmpeg (apt-get install ffmpeg)")?;
    if !out.status.success() {
        bail!(
            "ffmpeg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

pub struct H264Fixture {
    pub annexb_path: PathBuf,
    /// Access units in decode order, split at AUDs.
    pub access_units: Vec<Vec<u8>>,
    /// Their presentation times (FLV dts + cts), in decode order.
    pub pts_ms: Vec<i64>,
}

/// x264 with B-frames (`-bf 2`, GOP 30) into FLV, like OBS over RTMP; then Annex-B with
/// SPS/PPS before each IDR (as the RTMP path produces) and the FLV presentation times.
pub fn h264_fixture(dir: &Path, source: &str, seconds: f64) -> Result<H264Fixture> {
    let flv = dir.join("v.flv");
    let annexb_path = dir.join("v.h264");
    let t = seconds.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        source,
        "-t",
        &t,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-bf",
        "2",
        "-g",
        "30",
        "-pix_fmt",
        "yuv420p",
        "-x264-params",
        "aud=1",
        "-f",
        "flv",
        flv.to_str().context("path")?,
    ])?;
    ffmpeg(&[
        "-i",
        flv.to_str().context("path")?,
        "-c",
        "copy",
        "-bsf:v",
        "h264_mp4toannexb",
        "-f",
        "h264",
        annexb_path.to_str().context("path")?,
    ])?;
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "packet=pts",
            "-of",
            "csv=p=0",
        ])
        .arg(&flv)
        .output()?;
    ensure!(probe.status.success(), "ffprobe failed");
    let pts_ms = String::from_utf8(probe.stdout)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_end_matches(',').parse::<i64>())
        .collect::<Result<Vec<_>, _>>()?;

    let data = std::fs::read(&annexb_path)?;
    let mut starts: Vec<usize> = Vec::new();
    for (offset, nal) in nal_spans(&data) {
        if nal[0] & 0x1F == 9 {
            starts.push(offset);
        }
    }
    ensure!(!starts.is_empty(), "no AUDs: x264 aud=1 missing?");
    let mut access_units = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(data.len());
        access_units.push(data[s..end].to_vec());
    }
    ensure!(
        access_units.len() == pts_ms.len(),
        "{} AUs vs {} FLV packets",
        access_units.len(),
        pts_ms.len()
    );
    Ok(H264Fixture {
        annexb_path,
        access_units,
        pts_ms,
    })
}

/// (offset of the start code, NAL unit without it) for each NAL of an Annex-B stream.
pub fn nal_spans(data: &[u8]) -> Vec<(usize, &[u8])> {
    let mut codes = Vec::new(); // (start code offset, payload offset)
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let start = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            codes.push((start, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    codes
        .iter()
        .enumerate()
        .map(|(k, &(start, payload))| {
            let end = codes.get(k + 1).map_or(data.len(), |&(next, _)| next);
            (start, &data[payload..end])
        })
        .filter(|(_, nal)| !nal.is_empty())
        .collect()
}

pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    nal_spans(data).into_iter().map(|(_, n)| n).collect()
}

pub fn nal_types(data: &[u8]) -> Vec<u8> {
    nal_units(data).iter().map(|n| n[0] & 0x1F).collect()
}

pub fn write_annexb(path: &Path, frames: &[EncodedFrame]) -> Result<()> {
    let mut all = Vec::new();
    for f in frames {
        all.extend_from_slice(&f.annexb);
    }
    std::fs::write(path, all)?;
    Ok(())
}

#[derive(Debug)]
pub struct ProbedFrame {
    pub pict_type: String,
    pub key_frame: bool,
    pub width: u32,
    pub height: u32,
}

pub fn ffprobe_frames(path: &Path) -> Result<Vec<ProbedFrame>> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_frames",
            "-show_entries",
            "frame=pict_type,key_frame,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .context("running ffprobe")?;
    ensure!(out.status.success(), "ffprobe failed on {}", path.display());
    // csv columns follow the section's field order: key_frame,width,height,pict_type.
    String::from_utf8(out.stdout)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.trim().trim_end_matches(',').split(',').collect();
            ensure!(cols.len() >= 4, "unexpected ffprobe line {l:?}");
            Ok(ProbedFrame {
                key_frame: cols[0] == "1",
                width: cols[1].parse()?,
                height: cols[2].parse()?,
                pict_type: cols[3].to_owned(),
            })
        })
        .collect()
}

/// CPU time spent: by the calling thread (schedstat, ns resolution) and by the whole process
/// (user + system, 10 ms ticks; includes any ffmpeg worker threads, meaningful only with
/// `--test-threads=1`). Linux only.
pub struct CpuClock {
    pub thread: Duration,
    pub process: Duration,
}

impl CpuClock {
    pub fn start() -> Result<CpuClock> {
        Ok(CpuClock {
            thread: thread_cpu()?,
            process: process_cpu()?,
        })
    }

    /// (thread, process) CPU time since `start`.
    pub fn elapsed(&self) -> Result<(Duration, Duration)> {
        Ok((
            thread_cpu()?.saturating_sub(self.thread),
            process_cpu()?.saturating_sub(self.process),
        ))
    }
}

pub fn thread_cpu() -> Result<Duration> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: u64 = schedstat
        .split_whitespace()
        .next()
        .context("schedstat format")?
        .parse()?;
    Ok(Duration::from_nanos(ns))
}

pub fn process_cpu() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // After the parenthesised command, field 3 (state) comes first: utime is 14, stime 15.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // USER_HZ is 100 on Linux.
    Ok(Duration::from_millis(ticks * 10))
}
