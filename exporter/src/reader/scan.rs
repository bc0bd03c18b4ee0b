//! Byte-level framing of JSON: where each value of a trace's top level, and each event
//! of its event array, begins and ends, without building any of it.
//!
//! serde alone cannot do this job: a trace can be gigabytes, so events are cut out of
//! the stream one at a time and each is deserialized borrowing from its own bytes; and
//! the framing is where the lenient rules live (a trailing comma, an array-format file
//! that ends without its `]`), which serde_json rightly rejects. Nesting is counted
//! here, without recursion, so a file of endless `[` fails fast instead of being
//! buffered whole.

use std::io::{self, BufRead};

/// Deepest nesting accepted inside one value (serde_json stops at 128 too).
pub(crate) const MAX_DEPTH: u32 = 128;

/// Longest string kept, in bytes of its JSON text: a longer one (a name, an
/// argument) is cut to its first [`MAX_STRING`] bytes as it streams past, so a
/// single 4 GiB string costs no more memory than this.
pub(crate) const MAX_STRING: usize = 64 * 1024;

/// What went wrong while framing.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// The underlying reader failed (I/O, corrupt gzip).
    Io(io::Error),
    /// The input ended inside a value or a container.
    Eof { offset: u64 },
    /// A byte that cannot stand where it was found.
    Unexpected {
        offset: u64,
        found: u8,
        expected: &'static str,
    },
    /// A value nested deeper than [`MAX_DEPTH`].
    TooDeep { offset: u64 },
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

/// A cursor over a buffered byte stream that knows JSON's structure.
pub(crate) struct Scanner<R> {
    inner: R,
    offset: u64,
    /// Strings cut to [`MAX_STRING`] so far.
    cut_strings: u64,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<R: BufRead> Scanner<R> {
    /// A scanner at the start of `inner`.
    pub(crate) fn new(inner: R) -> Self {
        Scanner {
            inner,
            offset: 0,
            cut_strings: 0,
        }
    }

    /// Strings cut to [`MAX_STRING`] bytes so far.
    pub(crate) fn cut_strings(&self) -> u64 {
        self.cut_strings
    }

    /// Bytes consumed so far.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    fn fill(&mut self) -> io::Result<&[u8]> {
        loop {
            match self.inner.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        // Already buffered: this second call only hands the slice out.
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.offset += n as u64;
    }

    /// Skips whitespace and returns the next byte without consuming it; `None` at the
    /// end of the input.
    pub(crate) fn peek(&mut self) -> Result<Option<u8>, ScanError> {
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let skip = buf.iter().position(|&b| !is_whitespace(b));
            let next = skip.map(|i| buf[i]);
            let len = buf.len();
            self.consume(skip.unwrap_or(len));
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// Consumes the byte the last [`Scanner::peek`] returned.
    pub(crate) fn bump(&mut self) {
        self.consume(1);
    }

    /// Consumes `byte` (after whitespace), or fails naming `expected`.
    pub(crate) fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), ScanError> {
        match self.peek()? {
            Some(b) if b == byte => {
                self.bump();
                Ok(())
            }
            Some(found) => Err(ScanError::Unexpected {
                offset: self.offset,
                found,
                expected,
            }),
            None => Err(ScanError::Eof {
                offset: self.offset,
            }),
        }
    }

    /// Reads one whole value (after whitespace), appending its bytes to `out`, or
    /// dropping them when `out` is `None`. Only the framing is checked; the value's
    /// content is for serde to judge. Strings longer than [`MAX_STRING`] are
    /// appended cut, at a character boundary, and counted.
    pub(crate) fn value(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<(), ScanError> {
        let first = self.peek()?.ok_or(ScanError::Eof {
            offset: self.offset,
        })?;
        if !matches!(first, b'{' | b'[' | b'"') {
            return self.scalar(out);
        }
        let mut depth = 0u32;
        let mut in_string = false;
        // A backslash was the last byte of the previous chunk.
        let mut escaped = false;
        // Where in `out` the open string's content starts, and whether the rest of
        // it is being dropped.
        let mut string_start = 0;
        let mut cutting = false;
        loop {
            let chunk_offset = self.offset;
            let buf = self.fill()?;
            let mut cut = 0;
            if buf.is_empty() {
                return Err(ScanError::Eof {
                    offset: chunk_offset,
                });
            }
            let mut end = None;
            let mut i = 0;
            // Start of the bytes of this chunk still to be appended to `out`.
            let mut segment = 0;
            if escaped {
                escaped = false;
                i = 1;
            }
            while i < buf.len() {
                if in_string {
                    match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                        None => i = buf.len(),
                        Some(j) if buf[i + j] == b'\\' => {
                            i += j + 2;
                            if i > buf.len() {
                                escaped = true;
                            }
                        }
                        Some(j) => {
                            let quote = i + j;
                            i = quote + 1;
                            in_string = false;
                            if let Some(out) = out.as_deref_mut() {
                                if cutting {
                                    cutting = false;
                                    segment = quote;
                                } else if out.len() + (quote - segment) - string_start > MAX_STRING
                                {
                                    out.extend_from_slice(&buf[segment..quote]);
                                    cut_string(out, string_start);
                                    cut += 1;
                                    segment = quote;
                                }
                            }
                            if depth == 0 {
                                end = Some(i);
                                break;
                            }
                        }
                    }
                    continue;
                }
                match buf[i] {
                    b'"' => {
                        in_string = true;
                        if let Some(out) = out.as_deref() {
                            string_start = out.len() + (i + 1 - segment);
                        }
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Err(ScanError::TooDeep {
                                offset: chunk_offset + i as u64,
                            });
                        }
                    }
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            let taken = end.unwrap_or(buf.len());
            if let Some(out) = out.as_deref_mut() {
                if !cutting {
                    out.extend_from_slice(&buf[segment..taken]);
                    if in_string && out.len() - string_start > MAX_STRING {
                        cut_string(out, string_start);
                        cut += 1;
                        cutting = true;
                    }
                }
            }
            self.consume(taken);
            self.cut_strings += cut;
            if end.is_some() {
                return Ok(());
            }
        }
    }

    /// A number or literal: everything up to the next delimiter or the end.
    fn scalar(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<(), ScanError> {
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Ok(());
            }
            let end = buf
                .iter()
                .position(|&b| is_whitespace(b) || matches!(b, b',' | b']' | b'}'));
            let taken = end.unwrap_or(buf.len());
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(&buf[..taken]);
            }
            self.consume(taken);
            if end.is_some() {
                return Ok(());
            }
        }
    }
}

/// Cuts the string whose content starts at `out[start]` to at most [`MAX_STRING`]
/// bytes, at the end of a whole character or escape (a surrogate pair counts as
/// one), so that what remains is still a valid JSON string once its quote follows.
fn cut_string(out: &mut Vec<u8>, start: usize) {
    let content = &out[start..];
    let mut i = 0;
    let mut keep = 0;
    while i < content.len() {
        let len = match content[i] {
            b'\\' => match content.get(i + 1) {
                Some(b'u') => {
                    let high = content
                        .get(i + 2..i + 6)
                        .and_then(|hex| std::str::from_utf8(hex).ok())
                        .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                        .is_some_and(|unit| (0xd800..0xdc00).contains(&unit));
                    if high && content.get(i + 6..i + 8) == Some(b"\\u") {
                        12
                    } else {
                        6
                    }
                }
                _ => 2,
            },
            b if b < 0x80 => 1,
            b if b >= 0xf0 => 4,
            b if b >= 0xe0 => 3,
            _ => 2,
        };
        if i + len > MAX_STRING {
            break;
        }
        i += len;
        keep = i;
    }
    out.truncate(start + keep);
}

/// `json` without the commas that stand right before a `}` or `]` (outside strings):
/// what a hand-edited or naively generated trace often has and JSON forbids.
pub(crate) fn strip_trailing_commas(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in json.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            let next = json[i + 1..].iter().find(|&&c| !is_whitespace(c));
            if matches!(next, Some(b'}' | b']')) {
                continue;
            }
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value `input` holds at its top level, as separated by the scanner.
    fn values(input: &[u8], capacity: usize) -> Vec<String> {
        let mut scanner = Scanner::new(io::BufReader::with_capacity(capacity, input));
        let mut found = Vec::new();
        while scanner.peek().unwrap().is_some() {
            let mut out = Vec::new();
            scanner.value(Some(&mut out)).unwrap();
            found.push(String::from_utf8(out).unwrap());
            if scanner.peek().unwrap() == Some(b',') {
                scanner.bump();
            }
        }
        found
    }

    #[test]
    fn values_are_cut_at_their_end_whatever_the_chunk_size() {
        let input = br#" {"a": "x}\"]", "b": [1, {"c": 2}]} , -12.5e3, "s\\", true ,[[]] "#;
        let expected = [
            r#"{"a": "x}\"]", "b": [1, {"c": 2}]}"#,
            "-12.5e3",
            r#""s\\""#,
            "true",
            "[[]]",
        ];
        for capacity in [1, 2, 3, 7, 64] {
            assert_eq!(values(input, capacity), expected, "capacity {capacity}");
        }
    }

    #[test]
    fn offset_counts_consumed_bytes() {
        let mut scanner = Scanner::new(&b"  [1]  "[..]);
        assert_eq!(scanner.peek().unwrap(), Some(b'['));
        assert_eq!(scanner.offset(), 2);
        scanner.value(None).unwrap();
        assert_eq!(scanner.offset(), 5);
        assert_eq!(scanner.peek().unwrap(), None);
        assert_eq!(scanner.offset(), 7);
    }

    #[test]
    fn unterminated_values_end_in_eof() {
        for input in [&br#"{"a": 1"#[..], br#""abc"#, b"[[1]", br#""a\"#] {
            let mut scanner = Scanner::new(input);
            assert!(
                matches!(scanner.value(None), Err(ScanError::Eof { .. })),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn deep_nesting_stops_at_the_limit() {
        let input = vec![b'['; 200_000];
        let mut scanner = Scanner::new(&input[..]);
        match scanner.value(None) {
            Err(ScanError::TooDeep { offset }) => assert_eq!(offset, u64::from(MAX_DEPTH)),
            other => panic!("{other:?}"),
        }
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        Scanner::new(ok.as_bytes()).value(None).unwrap();
    }

    #[test]
    fn expect_reports_what_it_found() {
        let mut scanner = Scanner::new(&b" x"[..]);
        match scanner.expect(b':', "':'") {
            Err(ScanError::Unexpected {
                offset: 1,
                found: b'x',
                expected: "':'",
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_strings_are_cut_whole_characters_at_a_time() {
        // Multi-byte characters, escapes and a surrogate pair in every position
        // relative to the cut, over chunk sizes that split them anywhere.
        let unit = "aé\\\"€\\u00e9\\ud83d\\ude00😀b";
        for shift in 0..12 {
            let long = format!(
                "{}{}",
                "x".repeat(shift),
                unit.repeat(MAX_STRING / 20 + 500)
            );
            let short = "kept whole";
            let input = format!(r#"{{"name": "{long}", "cat": "{short}", "n": [1, "{long}"]}} 7"#);
            let original: serde_json::Value =
                serde_json::from_str(&input[..input.len() - 2]).unwrap();
            for capacity in [7, 4096, 1 << 18] {
                let mut scanner =
                    Scanner::new(io::BufReader::with_capacity(capacity, input.as_bytes()));
                let mut out = Vec::new();
                scanner.value(Some(&mut out)).unwrap();
                assert_eq!(
                    scanner.cut_strings(),
                    2,
                    "shift {shift} capacity {capacity}"
                );
                let value: serde_json::Value = serde_json::from_slice(&out)
                    .unwrap_or_else(|e| panic!("shift {shift} capacity {capacity}: {e}"));
                assert_eq!(value["cat"], short);
                for cut in [&value["name"], &value["n"][1]] {
                    let cut = cut.as_str().unwrap();
                    let whole = original["name"].as_str().unwrap();
                    assert!(whole.starts_with(cut));
                    assert!(cut.len() > MAX_STRING / 2, "{}", cut.len());
                }
                assert!(out.len() < 2 * MAX_STRING + 100, "{}", out.len());
                assert_eq!(scanner.peek().unwrap(), Some(b'7'));
            }
        }
        // Dropped values are never held, however long.
        let long = format!(r#""{}" 1"#, "y".repeat(3 * MAX_STRING));
        let mut scanner = Scanner::new(long.as_bytes());
        scanner.value(None).unwrap();
        assert_eq!(scanner.cut_strings(), 0);
        assert_eq!(scanner.peek().unwrap(), Some(b'1'));
        // A string of exactly the limit is kept whole.
        let exact = format!(r#"["{}"]"#, "z".repeat(MAX_STRING));
        let mut out = Vec::new();
        let mut scanner = Scanner::new(exact.as_bytes());
        scanner.value(Some(&mut out)).unwrap();
        assert_eq!((out, scanner.cut_strings()), (exact.into_bytes(), 0));
    }

    #[test]
    fn trailing_commas_are_stripped_outside_strings_only() {
        let input = br#"{"a": [1, 2, ], "b": ",}", "c": {"d": 1 ,
        },}"#;
        let fixed = strip_trailing_commas(input);
        let value: serde_json::Value = serde_json::from_slice(&fixed).unwrap();
        assert_eq!(value["b"], ",}");
        assert_eq!(value["a"], serde_json::json!([1, 2]));
        assert_eq!(value["c"]["d"], 1);
    }
}
