//! Parsing the wg21.link index and mapping its entries to
//! [`ActivityRecord`]s.
//!
//! The index is one JSON object keyed by document number (`P2300R10`,
//! `N4950`, `CWG1234`, `SD-6`, ...); each value is an object with a `title`
//! and usually `type`, `author`, `date`, `subgroup`, `link`, `long_link`
//! and more. Only the top level is strict (not an object → parse error);
//! every entry is handled on its own:
//!
//! * `date` `YYYY-MM-DD` (a time suffix is ignored) → that day, 00:00 UTC;
//!   `YYYY-MM` → the 1st of the month and `YYYY` → 1 January, with
//!   `"date_precision": "month"|"year"` in the payload (counted as
//!   `partial_date`); missing, empty or unparseable → the entry is skipped
//!   and counted as `skipped_no_date`.
//! * an entry that is not an object or whose key is not a usable id
//!   (empty, control characters, > 512 bytes) → `skipped_invalid`.
//! * `type` → `kind`, slugified (`standing-document` → `standing_document`);
//!   missing → inferred from the key (`P`/`N` → `paper`, `CWG`/`LWG`/`EWG`/
//!   `LEWG` → `issue`, `SD` → `standing_document`, else `document`).
//! * `author` → `authors` (split on commas and " and "); the first is the
//!   actor. `link` (else `long_link`) → `url` when it is an http(s) URL.
//! * payload = the entry object as given, plus `document` (the key) and
//!   `authors`.

use bdc_core::ActivityRecord;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::{Map, Value};

use crate::Wg21Error;

/// `source_system` of every record this collector writes.
pub const SOURCE_SYSTEM: &str = "wg21";

/// The records of one index, with what was skipped.
#[derive(Debug, Clone, Default)]
pub struct ParsedIndex {
    /// Entries in the index (the `fetched` count).
    pub entries: u64,
    pub records: Vec<ActivityRecord>,
    /// Entries without a usable `date`.
    pub skipped_no_date: u64,
    /// Entries that are not objects or whose key is not a usable id.
    pub skipped_invalid: u64,
    /// Records dated to a month or a year only.
    pub partial_date: u64,
    /// Newest `date` among the records.
    pub max_date: Option<NaiveDate>,
}

/// How precise an entry's date is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePrecision {
    Day,
    Month,
    Year,
}

impl DatePrecision {
    pub fn as_str(self) -> &'static str {
        match self {
            DatePrecision::Day => "day",
            DatePrecision::Month => "month",
            DatePrecision::Year => "year",
        }
    }
}

/// Why one entry did not become a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    NoDate,
    Invalid(String),
}

/// Parse a whole index body. `origin` (URL or path) is named in errors.
pub fn parse_index(bytes: &[u8], origin: &str) -> Result<ParsedIndex, Wg21Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value: Value = serde_json::from_slice(bytes).map_err(|source| Wg21Error::Json {
        origin: origin.to_owned(),
        source,
    })?;
    let Value::Object(map) = value else {
        return Err(Wg21Error::NotAnObject {
            origin: origin.to_owned(),
            found: json_kind(&value),
        });
    };
    let mut out = ParsedIndex {
        entries: map.len() as u64,
        records: Vec::with_capacity(map.len()),
        ..ParsedIndex::default()
    };
    for (key, entry) in &map {
        match entry_to_record(key, entry) {
            Ok((record, precision)) => {
                if precision != DatePrecision::Day {
                    out.partial_date += 1;
                }
                let day = record.occurred_at().date_naive();
                out.max_date = Some(out.max_date.map_or(day, |m| m.max(day)));
                out.records.push(record);
            }
            Err(Skip::NoDate) => {
                out.skipped_no_date += 1;
                tracing::debug!(document = %key, "wg21 entry without a usable date skipped");
            }
            Err(Skip::Invalid(reason)) => {
                out.skipped_invalid += 1;
                tracing::warn!(document = %key, reason = %reason, "invalid wg21 entry skipped");
            }
        }
    }
    Ok(out)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn non_empty_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    obj.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Map one index entry to a record (and how precise its date is).
pub fn entry_to_record(key: &str, entry: &Value) -> Result<(ActivityRecord, DatePrecision), Skip> {
    let obj = entry.as_object().ok_or_else(|| {
        Skip::Invalid(format!(
            "entry {key:?} is {}, not an object",
            json_kind(entry)
        ))
    })?;
    let (date, precision) = non_empty_str(obj, "date")
        .and_then(parse_date)
        .ok_or(Skip::NoDate)?;
    let occurred_at: DateTime<Utc> = date.and_time(NaiveTime::MIN).and_utc();
    let kind = non_empty_str(obj, "type")
        .map(slugify)
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| infer_kind(key).to_owned());
    let invalid = |e: bdc_core::ProtocolError| Skip::Invalid(format!("document {key:?}: {e}"));
    let mut record = ActivityRecord::new(SOURCE_SYSTEM, key, occurred_at, kind).map_err(invalid)?;

    let authors = non_empty_str(obj, "author")
        .map(split_authors)
        .unwrap_or_default();
    if let Some(first) = authors.first() {
        record = record
            .with_actor(truncate_bytes(first, 256))
            .map_err(invalid)?;
    }
    if let Some(title) = non_empty_str(obj, "title") {
        record = record.with_title(title);
    }
    if let Some(url) = ["link", "long_link"]
        .iter()
        .filter_map(|f| non_empty_str(obj, f))
        .find(|u| is_usable_url(u))
    {
        record = record.with_url(url).map_err(invalid)?;
    }
    let mut payload = obj.clone();
    payload.insert("document".into(), Value::String(key.to_owned()));
    payload.insert(
        "authors".into(),
        Value::Array(authors.into_iter().map(Value::String).collect()),
    );
    if precision != DatePrecision::Day {
        payload.insert(
            "date_precision".into(),
            Value::String(precision.as_str().into()),
        );
    }
    let record = record
        .with_payload(Value::Object(payload))
        .map_err(invalid)?;
    Ok((record, precision))
}

/// `YYYY-MM-DD` (anything after `T` or a space ignored), `YYYY-MM`, `YYYY`.
pub fn parse_date(s: &str) -> Option<(NaiveDate, DatePrecision)> {
    let s = s.trim();
    let date_part = s.split(['T', ' ']).next().unwrap_or(s);
    let parts: Vec<&str> = date_part.split('-').collect();
    let num = |p: &str| -> Option<u32> {
        if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let year = parts.first().and_then(|p| {
        if p.len() == 4 {
            num(p).and_then(|y| i32::try_from(y).ok())
        } else {
            None
        }
    })?;
    match parts.as_slice() {
        [_] => NaiveDate::from_ymd_opt(year, 1, 1).map(|d| (d, DatePrecision::Year)),
        [_, m] => NaiveDate::from_ymd_opt(year, num(m)?, 1).map(|d| (d, DatePrecision::Month)),
        [_, m, d] => {
            NaiveDate::from_ymd_opt(year, num(m)?, num(d)?).map(|d| (d, DatePrecision::Day))
        }
        _ => None,
    }
}

/// Lower-case identifier from a free-form `type`: ASCII letters and digits
/// kept, every other run of characters becomes one `_`, at most 64 bytes.
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_sep = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_sep = true;
        }
        if out.len() >= 64 {
            break;
        }
    }
    out.truncate(64);
    out
}

/// Kind for an entry without a `type`, from its document number.
pub fn infer_kind(key: &str) -> &'static str {
    let upper = key.trim().to_ascii_uppercase();
    let digit_after = |prefix: &str| {
        upper
            .strip_prefix(prefix)
            .and_then(|r| r.chars().next())
            .is_some_and(|c| c.is_ascii_digit())
    };
    if upper.starts_with("SD") {
        "standing_document"
    } else if ["CWG", "LWG", "EWG", "LEWG"].iter().any(|p| digit_after(p)) {
        "issue"
    } else if digit_after("P") || digit_after("N") {
        "paper"
    } else {
        "document"
    }
}

/// Split an `author` field: commas and " and " separate names.
pub fn split_authors(s: &str) -> Vec<String> {
    s.replace(" and ", ",")
        .split(',')
        .map(str::trim)
        .map(|a| a.strip_prefix("and ").unwrap_or(a).trim())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_usable_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://")) && !u.chars().any(char::is_whitespace)
}

fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_at_each_precision() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(
            parse_date("2024-06-28"),
            Some((d(2024, 6, 28), DatePrecision::Day))
        );
        assert_eq!(
            parse_date(" 2024-06-28T10:00:00Z "),
            Some((d(2024, 6, 28), DatePrecision::Day))
        );
        assert_eq!(
            parse_date("2023-05"),
            Some((d(2023, 5, 1), DatePrecision::Month))
        );
        assert_eq!(
            parse_date("1998"),
            Some((d(1998, 1, 1), DatePrecision::Year))
        );
        for bad in [
            "",
            "-",
            "2023-13-01",
            "2023-02-30",
            "May 2023",
            "23-05-01",
            "2023-05-01-02",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn slugs_and_inferred_kinds() {
        assert_eq!(slugify("paper"), "paper");
        assert_eq!(slugify("standing-document"), "standing_document");
        assert_eq!(slugify("  Core Issue!! "), "core_issue");
        assert_eq!(slugify("---"), "");
        assert_eq!(infer_kind("P2300R10"), "paper");
        assert_eq!(infer_kind("N4950"), "paper");
        assert_eq!(infer_kind("CWG1234"), "issue");
        assert_eq!(infer_kind("LWG3456"), "issue");
        assert_eq!(infer_kind("SD-6"), "standing_document");
        assert_eq!(infer_kind("EDIT42"), "document");
    }

    #[test]
    fn authors_are_split() {
        assert_eq!(
            split_authors("Barry Revzin, Jonathan Wakely"),
            ["Barry Revzin", "Jonathan Wakely"]
        );
        assert_eq!(
            split_authors("A. Alexandrescu, B. Andersen, and C. Sandoval"),
            ["A. Alexandrescu", "B. Andersen", "C. Sandoval"]
        );
        assert_eq!(
            split_authors("Mungo Gill and Alisdair Meredith"),
            ["Mungo Gill", "Alisdair Meredith"]
        );
        assert!(split_authors(" , ").is_empty());
    }

    #[test]
    fn entry_maps_to_record() {
        let entry = json!({
            "type": "paper", "title": "`std::execution`",
            "author": "Michał Dominiak, Georgy Evtushenko and Lewis Baker",
            "date": "2024-06-28", "subgroup": "LEWG",
            "link": "https://wg21.link/p2300r10", "extra": [1, 2]
        });
        let (rec, precision) = entry_to_record("P2300R10", &entry).unwrap();
        assert_eq!(precision, DatePrecision::Day);
        assert_eq!(rec.source_system(), "wg21");
        assert_eq!(rec.external_id(), "P2300R10");
        assert_eq!(rec.kind(), "paper");
        assert_eq!(rec.actor(), Some("Michał Dominiak"));
        assert_eq!(rec.title(), Some("`std::execution`"));
        assert_eq!(rec.url(), Some("https://wg21.link/p2300r10"));
        assert_eq!(rec.occurred_at().to_rfc3339(), "2024-06-28T00:00:00+00:00");
        let p = rec.payload();
        assert_eq!(p["document"], "P2300R10");
        assert_eq!(
            p["authors"],
            json!(["Michał Dominiak", "Georgy Evtushenko", "Lewis Baker"])
        );
        assert_eq!(p["extra"], json!([1, 2]));
        assert_eq!(p["subgroup"], "LEWG");
    }

    #[test]
    fn entry_fallbacks() {
        // No author, bad link but good long_link, month date, no type.
        let entry = json!({
            "title": "Some paper", "date": "2023-05",
            "link": "not a url", "long_link": "https://www.open-std.org/x.html"
        });
        let (rec, precision) = entry_to_record("P9999R0", &entry).unwrap();
        assert_eq!(precision, DatePrecision::Month);
        assert_eq!(rec.actor(), None);
        assert_eq!(rec.kind(), "paper");
        assert_eq!(rec.url(), Some("https://www.open-std.org/x.html"));
        assert_eq!(rec.payload()["date_precision"], "month");
        assert_eq!(rec.payload()["authors"], json!([]));

        assert_eq!(
            entry_to_record("P1", &json!({"title": "x", "date": ""})).unwrap_err(),
            Skip::NoDate
        );
        assert_eq!(
            entry_to_record("P1", &json!({"title": "x", "date": 2024})).unwrap_err(),
            Skip::NoDate
        );
        assert!(matches!(
            entry_to_record("P1", &json!("just a string")),
            Err(Skip::Invalid(_))
        ));
        assert!(matches!(
            entry_to_record(" ", &json!({"date": "2024-01-01"})),
            Err(Skip::Invalid(_))
        ));
    }

    #[test]
    fn top_level_must_be_an_object() {
        let e = parse_index(b"[1,2]", "mem").unwrap_err();
        assert!(
            matches!(
                e,
                Wg21Error::NotAnObject {
                    found: "an array",
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_index(b"{\"P1\": {", "mem").unwrap_err();
        assert!(matches!(e, Wg21Error::Json { .. }), "{e}");
        assert_eq!(e.category(), bdc_core::FailureCategory::Parse);
        let ok = parse_index(b"\xEF\xBB\xBF{}", "mem").unwrap();
        assert_eq!(ok.entries, 0);
    }
}
