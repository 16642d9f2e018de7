//! A tiny ISO BMFF reader for tests: walks boxes and parses the fragments this module writes.
//! Panics on malformed input (test data only).

/// One box: its type and body (after the 8-byte header).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mp4Box<'a> {
    pub kind: [u8; 4],
    pub payload: &'a [u8],
}

fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

fn be64(data: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"))
}

/// The boxes laid end to end in `data`.
pub(crate) fn children(data: &[u8]) -> Vec<Mp4Box<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let size = be32(data, at) as usize;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().expect("type");
        let (header, size) = if size == 1 {
            (16, be64(data, at + 8) as usize)
        } else {
            (8, size)
        };
        assert!(size >= header && at + size <= data.len(), "bad box size");
        out.push(Mp4Box {
            kind,
            payload: &data[at + header..at + size],
        });
        at += size;
    }
    out
}

/// Bytes to skip in a box's body before its child boxes.
fn children_offset(kind: &[u8; 4]) -> usize {
    match kind {
        b"stsd" | b"dref" => 8,
        b"avc1" => 78,
        b"mp4a" => 28,
        _ => 0,
    }
}

/// The body of the first child box of type `kind`.
pub(crate) fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(data)
        .into_iter()
        .find(|b| &b.kind == kind)
        .map(|b| b.payload)
}

/// Descends along `path` (box types) from the top level of `data`.
pub(crate) fn find<'a>(data: &'a [u8], path: &[&str]) -> Option<&'a [u8]> {
    let mut current = data;
    let mut parent: Option<[u8; 4]> = None;
    for name in path {
        let kind: [u8; 4] = name.as_bytes().try_into().expect("4-letter type");
        let inner = &current[parent.map_or(0, |p| children_offset(&p))..];
        current = child(inner, &kind)?;
        parent = Some(kind);
    }
    Some(current)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrunSample {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
    pub composition_offset: i32,
}

#[derive(Debug, Clone)]
pub(crate) struct Traf {
    pub track_id: u32,
    pub default_flags: Option<u32>,
    pub base_decode_time: u64,
    pub trun_version: u8,
    /// From the start of the fragment (the `moof`).
    pub data_offset: i32,
    pub samples: Vec<TrunSample>,
}

#[derive(Debug, Clone)]
pub(crate) struct Fragment {
    pub sequence_number: u32,
    pub trafs: Vec<Traf>,
}

/// Parses a `moof` + `mdat` fragment (the first `moof` of `data`).
pub(crate) fn parse_fragment(data: &[u8]) -> Fragment {
    let moof = child(data, b"moof").expect("moof");
    let mfhd = child(moof, b"mfhd").expect("mfhd");
    let mut trafs = Vec::new();
    for traf in children(moof).into_iter().filter(|b| &b.kind == b"traf") {
        let tfhd = child(traf.payload, b"tfhd").expect("tfhd");
        let tfhd_flags = be32(tfhd, 0) & 0xff_ffff;
        assert!(tfhd_flags & 0x02_0000 != 0, "default-base-is-moof");
        let mut at = 8;
        for (flag, len) in [(0x01, 8), (0x02, 4), (0x08, 4), (0x10, 4)] {
            if tfhd_flags & flag != 0 {
                at += len;
            }
        }
        let default_flags = (tfhd_flags & 0x20 != 0).then(|| be32(tfhd, at));
        let tfdt = child(traf.payload, b"tfdt").expect("tfdt");
        let base_decode_time = if tfdt[0] == 1 {
            be64(tfdt, 4)
        } else {
            u64::from(be32(tfdt, 4))
        };
        let trun = child(traf.payload, b"trun").expect("trun");
        let trun_flags = be32(trun, 0) & 0xff_ffff;
        let count = be32(trun, 4);
        let mut at = 8;
        let mut data_offset = 0;
        if trun_flags & 0x1 != 0 {
            data_offset = be32(trun, at) as i32;
            at += 4;
        }
        assert_eq!(trun_flags & 0x4, 0, "first-sample-flags not written");
        let mut samples = Vec::new();
        for _ in 0..count {
            let mut field = |flag: u32| {
                if trun_flags & flag != 0 {
                    let value = be32(trun, at);
                    at += 4;
                    Some(value)
                } else {
                    None
                }
            };
            let duration = field(0x100).unwrap_or(0);
            let size = field(0x200).unwrap_or(0);
            let flags = field(0x400).or(default_flags).unwrap_or(0);
            let composition_offset = field(0x800).map_or(0, |v| v as i32);
            samples.push(TrunSample {
                duration,
                size,
                flags,
                composition_offset,
            });
        }
        assert_eq!(at, trun.len(), "trun fully read");
        trafs.push(Traf {
            track_id: be32(tfhd, 4),
            default_flags,
            base_decode_time,
            trun_version: trun[0],
            data_offset,
            samples,
        });
    }
    Fragment {
        sequence_number: be32(mfhd, 4),
        trafs,
    }
}
