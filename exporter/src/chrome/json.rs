//! Hand-written JSON primitives for the hot path: strings, integers, trace times and
//! fixed-point numbers appended to a byte buffer without any formatting machinery.

/// Appends `s` as a JSON string literal, quotes included.
///
/// Control characters become `\u00XX` (or their short escapes): one raw control
/// character makes a whole trace unreadable in Perfetto. DEL is escaped too, since
/// some viewers treat it as a control character.
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut clean_from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[clean_from..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        clean_from = i + 1;
    }
    out.extend_from_slice(&bytes[clean_from..]);
    out.push(b'"');
}

/// Appends an integer in decimal.
pub(crate) fn push_int<I: itoa::Integer>(out: &mut Vec<u8>, value: I) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(value).as_bytes());
}

/// Appends a time of `ns` nanoseconds as microseconds with exactly three decimals
/// (`540.100`, `-0.500`), with integer arithmetic only: doubles would lose the
/// nanoseconds of large values.
pub(crate) fn push_time(out: &mut Vec<u8>, ns: i64) {
    if ns < 0 {
        out.push(b'-');
    }
    let abs = ns.unsigned_abs();
    push_int(out, abs / 1000);
    push_three_digits(out, abs % 1000);
}

/// Appends `micros / 1e6` with exactly six decimals (`5.300000`), the way Kineto
/// prints its per-SM figures.
pub(crate) fn push_fixed6(out: &mut Vec<u8>, micros: u64) {
    push_int(out, micros / 1_000_000);
    out.push(b'.');
    let frac = micros % 1_000_000;
    let mut digits = [b'0'; 6];
    let mut rest = frac;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Appends a finite float in its shortest round-trip form; callers guarantee
/// finiteness (a NaN or infinity is not JSON).
pub(crate) fn push_float(out: &mut Vec<u8>, value: f64) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

fn push_three_digits(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&[
        b'.',
        b'0' + (v / 100) as u8,
        b'0' + (v / 10 % 10) as u8,
        b'0' + (v % 10) as u8,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_have_three_decimals_and_keep_the_sign() {
        assert_eq!(s(|o| push_time(o, 540_100)), "540.100");
        assert_eq!(s(|o| push_time(o, 0)), "0.000");
        assert_eq!(s(|o| push_time(o, 7)), "0.007");
        assert_eq!(s(|o| push_time(o, -500)), "-0.500");
        assert_eq!(s(|o| push_time(o, -1_000_001)), "-1000.001");
        assert_eq!(s(|o| push_time(o, i64::MIN)), "-9223372036854775.808");
        assert_eq!(s(|o| push_time(o, i64::MAX)), "9223372036854775.807");
    }

    #[test]
    fn fixed6_pads_the_fraction() {
        assert_eq!(s(|o| push_fixed6(o, 5_300_000)), "5.300000");
        assert_eq!(s(|o| push_fixed6(o, 9_259)), "0.009259");
        assert_eq!(s(|o| push_fixed6(o, 0)), "0.000000");
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_control_characters() {
        assert_eq!(s(|o| push_str(o, "plain")), "\"plain\"");
        assert_eq!(
            s(|o| push_str(o, "a\"b\\c\nd\te\u{1}f\u{7f}\u{1f}")),
            r#""a\"b\\c\nd\te\u0001f\u007f\u001f""#
        );
        assert_eq!(s(|o| push_str(o, "µs → 時間")), "\"µs → 時間\"");
        let escaped = s(|o| push_str(o, "x\u{0}\u{8}\u{c}\r"));
        assert_eq!(escaped, r#""x\u0000\b\f\r""#);
        let back: String = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, "x\u{0}\u{8}\u{c}\r");
    }

    #[test]
    fn floats_are_shortest_round_trip() {
        assert_eq!(s(|o| push_float(o, 0.2)), "0.2");
        assert_eq!(s(|o| push_float(o, 4.0)), "4");
        assert_eq!(s(|o| push_float(o, 1e20)), "100000000000000000000");
    }
}
