//! The length cutrace records in the header of each gzip member it writes, so that
//! its reader can cut a file into members without inflating it and inflate them on
//! every core.
//!
//! The length goes in the header's extra field (RFC 1952 §2.3.1.1), as BGZF records
//! its block sizes: a subfield `CT` of four bytes, the whole member's length in
//! bytes, little-endian. Every gzip reader skips extra fields it does not know, so
//! the files stay plain gzip to everyone else.

use flate2::GzBuilder;

/// The header of a member with a recorded length: ten fixed bytes, the extra
/// field's length and the one subfield.
pub(crate) const HEADER_LEN: usize = 20;

/// The header's flag byte saying an extra field follows.
const FEXTRA: u8 = 0x04;
/// The subfield: its id, its length, and room for the member's length.
const SUBFIELD: [u8; 8] = [b'C', b'T', 4, 0, 0, 0, 0, 0];
/// Where the member's length sits in the header.
const LENGTH_AT: usize = 16;

/// A gzip builder whose header has room for the member's length.
pub(crate) fn builder() -> GzBuilder {
    GzBuilder::new().extra(SUBFIELD.to_vec())
}

/// Writes its own length into `member`, a whole member made with [`builder`]. A
/// member past what four bytes count keeps a length of 0, which readers take as
/// unknown.
pub(crate) fn record(member: &mut [u8]) {
    let len = u32::try_from(member.len()).unwrap_or(0);
    if let Some(field) = member.get_mut(LENGTH_AT..LENGTH_AT + 4) {
        field.copy_from_slice(&len.to_le_bytes());
    }
}

/// The whole member's length recorded in `header`, the first [`HEADER_LEN`] bytes
/// of a member; `None` for any other header (another writer's, or a length of 0).
pub(crate) fn read(header: &[u8]) -> Option<usize> {
    let header = header.get(..HEADER_LEN)?;
    let ours = header[..4] == [0x1f, 0x8b, 8, FEXTRA]
        && header[10..12] == [SUBFIELD.len() as u8, 0]
        && header[12..LENGTH_AT] == SUBFIELD[..4];
    let mut len = [0; 4];
    len.copy_from_slice(&header[LENGTH_AT..]);
    let len = usize::try_from(u32::from_le_bytes(len)).ok()?;
    (ours && len >= HEADER_LEN).then_some(len)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use flate2::Compression;
    use flate2::read::MultiGzDecoder;

    use super::*;

    fn member(text: &[u8]) -> Vec<u8> {
        let mut encoder = builder().write(Vec::new(), Compression::fast());
        encoder.write_all(text).unwrap();
        let mut member = encoder.finish().unwrap();
        record(&mut member);
        member
    }

    #[test]
    fn members_carry_their_length_and_stay_plain_gzip() {
        let first = member(b"{\"traceEvents\": [");
        let second = member(&b"{\"ph\": \"X\"}, ".repeat(1000));
        assert_eq!(read(&first), Some(first.len()));
        assert_eq!(read(&second), Some(second.len()));
        let mut text = Vec::new();
        MultiGzDecoder::new(&[first, second].concat()[..])
            .read_to_end(&mut text)
            .unwrap();
        assert_eq!(text.len(), 17 + 13 * 1000);
    }

    #[test]
    fn other_headers_have_no_length() {
        let mut plain = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        plain.write_all(b"[]").unwrap();
        assert_eq!(read(&plain.finish().unwrap()), None);
        let mut unrecorded = member(b"[]");
        unrecorded[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&[0; 4]);
        assert_eq!(read(&unrecorded), None);
        let mut other_id = member(b"[]");
        other_id[12] = b'X';
        assert_eq!(read(&other_id), None);
        assert_eq!(read(&member(b"[]")[..HEADER_LEN - 1]), None);
    }
}
