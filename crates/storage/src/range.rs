//! HTTP byte ranges (`Range: bytes=...`), parsed and resolved against an object's length.

use crate::StorageError;

/// One byte range, as in an HTTP `Range` header. Multi-range requests are not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`, both inclusive, `first <= last`.
    Inclusive { first: u64, last: u64 },
    /// `bytes=first-`: from `first` to the end.
    From { first: u64 },
    /// `bytes=-len`: the last `len` bytes.
    Suffix { len: u64 },
}

impl ByteRange {
    /// Parses a `Range` header value: `bytes=a-b`, `bytes=a-` or `bytes=-n` (the unit is
    /// case-insensitive, spaces around the parts are allowed). A list of ranges, a unit other
    /// than bytes, `a > b` or a number that does not fit a `u64` is
    /// [`StorageError::InvalidRange`].
    pub fn parse_header(header: &str) -> Result<ByteRange, StorageError> {
        let bad = |reason| StorageError::InvalidRange {
            header: header.chars().take(128).collect(),
            reason,
        };
        let (unit, spec) = header.trim().split_once('=').ok_or_else(|| bad("no '='"))?;
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return Err(bad("unit is not bytes"));
        }
        if spec.contains(',') {
            return Err(bad("multiple ranges are not supported"));
        }
        let (first, last) = spec.split_once('-').ok_or_else(|| bad("no '-'"))?;
        let (first, last) = (first.trim(), last.trim());
        let number = |s: &str| -> Result<u64, StorageError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("not a decimal number"));
            }
            s.parse().map_err(|_| bad("number too large"))
        };
        match (first.is_empty(), last.is_empty()) {
            (true, true) => Err(bad("no bounds")),
            (true, false) => Ok(ByteRange::Suffix { len: number(last)? }),
            (false, true) => Ok(ByteRange::From {
                first: number(first)?,
            }),
            (false, false) => {
                let (first, last) = (number(first)?, number(last)?);
                if first > last {
                    return Err(bad("first byte after last byte"));
                }
                Ok(ByteRange::Inclusive { first, last })
            }
        }
    }

    /// The inclusive `(start, end)` served for an object of `len` bytes; `last` past the end is
    /// clamped, a suffix longer than the object is the whole object. A start at or past the end,
    /// a zero-length suffix, or any range of an empty object is
    /// [`StorageError::RangeNotSatisfiable`].
    pub fn resolve(&self, len: u64) -> Result<(u64, u64), StorageError> {
        let unsatisfiable = StorageError::RangeNotSatisfiable { len };
        if len == 0 {
            return Err(unsatisfiable);
        }
        let end_of_object = len - 1;
        match *self {
            ByteRange::Inclusive { first, last } => {
                if first > end_of_object || first > last {
                    return Err(unsatisfiable);
                }
                Ok((first, last.min(end_of_object)))
            }
            ByteRange::From { first } => {
                if first > end_of_object {
                    return Err(unsatisfiable);
                }
                Ok((first, end_of_object))
            }
            ByteRange::Suffix { len: suffix } => {
                if suffix == 0 {
                    return Err(unsatisfiable);
                }
                Ok((len.saturating_sub(suffix), end_of_object))
            }
        }
    }

    /// The header value for this range, e.g. `bytes=0-99` (what S3 is sent).
    pub fn to_header(&self) -> String {
        match *self {
            ByteRange::Inclusive { first, last } => format!("bytes={first}-{last}"),
            ByteRange::From { first } => format!("bytes={first}-"),
            ByteRange::Suffix { len } => format!("bytes=-{len}"),
        }
    }
}

impl std::fmt::Display for ByteRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_header())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ByteRange {
        match ByteRange::parse_header(s) {
            Ok(r) => r,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse("bytes=0-99"),
            ByteRange::Inclusive { first: 0, last: 99 }
        );
        assert_eq!(
            parse("bytes=5-5"),
            ByteRange::Inclusive { first: 5, last: 5 }
        );
        assert_eq!(parse("bytes=100-"), ByteRange::From { first: 100 });
        assert_eq!(parse("bytes=-500"), ByteRange::Suffix { len: 500 });
        assert_eq!(parse("bytes=-0"), ByteRange::Suffix { len: 0 });
        assert_eq!(
            parse(" Bytes = 1 - 2 "),
            ByteRange::Inclusive { first: 1, last: 2 }
        );
        assert_eq!(
            parse(&format!("bytes={}-", u64::MAX)),
            ByteRange::From { first: u64::MAX }
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=abc-",
            "bytes=1-a",
            "bytes=+1-2",
            "bytes=-+2",
            "bytes=1--2",
            "bytes=0x10-",
            "bytes=5-4",
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=18446744073709551616-",
            "0-1",
        ] {
            let err = ByteRange::parse_header(bad).err();
            assert!(
                matches!(err, Some(StorageError::InvalidRange { .. })),
                "{bad:?} -> {err:?}"
            );
        }
    }

    #[test]
    fn resolves_against_a_length() {
        let r = |s: &str, len| parse(s).resolve(len).ok();
        assert_eq!(r("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(r("bytes=0-99", 50), Some((0, 49)));
        assert_eq!(r("bytes=0-0", 1), Some((0, 0)));
        assert_eq!(r("bytes=999-", 1000), Some((999, 999)));
        assert_eq!(r("bytes=0-", 1000), Some((0, 999)));
        assert_eq!(r("bytes=-10", 1000), Some((990, 999)));
        assert_eq!(r("bytes=-5000", 1000), Some((0, 999)));
        assert_eq!(r("bytes=-1", 1), Some((0, 0)));
        assert_eq!(r(&format!("bytes=0-{}", u64::MAX), 10), Some((0, 9)));
    }

    #[test]
    fn unsatisfiable_ranges_carry_the_length() {
        for (s, len) in [
            ("bytes=1000-", 1000),
            ("bytes=1000-2000", 1000),
            ("bytes=-0", 1000),
            ("bytes=0-0", 0),
            ("bytes=-5", 0),
            ("bytes=0-", 0),
        ] {
            let err = parse(s).resolve(len).err();
            assert!(
                matches!(err, Some(StorageError::RangeNotSatisfiable { len: l }) if l == len),
                "{s} on {len} -> {err:?}"
            );
        }
    }

    #[test]
    fn header_round_trips() {
        for s in ["bytes=0-99", "bytes=7-", "bytes=-3"] {
            assert_eq!(parse(s).to_header(), s);
        }
    }
}
