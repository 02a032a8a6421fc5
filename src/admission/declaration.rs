//! Declarations: the in-toto statements a publisher logs about a model release
//! or a training dataset, and the rules a statement must satisfy to be logged.
//!
//! A declaration is an in-toto Statement v1
//! (<https://github.com/in-toto/attestation>, `spec/v1/statement.md`) carried
//! in a DSSE envelope whose `payloadType` is [`PAYLOAD_TYPE`]:
//!
//! ```json
//! {"_type": "https://in-toto.io/Statement/v1",
//!  "subject": [{"name": "org/model", "digest": {"sha256": "<64 hex>"}}],
//!  "predicateType": "https://glasslog.dev/model-release/v1",
//!  "predicate": {"name": "org/model", "version": "1.0", ...}}
//! ```
//!
//! There are two predicate types, [`MODEL_RELEASE`] ([`ModelRelease`]) and
//! [`TRAINING_DATA`] ([`TrainingData`]); `docs/declarations.md` is the field by
//! field reference that publishers in other languages implement against, and
//! this module is its executable form. In short:
//!
//! - The statement has exactly the four in-toto members, and exactly one
//!   subject: the model's or dataset's [`Name`] and root [`Digest`] (for a
//!   private dataset, a salted commitment to it, see [`commitment`]). The
//!   subject's `digest` must hold `sha256`; other algorithms may be present
//!   (in-toto `DigestSet`) and are ignored.
//! - Digests are 64 lowercase hex digits; times are RFC 3339 in UTC written
//!   with `Z` ([`Timestamp`], as in-toto's `field_types.md` asks); licenses are
//!   SPDX license expressions ([`LicenseExpression`], SPDX 2.3 Annex D / SPDX 3
//!   "License expressions"), checked for syntax only.
//! - A manifest ([`Manifest`], the OpenSSF Model Signing predicate body) is
//!   required for a model and optional for a dataset; when present, it lists
//!   at least one file and its root digest must equal the subject digest.
//! - Members of the predicate (at any depth) that this version does not define
//!   are accepted and ignored, except a member whose name equals a defined one
//!   up to letter case, which is refused: a case-insensitive decoder (Go's
//!   `encoding/json`) would read it as the defined field. (Inside the manifest,
//!   [`crate::admission::manifest`]'s rules apply.) Unknown members at the top of the
//!   predicate are kept in `extensions`; the statement and its subject admit
//!   no members beyond those in-toto defines.
//! - `null` is never the same as absent: an optional member is either absent
//!   or of its type; and no string member may be empty.
//!
//! Input goes through [`crate::admission::strict_json`], so duplicate and case-variant
//! keys are refused before any of the rules above are read. Every error names
//! the JSON path of the offending value ([`DeclarationError::path`]).
//!
//! What this module is not: it does not verify signatures ([`crate::admission::dsse`]),
//! check that referenced entries exist in the log (it lists them, see
//! [`Declaration::references`], for the server to check), check license
//! identifiers against the SPDX license list, or compute manifests from files
//! ([`crate::admission::manifest`]).

use std::fmt;
use std::str::FromStr;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use crate::admission::manifest::{Manifest, ManifestError};
use crate::admission::strict_json::{self, element_path, member_path, JsonError, Map, ROOT};

/// The DSSE `payloadType` of a declaration: an in-toto statement in JSON.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The in-toto Statement v1 `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// `predicateType` of a model release ([`ModelRelease`]).
pub const MODEL_RELEASE: &str = "https://glasslog.dev/model-release/v1";

/// `predicateType` of a training-data declaration ([`TrainingData`]).
pub const TRAINING_DATA: &str = "https://glasslog.dev/training-data/v1";

/// Longest accepted [`Name`], in characters (all ASCII).
pub const MAX_NAME_LEN: usize = 200;

/// Deepest accepted nesting of parentheses in a license expression.
pub const MAX_LICENSE_DEPTH: usize = 16;

/// Values longer than this many characters are shortened in error messages.
const MAX_SHOWN: usize = 64;

/// The members of an in-toto Statement v1; no others are accepted.
const STATEMENT_FIELDS: [&str; 4] = ["_type", "subject", "predicateType", "predicate"];

/// The members of an in-toto ResourceDescriptor, which a subject entry is.
/// Only `name` and `digest` are read.
const SUBJECT_FIELDS: [&str; 7] = [
    "name",
    "digest",
    "uri",
    "content",
    "downloadLocation",
    "mediaType",
    "annotations",
];

/// The digest algorithm every digest set must hold.
const SHA256: &str = "sha256";

/// Path of the predicate.
const PREDICATE: &str = "$.predicate";

/// Path of the subject's name, for messages.
const SUBJECT_NAME: &str = "$.subject[0].name";

/// Path of the subject's digest, for messages.
const SUBJECT_DIGEST: &str = "$.subject[0].digest.sha256";

const MODEL_FIELDS: [&str; 13] = [
    "name",
    "version",
    "releaseTime",
    "license",
    "manifest",
    "trainingData",
    "dataDisclosure",
    "baseModels",
    "supersedes",
    "supplier",
    "downloadLocation",
    "modelCard",
    "description",
];

const DATASET_FIELDS: [&str; 14] = [
    "name",
    "version",
    "releaseTime",
    "license",
    "sources",
    "processing",
    "personalData",
    "manifest",
    "supersedes",
    "knownLimitations",
    "intendedUse",
    "supplier",
    "downloadLocation",
    "description",
];

const TRAINING_REF_FIELDS: [&str; 4] = ["name", "digest", "role", "logIndex"];
const BASE_MODEL_FIELDS: [&str; 4] = ["name", "digest", "relation", "logIndex"];
const SUPERSEDES_FIELDS: [&str; 2] = ["logIndex", "digest"];
const MODEL_CARD_FIELDS: [&str; 2] = ["uri", "digest"];
const SOURCE_FIELDS: [&str; 5] = ["category", "name", "uri", "license", "collectionPeriod"];
const PERIOD_FIELDS: [&str; 2] = ["start", "end"];
const PERSONAL_DATA_FIELDS: [&str; 2] = ["containsPersonalData", "handling"];

/// Why a statement was refused.
///
/// Every variant but [`DeclarationError::PayloadType`] and some
/// [`DeclarationError::Json`] syntax errors names the JSON path of the
/// offending value, in [`crate::admission::strict_json`]'s path syntax.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeclarationError {
    /// The payload is not strict JSON, or a member is missing, of the wrong
    /// JSON type, or not allowed where it is.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The envelope's `payloadType` is not [`PAYLOAD_TYPE`].
    #[error(
        "envelope payloadType {found} is not \"{PAYLOAD_TYPE}\": a declaration is an in-toto \
         statement in JSON"
    )]
    PayloadType { found: String },
    /// `$.predicateType` is not one this log accepts; `allowed` lists those
    /// it does.
    #[error("$.predicateType {found} is not accepted by this log; accepted: {}", .allowed.join(", "))]
    PredicateType { found: String, allowed: Vec<String> },
    /// The value at `path` breaks a rule; `reason` says which, in words a
    /// publisher can act on. `path` is empty when a value was checked outside
    /// any document (e.g. `"a//b".parse::<Name>()`).
    #[error("{}", located(.path, .reason))]
    Invalid { path: String, reason: String },
}

fn located(path: &str, reason: &str) -> String {
    if path.is_empty() {
        reason.to_owned()
    } else {
        format!("{path}: {reason}")
    }
}

impl DeclarationError {
    /// The JSON path of the offending value, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            DeclarationError::Json(e) => json_error_path(e),
            DeclarationError::PayloadType { .. } => None,
            DeclarationError::PredicateType { .. } => Some("$.predicateType"),
            DeclarationError::Invalid { path, .. } => (!path.is_empty()).then_some(path.as_str()),
        }
    }

    /// The same error, located at `path` if it is a value error.
    fn at(self, path: &str) -> DeclarationError {
        match self {
            DeclarationError::Invalid { reason, .. } => invalid(path, reason),
            other => other,
        }
    }
}

fn json_error_path(error: &JsonError) -> Option<&str> {
    match error {
        JsonError::TooDeep { path }
        | JsonError::DuplicateKey { path, .. }
        | JsonError::MissingField { path }
        | JsonError::WrongType { path, .. }
        | JsonError::UnknownField { path } => Some(path),
        JsonError::NotUtf8 { .. } | JsonError::Syntax(_) | JsonError::TrailingData { .. } => None,
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> DeclarationError {
    DeclarationError::Invalid {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// `value` as a JSON string literal, shortened if long, for error messages.
fn shown(value: &str) -> String {
    let mut text: String = value.chars().take(MAX_SHOWN).collect();
    if text.len() < value.len() {
        text.push('…');
    }
    Value::String(text).to_string()
}

// ---------------------------------------------------------------------------
// Validated values.

/// The name of a model or dataset: 1 to [`MAX_NAME_LEN`] characters, segments
/// of `A-Z a-z 0-9 . _ -` joined by single `/`, no segment empty, `.` or `..`
/// (`org/model`, `org/family/model`). Case-sensitive: `Org/M` and `org/m` are
/// different names.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = DeclarationError;

    fn from_str(s: &str) -> Result<Name, DeclarationError> {
        check_name(s).map_err(|why| {
            invalid(
                "",
                format!(
                    "{} is not a valid name: {why} (a name is 1 to {MAX_NAME_LEN} characters: \
                     segments of A-Z a-z 0-9 . _ - joined by single '/')",
                    shown(s)
                ),
            )
        })?;
        Ok(Name(s.to_owned()))
    }
}

fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if let Some((i, c)) = s
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
    {
        return Err(format!(
            "character {} (U+{:04X}) at position {i} is not allowed",
            shown(&c.to_string()),
            c as u32
        ));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(format!("it is {} characters long", s.len()));
    }
    for (i, segment) in s.split('/').enumerate() {
        match segment {
            "" => return Err(format!("segment {i} is empty")),
            "." | ".." => return Err(format!("segment {i} is {}", shown(segment))),
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({:?})", self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A SHA-256 digest. Reads and displays as exactly 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }
}

impl FromStr for Digest {
    type Err = DeclarationError;

    fn from_str(s: &str) -> Result<Digest, DeclarationError> {
        let why = if s.len() != 64 {
            Some(format!("it has {} characters", s.chars().count()))
        } else if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Some("it has uppercase letters".into())
        } else {
            None
        };
        let mut bytes = [0u8; 32];
        let why = why.or_else(|| {
            hex::decode_to_slice(s, &mut bytes)
                .err()
                .map(|_| "it has characters that are not hex digits".into())
        });
        match why {
            None => Ok(Digest(bytes)),
            Some(why) => Err(invalid(
                "",
                format!(
                    "{} is not a SHA-256 digest: {why}; write exactly 64 lowercase hex digits",
                    shown(s)
                ),
            )),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// The salted commitment a private dataset logs as its subject digest:
/// `SHA-256(salt ‖ root)`, where `salt` is 32 secret random bytes and `root`
/// is the root digest of the dataset's manifest. Revealing `salt` and the
/// manifest later lets anyone check the commitment.
pub fn commitment(salt: &[u8; 32], root: &Digest) -> Digest {
    Digest(
        Sha256::new()
            .chain_update(salt)
            .chain_update(root.0)
            .finalize()
            .into(),
    )
}

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
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
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

/// An SPDX license expression (SPDX 2.3 Annex D; SPDX 3.0 "SimpleLicensing"),
/// checked for syntax, or `NOASSERTION` or `NONE` on its own.
///
/// Accepted: license ids (`MIT`, `Apache-2.0`, any case), `id+`,
/// `LicenseRef-x` and `DocumentRef-d:LicenseRef-x`, joined by `AND` and `OR`
/// (upper case; `AND` binds tighter), `WITH` an exception id or
/// `AdditionRef-x` after a simple license, and parentheses (at most
/// [`MAX_LICENSE_DEPTH`] deep). Tokens are separated by spaces. Ids are not
/// checked against the SPDX license list.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LicenseExpression(String);

impl LicenseExpression {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LicenseExpression {
    type Err = DeclarationError;

    fn from_str(s: &str) -> Result<LicenseExpression, DeclarationError> {
        check_license(s).map_err(|why| {
            invalid(
                "",
                format!("{} is not an SPDX license expression: {why}", shown(s)),
            )
        })?;
        Ok(LicenseExpression(s.to_owned()))
    }
}

impl fmt::Display for LicenseExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LicenseExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LicenseExpression({:?})", self.0)
    }
}

/// Special values that stand for a whole license expression.
const LICENSE_SPECIAL: [&str; 2] = ["NOASSERTION", "NONE"];

fn check_license(s: &str) -> Result<(), String> {
    if LICENSE_SPECIAL.contains(&s) {
        return Ok(());
    }
    if s.is_empty() {
        return Err("it is empty (write NOASSERTION if the license is unknown)".into());
    }
    if s.starts_with(' ') || s.ends_with(' ') {
        return Err("it starts or ends with a space".into());
    }
    let tokens = license_tokens(s)?;
    let mut parser = LicenseParser { tokens, next: 0 };
    parser.or_expression(0)?;
    match parser.peek() {
        None => Ok(()),
        Some("WITH") => Err("unexpected \"WITH\": a license takes at most one exception".into()),
        Some(op) if ["and", "or", "with"].contains(&op.to_ascii_lowercase().as_str()) => {
            Err(operand_error(Some(op), ""))
        }
        Some(token) => Err(format!(
            "unexpected {}: join licenses with AND or OR, and exceptions with WITH",
            shown(token)
        )),
    }
}

/// Splits an expression into `(`, `)` and words, refusing unexpected characters.
fn license_tokens(s: &str) -> Result<Vec<&str>, String> {
    let mut tokens = Vec::new();
    let mut word_start = None;
    for (i, c) in s.char_indices() {
        let word_char = c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+' | ':');
        if word_char {
            word_start.get_or_insert(i);
            continue;
        }
        if let Some(start) = word_start.take() {
            tokens.push(&s[start..i]);
        }
        match c {
            ' ' => {}
            '(' | ')' => tokens.push(&s[i..i + 1]),
            _ => {
                return Err(format!(
                    "character {} (U+{:04X}) is not allowed; license ids use A-Z a-z 0-9 - . \
                     and expressions use spaces, parentheses, AND, OR and WITH",
                    shown(&c.to_string()),
                    c as u32
                ))
            }
        }
    }
    if let Some(start) = word_start {
        tokens.push(&s[start..]);
    }
    Ok(tokens)
}

/// Recursive descent over the SPDX grammar, operators by precedence:
/// `WITH` binds tightest, then `AND`, then `OR`.
struct LicenseParser<'a> {
    tokens: Vec<&'a str>,
    next: usize,
}

impl<'a> LicenseParser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.next).copied()
    }

    fn take(&mut self) -> Option<&'a str> {
        let token = self.peek();
        self.next += 1;
        token
    }

    fn or_expression(&mut self, depth: usize) -> Result<(), String> {
        self.and_expression(depth)?;
        while self.peek() == Some("OR") {
            self.next += 1;
            self.and_expression(depth)?;
        }
        Ok(())
    }

    fn and_expression(&mut self, depth: usize) -> Result<(), String> {
        self.operand(depth)?;
        while self.peek() == Some("AND") {
            self.next += 1;
            self.operand(depth)?;
        }
        Ok(())
    }

    /// A parenthesised expression, or a simple expression with an optional
    /// `WITH` exception.
    fn operand(&mut self, depth: usize) -> Result<(), String> {
        let token = self.take();
        if token == Some("(") {
            if depth >= MAX_LICENSE_DEPTH {
                return Err(format!(
                    "parentheses are nested more than {MAX_LICENSE_DEPTH} deep"
                ));
            }
            self.or_expression(depth + 1)?;
            return match self.take() {
                Some(")") => self.refuse_with_after_parenthesis(),
                other => Err(operand_error(other, "\")\"")),
            };
        }
        check_simple_license(token)?;
        if self.peek() == Some("WITH") {
            self.next += 1;
            check_exception(self.take())?;
        }
        Ok(())
    }

    fn refuse_with_after_parenthesis(&self) -> Result<(), String> {
        match self.peek() {
            Some("WITH") => Err("WITH must follow a single license, not a parenthesis".into()),
            _ => Ok(()),
        }
    }
}

/// An `idstring` (SPDX: `1*(ALPHA / DIGIT / "-" / ".")`).
fn is_idstring(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `prefix-idstring`, optionally after `DocumentRef-idstring:`.
fn is_reference(word: &str, prefix: &str) -> bool {
    let local = match word.strip_prefix("DocumentRef-") {
        Some(rest) => match rest.split_once(':') {
            Some((document, local)) if is_idstring(document) => local,
            _ => return false,
        },
        None => word,
    };
    local.strip_prefix(prefix).is_some_and(is_idstring)
}

fn operand_error(token: Option<&str>, wanted: &str) -> String {
    match token {
        Some(op @ ("AND" | "OR" | "WITH" | ")")) => {
            format!("expected {wanted}, found {}", shown(op))
        }
        Some(op) if ["and", "or", "with"].contains(&op.to_ascii_lowercase().as_str()) => {
            format!(
                "operators are upper case: write {}",
                op.to_ascii_uppercase()
            )
        }
        Some(special) if LICENSE_SPECIAL.contains(&special) => {
            format!("{special} must be the whole expression, not part of one")
        }
        None => format!("expected {wanted}, found the end of the expression"),
        Some(word) => format!("{} is not {wanted}", shown(word)),
    }
}

/// `license-id`, `license-id+` or a `LicenseRef`.
fn check_simple_license(token: Option<&str>) -> Result<(), String> {
    const WANTED: &str = "a license id or LicenseRef-...";
    let word = match token {
        Some(w) if !["AND", "OR", "WITH", "(", ")"].contains(&w) => w,
        _ => return Err(operand_error(token, WANTED)),
    };
    let is_operator_typo = ["and", "or", "with"].contains(&word.to_ascii_lowercase().as_str());
    if is_operator_typo || LICENSE_SPECIAL.contains(&word) {
        return Err(operand_error(token, WANTED));
    }
    let plain = word.strip_suffix('+').unwrap_or(word);
    let ok = if word.contains("LicenseRef-") {
        is_reference(word, "LicenseRef-")
    } else {
        is_idstring(plain) && !plain.starts_with("DocumentRef-")
    };
    if ok {
        Ok(())
    } else {
        Err(operand_error(token, WANTED))
    }
}

/// An exception id or an `AdditionRef` after `WITH`.
fn check_exception(token: Option<&str>) -> Result<(), String> {
    const WANTED: &str = "an exception id or AdditionRef-... after WITH";
    let ok = match token {
        Some(w) if w.contains("AdditionRef-") || w.starts_with("DocumentRef-") => {
            is_reference(w, "AdditionRef-")
        }
        Some(w) => is_idstring(w) && !["AND", "OR", "WITH"].contains(&w),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(operand_error(token, WANTED))
    }
}

/// An absolute URI: a scheme (RFC 3986 section 3.1) then `:` and at least
/// one more character, with no whitespace or control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Uri(String);

impl Uri {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Uri {
    type Err = DeclarationError;

    fn from_str(s: &str) -> Result<Uri, DeclarationError> {
        let scheme_ok = s.split_once(':').is_some_and(|(scheme, rest)| {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !rest.is_empty()
        });
        let why = if !scheme_ok {
            "it does not start with a scheme such as https:"
        } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            "it contains whitespace or control characters (percent-encode them)"
        } else {
            return Ok(Uri(s.to_owned()));
        };
        Err(invalid(
            "",
            format!("{} is not an absolute URI: {why}", shown(s)),
        ))
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uri({:?})", self.0)
    }
}

/// An enumeration written in JSON as one of a fixed set of strings.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the documentation lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The value as written in JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = DeclarationError;

            fn from_str(s: &str) -> Result<$name, DeclarationError> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let allowed: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    invalid("", format!("{} is not one of {}", shown(s), allowed.join(", ")))
                })
            }
        }
    };
}

string_enum! {
    /// What a declaration, or a reference, is about.
    Kind {
        /// A model release ([`MODEL_RELEASE`]).
        Model = "model",
        /// A training dataset ([`TRAINING_DATA`]).
        Dataset = "dataset",
    }
}

impl Kind {
    /// The predicate type of declarations of this kind.
    pub fn predicate_type(self) -> &'static str {
        match self {
            Kind::Model => MODEL_RELEASE,
            Kind::Dataset => TRAINING_DATA,
        }
    }
}

string_enum! {
    /// How a model used a training dataset (`trainingData[].role`).
    Role {
        Pretraining = "pretraining",
        Finetuning = "finetuning",
        Evaluation = "evaluation",
    }
}

string_enum! {
    /// How a model derives from a base model (`baseModels[].relation`; the
    /// values of Hugging Face's `base_model_relation`, plus `distill`).
    Relation {
        Finetune = "finetune",
        Adapter = "adapter",
        Quantized = "quantized",
        Merge = "merge",
        Distill = "distill",
    }
}

string_enum! {
    /// How much of a model's training data `trainingData` lists.
    DataDisclosure {
        /// Every training dataset is listed (the default).
        Full = "full",
        /// Some training datasets are listed.
        Partial = "partial",
        /// The model was trained on data that is not listed.
        Withheld = "withheld",
        /// The publisher declares no training data (e.g. a quantisation
        /// whose data is that of its base model).
        None = "none",
    }
}

string_enum! {
    /// Where data in a dataset came from (`sources[].category`), after the
    /// source types of the EU AI Act's template for the public summary of
    /// training content.
    SourceCategory {
        PublicDataset = "publicDataset",
        LicensedThirdParty = "licensedThirdParty",
        WebCrawl = "webCrawl",
        UserData = "userData",
        Synthetic = "synthetic",
        Other = "other",
    }
}

string_enum! {
    /// Whether a dataset contains personal data.
    PersonalDataPresence {
        Yes = "yes",
        No = "no",
        Unknown = "unknown",
    }
}

// ---------------------------------------------------------------------------
// Declarations.

/// A `trainingData` entry: a training-data declaration the model was trained
/// or evaluated on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingDataRef {
    /// The dataset's name, as in its declaration.
    pub name: Name,
    /// The dataset declaration's subject digest.
    pub digest: Digest,
    pub role: Role,
    /// The log index of the dataset's declaration, if the publisher knows it.
    pub log_index: Option<u64>,
}

/// A `baseModels` entry: a model release this model derives from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseModel {
    pub name: Name,
    /// The base model release's subject digest.
    pub digest: Digest,
    pub relation: Relation,
    pub log_index: Option<u64>,
}

/// `supersedes`: the earlier declaration, of the same kind and name, that
/// this one replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supersedes {
    pub log_index: u64,
    /// The superseded declaration's subject digest.
    pub digest: Digest,
}

/// `modelCard`: where the model card is and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelCard {
    pub uri: Uri,
    pub digest: Digest,
}

/// `collectionPeriod`: when a source's data was collected; `start <= end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionPeriod {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A `sources` entry of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub category: SourceCategory,
    /// Free text naming the source (not a [`Name`]: sources need not be logged).
    pub name: String,
    pub uri: Option<Uri>,
    pub license: Option<LicenseExpression>,
    pub collection_period: Option<CollectionPeriod>,
}

/// `personalData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalData {
    /// `containsPersonalData`.
    pub contains: PersonalDataPresence,
    /// How personal data was handled (e.g. filtered, pseudonymised), or why
    /// there is none.
    pub handling: String,
}

/// A model release ([`MODEL_RELEASE`]).
///
/// Built by [`parse_statement`], or by a publisher and written with
/// [`ModelRelease::to_statement_json`]. The field types enforce the value
/// rules; the rules that relate fields (the manifest's root digest equals
/// `digest`, `training_data` is non-empty unless disclosure is withheld or
/// none) are checked by [`ModelRelease::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRelease {
    /// Subject name and `predicate.name`.
    pub name: Name,
    /// Subject digest: the manifest's root digest.
    pub digest: Digest,
    pub version: String,
    pub release_time: Timestamp,
    pub license: LicenseExpression,
    pub manifest: Manifest,
    pub training_data: Vec<TrainingDataRef>,
    pub data_disclosure: DataDisclosure,
    /// Absent and empty are the same.
    pub base_models: Vec<BaseModel>,
    pub supersedes: Option<Supersedes>,
    pub supplier: Option<String>,
    pub download_location: Option<Uri>,
    pub model_card: Option<ModelCard>,
    pub description: Option<String>,
    /// Predicate members this version does not define, kept as sent.
    pub extensions: Map,
}

/// A training-data declaration ([`TRAINING_DATA`]).
///
/// As for [`ModelRelease`], field types enforce the value rules and
/// [`TrainingData::validate`] the rules that relate fields.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingData {
    /// Subject name and `predicate.name`.
    pub name: Name,
    /// Subject digest: the manifest's root digest, or for private data a
    /// [`commitment`] to it.
    pub digest: Digest,
    pub version: String,
    pub release_time: Timestamp,
    pub license: LicenseExpression,
    /// At least one.
    pub sources: Vec<Source>,
    pub processing: String,
    pub personal_data: PersonalData,
    /// Absent for private data (the subject digest is then a commitment).
    pub manifest: Option<Manifest>,
    pub supersedes: Option<Supersedes>,
    pub known_limitations: Option<String>,
    pub intended_use: Option<String>,
    pub supplier: Option<String>,
    pub download_location: Option<Uri>,
    pub description: Option<String>,
    /// Predicate members this version does not define, kept as sent.
    pub extensions: Map,
}

/// A validated declaration.
#[derive(Clone, Debug, PartialEq)]
pub enum Declaration {
    Model(ModelRelease),
    Dataset(TrainingData),
}

/// Something a declaration points at in the log, for the server to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// JSON path of the referring object, e.g. `$.predicate.trainingData[2]`.
    pub field: String,
    /// What the referenced entry must be.
    pub kind: Kind,
    /// The name the referenced entry must have, when the reference gives one.
    pub name: Option<Name>,
    /// The referenced declaration's subject digest.
    pub digest: Digest,
    pub log_index: Option<u64>,
    /// The referenced entry must have the referring declaration's name
    /// (`supersedes`).
    pub same_name_required: bool,
}

impl Declaration {
    pub fn kind(&self) -> Kind {
        match self {
            Declaration::Model(_) => Kind::Model,
            Declaration::Dataset(_) => Kind::Dataset,
        }
    }

    pub fn name(&self) -> &Name {
        match self {
            Declaration::Model(m) => &m.name,
            Declaration::Dataset(d) => &d.name,
        }
    }

    pub fn version(&self) -> &str {
        match self {
            Declaration::Model(m) => &m.version,
            Declaration::Dataset(d) => &d.version,
        }
    }

    pub fn subject_digest(&self) -> &Digest {
        match self {
            Declaration::Model(m) => &m.digest,
            Declaration::Dataset(d) => &d.digest,
        }
    }

    pub fn release_time(&self) -> &Timestamp {
        match self {
            Declaration::Model(m) => &m.release_time,
            Declaration::Dataset(d) => &d.release_time,
        }
    }

    pub fn license(&self) -> &LicenseExpression {
        match self {
            Declaration::Model(m) => &m.license,
            Declaration::Dataset(d) => &d.license,
        }
    }

    pub fn manifest(&self) -> Option<&Manifest> {
        match self {
            Declaration::Model(m) => Some(&m.manifest),
            Declaration::Dataset(d) => d.manifest.as_ref(),
        }
    }

    pub fn supersedes(&self) -> Option<&Supersedes> {
        match self {
            Declaration::Model(m) => m.supersedes.as_ref(),
            Declaration::Dataset(d) => d.supersedes.as_ref(),
        }
    }

    /// Every entry this declaration points at: `trainingData` and
    /// `baseModels` entries, then `supersedes`.
    pub fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        if let Declaration::Model(m) = self {
            references.extend(m.training_data.iter().enumerate().map(|(i, t)| Reference {
                field: element_path("$.predicate.trainingData", i),
                kind: Kind::Dataset,
                name: Some(t.name.clone()),
                digest: t.digest,
                log_index: t.log_index,
                same_name_required: false,
            }));
            references.extend(m.base_models.iter().enumerate().map(|(i, b)| Reference {
                field: element_path("$.predicate.baseModels", i),
                kind: Kind::Model,
                name: Some(b.name.clone()),
                digest: b.digest,
                log_index: b.log_index,
                same_name_required: false,
            }));
        }
        references.extend(self.supersedes().map(|s| Reference {
            field: "$.predicate.supersedes".into(),
            kind: self.kind(),
            name: None,
            digest: s.digest,
            log_index: Some(s.log_index),
            same_name_required: true,
        }));
        references
    }

    /// The digest of every file the manifest lists (none without a manifest).
    pub fn file_digests(&self) -> Vec<Digest> {
        self.manifest()
            .map(manifest_file_digests)
            .unwrap_or_default()
    }

    /// The subject digests of the datasets in `trainingData` (none for a dataset).
    pub fn trained_on(&self) -> Vec<Digest> {
        match self {
            Declaration::Model(m) => m.training_data.iter().map(|t| t.digest).collect(),
            Declaration::Dataset(_) => Vec::new(),
        }
    }

    /// The statement as canonical JSON; see [`ModelRelease::to_statement_json`].
    pub fn to_statement_json(&self) -> Vec<u8> {
        match self {
            Declaration::Model(m) => m.to_statement_json(),
            Declaration::Dataset(d) => d.to_statement_json(),
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing.

/// Reads a statement that must be a declaration: strict JSON, an in-toto
/// Statement v1 whose `predicateType` is [`MODEL_RELEASE`] or
/// [`TRAINING_DATA`], satisfying every rule of its predicate.
pub fn parse_statement(payload: &[u8]) -> Result<Declaration, DeclarationError> {
    let root = strict_json::parse(payload)?;
    let (top, predicate_type) = read_header(&root)?;
    let kind = declaration_kind(predicate_type).ok_or_else(|| unsupported(predicate_type, &[]))?;
    read_declaration(top, kind)
}

/// Checks the payload of a DSSE envelope submitted to the log.
///
/// The `payload_type` must be [`PAYLOAD_TYPE`] and the payload an in-toto
/// Statement v1 (strict JSON, only the four Statement members, `_type`
/// [`STATEMENT_TYPE`], a string `predicateType`). Then:
/// a declaration predicate type is read and checked as by [`parse_statement`];
/// a predicate type in `extra_types` (other statements the operator accepts)
/// is accepted as is, `Ok(None)`; any other predicate type is refused, the
/// error naming the accepted ones. The declaration types take precedence
/// over `extra_types`.
pub fn validate_envelope_payload(
    payload_type: &str,
    payload: &[u8],
    extra_types: &[String],
) -> Result<Option<Declaration>, DeclarationError> {
    if payload_type != PAYLOAD_TYPE {
        return Err(DeclarationError::PayloadType {
            found: shown(payload_type),
        });
    }
    let root = strict_json::parse(payload)?;
    let (top, predicate_type) = read_header(&root)?;
    match declaration_kind(predicate_type) {
        Some(kind) => read_declaration(top, kind).map(Some),
        None if extra_types.iter().any(|t| t == predicate_type) => Ok(None),
        None => Err(unsupported(predicate_type, extra_types)),
    }
}

/// The statement layer: the Statement's members, its `_type`, and its
/// `predicateType`, which is returned with the top-level object.
fn read_header(root: &Value) -> Result<(&Map, &str), DeclarationError> {
    let top = strict_json::object(root, ROOT)?;
    strict_json::deny_unknown_fields(top, &STATEMENT_FIELDS, ROOT)?;
    let statement_type = strict_json::require_str(top, "_type", ROOT)?;
    if statement_type != STATEMENT_TYPE {
        return Err(invalid(
            "$._type",
            format!(
                "{} is not \"{STATEMENT_TYPE}\" (an in-toto Statement v1)",
                shown(statement_type)
            ),
        ));
    }
    let predicate_type = strict_json::require_str(top, "predicateType", ROOT)?;
    Ok((top, predicate_type))
}

fn declaration_kind(predicate_type: &str) -> Option<Kind> {
    Kind::ALL
        .iter()
        .copied()
        .find(|kind| kind.predicate_type() == predicate_type)
}

fn unsupported(predicate_type: &str, extra_types: &[String]) -> DeclarationError {
    let mut allowed: Vec<String> = Kind::ALL
        .iter()
        .map(|kind| kind.predicate_type().to_owned())
        .collect();
    for extra in extra_types {
        if !allowed.contains(extra) {
            allowed.push(extra.clone());
        }
    }
    DeclarationError::PredicateType {
        found: shown(predicate_type),
        allowed,
    }
}

fn read_declaration(top: &Map, kind: Kind) -> Result<Declaration, DeclarationError> {
    let subject = read_subject(top, kind)?;
    let predicate = strict_json::require_object(top, "predicate", ROOT)?;
    Ok(match kind {
        Kind::Model => Declaration::Model(read_model(subject, predicate)?),
        Kind::Dataset => Declaration::Dataset(read_dataset(subject, predicate)?),
    })
}

/// The one subject of a declaration.
struct Subject {
    name: Name,
    digest: Digest,
}

fn read_subject(top: &Map, kind: Kind) -> Result<Subject, DeclarationError> {
    let entries = strict_json::require_array(top, "subject", ROOT)?;
    if entries.len() != 1 {
        return Err(invalid(
            "$.subject",
            format!(
                "has {} entries; a declaration has exactly one subject: the {kind}'s name and \
                 root digest",
                entries.len()
            ),
        ));
    }
    let path = "$.subject[0]";
    let entry = strict_json::object(&entries[0], path)?;
    strict_json::deny_unknown_fields(entry, &SUBJECT_FIELDS, path)?;
    Ok(Subject {
        name: parsed(entry, "name", path)?,
        digest: digest_set(entry, path)?,
    })
}

fn read_model(subject: Subject, p: &Map) -> Result<ModelRelease, DeclarationError> {
    check_case_variants(p, &MODEL_FIELDS, PREDICATE)?;
    let name = predicate_name(p, subject.name)?;
    let version = text(p, "version", PREDICATE)?;
    let release_time = parsed(p, "releaseTime", PREDICATE)?;
    let license = parsed(p, "license", PREDICATE)?;
    let manifest_value = strict_json::require(p, "manifest", PREDICATE)?;
    let manifest = read_manifest(manifest_value, &subject.digest)?;
    let data_disclosure =
        optional_parsed(p, "dataDisclosure", PREDICATE)?.unwrap_or(DataDisclosure::Full);
    let training_data = list(p, "trainingData", PREDICATE, read_training_ref)?;
    check_disclosure(data_disclosure, training_data.len())?;
    Ok(ModelRelease {
        name,
        digest: subject.digest,
        version,
        release_time,
        license,
        manifest,
        training_data,
        data_disclosure,
        base_models: list(p, "baseModels", PREDICATE, read_base_model)?,
        supersedes: optional_object(p, "supersedes", PREDICATE, read_supersedes)?,
        supplier: optional_text(p, "supplier", PREDICATE)?,
        download_location: optional_parsed(p, "downloadLocation", PREDICATE)?,
        model_card: optional_object(p, "modelCard", PREDICATE, read_model_card)?,
        description: optional_text(p, "description", PREDICATE)?,
        extensions: unknown_members(p, &MODEL_FIELDS),
    })
}

fn read_dataset(subject: Subject, p: &Map) -> Result<TrainingData, DeclarationError> {
    check_case_variants(p, &DATASET_FIELDS, PREDICATE)?;
    let name = predicate_name(p, subject.name)?;
    let version = text(p, "version", PREDICATE)?;
    let release_time = parsed(p, "releaseTime", PREDICATE)?;
    let license = parsed(p, "license", PREDICATE)?;
    strict_json::require(p, "sources", PREDICATE)?;
    let sources = list(p, "sources", PREDICATE, read_source)?;
    if sources.is_empty() {
        return Err(invalid(
            "$.predicate.sources",
            "is empty; list at least one source of the data",
        ));
    }
    let processing = text(p, "processing", PREDICATE)?;
    let personal_data = required_object(p, "personalData", PREDICATE, read_personal_data)?;
    let manifest = p
        .get("manifest")
        .map(|value| read_manifest(value, &subject.digest))
        .transpose()?;
    Ok(TrainingData {
        name,
        digest: subject.digest,
        version,
        release_time,
        license,
        sources,
        processing,
        personal_data,
        manifest,
        supersedes: optional_object(p, "supersedes", PREDICATE, read_supersedes)?,
        known_limitations: optional_text(p, "knownLimitations", PREDICATE)?,
        intended_use: optional_text(p, "intendedUse", PREDICATE)?,
        supplier: optional_text(p, "supplier", PREDICATE)?,
        download_location: optional_parsed(p, "downloadLocation", PREDICATE)?,
        description: optional_text(p, "description", PREDICATE)?,
        extensions: unknown_members(p, &DATASET_FIELDS),
    })
}

/// `predicate.name`, which must equal the subject's name.
fn predicate_name(p: &Map, subject: Name) -> Result<Name, DeclarationError> {
    let name: Name = parsed(p, "name", PREDICATE)?;
    if name != subject {
        return Err(invalid(
            "$.predicate.name",
            format!(
                "{} differs from {SUBJECT_NAME} {}; the two must be equal",
                shown(name.as_str()),
                shown(subject.as_str())
            ),
        ));
    }
    Ok(name)
}

fn read_manifest(value: &Value, subject: &Digest) -> Result<Manifest, DeclarationError> {
    let path = "$.predicate.manifest";
    let manifest = Manifest::from_json_value(value, path).map_err(manifest_error)?;
    if manifest.is_empty() {
        return Err(invalid(
            &member_path(path, "resources"),
            "is empty; a manifest must list at least one file",
        ));
    }
    let root = Digest(manifest.root_digest());
    if root != *subject {
        return Err(invalid(
            path,
            format!(
                "the manifest's root digest is {root} but {SUBJECT_DIGEST} is {subject}; they \
                 must be equal (the subject is the root digest of the files the manifest lists)"
            ),
        ));
    }
    Ok(manifest)
}

/// A manifest error as a declaration error; reading JSON yields only the
/// first two kinds.
fn manifest_error(error: ManifestError) -> DeclarationError {
    match error {
        ManifestError::Json(e) => DeclarationError::Json(e),
        ManifestError::Invalid { path, reason } => DeclarationError::Invalid { path, reason },
        other => invalid("$.predicate.manifest", other.to_string()),
    }
}

fn manifest_json(manifest: &Manifest) -> Value {
    manifest.to_json_value()
}

fn manifest_file_digests(manifest: &Manifest) -> Vec<Digest> {
    manifest
        .resources
        .iter()
        .map(|r| Digest(r.digest))
        .collect()
}

fn check_disclosure(disclosure: DataDisclosure, listed: usize) -> Result<(), DeclarationError> {
    match disclosure {
        DataDisclosure::Full | DataDisclosure::Partial if listed == 0 => Err(invalid(
            "$.predicate.trainingData",
            format!(
                "is empty or absent but dataDisclosure is \"{disclosure}\"{}; list the \
                 training-data declarations, or set dataDisclosure to \"withheld\" or \"none\"",
                if disclosure == DataDisclosure::Full {
                    " (the default)"
                } else {
                    ""
                }
            ),
        )),
        DataDisclosure::Withheld | DataDisclosure::None if listed > 0 => Err(invalid(
            "$.predicate.dataDisclosure",
            format!(
                "is \"{disclosure}\" but trainingData lists {listed} dataset(s); use \"partial\" \
                 or \"full\" when any are listed"
            ),
        )),
        _ => Ok(()),
    }
}

fn read_training_ref(entry: &Map, path: &str) -> Result<TrainingDataRef, DeclarationError> {
    check_case_variants(entry, &TRAINING_REF_FIELDS, path)?;
    Ok(TrainingDataRef {
        name: parsed(entry, "name", path)?,
        digest: digest_set(entry, path)?,
        role: parsed(entry, "role", path)?,
        log_index: optional_log_index(entry, path)?,
    })
}

fn read_base_model(entry: &Map, path: &str) -> Result<BaseModel, DeclarationError> {
    check_case_variants(entry, &BASE_MODEL_FIELDS, path)?;
    Ok(BaseModel {
        name: parsed(entry, "name", path)?,
        digest: digest_set(entry, path)?,
        relation: parsed(entry, "relation", path)?,
        log_index: optional_log_index(entry, path)?,
    })
}

fn read_supersedes(entry: &Map, path: &str) -> Result<Supersedes, DeclarationError> {
    check_case_variants(entry, &SUPERSEDES_FIELDS, path)?;
    let value = strict_json::require(entry, "logIndex", path)?;
    Ok(Supersedes {
        log_index: log_index(value, &member_path(path, "logIndex"))?,
        digest: digest_set(entry, path)?,
    })
}

fn read_model_card(entry: &Map, path: &str) -> Result<ModelCard, DeclarationError> {
    check_case_variants(entry, &MODEL_CARD_FIELDS, path)?;
    Ok(ModelCard {
        uri: parsed(entry, "uri", path)?,
        digest: digest_set(entry, path)?,
    })
}

fn read_source(entry: &Map, path: &str) -> Result<Source, DeclarationError> {
    check_case_variants(entry, &SOURCE_FIELDS, path)?;
    Ok(Source {
        category: parsed(entry, "category", path)?,
        name: text(entry, "name", path)?,
        uri: optional_parsed(entry, "uri", path)?,
        license: optional_parsed(entry, "license", path)?,
        collection_period: optional_object(entry, "collectionPeriod", path, read_period)?,
    })
}

fn read_period(entry: &Map, path: &str) -> Result<CollectionPeriod, DeclarationError> {
    check_case_variants(entry, &PERIOD_FIELDS, path)?;
    let start: Timestamp = parsed(entry, "start", path)?;
    let end: Timestamp = parsed(entry, "end", path)?;
    if start.unix() > end.unix() {
        return Err(invalid(
            &member_path(path, "end"),
            format!("{end} is before start {start}; the period must end at or after its start"),
        ));
    }
    Ok(CollectionPeriod { start, end })
}

fn read_personal_data(entry: &Map, path: &str) -> Result<PersonalData, DeclarationError> {
    check_case_variants(entry, &PERSONAL_DATA_FIELDS, path)?;
    Ok(PersonalData {
        contains: parsed(entry, "containsPersonalData", path)?,
        handling: text(entry, "handling", path)?,
    })
}

// ---------------------------------------------------------------------------
// Typed member access, every error located.

/// Letter case is folded as [`crate::admission::strict_json`] folds duplicate keys.
fn fold_case(key: &str) -> String {
    key.to_lowercase().to_uppercase().to_lowercase()
}

/// Refuses a member of `map` that is not in `known` but equals one of `known`
/// up to letter case. Other unknown members are allowed.
fn check_case_variants(map: &Map, known: &[&str], path: &str) -> Result<(), DeclarationError> {
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        let folded = fold_case(key);
        if let Some(field) = known.iter().find(|k| fold_case(k) == folded) {
            return Err(invalid(
                &member_path(path, key),
                format!(
                    "differs from the field \"{field}\" only in letter case; field names are \
                     case-sensitive"
                ),
            ));
        }
    }
    Ok(())
}

/// The members of `map` not in `known`.
fn unknown_members(map: &Map, known: &[&str]) -> Map {
    map.iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `value` (at `path`) if it is not empty; `advice` says what to do if it is.
fn non_empty(value: &str, path: &str, advice: &str) -> Result<String, DeclarationError> {
    if value.is_empty() {
        return Err(invalid(path, format!("is empty; {advice}")));
    }
    Ok(value.to_owned())
}

/// Required non-empty string member `key` of `map` (at `path`).
fn text(map: &Map, key: &str, path: &str) -> Result<String, DeclarationError> {
    let value = strict_json::require_str(map, key, path)?;
    non_empty(
        value,
        &member_path(path, key),
        "this field is required and needs a value",
    )
}

/// Optional non-empty string member.
fn optional_text(map: &Map, key: &str, path: &str) -> Result<Option<String>, DeclarationError> {
    strict_json::optional_str(map, key, path)?
        .map(|value| {
            non_empty(
                value,
                &member_path(path, key),
                "give a value or leave it out",
            )
        })
        .transpose()
}

/// Required string member read with `T::from_str`.
fn parsed<T>(map: &Map, key: &str, path: &str) -> Result<T, DeclarationError>
where
    T: FromStr<Err = DeclarationError>,
{
    let value = strict_json::require_str(map, key, path)?;
    value
        .parse()
        .map_err(|e: DeclarationError| e.at(&member_path(path, key)))
}

/// Optional string member read with `T::from_str`.
fn optional_parsed<T>(map: &Map, key: &str, path: &str) -> Result<Option<T>, DeclarationError>
where
    T: FromStr<Err = DeclarationError>,
{
    if !map.contains_key(key) {
        return Ok(None);
    }
    parsed(map, key, path).map(Some)
}

/// A log index: a JSON integer from 0 to 2^64 - 1.
fn log_index(value: &Value, path: &str) -> Result<u64, DeclarationError> {
    match value {
        Value::Number(n) => n.as_u64().ok_or_else(|| {
            invalid(
                path,
                format!("{n} is not a log index; write a non-negative integer without a fraction or exponent"),
            )
        }),
        _ => Err(strict_json::JsonError::WrongType {
            path: path.to_owned(),
            expected: "a non-negative integer",
            found: json_type(value),
        }
        .into()),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn optional_log_index(map: &Map, path: &str) -> Result<Option<u64>, DeclarationError> {
    map.get("logIndex")
        .map(|value| log_index(value, &member_path(path, "logIndex")))
        .transpose()
}

/// Member `digest` of `map` (at `path`): an in-toto DigestSet that must hold
/// `sha256`; other algorithms must be strings and are ignored.
fn digest_set(map: &Map, path: &str) -> Result<Digest, DeclarationError> {
    let set_path = member_path(path, "digest");
    let set = strict_json::require_object(map, "digest", path)?;
    check_case_variants(set, &[SHA256], &set_path)?;
    for (algorithm, value) in set.iter().filter(|(k, _)| *k != SHA256) {
        strict_json::string(value, &member_path(&set_path, algorithm))?;
    }
    parsed(set, SHA256, &set_path)
}

/// The array member `key` of `map` (absent reads as empty), each element an
/// object read by `read` with its path.
fn list<T>(
    map: &Map,
    key: &str,
    path: &str,
    read: impl Fn(&Map, &str) -> Result<T, DeclarationError>,
) -> Result<Vec<T>, DeclarationError> {
    let Some(value) = map.get(key) else {
        return Ok(Vec::new());
    };
    let list_path = member_path(path, key);
    let items = strict_json::array(value, &list_path)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item_path = element_path(&list_path, i);
            read(strict_json::object(item, &item_path)?, &item_path)
        })
        .collect()
}

fn required_object<T>(
    map: &Map,
    key: &str,
    path: &str,
    read: impl Fn(&Map, &str) -> Result<T, DeclarationError>,
) -> Result<T, DeclarationError> {
    let object = strict_json::require_object(map, key, path)?;
    read(object, &member_path(path, key))
}

fn optional_object<T>(
    map: &Map,
    key: &str,
    path: &str,
    read: impl Fn(&Map, &str) -> Result<T, DeclarationError>,
) -> Result<Option<T>, DeclarationError> {
    if !map.contains_key(key) {
        return Ok(None);
    }
    required_object(map, key, path, read).map(Some)
}

// ---------------------------------------------------------------------------
// Writing.

impl ModelRelease {
    /// The in-toto statement of this release, as canonical JSON: object keys
    /// sorted, two-space indentation, optional members absent when `None` or
    /// empty (`trainingData` and `dataDisclosure` always written), and
    /// `extensions` merged into the predicate (a defined field wins over an
    /// extension of the same name). [`parse_statement`] reads it back to an
    /// equal value if [`ModelRelease::validate`] passes.
    pub fn to_statement_json(&self) -> Vec<u8> {
        let mut p = Predicate::new(&self.extensions, &MODEL_FIELDS);
        p.set("name", self.name.as_str());
        p.set("version", self.version.as_str());
        p.set("releaseTime", self.release_time.as_str());
        p.set("license", self.license.as_str());
        p.set("manifest", manifest_json(&self.manifest));
        p.set("dataDisclosure", self.data_disclosure.as_str());
        let training: Vec<Value> = self.training_data.iter().map(training_ref_json).collect();
        p.set("trainingData", training);
        if !self.base_models.is_empty() {
            let base: Vec<Value> = self.base_models.iter().map(base_model_json).collect();
            p.set("baseModels", base);
        }
        p.optional("supersedes", self.supersedes.as_ref().map(supersedes_json));
        p.optional("supplier", self.supplier.as_deref());
        p.optional(
            "downloadLocation",
            self.download_location.as_ref().map(Uri::as_str),
        );
        p.optional("modelCard", self.model_card.as_ref().map(model_card_json));
        p.optional("description", self.description.as_deref());
        statement_json(&self.name, &self.digest, MODEL_RELEASE, p.0)
    }

    /// Checks every rule [`parse_statement`] checks, including those that
    /// relate fields, by reading back [`ModelRelease::to_statement_json`].
    pub fn validate(&self) -> Result<(), DeclarationError> {
        parse_statement(&self.to_statement_json()).map(drop)
    }
}

impl TrainingData {
    /// The in-toto statement of this declaration, as canonical JSON (see
    /// [`ModelRelease::to_statement_json`]).
    pub fn to_statement_json(&self) -> Vec<u8> {
        let mut p = Predicate::new(&self.extensions, &DATASET_FIELDS);
        p.set("name", self.name.as_str());
        p.set("version", self.version.as_str());
        p.set("releaseTime", self.release_time.as_str());
        p.set("license", self.license.as_str());
        let sources: Vec<Value> = self.sources.iter().map(source_json).collect();
        p.set("sources", sources);
        p.set("processing", self.processing.as_str());
        p.set(
            "personalData",
            json!({
                "containsPersonalData": self.personal_data.contains.as_str(),
                "handling": self.personal_data.handling,
            }),
        );
        p.optional("manifest", self.manifest.as_ref().map(manifest_json));
        p.optional("supersedes", self.supersedes.as_ref().map(supersedes_json));
        p.optional("knownLimitations", self.known_limitations.as_deref());
        p.optional("intendedUse", self.intended_use.as_deref());
        p.optional("supplier", self.supplier.as_deref());
        p.optional(
            "downloadLocation",
            self.download_location.as_ref().map(Uri::as_str),
        );
        p.optional("description", self.description.as_deref());
        statement_json(&self.name, &self.digest, TRAINING_DATA, p.0)
    }

    /// Checks every rule [`parse_statement`] checks (see [`ModelRelease::validate`]).
    pub fn validate(&self) -> Result<(), DeclarationError> {
        parse_statement(&self.to_statement_json()).map(drop)
    }
}

/// A predicate object under construction.
struct Predicate(Map);

impl Predicate {
    /// Starts from the extensions that do not collide with a defined field.
    fn new(extensions: &Map, known: &[&str]) -> Predicate {
        Predicate(unknown_members(extensions, known))
    }

    fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.0.insert(key.to_owned(), value.into());
    }

    fn optional(&mut self, key: &str, value: Option<impl Into<Value>>) {
        if let Some(value) = value {
            self.set(key, value);
        }
    }
}

fn statement_json(name: &Name, digest: &Digest, predicate_type: &str, predicate: Map) -> Vec<u8> {
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "predicate": predicate,
        "predicateType": predicate_type,
        "subject": [{"digest": digest_json(digest), "name": name.as_str()}],
    });
    // `{:#}` is serde_json's infallible pretty printer.
    format!("{statement:#}").into_bytes()
}

fn digest_json(digest: &Digest) -> Value {
    json!({ SHA256: digest.to_string() })
}

fn training_ref_json(t: &TrainingDataRef) -> Value {
    let mut v =
        json!({"name": t.name.as_str(), "digest": digest_json(&t.digest), "role": t.role.as_str()});
    if let (Some(i), Some(map)) = (t.log_index, v.as_object_mut()) {
        map.insert("logIndex".into(), i.into());
    }
    v
}

fn base_model_json(b: &BaseModel) -> Value {
    let mut v = json!({"name": b.name.as_str(), "digest": digest_json(&b.digest), "relation": b.relation.as_str()});
    if let (Some(i), Some(map)) = (b.log_index, v.as_object_mut()) {
        map.insert("logIndex".into(), i.into());
    }
    v
}

fn supersedes_json(s: &Supersedes) -> Value {
    json!({"logIndex": s.log_index, "digest": digest_json(&s.digest)})
}

fn model_card_json(c: &ModelCard) -> Value {
    json!({"uri": c.uri.as_str(), "digest": digest_json(&c.digest)})
}

fn source_json(s: &Source) -> Value {
    let mut map = Map::new();
    map.insert("category".into(), s.category.as_str().into());
    map.insert("name".into(), s.name.as_str().into());
    if let Some(uri) = &s.uri {
        map.insert("uri".into(), uri.as_str().into());
    }
    if let Some(license) = &s.license {
        map.insert("license".into(), license.as_str().into());
    }
    if let Some(period) = &s.collection_period {
        let period = json!({"start": period.start.as_str(), "end": period.end.as_str()});
        map.insert("collectionPeriod".into(), period);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    use serde_json::json;

    const MODEL: &[u8] = include_bytes!("../../tests/data/declarations/model-release.json");
    const DATASET: &[u8] = include_bytes!("../../tests/data/declarations/training-data.json");
    const PRIVATE: &[u8] =
        include_bytes!("../../tests/data/declarations/training-data-private.json");

    /// The example salt and manifest root behind the private example's
    /// commitment (see `tests/data/declarations/make_examples.py`).
    const PRIVATE_SALT: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const PRIVATE_ROOT: &str = "ad7b32600cdee57384b0c78aa16e87e414ca1b791730891179424aced3153ce1";

    const SLSA: &str = "https://slsa.dev/provenance/v1";

    fn base(which: &str) -> Value {
        let bytes = match which {
            "model" => MODEL,
            "dataset" => DATASET,
            "private" => PRIVATE,
            _ => panic!("no example {which}"),
        };
        serde_json::from_slice(bytes).unwrap()
    }

    fn to_bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    /// `v` with the member at JSON pointer `pointer` set to `new`, or removed
    /// when `new` is `None`. An array index equal to the length appends.
    fn edit(mut v: Value, pointer: &str, new: Option<Value>) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let container = v
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"));
        match (container, new) {
            (Value::Object(m), Some(x)) => {
                m.insert(key.to_owned(), x);
            }
            (Value::Object(m), None) => {
                assert!(m.remove(key).is_some(), "no {pointer}");
            }
            (Value::Array(a), Some(x)) => match key.parse::<usize>().unwrap() {
                i if i == a.len() => a.push(x),
                i => a[i] = x,
            },
            (Value::Array(a), None) => {
                a.remove(key.parse::<usize>().unwrap());
            }
            _ => panic!("{pointer}: the parent is not a container"),
        }
        v
    }

    fn set(v: Value, pointer: &str, new: Value) -> Value {
        edit(v, pointer, Some(new))
    }

    fn remove(v: Value, pointer: &str) -> Value {
        edit(v, pointer, None)
    }

    /// The error path of the member at JSON pointer `pointer`.
    fn path_of(pointer: &str) -> String {
        pointer
            .split('/')
            .skip(1)
            .fold(ROOT.to_owned(), |path, segment| match segment.parse() {
                Ok(i) => element_path(&path, i),
                Err(_) => member_path(&path, segment),
            })
    }

    #[track_caller]
    fn accepted(v: &Value) -> Declaration {
        parse_statement(&to_bytes(v)).unwrap_or_else(|e| panic!("refused: {e}"))
    }

    #[track_caller]
    fn refused(v: &Value, path: &str, reason: &str, what: &str) {
        match parse_statement(&to_bytes(v)) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => {
                assert_eq!(e.path(), Some(path), "{what}: {e}");
                let message = e.to_string();
                assert!(
                    message.contains(reason),
                    "{what}: {message:?} lacks {reason:?}"
                );
            }
        }
    }

    fn digest(label: &str) -> String {
        Digest::of(label.as_bytes()).to_string()
    }

    // ---- The examples.

    #[test]
    fn examples_are_accepted() {
        assert_eq!(accepted(&base("model")).kind(), Kind::Model);
        assert_eq!(accepted(&base("dataset")).kind(), Kind::Dataset);
        let private = accepted(&base("private"));
        assert_eq!(private.kind(), Kind::Dataset);
        assert!(private.manifest().is_none());
    }

    #[test]
    fn examples_are_in_canonical_form_and_round_trip() {
        for bytes in [MODEL, DATASET, PRIVATE] {
            let declaration = parse_statement(bytes).unwrap();
            let written = declaration.to_statement_json();
            let file = std::str::from_utf8(bytes).unwrap().trim_end();
            assert_eq!(std::str::from_utf8(&written).unwrap(), file);
            assert_eq!(parse_statement(&written).unwrap(), declaration);
            assert_eq!(declaration.to_statement_json(), written, "stable");
        }
    }

    #[test]
    fn private_example_logs_the_commitment() {
        let declaration = parse_statement(PRIVATE).unwrap();
        let mut salt = [0u8; 32];
        hex::decode_to_slice(PRIVATE_SALT, &mut salt).unwrap();
        let root: Digest = PRIVATE_ROOT.parse().unwrap();
        assert_eq!(*declaration.subject_digest(), commitment(&salt, &root));
        // The model example names the private dataset by that commitment.
        let model = parse_statement(MODEL).unwrap();
        assert_eq!(model.trained_on()[1], *declaration.subject_digest());
    }

    #[test]
    fn accessors_of_the_model_example() {
        let d = parse_statement(MODEL).unwrap();
        assert_eq!(d.name().as_str(), "example-org/tiny-chat");
        assert_eq!(d.version(), "1.2.0");
        assert_eq!(d.release_time().unix_ms(), 1_741_944_600_000);
        assert_eq!(d.release_time().as_str(), "2025-03-14T09:30:00Z");
        assert_eq!(d.license().as_str(), "Apache-2.0");
        let manifest = d.manifest().unwrap();
        assert_eq!(Digest(manifest.root_digest()), *d.subject_digest());
        let files: Vec<Digest> = ["config.json", "model.safetensors", "tokenizer.json"]
            .iter()
            .map(|name| Digest::of(format!("file:{name}").as_bytes()))
            .collect();
        assert_eq!(d.file_digests(), files);
        assert_eq!(d.trained_on().len(), 3);
        assert_eq!(
            d.trained_on()[0],
            *parse_statement(DATASET).unwrap().subject_digest()
        );
        let Declaration::Model(m) = &d else {
            panic!("not a model")
        };
        assert_eq!(m.data_disclosure, DataDisclosure::Full);
        assert_eq!(m.training_data[2].role, Role::Evaluation);
        assert_eq!(m.base_models[0].relation, Relation::Finetune);
        assert!(m.extensions.is_empty());
    }

    #[test]
    fn references_of_the_examples() {
        let model = parse_statement(MODEL).unwrap();
        let refs = model.references();
        let fields: Vec<&str> = refs.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "$.predicate.trainingData[0]",
                "$.predicate.trainingData[1]",
                "$.predicate.trainingData[2]",
                "$.predicate.baseModels[0]",
                "$.predicate.supersedes",
            ]
        );
        assert_eq!(
            refs[0],
            Reference {
                field: "$.predicate.trainingData[0]".into(),
                kind: Kind::Dataset,
                name: Some("example-org/web-corpus".parse().unwrap()),
                digest: *parse_statement(DATASET).unwrap().subject_digest(),
                log_index: Some(41),
                same_name_required: false,
            }
        );
        assert_eq!(refs[1].log_index, None);
        assert_eq!(refs[3].kind, Kind::Model);
        assert_eq!(refs[3].log_index, Some(7));
        assert_eq!(
            refs[4],
            Reference {
                field: "$.predicate.supersedes".into(),
                kind: Kind::Model,
                name: None,
                digest: digest("tiny-chat 1.1.0").parse().unwrap(),
                log_index: Some(40),
                same_name_required: true,
            }
        );
        let dataset = parse_statement(DATASET).unwrap().references();
        assert_eq!(dataset.len(), 1);
        assert_eq!(
            (dataset[0].kind, dataset[0].log_index),
            (Kind::Dataset, Some(12))
        );
        assert!(parse_statement(PRIVATE).unwrap().references().is_empty());
        assert!(parse_statement(PRIVATE).unwrap().file_digests().is_empty());
        assert!(parse_statement(DATASET).unwrap().trained_on().is_empty());
    }

    // ---- Presence and JSON types.

    /// (example, JSON pointer) of every required member.
    const REQUIRED: &[(&str, &str)] = &[
        ("model", "/_type"),
        ("model", "/subject"),
        ("model", "/predicateType"),
        ("model", "/predicate"),
        ("model", "/subject/0/name"),
        ("model", "/subject/0/digest"),
        ("model", "/subject/0/digest/sha256"),
        ("model", "/predicate/name"),
        ("model", "/predicate/version"),
        ("model", "/predicate/releaseTime"),
        ("model", "/predicate/license"),
        ("model", "/predicate/manifest"),
        ("model", "/predicate/manifest/resources"),
        ("model", "/predicate/trainingData/2/name"),
        ("model", "/predicate/trainingData/2/digest"),
        ("model", "/predicate/trainingData/2/digest/sha256"),
        ("model", "/predicate/trainingData/2/role"),
        ("model", "/predicate/baseModels/0/name"),
        ("model", "/predicate/baseModels/0/digest"),
        ("model", "/predicate/baseModels/0/relation"),
        ("model", "/predicate/supersedes/logIndex"),
        ("model", "/predicate/supersedes/digest"),
        ("model", "/predicate/modelCard/uri"),
        ("model", "/predicate/modelCard/digest"),
        ("dataset", "/subject/0/name"),
        ("dataset", "/predicate/name"),
        ("dataset", "/predicate/version"),
        ("dataset", "/predicate/releaseTime"),
        ("dataset", "/predicate/license"),
        ("dataset", "/predicate/sources"),
        ("dataset", "/predicate/processing"),
        ("dataset", "/predicate/personalData"),
        ("dataset", "/predicate/sources/0/category"),
        ("dataset", "/predicate/sources/1/name"),
        ("dataset", "/predicate/sources/0/collectionPeriod/start"),
        ("dataset", "/predicate/sources/0/collectionPeriod/end"),
        ("dataset", "/predicate/personalData/containsPersonalData"),
        ("dataset", "/predicate/personalData/handling"),
        ("dataset", "/predicate/supersedes/logIndex"),
        ("dataset", "/predicate/supersedes/digest"),
        ("dataset", "/predicate/manifest/serialization"),
        ("private", "/predicate/sources"),
        ("private", "/predicate/personalData/handling"),
    ];

    #[test]
    fn every_required_member_is_required() {
        for (example, pointer) in REQUIRED {
            let v = remove(base(example), pointer);
            refused(&v, &path_of(pointer), "missing required field", pointer);
        }
    }

    /// (example, JSON pointer) of optional members: leaving any out is fine.
    const OPTIONAL: &[(&str, &str)] = &[
        ("model", "/predicate/dataDisclosure"),
        ("model", "/predicate/baseModels"),
        ("model", "/predicate/supersedes"),
        ("model", "/predicate/supplier"),
        ("model", "/predicate/downloadLocation"),
        ("model", "/predicate/modelCard"),
        ("model", "/predicate/description"),
        ("model", "/predicate/trainingData/0/logIndex"),
        ("model", "/predicate/baseModels/0/logIndex"),
        ("model", "/predicate/manifest/serialization/ignore_paths"),
        ("dataset", "/predicate/manifest"),
        ("dataset", "/predicate/supersedes"),
        ("dataset", "/predicate/knownLimitations"),
        ("dataset", "/predicate/intendedUse"),
        ("dataset", "/predicate/supplier"),
        ("dataset", "/predicate/downloadLocation"),
        ("dataset", "/predicate/description"),
        ("dataset", "/predicate/sources/0/uri"),
        ("dataset", "/predicate/sources/0/license"),
        ("dataset", "/predicate/sources/0/collectionPeriod"),
    ];

    #[test]
    fn every_optional_member_is_optional() {
        for (example, pointer) in OPTIONAL {
            let declaration = accepted(&remove(base(example), pointer));
            // And the value written without it reads back the same.
            let written = declaration.to_statement_json();
            assert_eq!(parse_statement(&written).unwrap(), declaration, "{pointer}");
        }
    }

    /// (example, JSON pointer, value of the wrong type, expected type).
    fn wrong_types() -> Vec<(&'static str, &'static str, Value, &'static str)> {
        vec![
            ("model", "/_type", json!(1), "a string"),
            ("model", "/predicateType", json!(null), "a string"),
            ("model", "/subject", json!({}), "an array"),
            ("model", "/subject/0", json!("org/model"), "an object"),
            ("model", "/subject/0/name", json!(["a"]), "a string"),
            ("model", "/subject/0/digest", json!("ab"), "an object"),
            ("model", "/subject/0/digest/sha256", json!(7), "a string"),
            ("model", "/subject/0/digest/sha512", json!(7), "a string"),
            ("model", "/predicate", json!([]), "an object"),
            ("model", "/predicate/name", json!(null), "a string"),
            ("model", "/predicate/version", json!(1.2), "a string"),
            (
                "model",
                "/predicate/releaseTime",
                json!(1741944600),
                "a string",
            ),
            ("model", "/predicate/license", json!(["MIT"]), "a string"),
            (
                "model",
                "/predicate/manifest",
                json!("sha256:ab"),
                "an object",
            ),
            (
                "model",
                "/predicate/dataDisclosure",
                json!(true),
                "a string",
            ),
            ("model", "/predicate/trainingData", json!({}), "an array"),
            (
                "model",
                "/predicate/trainingData/1",
                json!("x"),
                "an object",
            ),
            (
                "model",
                "/predicate/trainingData/1/role",
                json!(1),
                "a string",
            ),
            (
                "model",
                "/predicate/trainingData/1/logIndex",
                json!("41"),
                "a non-negative integer",
            ),
            (
                "model",
                "/predicate/trainingData/1/logIndex",
                json!(null),
                "a non-negative integer",
            ),
            (
                "model",
                "/predicate/baseModels",
                json!("org/base"),
                "an array",
            ),
            (
                "model",
                "/predicate/baseModels/0/relation",
                json!(null),
                "a string",
            ),
            ("model", "/predicate/supersedes", json!(40), "an object"),
            (
                "model",
                "/predicate/supersedes/logIndex",
                json!([40]),
                "a non-negative integer",
            ),
            ("model", "/predicate/supplier", json!(null), "a string"),
            (
                "model",
                "/predicate/downloadLocation",
                json!({}),
                "a string",
            ),
            (
                "model",
                "/predicate/modelCard",
                json!("https://x"),
                "an object",
            ),
            ("model", "/predicate/modelCard/uri", json!(1), "a string"),
            ("model", "/predicate/description", json!(false), "a string"),
            ("dataset", "/predicate/sources", json!({}), "an array"),
            ("dataset", "/predicate/sources/0", json!([]), "an object"),
            (
                "dataset",
                "/predicate/sources/0/license",
                json!(null),
                "a string",
            ),
            (
                "dataset",
                "/predicate/sources/0/collectionPeriod",
                json!("2024"),
                "an object",
            ),
            (
                "dataset",
                "/predicate/sources/0/collectionPeriod/start",
                json!(0),
                "a string",
            ),
            (
                "dataset",
                "/predicate/processing",
                json!(["dedup"]),
                "a string",
            ),
            (
                "dataset",
                "/predicate/personalData",
                json!("no"),
                "an object",
            ),
            (
                "dataset",
                "/predicate/personalData/containsPersonalData",
                json!(false),
                "a string",
            ),
            (
                "dataset",
                "/predicate/knownLimitations",
                json!(null),
                "a string",
            ),
            ("dataset", "/predicate/intendedUse", json!(1), "a string"),
        ]
    }

    #[test]
    fn every_member_has_its_json_type() {
        for (example, pointer, value, expected) in wrong_types() {
            let v = set(base(example), pointer, value);
            refused(
                &v,
                &path_of(pointer),
                &format!("must be {expected}"),
                pointer,
            );
        }
    }

    #[test]
    fn empty_strings_are_refused() {
        let cases = [
            ("model", "/predicate/version"),
            ("model", "/predicate/supplier"),
            ("model", "/predicate/description"),
            ("dataset", "/predicate/processing"),
            ("dataset", "/predicate/personalData/handling"),
            ("dataset", "/predicate/sources/0/name"),
            ("dataset", "/predicate/knownLimitations"),
            ("dataset", "/predicate/intendedUse"),
        ];
        for (example, pointer) in cases {
            let v = set(base(example), pointer, json!(""));
            refused(&v, &path_of(pointer), "is empty", pointer);
        }
    }

    // ---- The statement layer.

    #[test]
    fn statement_members_are_exactly_the_in_toto_ones() {
        for extra in ["predicateVersion", "signatures", "_TYPE2"] {
            let v = set(base("model"), &format!("/{extra}"), json!(1));
            refused(&v, &member_path(ROOT, extra), "unknown field", extra);
        }
        let v = set(
            base("model"),
            "/_type",
            json!("https://in-toto.io/Statement/v0.1"),
        );
        refused(
            &v,
            "$._type",
            "is not \"https://in-toto.io/Statement/v1\"",
            "v0.1",
        );
    }

    #[test]
    fn exactly_one_subject() {
        let v = set(base("model"), "/subject", json!([]));
        refused(&v, "$.subject", "has 0 entries", "no subject");
        let subject = base("model")["subject"][0].clone();
        let v = set(base("model"), "/subject/1", subject);
        refused(&v, "$.subject", "has 2 entries", "two subjects");
    }

    #[test]
    fn subject_entries() {
        // ResourceDescriptor members are allowed and ignored; others are not.
        let mut v = base("model");
        for (key, value) in [
            ("uri", json!("https://huggingface.co/example-org/tiny-chat")),
            ("mediaType", json!("application/octet-stream")),
            ("annotations", json!({"note": 1})),
        ] {
            v = set(v, &format!("/subject/0/{key}"), value);
        }
        accepted(&v);
        let v = set(base("model"), "/subject/0/version", json!("1.2.0"));
        refused(
            &v,
            "$.subject[0].version",
            "unknown field",
            "subject version",
        );
        // Other digest algorithms are allowed and ignored.
        let v = set(base("model"), "/subject/0/digest/sha512", json!("00ff"));
        accepted(&v);
        let v = set(
            base("model"),
            "/subject/0/digest/gitCommit",
            json!("not checked"),
        );
        accepted(&v);
        // But sha256 is required, and spelled in lower case.
        let sha = base("model")["subject"][0]["digest"]["sha256"].clone();
        let v = set(
            remove(base("model"), "/subject/0/digest/sha256"),
            "/subject/0/digest/SHA256",
            sha,
        );
        refused(
            &v,
            "$.subject[0].digest.SHA256",
            "only in letter case",
            "SHA256",
        );
    }

    #[test]
    fn subject_name_must_equal_predicate_name() {
        for other in [
            "example-org/tiny-chat-2",
            "Example-org/tiny-chat",
            "example-org",
        ] {
            let v = set(base("model"), "/predicate/name", json!(other));
            refused(
                &v,
                "$.predicate.name",
                "differs from $.subject[0].name",
                other,
            );
            let v = set(base("dataset"), "/subject/0/name", json!(other));
            refused(&v, "$.predicate.name", "must be equal", other);
        }
    }

    #[test]
    fn predicate_types() {
        let slsa = set(base("model"), "/predicateType", json!(SLSA));
        let slsa = set(slsa, "/predicate", json!({"anything": ["goes"]}));
        let err = parse_statement(&to_bytes(&slsa)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "$.predicateType \"{SLSA}\" is not accepted by this log; accepted: \
                 {MODEL_RELEASE}, {TRAINING_DATA}"
            )
        );
        assert_eq!(err.path(), Some("$.predicateType"));
        let extras = vec![SLSA.to_owned()];
        let result = validate_envelope_payload(PAYLOAD_TYPE, &to_bytes(&slsa), &extras);
        assert_eq!(result, Ok(None));
        let other = set(
            slsa.clone(),
            "/predicateType",
            json!("https://example.com/other/v1"),
        );
        let err = validate_envelope_payload(PAYLOAD_TYPE, &to_bytes(&other), &extras).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(&format!("{TRAINING_DATA}, {SLSA}")),
            "{err}"
        );
        // The statement layer is still checked for extra types.
        let bad = set(slsa, "/extra", json!(1));
        let err = validate_envelope_payload(PAYLOAD_TYPE, &to_bytes(&bad), &extras).unwrap_err();
        assert_eq!(err.path(), Some("$.extra"));
    }

    #[test]
    fn envelope_payload_checks() {
        let model = validate_envelope_payload(PAYLOAD_TYPE, MODEL, &[]).unwrap();
        assert_eq!(model, Some(parse_statement(MODEL).unwrap()));
        let err = validate_envelope_payload("application/json", MODEL, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "envelope payloadType \"application/json\" is not \"application/vnd.in-toto+json\": \
             a declaration is an in-toto statement in JSON"
        );
        assert_eq!(err.path(), None);
        // Declaration types are always checked, even when listed as extra types.
        let extras = vec![MODEL_RELEASE.to_owned()];
        let bad = remove(base("model"), "/predicate/license");
        let err = validate_envelope_payload(PAYLOAD_TYPE, &to_bytes(&bad), &extras).unwrap_err();
        assert_eq!(err.path(), Some("$.predicate.license"));
    }

    #[test]
    fn strict_json_is_enforced() {
        let text = std::str::from_utf8(MODEL).unwrap();
        let cases = [
            (
                "\"version\": \"1.2.0\"",
                "\"version\": \"1.2.0\", \"version\": \"1.2.1\"",
                "$.predicate.version",
            ),
            (
                "\"version\": \"1.2.0\"",
                "\"version\": \"1.2.0\", \"Version\": \"1.2.1\"",
                "$.predicate.Version",
            ),
            ("\"_type\":", "\"_type\": \"x\", \"_type\":", "$._type"),
            (
                "\"role\": \"evaluation\"",
                "\"role\": \"evaluation\", \"role\": \"pretraining\"",
                "$.predicate.trainingData[2].role",
            ),
        ];
        for (from, to, path) in cases {
            assert_eq!(text.matches(from).count(), 1, "{from}");
            let err = parse_statement(text.replace(from, to).as_bytes()).unwrap_err();
            assert!(
                matches!(err, DeclarationError::Json(JsonError::DuplicateKey { .. })),
                "{err}"
            );
            assert_eq!(err.path(), Some(path));
        }
        for bad in [
            &b""[..],
            b"[]",
            b"\"x\"",
            b"{} {}",
            b"{\"_type\": \"\xff\"}",
        ] {
            assert!(matches!(
                parse_statement(bad),
                Err(DeclarationError::Json(_))
            ));
        }
    }

    #[test]
    fn unknown_predicate_members_are_kept_or_ignored() {
        let v = set(
            base("model"),
            "/predicate/trainingCompute",
            json!({"flop": 1e21}),
        );
        let v = set(
            v,
            "/predicate/trainingData/0/notes",
            json!("kept in the payload"),
        );
        let v = set(v, "/predicate/manifest/serialization/extra", json!(1));
        let Declaration::Model(m) = accepted(&v) else {
            panic!("not a model")
        };
        assert_eq!(
            m.extensions.get("trainingCompute"),
            Some(&json!({"flop": 1e21}))
        );
        // Top-level extensions are written back; nested unknown members are not.
        let written = parse_statement(&m.to_statement_json()).unwrap();
        assert_eq!(written, Declaration::Model(m));
        let dataset = set(
            base("dataset"),
            "/predicate/croissant",
            json!({"@type": "Dataset"}),
        );
        let Declaration::Dataset(d) = accepted(&dataset) else {
            panic!("not a dataset")
        };
        assert_eq!(d.extensions.len(), 1);
    }

    #[test]
    fn case_variants_of_defined_members_are_refused() {
        let cases = [
            ("model", "/predicate/description", "/predicate/Description"),
            (
                "model",
                "/predicate/dataDisclosure",
                "/predicate/datadisclosure",
            ),
            (
                "model",
                "/predicate/trainingData/0/logIndex",
                "/predicate/trainingData/0/LogIndex",
            ),
            (
                "model",
                "/predicate/baseModels/0/logIndex",
                "/predicate/baseModels/0/logindex",
            ),
            (
                "model",
                "/predicate/modelCard/uri",
                "/predicate/modelCard/URI",
            ),
            (
                "dataset",
                "/predicate/intendedUse",
                "/predicate/IntendedUse",
            ),
            (
                "dataset",
                "/predicate/sources/0/collectionPeriod",
                "/predicate/sources/0/CollectionPeriod",
            ),
            (
                "dataset",
                "/predicate/personalData/handling",
                "/predicate/personalData/Handling",
            ),
            (
                "dataset",
                "/predicate/sources/0/collectionPeriod/end",
                "/predicate/sources/0/collectionPeriod/End",
            ),
        ];
        for (example, pointer, variant) in cases {
            let value = base(example).pointer(pointer).unwrap().clone();
            let v = set(remove(base(example), pointer), variant, value);
            refused(&v, &path_of(variant), "only in letter case", variant);
        }
        // Kelvin sign: a Go decoder would read "\u{212A}" as "k".
        let v = set(
            base("private"),
            "/predicate/\u{212A}nownLimitations",
            json!("x"),
        );
        refused(
            &v,
            "$.predicate[\"\u{212A}nownLimitations\"]",
            "letter case",
            "kelvin",
        );
    }

    // ---- Names.

    const BAD_NAMES: &[(&str, &str)] = &[
        ("", "it is empty"),
        ("a//b", "segment 1 is empty"),
        ("/a", "segment 0 is empty"),
        ("a/", "segment 1 is empty"),
        ("/", "segment 0 is empty"),
        ("./x", "segment 0 is \".\""),
        ("x/.", "segment 1 is \".\""),
        ("a/../b", "segment 1 is \"..\""),
        ("..", "segment 0 is \"..\""),
        ("a b", "\" \" (U+0020) at position 1"),
        ("org/mod\u{e8}le", "(U+00E8) at position 7"),
        ("\u{ff41}", "(U+FF41)"),
        ("a\\b", "(U+005C)"),
        ("a:b", "(U+003A)"),
        ("a@1.0", "(U+0040)"),
        ("a\u{0}", "(U+0000)"),
        ("tab\t", "(U+0009)"),
    ];

    #[test]
    fn bad_names_are_refused() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        let mut cases: Vec<(&str, &str)> = BAD_NAMES.to_vec();
        cases.push((&long, "201 characters long"));
        for (name, reason) in cases {
            let err = name.parse::<Name>().unwrap_err();
            assert_eq!(err.path(), None);
            assert!(err.to_string().contains(reason), "{name:?}: {err}");
            let v = set(base("model"), "/subject/0/name", json!(name));
            let v = set(v, "/predicate/name", json!(name));
            refused(&v, "$.subject[0].name", reason, name);
            let v = set(base("model"), "/predicate/trainingData/1/name", json!(name));
            refused(&v, "$.predicate.trainingData[1].name", reason, name);
            let v = set(base("model"), "/predicate/baseModels/0/name", json!(name));
            refused(&v, "$.predicate.baseModels[0].name", reason, name);
        }
    }

    #[test]
    fn name_error_message() {
        let v = set(base("dataset"), "/subject/0/name", json!("a//b"));
        let err = parse_statement(&to_bytes(&v)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "$.subject[0].name: \"a//b\" is not a valid name: segment 1 is empty (a name is 1 \
             to 200 characters: segments of A-Z a-z 0-9 . _ - joined by single '/')"
        );
    }

    #[test]
    fn good_names_are_accepted() {
        let long = "a".repeat(MAX_NAME_LEN);
        let longest_path = format!("{}/{}", "b".repeat(99), "c".repeat(100));
        let names = [
            "a",
            "Z",
            "0",
            "org/model",
            "org/family/model",
            "Org/Model-7B.v2_final",
            "...",
            ".hidden/x",
            "a-/-b",
            "x/y/z/w/v",
            &long,
            &longest_path,
        ];
        for name in names {
            let parsed: Name = name.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.as_str(), name);
            let v = set(base("dataset"), "/subject/0/name", json!(name));
            let v = set(v, "/predicate/name", json!(name));
            assert_eq!(accepted(&v).name().as_str(), name);
        }
        assert_ne!(
            "Org/M".parse::<Name>().unwrap(),
            "org/m".parse::<Name>().unwrap()
        );
    }

    // ---- Digests.

    fn bad_digests() -> Vec<(String, &'static str)> {
        let good = digest("x");
        vec![
            (good.to_uppercase(), "uppercase"),
            (format!("{}A", &good[..63]), "uppercase"),
            (good[..63].to_owned(), "it has 63 characters"),
            (format!("{good}0"), "it has 65 characters"),
            (String::new(), "it has 0 characters"),
            (format!("sha256:{}", &good[..57]), "not hex digits"),
            ("g".repeat(64), "not hex digits"),
            (format!(" {}", &good[..63]), "not hex digits"),
            ("\u{e9}".repeat(32), "not hex digits"),
        ]
    }

    #[test]
    fn bad_digests_are_refused() {
        let pointers = [
            ("model", "/subject/0/digest/sha256"),
            ("model", "/predicate/trainingData/2/digest/sha256"),
            ("model", "/predicate/baseModels/0/digest/sha256"),
            ("model", "/predicate/supersedes/digest/sha256"),
            ("model", "/predicate/modelCard/digest/sha256"),
            ("private", "/subject/0/digest/sha256"),
            ("dataset", "/predicate/supersedes/digest/sha256"),
        ];
        for (bad, reason) in bad_digests() {
            let err = bad.parse::<Digest>().unwrap_err();
            assert!(err.to_string().contains(reason), "{bad:?}: {err}");
            assert!(err.to_string().contains("64 lowercase hex digits"), "{err}");
            for (example, pointer) in pointers {
                let v = set(base(example), pointer, json!(bad));
                refused(&v, &path_of(pointer), reason, pointer);
            }
        }
    }

    #[test]
    fn digests_read_and_write_as_lowercase_hex() {
        let text = digest("x");
        let d: Digest = text.parse().unwrap();
        assert_eq!(d.to_string(), text);
        assert_eq!(d, Digest::of(b"x"));
        assert_eq!(format!("{d:?}"), format!("Digest({text})"));
    }

    #[test]
    fn commitment_is_sha256_of_salt_then_root() {
        let salt = [7u8; 32];
        let root = Digest::of(b"root");
        let expected = Digest::of(&[&salt[..], &root.0[..]].concat());
        assert_eq!(commitment(&salt, &root), expected);
        assert_ne!(commitment(&[8u8; 32], &root), expected);
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

    // ---- Licenses.

    const GOOD_LICENSES: &[&str] = &[
        "MIT",
        "Apache-2.0",
        "apache-2.0",
        "GPL-2.0-or-later",
        "GPL-2.0+",
        "CC-BY-4.0",
        "NOASSERTION",
        "NONE",
        "LicenseRef-acme-model-license-1.0",
        "DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2",
        "MIT OR Apache-2.0",
        "MIT AND Apache-2.0 OR BSD-3-Clause",
        "(MIT OR Apache-2.0) AND CC-BY-4.0",
        "MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)",
        "GPL-2.0-only WITH Classpath-exception-2.0",
        "Apache-2.0 WITH LLVM-exception OR MIT",
        "GPL-3.0-or-later WITH AdditionRef-my-exception",
        "GPL-3.0+ WITH DocumentRef-d:AdditionRef-x",
        "LicenseRef-x WITH Classpath-exception-2.0",
        "((MIT))",
        "(MIT)AND(Apache-2.0)",
        "MIT  OR  Apache-2.0",
    ];

    const BAD_LICENSES: &[(&str, &str)] = &[
        ("", "it is empty"),
        (" MIT", "starts or ends with a space"),
        ("MIT ", "starts or ends with a space"),
        ("MIT OR", "found the end of the expression"),
        (
            "OR MIT",
            "expected a license id or LicenseRef-..., found \"OR\"",
        ),
        ("MIT AND", "found the end"),
        ("MIT and Apache-2.0", "operators are upper case: write AND"),
        ("mit or apache-2.0", "operators are upper case: write OR"),
        ("MIT OR and", "operators are upper case: write AND"),
        (
            "MIT Apache-2.0",
            "unexpected \"Apache-2.0\": join licenses with AND or OR",
        ),
        ("Apache 2.0", "unexpected \"2.0\""),
        ("(MIT", "expected \")\", found the end of the expression"),
        ("MIT)", "unexpected \")\""),
        ("()", "found \")\""),
        (
            "MIT WITH",
            "an exception id or AdditionRef-... after WITH, found the end",
        ),
        ("MIT WITH OR", "after WITH, found \"OR\""),
        (
            "(MIT OR BSD-3-Clause) WITH Classpath-exception-2.0",
            "WITH must follow a single license",
        ),
        ("MIT WITH A WITH B", "at most one exception"),
        ("LicenseRef-", "\"LicenseRef-\" is not a license id"),
        ("LicenseRef-x+", "is not a license id"),
        ("DocumentRef-x:MIT", "is not a license id"),
        ("DocumentRef-:LicenseRef-x", "is not a license id"),
        ("MIT++", "is not a license id"),
        ("+", "is not a license id"),
        ("MIT OR NONE", "NONE must be the whole expression"),
        (
            "NOASSERTION AND MIT",
            "NOASSERTION must be the whole expression",
        ),
        ("(NONE)", "NONE must be the whole expression"),
        ("MIT/Apache-2.0", "character \"/\" (U+002F)"),
        ("MIT, Apache-2.0", "character \",\""),
        ("MIT\tOR Apache-2.0", "(U+0009)"),
        ("a_b", "(U+005F)"),
        (
            "MIT WITH AdditionRef-",
            "\"AdditionRef-\" is not an exception id",
        ),
    ];

    #[test]
    fn good_licenses_are_accepted() {
        for license in GOOD_LICENSES {
            let parsed: LicenseExpression = license.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.as_str(), *license);
        }
        let nested = format!(
            "{}MIT{}",
            "(".repeat(MAX_LICENSE_DEPTH),
            ")".repeat(MAX_LICENSE_DEPTH)
        );
        assert!(nested.parse::<LicenseExpression>().is_ok());
        let v = set(
            base("dataset"),
            "/predicate/sources/1/license",
            json!("NONE"),
        );
        accepted(&v);
    }

    #[test]
    fn bad_licenses_are_refused() {
        let pointers = [
            ("model", "/predicate/license"),
            ("dataset", "/predicate/sources/1/license"),
        ];
        for (bad, reason) in BAD_LICENSES {
            let err = bad.parse::<LicenseExpression>().unwrap_err();
            assert!(
                err.to_string()
                    .contains("is not an SPDX license expression"),
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
    fn license_nesting_is_bounded() {
        let depth = MAX_LICENSE_DEPTH + 1;
        let nested = format!("{}MIT{}", "(".repeat(depth), ")".repeat(depth));
        let err = nested.parse::<LicenseExpression>().unwrap_err();
        assert!(
            err.to_string().contains("nested more than 16 deep"),
            "{err}"
        );
        let deep = format!("{}MIT{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(deep.parse::<LicenseExpression>().is_err());
    }

    // ---- Enumerations.

    #[test]
    fn bad_enumeration_values_are_refused() {
        let cases = [
            (
                "model",
                "/predicate/trainingData/1/role",
                "pretrain",
                "pretraining, finetuning, evaluation",
            ),
            (
                "model",
                "/predicate/trainingData/0/role",
                "Pretraining",
                "pretraining, finetuning, evaluation",
            ),
            (
                "model",
                "/predicate/trainingData/0/role",
                "",
                "pretraining, finetuning, evaluation",
            ),
            (
                "model",
                "/predicate/baseModels/0/relation",
                "fine-tune",
                "finetune, adapter, quantized, merge, distill",
            ),
            (
                "model",
                "/predicate/baseModels/0/relation",
                "lora",
                "finetune, adapter",
            ),
            (
                "model",
                "/predicate/dataDisclosure",
                "FULL",
                "full, partial, withheld, none",
            ),
            (
                "model",
                "/predicate/dataDisclosure",
                "open",
                "full, partial, withheld, none",
            ),
            (
                "dataset",
                "/predicate/sources/0/category",
                "web",
                "publicDataset, licensedThirdParty, webCrawl, userData, synthetic, other",
            ),
            (
                "dataset",
                "/predicate/sources/0/category",
                "WebCrawl",
                "publicDataset, licensedThirdParty, webCrawl",
            ),
            (
                "dataset",
                "/predicate/personalData/containsPersonalData",
                "true",
                "yes, no, unknown",
            ),
            (
                "dataset",
                "/predicate/personalData/containsPersonalData",
                "No",
                "yes, no, unknown",
            ),
        ];
        for (example, pointer, bad, allowed) in cases {
            let v = set(base(example), pointer, json!(bad));
            refused(
                &v,
                &path_of(pointer),
                &format!("{} is not one of {allowed}", json!(bad)),
                bad,
            );
        }
    }

    #[test]
    fn enumeration_error_message() {
        let v = set(
            base("model"),
            "/predicate/trainingData/1/role",
            json!("pretrain"),
        );
        let err = parse_statement(&to_bytes(&v)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "$.predicate.trainingData[1].role: \"pretrain\" is not one of pretraining, \
             finetuning, evaluation"
        );
    }

    #[test]
    fn every_enumeration_value_is_accepted() {
        for role in Role::ALL {
            let v = set(
                base("model"),
                "/predicate/trainingData/0/role",
                json!(role.as_str()),
            );
            accepted(&v);
        }
        for relation in Relation::ALL {
            let v = set(
                base("model"),
                "/predicate/baseModels/0/relation",
                json!(relation.as_str()),
            );
            accepted(&v);
        }
        for category in SourceCategory::ALL {
            let v = set(
                base("dataset"),
                "/predicate/sources/0/category",
                json!(category.as_str()),
            );
            accepted(&v);
        }
        for presence in PersonalDataPresence::ALL {
            let pointer = "/predicate/personalData/containsPersonalData";
            accepted(&set(base("dataset"), pointer, json!(presence.as_str())));
        }
        assert_eq!(Kind::Model.predicate_type(), MODEL_RELEASE);
        assert_eq!(Kind::Dataset.predicate_type(), TRAINING_DATA);
    }

    // ---- Training data and disclosure.

    #[test]
    fn training_data_may_be_empty_only_when_withheld_or_none() {
        // (dataDisclosure, trainingData: absent / empty / listed, accepted)
        let cases = [
            (None, "absent", false),
            (None, "empty", false),
            (None, "listed", true),
            (Some("full"), "absent", false),
            (Some("full"), "empty", false),
            (Some("full"), "listed", true),
            (Some("partial"), "absent", false),
            (Some("partial"), "empty", false),
            (Some("partial"), "listed", true),
            (Some("withheld"), "absent", true),
            (Some("withheld"), "empty", true),
            (Some("withheld"), "listed", false),
            (Some("none"), "absent", true),
            (Some("none"), "empty", true),
            (Some("none"), "listed", false),
        ];
        for (disclosure, training, ok) in cases {
            let mut v = remove(base("model"), "/predicate/dataDisclosure");
            if let Some(d) = disclosure {
                v = set(v, "/predicate/dataDisclosure", json!(d));
            }
            v = match training {
                "absent" => remove(v, "/predicate/trainingData"),
                "empty" => set(v, "/predicate/trainingData", json!([])),
                _ => v,
            };
            let what = format!("{disclosure:?} {training}");
            match (ok, training) {
                (true, _) => {
                    let Declaration::Model(m) = accepted(&v) else {
                        panic!("not a model")
                    };
                    assert_eq!(m.data_disclosure.as_str(), disclosure.unwrap_or("full"));
                }
                (false, "listed") => refused(
                    &v,
                    "$.predicate.dataDisclosure",
                    "use \"partial\" or \"full\"",
                    &what,
                ),
                (false, _) => refused(&v, "$.predicate.trainingData", "is empty or absent", &what),
            }
        }
    }

    #[test]
    fn sources_must_not_be_empty() {
        let v = set(base("private"), "/predicate/sources", json!([]));
        refused(
            &v,
            "$.predicate.sources",
            "at least one source",
            "empty sources",
        );
    }

    #[test]
    fn log_indexes_are_non_negative_integers() {
        let pointer = "/predicate/trainingData/0/logIndex";
        for good in [json!(0), json!(u64::MAX)] {
            accepted(&set(base("model"), pointer, good));
        }
        for bad in [json!(-1), json!(1.5), json!(41.0), json!(1e3)] {
            let v = set(base("model"), pointer, bad.clone());
            refused(
                &v,
                &path_of(pointer),
                "is not a log index",
                &bad.to_string(),
            );
        }
        let text = std::str::from_utf8(MODEL).unwrap();
        let huge = text.replace("\"logIndex\": 41", "\"logIndex\": 18446744073709551616");
        let err = parse_statement(huge.as_bytes()).unwrap_err();
        assert_eq!(
            err.path(),
            Some("$.predicate.trainingData[0].logIndex"),
            "{err}"
        );
    }

    // ---- URIs.

    #[test]
    fn uris_need_a_scheme_and_no_spaces() {
        let pointers = [
            ("model", "/predicate/downloadLocation"),
            ("model", "/predicate/modelCard/uri"),
            ("dataset", "/predicate/sources/0/uri"),
            ("dataset", "/predicate/downloadLocation"),
        ];
        let bad = [
            (
                "huggingface.co/example-org/tiny-chat",
                "does not start with a scheme",
            ),
            ("", "does not start with a scheme"),
            (":x", "does not start with a scheme"),
            ("1http://x", "does not start with a scheme"),
            ("https:", "does not start with a scheme"),
            ("ht tp://x", "does not start with a scheme"),
            ("https://x/a b", "whitespace or control characters"),
            ("https://x/\n", "whitespace or control characters"),
        ];
        for (uri, reason) in bad {
            for (example, pointer) in pointers {
                let v = set(base(example), pointer, json!(uri));
                refused(&v, &path_of(pointer), reason, uri);
            }
        }
        for uri in [
            "https://x",
            "hf://org/model",
            "s3://bucket/key",
            "urn:uuid:1234",
            "git+https://h/r.git",
        ] {
            assert_eq!(uri.parse::<Uri>().unwrap().as_str(), uri);
        }
    }

    // ---- Manifests.

    #[test]
    fn manifest_root_must_equal_the_subject_digest() {
        let resource = "/predicate/manifest/resources/1/digest";
        for example in ["model", "dataset"] {
            let v = set(base(example), resource, json!(digest("other bytes")));
            refused(&v, "$.predicate.manifest", "root digest", example);
            let v = set(
                base(example),
                "/subject/0/digest/sha256",
                json!(digest("other")),
            );
            refused(&v, "$.predicate.manifest", "must be equal", example);
        }
        // A private dataset that logs its manifest must log the root, not the commitment.
        let manifest = base("dataset")["predicate"]["manifest"].clone();
        let v = set(base("private"), "/predicate/manifest", manifest);
        refused(
            &v,
            "$.predicate.manifest",
            "root digest",
            "private with manifest",
        );
        // Without a manifest, the subject digest is not checked against anything.
        let v = remove(base("dataset"), "/predicate/manifest");
        let v = set(v, "/subject/0/digest/sha256", json!(digest("anything")));
        accepted(&v);
    }

    #[test]
    fn manifest_rules_are_the_manifest_module_s() {
        let v = set(
            base("model"),
            "/predicate/manifest/resources/0/name",
            json!("zzz.json"),
        );
        refused(
            &v,
            "$.predicate.manifest.resources[1].name",
            "out of order",
            "order",
        );
        let v = set(
            base("model"),
            "/predicate/manifest/serialization/method",
            json!("shards"),
        );
        refused(
            &v,
            "$.predicate.manifest.serialization.method",
            "not supported",
            "method",
        );
        let v = set(
            base("model"),
            "/predicate/manifest/resources/2/digest",
            json!("AB"),
        );
        refused(
            &v,
            "$.predicate.manifest.resources[2].digest",
            "64 lowercase",
            "digest",
        );
        let v = set(base("model"), "/predicate/manifest/resources", json!([]));
        refused(
            &v,
            "$.predicate.manifest.resources",
            "at least one file",
            "empty",
        );
    }

    // ---- Builders.

    #[test]
    fn builders_validate_the_rules_that_relate_fields() {
        let Declaration::Model(model) = parse_statement(MODEL).unwrap() else {
            panic!("not a model")
        };
        assert_eq!(model.validate(), Ok(()));
        let mut m = model.clone();
        m.training_data.clear();
        assert_eq!(
            m.validate().unwrap_err().path(),
            Some("$.predicate.trainingData")
        );
        m.data_disclosure = DataDisclosure::Withheld;
        assert_eq!(m.validate(), Ok(()));
        let mut m = model.clone();
        m.digest = Digest::of(b"not the root");
        assert_eq!(
            m.validate().unwrap_err().path(),
            Some("$.predicate.manifest")
        );
        let mut m = model.clone();
        m.supplier = Some(String::new());
        assert_eq!(
            m.validate().unwrap_err().path(),
            Some("$.predicate.supplier")
        );

        let Declaration::Dataset(dataset) = parse_statement(DATASET).unwrap() else {
            panic!("not a dataset")
        };
        let mut d = dataset.clone();
        d.sources.clear();
        assert_eq!(
            d.validate().unwrap_err().path(),
            Some("$.predicate.sources")
        );
        let mut d = dataset;
        let period = d.sources[0].collection_period.as_mut().unwrap();
        std::mem::swap(&mut period.start, &mut period.end);
        let err = d.validate().unwrap_err();
        assert_eq!(
            err.path(),
            Some("$.predicate.sources[0].collectionPeriod.end")
        );
    }

    #[test]
    fn defined_fields_win_over_extensions() {
        let Declaration::Model(mut m) = parse_statement(MODEL).unwrap() else {
            panic!("not a model")
        };
        m.extensions.insert("version".into(), json!("9.9"));
        m.extensions.insert("x-glasslog-note".into(), json!([1, 2]));
        let written = parse_statement(&m.to_statement_json()).unwrap();
        assert_eq!(written.version(), "1.2.0");
        let Declaration::Model(w) = written else {
            panic!("not a model")
        };
        assert_eq!(w.extensions.len(), 1);
        assert_eq!(w.extensions["x-glasslog-note"], json!([1, 2]));
    }

    #[test]
    fn builders_write_minimal_declarations() {
        let Declaration::Model(mut m) = parse_statement(MODEL).unwrap() else {
            panic!("not a model")
        };
        m.training_data.clear();
        m.data_disclosure = DataDisclosure::None;
        m.base_models.clear();
        (m.supersedes, m.supplier, m.download_location) = (None, None, None);
        (m.model_card, m.description) = (None, None);
        let written = m.to_statement_json();
        let v: Value = serde_json::from_slice(&written).unwrap();
        let mut keys: Vec<&str> = v["predicate"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "dataDisclosure",
                "license",
                "manifest",
                "name",
                "releaseTime",
                "trainingData",
                "version"
            ]
        );
        assert_eq!(parse_statement(&written).unwrap(), Declaration::Model(m));
    }

    // ---- Robustness.

    #[test]
    fn no_input_makes_it_panic() {
        for example in [MODEL, DATASET, PRIVATE] {
            for end in (0..example.len()).step_by(7) {
                let _ = parse_statement(&example[..end]);
            }
            for i in (0..example.len()).step_by(3) {
                for byte in [b'"', b'0', b'}', b'\xff', b'A'] {
                    let mut mutated = example.to_vec();
                    mutated[i] = byte;
                    let _ = validate_envelope_payload(PAYLOAD_TYPE, &mutated, &[]);
                }
            }
        }
        for s in [
            "\u{10FFFF}",
            "é",
            "2024-05-01T12:00:00.é",
            "(",
            ")",
            "WITH",
            "DocumentRef-:",
        ] {
            let _ = s.parse::<Timestamp>();
            let _ = s.parse::<LicenseExpression>();
            let _ = s.parse::<Name>();
            let _ = s.parse::<Digest>();
            let _ = s.parse::<Uri>();
        }
    }
}
