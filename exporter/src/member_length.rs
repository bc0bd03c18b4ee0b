//! The length cutrace records in the header of each gzip member it writes, so that
//! its reader can cut a file into members without inflating it and inflate them on
//! every core.
//!
//! The length goes in the header's extra field (RFC 1952 §2.3.1.1), as BGZF records
//! its block sizes: a subfield `CT` of four bytes, the whole member's length in
//! bytes, little-endian. Every gzip reader skips extra fields it does not know, so
//! the files stay plain gzip to everyone else.

use std::io;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// The header of a member with a recorded length: ten fixed bytes, the extra
/// field's length and the one subfield.
pub(crate) const HEADER_LEN: usize = 20;

/// The header's flag byte saying an extra field follows.
const FEXTRA: u8 = 0x04;
/// The subfield: its id, its length, and room for the member's length.
const SUBFIELD: [u8; 8] = [b'C', b'T', 4, 0, 0, 0, 0, 0];
/// Where the member's length sits in the header.
const LENGTH_AT: usize = 16;

/// A raw deflate compressor at `level`, for [`member`].
pub(crate) fn compressor(level: Compression) -> Compress {
    Compress::new(level, false)
}

/// `text` as one whole gzip member whose header records the member's length,
/// deflated by `deflate` (a [`compressor`] at `level`): one compressor serves every
/// member of a file, since a fresh one per member costs its half megabyte of
/// tables in page faults. A member past what four bytes count keeps a length of
/// 0, which readers take as unknown.
pub(crate) fn member(
    deflate: &mut Compress,
    level: Compression,
    text: &[u8],
) -> io::Result<Vec<u8>> {
    // As flate2's GzBuilder writes it: no time, the level's hint, no OS (255).
    let hint = match level.level() {
        0..=1 => 4,
        9.. => 2,
        _ => 0,
    };
    let mut member = Vec::with_capacity(HEADER_LEN + text.len() / 8 + 64);
    member.extend_from_slice(&[0x1f, 0x8b, 8, FEXTRA, 0, 0, 0, 0, hint, 255]);
    member.extend_from_slice(&(SUBFIELD.len() as u16).to_le_bytes());
    member.extend_from_slice(&SUBFIELD);

    deflate.reset();
    loop {
        if member.len() == member.capacity() {
            member.reserve(member.capacity());
        }
        let read = usize::try_from(deflate.total_in()).unwrap_or(text.len());
        let rest = text.get(read..).unwrap_or_default();
        let written = member.len();
        match deflate.compress_vec(rest, &mut member, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => break,
            // With room to write, deflate always makes progress; never loop on one
            // that does not.
            Ok(Status::Ok | Status::BufError)
                if member.len() == written && deflate.total_in() as usize == read =>
            {
                return Err(io::Error::other("deflate made no progress"));
            }
            Ok(_) => {}
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    let mut crc = Crc::new();
    crc.update(text);
    member.extend_from_slice(&crc.sum().to_le_bytes());
    member.extend_from_slice(&crc.amount().to_le_bytes());

    let len = u32::try_from(member.len()).unwrap_or(0);
    member[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&len.to_le_bytes());
    Ok(member)
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

    use flate2::read::MultiGzDecoder;

    use super::*;

    fn member(text: &[u8]) -> Vec<u8> {
        super::member(
            &mut compressor(Compression::fast()),
            Compression::fast(),
            text,
        )
        .unwrap()
    }

    #[test]
    fn a_member_inflates_to_its_text_and_a_reused_compressor_writes_what_a_fresh_one_does() {
        let texts = [
            b"{\"ph\": \"X\", \"ts\": 12.345}, ".repeat(20_000),
            Vec::new(),
            b"[]".to_vec(),
            b"{\"ph\": \"X\", \"ts\": 12.345}, ".repeat(20_000),
        ];
        for level in [0, 1, 6, 9] {
            let level = Compression::new(level);
            let mut reused = compressor(level);
            for text in &texts {
                let got = super::member(&mut reused, level, text).unwrap();
                let fresh = super::member(&mut compressor(level), level, text).unwrap();
                assert!(
                    got == fresh,
                    "level {}: reuse changed the bytes",
                    level.level()
                );
                // The header flate2 writes, with the length filled in.
                let mut header = flate2::GzBuilder::new()
                    .extra(SUBFIELD.to_vec())
                    .write(Vec::new(), level)
                    .finish()
                    .unwrap();
                header.truncate(HEADER_LEN);
                header[LENGTH_AT..].copy_from_slice(&(got.len() as u32).to_le_bytes());
                assert_eq!(got[..HEADER_LEN], header[..]);
                assert_eq!(read(&got), Some(got.len()));
                let mut inflated = Vec::new();
                flate2::read::GzDecoder::new(&got[..])
                    .read_to_end(&mut inflated)
                    .unwrap();
                assert!(inflated == *text, "level {}", level.level());
            }
        }
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
