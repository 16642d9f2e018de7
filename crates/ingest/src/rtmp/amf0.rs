//! AMF0 (Action Message Format 0) values: a bounded decoder and an encoder.
//!
//! Only the types RTMP publishers use are supported: Number, Boolean, String, Object, Null,
//! Undefined, ECMA Array, Strict Array, Date and Long String (decoded as [`Amf0Value::String`],
//! encoded as a long string past 65 535 bytes). References, typed objects, XML documents and
//! the AMF3 switch are refused.
//!
//! Invariants: decoding never recurses deeper than [`Amf0Limits::max_depth`], never creates
//! more than [`Amf0Limits::max_elements`] values per call, and never allocates from a length
//! or count read off the wire before the bytes are there.

use bytes::{BufMut, BytesMut};

use super::error::Amf0Error;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0A;
const DATE: u8 = 0x0B;
const LONG_STRING: u8 = 0x0C;

/// One AMF0 value. Object and ECMA array properties keep their wire order.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the Unix epoch; the time zone field is reserved and kept as read.
    Date {
        millis: f64,
        time_zone: i16,
    },
}

impl Amf0Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The properties of an Object or ECMA Array.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// The first property named `key` of an Object or ECMA Array.
    pub fn property(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Bounds of one decode call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amf0Limits {
    /// How deep objects and arrays may nest (a top-level scalar has depth 0).
    pub max_depth: usize,
    /// How many values (properties and array items included) one call may produce.
    pub max_elements: usize,
}

impl Default for Amf0Limits {
    fn default() -> Self {
        Amf0Limits {
            max_depth: 16,
            max_elements: 1024,
        }
    }
}

/// Decodes every value in `buf` (an AMF0 command or data message body).
pub fn decode_all(buf: &[u8], limits: Amf0Limits) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut decoder = Decoder {
        buf,
        pos: 0,
        elements: 0,
        limits,
    };
    let mut values = Vec::new();
    while decoder.pos < buf.len() {
        values.push(decoder.value(0)?);
    }
    Ok(values)
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    elements: usize,
    limits: Amf0Limits,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Amf0Error> {
        let rest = self.buf.len() - self.pos;
        if rest < n {
            return Err(Amf0Error::Truncated {
                offset: self.pos,
                needed: n - rest,
            });
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn utf8(&mut self, len: usize) -> Result<String, Amf0Error> {
        let offset = self.pos;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(Amf0Error::InvalidUtf8 { offset }),
        }
    }

    fn count_element(&mut self) -> Result<(), Amf0Error> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(Amf0Error::TooManyElements {
                limit: self.limits.max_elements,
                offset: self.pos,
            });
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, Amf0Error> {
        self.count_element()?;
        let marker_offset = self.pos;
        let marker = self.u8()?;
        let container = matches!(marker, OBJECT | ECMA_ARRAY | STRICT_ARRAY);
        if container && depth >= self.limits.max_depth {
            return Err(Amf0Error::TooDeep {
                limit: self.limits.max_depth,
                offset: marker_offset,
            });
        }
        match marker {
            NUMBER => Ok(Amf0Value::Number(self.f64()?)),
            BOOLEAN => Ok(Amf0Value::Boolean(self.u8()? != 0)),
            STRING => {
                let len = usize::from(self.u16()?);
                Ok(Amf0Value::String(self.utf8(len)?))
            }
            LONG_STRING => {
                let len = self.u32()? as usize;
                Ok(Amf0Value::String(self.utf8(len)?))
            }
            NULL => Ok(Amf0Value::Null),
            UNDEFINED => Ok(Amf0Value::Undefined),
            OBJECT => Ok(Amf0Value::Object(self.properties(depth + 1)?)),
            ECMA_ARRAY => {
                // The count is advisory (encoders get it wrong); the end marker decides.
                let _count = self.u32()?;
                Ok(Amf0Value::EcmaArray(self.properties(depth + 1)?))
            }
            STRICT_ARRAY => {
                let count = self.u32()? as usize;
                // Every item takes at least one byte: never reserve past what is there.
                let mut items = Vec::with_capacity(count.min(self.buf.len() - self.pos));
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Amf0Value::StrictArray(items))
            }
            DATE => {
                let millis = self.f64()?;
                let time_zone = self.u16()? as i16;
                Ok(Amf0Value::Date { millis, time_zone })
            }
            other => Err(Amf0Error::UnsupportedMarker {
                marker: other,
                offset: marker_offset,
            }),
        }
    }

    /// Properties up to and including the `00 00 09` end marker.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            let key_len = usize::from(self.u16()?);
            if key_len == 0 && self.buf.get(self.pos) == Some(&OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let key = self.utf8(key_len)?;
            let value = self.value(depth)?;
            props.push((key, value));
        }
    }
}

/// Appends `value` to `out`.
pub fn encode(value: &Amf0Value, out: &mut BytesMut) {
    match value {
        Amf0Value::Number(n) => {
            out.put_u8(NUMBER);
            out.put_f64(*n);
        }
        Amf0Value::Boolean(b) => {
            out.put_u8(BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Amf0Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.put_u8(STRING);
                out.put_u16(len);
                out.put_slice(s.as_bytes());
            }
            Err(_) => {
                out.put_u8(LONG_STRING);
                // Strings past 4 GiB cannot exist in a bounded message; saturate rather than wrap.
                out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
                out.put_slice(s.as_bytes());
            }
        },
        Amf0Value::Object(props) => {
            out.put_u8(OBJECT);
            encode_properties(props, out);
        }
        Amf0Value::Null => out.put_u8(NULL),
        Amf0Value::Undefined => out.put_u8(UNDEFINED),
        Amf0Value::EcmaArray(props) => {
            out.put_u8(ECMA_ARRAY);
            out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
            encode_properties(props, out);
        }
        Amf0Value::StrictArray(items) => {
            out.put_u8(STRICT_ARRAY);
            out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for item in items {
                encode(item, out);
            }
        }
        Amf0Value::Date { millis, time_zone } => {
            out.put_u8(DATE);
            out.put_f64(*millis);
            out.put_i16(*time_zone);
        }
    }
}

fn encode_properties(props: &[(String, Amf0Value)], out: &mut BytesMut) {
    for (key, value) in props {
        // Property names are short by construction; a longer one is cut at a char boundary.
        let mut end = key.len().min(usize::from(u16::MAX));
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        out.put_u16(end as u16);
        out.put_slice(&key.as_bytes()[..end]);
        encode(value, out);
    }
    out.put_u16(0);
    out.put_u8(OBJECT_END);
}

/// Encodes a sequence of values (a command: name, transaction id, object, arguments...).
pub fn encode_all(values: &[Amf0Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for value in values {
        encode(value, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(props: &[(&str, Amf0Value)]) -> Amf0Value {
        Amf0Value::Object(
            props
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn roundtrip(values: Vec<Amf0Value>) {
        let bytes = encode_all(&values);
        let decoded = decode_all(&bytes, Amf0Limits::default()).expect("decodes");
        assert_eq!(decoded, values);
    }

    #[test]
    fn every_supported_type_roundtrips() {
        roundtrip(vec![
            Amf0Value::String("connect".into()),
            Amf0Value::Number(1.0),
            obj(&[
                ("app", Amf0Value::String("live".into())),
                ("fpad", Amf0Value::Boolean(false)),
                ("capabilities", Amf0Value::Number(15.0)),
                ("nothing", Amf0Value::Null),
                ("undef", Amf0Value::Undefined),
            ]),
            Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(320.0))]),
            Amf0Value::StrictArray(vec![Amf0Value::Number(1.0), Amf0Value::Boolean(true)]),
            Amf0Value::Date {
                millis: 1.7e12,
                time_zone: 0,
            },
        ]);
    }

    #[test]
    fn long_string_is_used_past_64k_and_decodes_as_string() {
        let long = "x".repeat(70_000);
        let bytes = encode_all(&[Amf0Value::String(long.clone())]);
        assert_eq!(bytes[0], LONG_STRING);
        roundtrip(vec![Amf0Value::String(long)]);
    }

    #[test]
    fn captured_ffmpeg_connect_decodes() {
        // The start of the connect command ffmpeg 5.1 sends (captured), cut after `app`.
        let mut bytes = vec![0x02, 0x00, 0x07];
        bytes.extend_from_slice(b"connect");
        bytes.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0x03, 0x00, 0x03]);
        bytes.extend_from_slice(b"app");
        bytes.extend_from_slice(&[0x02, 0x00, 0x04]);
        bytes.extend_from_slice(b"live");
        bytes.extend_from_slice(&[0x00, 0x00, 0x09]);
        let values = decode_all(&bytes, Amf0Limits::default()).expect("decodes");
        assert_eq!(values[0].as_str(), Some("connect"));
        assert_eq!(values[1].as_number(), Some(1.0));
        assert_eq!(
            values[2].property("app").and_then(Amf0Value::as_str),
            Some("live")
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing() {
        // 100 000 nested objects: `03 00 01 61` repeated.
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[OBJECT, 0x00, 0x01, b'a']);
        }
        let err = decode_all(&bytes, Amf0Limits::default()).expect_err("must fail");
        assert!(matches!(err, Amf0Error::TooDeep { limit: 16, .. }), "{err}");
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted() {
        let mut value = Amf0Value::Null;
        for _ in 0..16 {
            value = Amf0Value::StrictArray(vec![value]);
        }
        roundtrip(vec![value.clone()]);
        let deeper = Amf0Value::StrictArray(vec![value]);
        let err = decode_all(&encode_all(&[deeper]), Amf0Limits::default()).expect_err("must fail");
        assert!(matches!(err, Amf0Error::TooDeep { .. }));
    }

    #[test]
    fn too_many_elements_is_refused() {
        let items = vec![Amf0Value::Null; 2000];
        let bytes = encode_all(&[Amf0Value::StrictArray(items)]);
        let err = decode_all(&bytes, Amf0Limits::default()).expect_err("must fail");
        assert!(matches!(
            err,
            Amf0Error::TooManyElements { limit: 1024, .. }
        ));
    }

    #[test]
    fn huge_strict_array_count_does_not_allocate() {
        let bytes = [STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff, NULL];
        let err = decode_all(&bytes, Amf0Limits::default()).expect_err("must fail");
        assert!(matches!(err, Amf0Error::Truncated { .. }), "{err}");
    }

    #[test]
    fn truncated_and_invalid_inputs_are_errors() {
        let cases: &[&[u8]] = &[
            &[NUMBER, 0, 0],
            &[STRING, 0, 5, b'a'],
            &[LONG_STRING, 0xff, 0xff, 0xff, 0xff],
            &[OBJECT, 0, 1, b'a'],
            &[OBJECT, 0, 0],
            &[STRING, 0, 2, 0xff, 0xfe],
            &[0x07, 0, 1],
            &[0x11],
            &[OBJECT_END],
            &[DATE, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ];
        for case in cases {
            assert!(
                decode_all(case, Amf0Limits::default()).is_err(),
                "{case:02x?}"
            );
        }
    }

    #[test]
    fn empty_key_with_a_value_is_a_property() {
        let bytes = [OBJECT, 0, 0, NULL, 0, 0, OBJECT_END];
        let values = decode_all(&bytes, Amf0Limits::default()).expect("decodes");
        assert_eq!(values, vec![obj(&[("", Amf0Value::Null)])]);
    }
}
