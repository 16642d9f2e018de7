//! A byte writer for ISO BMFF boxes: nested boxes are opened and closed like brackets, and
//! each box's 32-bit size is patched in when it closes.

/// Writes big-endian fields and nested boxes into one buffer.
#[derive(Debug, Default)]
pub(crate) struct BoxWriter {
    buf: Vec<u8>,
    /// Offsets of the size fields of the boxes still open, innermost last.
    open: Vec<usize>,
}

impl BoxWriter {
    pub(crate) fn with_capacity(capacity: usize) -> BoxWriter {
        BoxWriter {
            buf: Vec::with_capacity(capacity),
            open: Vec::new(),
        }
    }

    /// Opens a box of type `kind`; its size is written by [`end`](Self::end).
    pub(crate) fn start(&mut self, kind: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(kind);
    }

    /// Opens a full box: a box whose payload starts with a version byte and 24 bits of flags.
    pub(crate) fn start_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) {
        self.start(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    }

    /// Closes the innermost open box.
    ///
    /// Boxes written with this writer hold headers and sample tables only (media data goes
    /// in an `mdat` written by the caller), so their sizes are far below 4 GiB.
    pub(crate) fn end(&mut self) {
        let Some(start) = self.open.pop() else {
            debug_assert!(false, "BoxWriter::end without an open box");
            return;
        };
        let size = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.patch_u32(start, size);
    }

    /// Writes a complete box with `payload` as its body.
    pub(crate) fn leaf(&mut self, kind: &[u8; 4], payload: &[u8]) {
        self.start(kind);
        self.bytes(payload);
        self.end();
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn i32(&mut self, value: i32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub(crate) fn zeros(&mut self, count: usize) {
        self.buf.resize(self.buf.len() + count, 0);
    }

    /// The offset the next byte will be written at.
    pub(crate) fn position(&self) -> usize {
        self.buf.len()
    }

    /// Overwrites four bytes at `at` (a place reserved earlier).
    pub(crate) fn patch_u32(&mut self, at: usize, value: u32) {
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&value.to_be_bytes());
        }
    }

    /// The bytes written; every box must be closed.
    pub(crate) fn finish(self) -> Vec<u8> {
        debug_assert!(self.open.is_empty(), "BoxWriter finished with open boxes");
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sizes_are_patched() {
        let mut w = BoxWriter::default();
        w.start(b"moov");
        w.start_full(b"mvhd", 1, 0x000102);
        w.u8(7);
        w.end();
        w.leaf(b"free", &[1, 2]);
        w.end();
        let out = w.finish();
        assert_eq!(&out[..8], &[0, 0, 0, 31, b'm', b'o', b'o', b'v']);
        assert_eq!(
            &out[8..21],
            &[0, 0, 0, 13, b'm', b'v', b'h', b'd', 1, 0, 1, 2, 7]
        );
        assert_eq!(&out[21..], &[0, 0, 0, 10, b'f', b'r', b'e', b'e', 1, 2]);
    }
}
