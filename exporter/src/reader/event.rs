//! The shape of one trace event as read, borrowing from the event's bytes, and the
//! lenient value types that absorb the format's variations (numbers written as
//! strings, string pids, ids past `u32`).
//!
//! Only the fields the model needs are named; serde skips the rest.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::scan::strip_trailing_commas;

/// One element of `traceEvents`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a trace event object")]
pub(crate) struct RawEvent<'a> {
    #[serde(default, borrow)]
    pub ph: Text<'a>,
    #[serde(default, borrow)]
    pub cat: Text<'a>,
    #[serde(default, borrow)]
    pub name: Text<'a>,
    #[serde(default, borrow)]
    pub pid: Option<Id<'a>>,
    #[serde(default, borrow)]
    pub tid: Option<Id<'a>>,
    /// Kept as text so that microseconds with a fraction convert to exact nanoseconds.
    #[serde(default, borrow)]
    pub ts: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub dur: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub args: Option<Args<'a>>,
}

/// The `args` fields the model uses, under Kineto's names.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Args<'a> {
    pub device: Number,
    pub context: Number,
    pub stream: Number,
    pub correlation: Number,
    #[serde(rename = "External id")]
    pub external_id: Number,
    #[serde(rename = "registers per thread")]
    pub registers_per_thread: Number,
    #[serde(rename = "shared memory")]
    pub shared_memory: Number,
    pub grid: Dim3,
    pub block: Dim3,
    #[serde(rename = "graph id")]
    pub graph_id: Number,
    #[serde(rename = "graph node id")]
    pub graph_node_id: Number,
    pub queued: Number,
    pub bytes: Number,
    pub cbid: Number,
    pub wait_on_cuda_event_id: Number,
    /// Metadata events: the process or thread name.
    #[serde(borrow)]
    pub name: Text<'a>,
    /// Metadata events: `CPU` or `GPU <n>`.
    #[serde(borrow)]
    pub labels: Text<'a>,
}

/// One event as parsed from its bytes, which any thread can do; the builder then
/// takes it in file order.
// Nearly every event is the large variant: boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// The event, borrowing from its bytes.
    Event(RawEvent<'a>),
    /// An event that parses once the commas before its `}` and `]` are gone: those
    /// bytes, parsed again when taken (rare enough not to matter).
    Fixed(Vec<u8>),
    /// Why the event does not parse.
    Failed(String),
}

impl<'a> Parsed<'a> {
    /// Parses the event whose JSON is `json`.
    pub(crate) fn of(json: &'a [u8]) -> Self {
        // Checking UTF-8 once up front lets serde skip it for every string.
        let parsed = match std::str::from_utf8(json) {
            Ok(text) => serde_json::from_str::<RawEvent>(text),
            Err(_) => serde_json::from_slice::<RawEvent>(json),
        };
        match parsed {
            Ok(event) => Parsed::Event(event),
            Err(err) => {
                let fixed = strip_trailing_commas(json);
                match serde_json::from_slice::<RawEvent>(&fixed) {
                    Ok(_) if fixed.len() < json.len() => Parsed::Fixed(fixed),
                    _ => Parsed::Failed(err.to_string()),
                }
            }
        }
    }
}

/// A string, borrowed when it has no escapes; any other JSON value reads as absent.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Text<'a>(pub Option<Cow<'a, str>>);

impl Text<'_> {
    /// The string, or "" when absent.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Text(None))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

/// A [`Text`] that owns its string, for values kept after their bytes are gone.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct OwnedText(pub Option<String>);

impl<'de> Deserialize<'de> for OwnedText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Text::deserialize(deserializer).map(|text| OwnedText(text.0.map(Cow::into_owned)))
    }
}

/// A `pid` or `tid`: a number, or a string (`"Spans"`, `"1234"`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Id<'a> {
    /// A JSON number that is an integer.
    Int(i128),
    /// Anything else, as text.
    Text(Cow<'a, str>),
}

impl Id<'_> {
    /// The id as a `u32`, when it is an integer (or a string holding one) in range.
    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Id::Int(n) => u32::try_from(*n).ok(),
            Id::Text(s) => s.trim().parse().ok(),
        }
    }

    /// The id as text, for naming a thread that has no number.
    pub fn to_text(&self) -> String {
        match self {
            Id::Int(n) => n.to_string(),
            Id::Text(s) => s.to_string(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Id<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Id::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Id::Int(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                if v.fract() == 0.0 && v.abs() < 1e18 {
                    Ok(Id::Int(v as i128))
                } else {
                    Ok(Id::Text(Cow::Owned(v.to_string())))
                }
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Id::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Id::Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// A numeric field that some writers quote (`"2560"`, `"0x0"`); anything that is
/// not a number reads as absent rather than failing the whole file.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Number(pub Option<NumberValue>);

/// The value of a [`Number`]. Integers past `u64` are kept as floats, which every
/// accessor refuses as it would refuse the integer: sixteen bytes rather than the
/// thirty-two of an `i128` matter, as every event moves some twenty of these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NumberValue {
    /// A negative integer.
    Negative(i64),
    /// A non-negative integer.
    Int(u64),
    /// A number with a fraction or an exponent, or an integer beyond `u64`.
    Float(f64),
}

impl NumberValue {
    /// An integer, negative or not.
    fn of_i64(n: i64) -> Self {
        u64::try_from(n).map_or(NumberValue::Negative(n), NumberValue::Int)
    }
}

impl Number {
    /// The value as a non-negative integer, when it is one (fractions truncate).
    pub fn as_u64(self) -> Option<u64> {
        match self.0? {
            NumberValue::Negative(_) => None,
            NumberValue::Int(n) => Some(n),
            NumberValue::Float(f) if (0.0..1.8e19).contains(&f) => Some(f as u64),
            NumberValue::Float(_) => None,
        }
    }

    /// The value as a `u32`, when it is a non-negative integer in range.
    pub fn as_u32(self) -> Option<u32> {
        self.as_u64().and_then(|n| u32::try_from(n).ok())
    }

    /// The value as a signed integer (fractions truncate).
    pub fn as_i64(self) -> Option<i64> {
        match self.0? {
            NumberValue::Negative(n) => Some(n),
            NumberValue::Int(n) => i64::try_from(n).ok(),
            NumberValue::Float(f) if f.abs() < 9.2e18 => Some(f as i64),
            NumberValue::Float(_) => None,
        }
    }

    /// The value read as microseconds, in nanoseconds.
    pub fn micros_to_ns(self) -> Option<i64> {
        match self.0? {
            NumberValue::Negative(n) => n.checked_mul(1000),
            NumberValue::Int(n) => i64::try_from(n).ok()?.checked_mul(1000),
            NumberValue::Float(f) if (f * 1000.0).abs() < 9.2e18 => {
                Some((f * 1000.0).round() as i64)
            }
            NumberValue::Float(_) => None,
        }
    }

    fn parse(s: &str) -> Self {
        let s = s.trim();
        let value = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            u64::from_str_radix(hex, 16)
                .map(NumberValue::Int)
                .or_else(|_| i64::from_str_radix(hex, 16).map(NumberValue::of_i64))
                .ok()
        } else if let Ok(n) = s.parse::<u64>() {
            Some(NumberValue::Int(n))
        } else if let Ok(n) = s.parse::<i64>() {
            Some(NumberValue::of_i64(n))
        } else {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(NumberValue::Float)
        };
        Number(value)
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl<'de> Visitor<'de> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Number(Some(NumberValue::of_i64(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Number(Some(NumberValue::Int(v))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Number(Some(NumberValue::Float(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Number::parse(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Number(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Number(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| Number(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Number(None))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

/// A `[x, y, z]` grid or block; missing or malformed parts read as 0.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Dim3(pub [u32; 3]);

impl<'de> Deserialize<'de> for Dim3 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Dim3Visitor;
        impl<'de> Visitor<'de> for Dim3Visitor {
            type Value = Dim3;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of three numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut dims = [0u32; 3];
                let mut i = 0;
                while let Some(n) = seq.next_element::<Number>()? {
                    if let Some(d) = dims.get_mut(i) {
                        *d = n.as_u32().unwrap_or(0);
                    }
                    i += 1;
                }
                Ok(Dim3(dims))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Dim3::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Dim3::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Dim3::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Dim3::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Dim3::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Dim3::default())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Dim3::default())
            }
        }
        deserializer.deserialize_any(Dim3Visitor)
    }
}

/// Converts a time in microseconds, as the JSON text of a number or of a string
/// holding one (`540.1`, `"540.1"`, `1.5e3`), to nanoseconds, rounding half away
/// from zero. Parsed as decimal text, not through `f64`: an absolute epoch time in
/// microseconds has 16 digits before the point and a double would lose the
/// nanoseconds.
pub(crate) fn micros_to_ns(json: &str) -> Option<i64> {
    let text = json.trim();
    let text = match text.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"')?.trim(),
        None => text,
    };
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut digits: i128 = 0;
    let mut scale = exponent + 3; // microseconds to nanoseconds
    for (i, c) in int_part.chars().chain(frac_part.chars()).enumerate() {
        let d = c.to_digit(10)?;
        if i >= int_part.len() {
            scale -= 1;
        }
        // Digits beyond what an i64 of nanoseconds can hold only shift the scale.
        if digits < 10i128.pow(30) {
            digits = digits * 10 + i128::from(d);
        } else {
            scale += 1;
        }
    }
    let magnitude = if scale >= 0 {
        digits.checked_mul(10i128.checked_pow(u32::try_from(scale).ok()?)?)?
    } else {
        let divisor = 10i128
            .checked_pow(u32::try_from(-scale).ok()?)
            .unwrap_or(i128::MAX);
        (digits + divisor / 2) / divisor
    };
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_convert_exactly_to_nanoseconds() {
        let cases = [
            ("0", 0),
            ("540.1", 540_100),
            ("540.100", 540_100),
            ("\"540.1\"", 540_100),
            ("1712195495519695.8", 1_712_195_495_519_695_800),
            ("4458676522690.655", 4_458_676_522_690_655),
            ("1.5e3", 1_500_000),
            ("2E-3", 2),
            ("0.0004", 0),
            ("0.0005", 1),
            ("-0.0005", -1),
            ("-12.25", -12_250),
            (".5", 500),
            ("7.", 7_000),
            ("12.34567", 12_346),
        ];
        for (text, ns) in cases {
            assert_eq!(micros_to_ns(text), Some(ns), "{text}");
        }
    }

    #[test]
    fn non_numbers_and_overflow_are_rejected() {
        for text in [
            "",
            "\"\"",
            "abc",
            "1.2.3",
            "\"12",
            "1e",
            "-",
            ".",
            "1e400",
            "99999999999999999",
        ] {
            assert_eq!(micros_to_ns(text), None, "{text}");
        }
    }

    #[test]
    fn events_borrow_their_strings() {
        let json = r#"{"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": "stream 7",
            "ts": 12.5, "dur": "3", "args": {"stream": "7", "grid": [1, 2, 3], "x": [1]}}"#;
        let event: RawEvent = serde_json::from_str(json).unwrap();
        assert!(matches!(event.name.0, Some(Cow::Borrowed("gemm"))));
        assert_eq!(event.pid, Some(Id::Int(0)));
        assert_eq!(event.tid.unwrap().as_u32(), None);
        assert_eq!(event.ts.map(|t| micros_to_ns(t.get())), Some(Some(12_500)));
        assert_eq!(event.dur.map(|t| micros_to_ns(t.get())), Some(Some(3_000)));
        let args = event.args.unwrap();
        assert_eq!(args.stream.as_u32(), Some(7));
        assert_eq!(args.grid, Dim3([1, 2, 3]));
        assert_eq!(args.device.0, None);
    }

    #[test]
    fn lenient_values_absorb_odd_types() {
        let json = r#"{"name": 5, "stream": "0x10", "device": null, "context": [1],
            "grid": "big", "block": [4], "labels": {"a": 1}, "bytes": 1.5e3}"#;
        let args: Args = serde_json::from_str(json).unwrap();
        assert_eq!(args.name, Text(None));
        assert_eq!(args.labels, Text(None));
        assert_eq!(args.stream.as_u32(), Some(16));
        assert_eq!(args.device.as_u32(), None);
        assert_eq!(args.context.as_u32(), None);
        assert_eq!(args.grid, Dim3([0, 0, 0]));
        assert_eq!(args.block, Dim3([4, 0, 0]));
        assert_eq!(args.bytes.as_u64(), Some(1500));
        assert_eq!(Number::parse("-3").as_u64(), None);
        assert_eq!(Number::parse("-3").as_i64(), Some(-3));
    }

    #[test]
    fn numbers_past_64_bits_and_negative_zero_read_as_before() {
        let read = |json: &str| serde_json::from_str::<Number>(json).unwrap();
        for huge in [
            "\"99999999999999999999\"",
            "\"-99999999999999999999\"",
            "\"0x1ffffffffffffffff\"",
            "99999999999999999999",
        ] {
            let n = read(huge);
            assert_eq!(
                (n.as_u64(), n.as_i64(), n.micros_to_ns()),
                (None, None, None),
                "{huge}"
            );
        }
        for zero in ["\"-0\"", "-0", "\"0x0\""] {
            assert_eq!(
                (read(zero).as_u64(), read(zero).as_i64()),
                (Some(0), Some(0)),
                "{zero}"
            );
        }
        let max = read("\"18446744073709551615\"");
        assert_eq!((max.as_u64(), max.as_i64()), (Some(u64::MAX), None));
        assert_eq!(read("\"0x-10\"").as_i64(), Some(-16));
        assert_eq!(read("-9223372036854775808").as_i64(), Some(i64::MIN));
        assert_eq!(read("-9223372036854775808").micros_to_ns(), None);
        assert_eq!(
            read("9223372036854775").micros_to_ns(),
            Some(9_223_372_036_854_775_000)
        );
    }

    #[test]
    fn ids_accept_numbers_and_strings() {
        let ids: Vec<Id> =
            serde_json::from_str(r#"[4037, "4037", "Spans", -1, 5e9, 7.0]"#).unwrap();
        let as_u32: Vec<_> = ids.iter().map(Id::as_u32).collect();
        assert_eq!(as_u32, [Some(4037), Some(4037), None, None, None, Some(7)]);
        assert_eq!(ids[2].to_text(), "Spans");
    }
}
