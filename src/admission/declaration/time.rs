//! RFC 3339 date-times in UTC ([`Timestamp`]): the one parser and writer of
//! times in glasslog. Not here: clocks; callers pass Unix seconds in.

use std::fmt;
use std::str::FromStr;

use super::{invalid, shown, DeclarationError};

/// An RFC 3339 date-time in UTC, written `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
///
/// Only the `Z` spelling of UTC is accepted (not `+00:00`, not lowercase `z`
/// or `t`), as in-toto's `field_types.md` asks of timestamps; the fraction has
/// 1 to 9 digits; seconds run to 59 (no leap second). The text is kept as
/// written; [`Timestamp::unix_ms`] truncates the fraction to milliseconds.
/// Timestamps order by instant, then (for equal instants written
/// differently, `...00Z` and `...00.000Z`) by text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Timestamp {
    text: String,
    seconds: i64,
    nanos: u32,
}

impl Timestamp {
    /// The time as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Milliseconds since 1970-01-01T00:00:00Z, rounded towards the past.
    pub fn unix_ms(&self) -> i64 {
        self.seconds * 1000 + i64::from(self.nanos / 1_000_000)
    }

    /// Whole seconds since 1970-01-01T00:00:00Z and the nanoseconds after them.
    pub fn unix(&self) -> (i64, u32) {
        (self.seconds, self.nanos)
    }

    /// The instant `seconds` after 1970-01-01T00:00:00Z, written `YYYY-MM-DDThh:mm:ssZ`;
    /// `None` outside the years 0000 to 9999 that the format can write.
    pub fn from_unix_seconds(seconds: i64) -> Option<Timestamp> {
        let (days, rem) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let text = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        );
        Some(Timestamp {
            text,
            seconds,
            nanos: 0,
        })
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Timestamp) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Timestamp) -> std::cmp::Ordering {
        (self.unix(), &self.text).cmp(&(other.unix(), &other.text))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.text)
    }
}

impl FromStr for Timestamp {
    type Err = DeclarationError;

    fn from_str(s: &str) -> Result<Timestamp, DeclarationError> {
        let (seconds, nanos) = parse_time(s).map_err(|why| {
            invalid(
                "",
                format!("{} is not an RFC 3339 time in UTC: {why}", shown(s)),
            )
        })?;
        Ok(Timestamp {
            text: s.to_owned(),
            seconds,
            nanos,
        })
    }
}

/// The decimal number in `bytes[range]`, if it is all ASCII digits.
fn decimal(bytes: &[u8], range: std::ops::Range<usize>) -> Option<u32> {
    bytes.get(range)?.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Seconds and nanoseconds since the Unix epoch of a `...Z` RFC 3339 time.
fn parse_time(s: &str) -> Result<(i64, u32), String> {
    const SHAPE: &str = "write it as YYYY-MM-DDTHH:MM:SSZ, e.g. 2024-05-01T12:00:00Z, \
                         optionally with 1 to 9 fractional-second digits before the Z";
    let b = s.as_bytes();
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    let fields = [0..4, 5..7, 8..10, 11..13, 14..16, 17..19].map(|r| decimal(b, r));
    let shaped = separators.iter().all(|&(i, c)| b.get(i) == Some(&c));
    let [Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)] = fields
    else {
        return Err(SHAPE.into());
    };
    if !shaped {
        return Err(SHAPE.into());
    }
    let nanos = parse_fraction_and_zone(&s[19..])?;
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} does not exist"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(format!("day {day} does not exist in {year:04}-{month:02}"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!(
            "{hour:02}:{minute:02}:{second:02} is not a time of day (leap seconds are not accepted)"
        ));
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Ok((seconds, nanos))
}

/// Reads `[.fraction]Z` (the text after the seconds) as nanoseconds.
fn parse_fraction_and_zone(rest: &str) -> Result<u32, String> {
    let (fraction, zone) = match rest.strip_prefix('.') {
        Some(after) => {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            after.split_at(digits)
        }
        None => ("", rest),
    };
    if rest.starts_with('.') && !(1..=9).contains(&fraction.len()) {
        return Err(format!(
            "the fraction of a second has {} digits; write 1 to 9",
            fraction.len()
        ));
    }
    match zone {
        "Z" => {}
        "z" | "+00:00" | "-00:00" => {
            return Err(format!("write the UTC offset {} as \"Z\"", shown(zone)))
        }
        _ if zone.starts_with(['+', '-']) => {
            return Err(format!(
                "the offset {} is not UTC; convert the time to UTC and end it with \"Z\"",
                shown(zone)
            ))
        }
        _ => return Err("it must end with \"Z\" (UTC)".into()),
    }
    let scale = 10u32.pow(9 - fraction.len() as u32);
    Ok(decimal(fraction.as_bytes(), 0..fraction.len()).unwrap_or(0) * scale)
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant,
/// "chrono-Compatible Low-Level Date Algorithms", `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (the inverse of
/// [`days_from_civil`]; H. Hinnant, `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::declaration::tests::*;
    use serde_json::json;

    #[test]
    fn dates_from_day_counts_and_seconds() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for days in [-719_528, -1, 0, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let t = Timestamp::from_unix_seconds(1_780_000_000).unwrap();
        assert_eq!(t.as_str(), "2026-05-28T20:26:40Z");
        assert_eq!(t.as_str().parse::<Timestamp>().unwrap(), t);
        assert!(Timestamp::from_unix_seconds(253_402_300_800).is_none());
        assert!(Timestamp::from_unix_seconds(-62_167_219_201).is_none());
    }

    // ---- Times.

    #[test]
    fn good_times_and_their_instants() {
        let cases: [(&str, i64); 9] = [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-05-01T12:00:00Z", 1_714_564_800_000),
            ("2024-05-01T12:00:00.123456Z", 1_714_564_800_123),
            ("2024-05-01T12:00:00.9999999Z", 1_714_564_800_999),
            ("1969-12-31T23:59:59.999Z", -1),
            ("2024-02-29T00:00:00Z", 1_709_164_800_000),
            ("2000-02-29T23:59:59.9Z", 951_868_799_900),
            ("0000-01-01T00:00:00Z", -62_167_219_200_000),
            ("9999-12-31T23:59:59.999999999Z", 253_402_300_799_999),
        ];
        for (text, ms) in cases {
            let t: Timestamp = text.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((t.unix_ms(), t.as_str()), (ms, text));
            let v = set(base("model"), "/predicate/releaseTime", json!(text));
            assert_eq!(accepted(&v).release_time(), &t);
        }
        let early: Timestamp = "2024-05-01T12:00:00.0001Z".parse().unwrap();
        let late: Timestamp = "2024-05-01T12:00:00.0009Z".parse().unwrap();
        assert!(early < late);
        assert_eq!(early.unix_ms(), late.unix_ms());
    }

    const BAD_TIMES: &[(&str, &str)] = &[
        (
            "2024-05-01T12:00:00+00:00",
            "write the UTC offset \"+00:00\" as \"Z\"",
        ),
        ("2024-05-01T12:00:00-00:00", "as \"Z\""),
        ("2024-05-01T12:00:00z", "as \"Z\""),
        ("2024-05-01T14:00:00+02:00", "is not UTC"),
        ("2024-05-01T07:00:00-05:00", "is not UTC"),
        ("2024-05-01T12:00:00", "end with \"Z\""),
        ("2024-05-01T12:00:00Z ", "end with \"Z\""),
        ("2024-05-01T12:00:00ZZ", "end with \"Z\""),
        ("2024-05-01 12:00:00Z", "YYYY-MM-DDTHH:MM:SSZ"),
        ("2024-05-01t12:00:00Z", "YYYY-MM-DDTHH:MM:SSZ"),
        ("2024-05-01", "YYYY-MM-DDTHH:MM:SSZ"),
        ("2024-05-01T12:00Z", "YYYY-MM-DDTHH:MM:SSZ"),
        ("2024-5-01T12:00:00Z", "YYYY-MM-DDTHH:MM:SSZ"),
        (" 2024-05-01T12:00:00Z", "YYYY-MM-DDTHH:MM:SSZ"),
        ("+2024-05-01T12:00:00Z", "YYYY-MM-DDTHH:MM:SSZ"),
        ("\u{ff12}024-05-01T12:00:00Z", "YYYY-MM-DDTHH:MM:SSZ"),
        ("1714564800", "YYYY-MM-DDTHH:MM:SSZ"),
        ("", "YYYY-MM-DDTHH:MM:SSZ"),
        ("2024-13-01T00:00:00Z", "month 13 does not exist"),
        ("2024-00-10T00:00:00Z", "month 0 does not exist"),
        ("2023-02-29T00:00:00Z", "day 29 does not exist in 2023-02"),
        ("1900-02-29T00:00:00Z", "day 29 does not exist"),
        ("2024-04-31T00:00:00Z", "day 31 does not exist"),
        ("2024-01-00T00:00:00Z", "day 0 does not exist"),
        ("2024-05-01T24:00:00Z", "not a time of day"),
        ("2024-05-01T12:60:00Z", "not a time of day"),
        ("2016-12-31T23:59:60Z", "leap seconds"),
        ("2024-05-01T12:00:00.Z", "has 0 digits"),
        ("2024-05-01T12:00:00.1234567891Z", "has 10 digits"),
        ("2024-05-01T12:00:00,5Z", "end with \"Z\""),
    ];

    #[test]
    fn bad_times_are_refused() {
        let pointers = [
            ("model", "/predicate/releaseTime"),
            ("dataset", "/predicate/releaseTime"),
            ("dataset", "/predicate/sources/0/collectionPeriod/start"),
            ("private", "/predicate/sources/0/collectionPeriod/end"),
        ];
        for (bad, reason) in BAD_TIMES {
            let err = bad.parse::<Timestamp>().unwrap_err();
            assert!(
                err.to_string().contains("is not an RFC 3339 time in UTC"),
                "{err}"
            );
            assert!(err.to_string().contains(reason), "{bad:?}: {err}");
            for (example, pointer) in pointers {
                let v = set(base(example), pointer, json!(bad));
                refused(&v, &path_of(pointer), reason, bad);
            }
        }
    }

    #[test]
    fn collection_period_must_not_end_before_it_starts() {
        let period = "/predicate/sources/0/collectionPeriod";
        let cases = [
            ("2024-08-02T00:00:00Z", "2024-08-01T23:59:59Z", false),
            (
                "2024-08-02T00:00:00.0009Z",
                "2024-08-02T00:00:00.0001Z",
                false,
            ),
            ("2025-01-01T00:00:00Z", "2024-01-01T00:00:00Z", false),
            ("2024-08-02T00:00:00Z", "2024-08-02T00:00:00Z", true),
            ("2024-08-02T00:00:00Z", "2024-08-02T00:00:00.000Z", true),
            (
                "2024-08-02T00:00:00.0001Z",
                "2024-08-02T00:00:00.0009Z",
                true,
            ),
        ];
        for (start, end, ok) in cases {
            let v = set(base("dataset"), period, json!({"start": start, "end": end}));
            if ok {
                accepted(&v);
            } else {
                refused(
                    &v,
                    &path_of(&format!("{period}/end")),
                    "is before start",
                    start,
                );
            }
        }
    }
}
