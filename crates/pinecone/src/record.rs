//! Records: what is upserted, with ids stable across syncs.

use serde_json::{Map, Value};

/// Pinecone's limit on a record id, in bytes.
pub const MAX_ID_BYTES: usize = 512;

/// One chunk of a document, ready to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// [`record_id`] of the document id and chunk start.
    pub id: String,
    /// The text Pinecone embeds (sent in the index's `field_map` field).
    pub text: String,
    /// Metadata fields (stored, filterable). Values Pinecone cannot store
    /// (`null`, objects, arrays of non-strings) are dropped on the wire.
    pub metadata: Map<String, Value>,
}

/// The record id of the chunk starting at `chunk_start` (characters) in
/// document `doc_id`: `<doc_id>#<chunk_start>`. Stable, so a re-sync
/// overwrites instead of duplicating. An id longer than Pinecone's 512
/// bytes keeps its first part and a hash of the whole document id.
pub fn record_id(doc_id: &str, chunk_start: usize) -> String {
    let id = format!("{doc_id}#{chunk_start}");
    if id.len() <= MAX_ID_BYTES {
        return id;
    }
    let hash = bdc_http::fnv1a64(doc_id.as_bytes());
    let mut cut = 400.min(doc_id.len());
    while !doc_id.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash:016x}#{chunk_start}", &doc_id[..cut])
}

/// The document id part of a [`record_id`] (before the last `#`).
pub fn document_of(record_id: &str) -> &str {
    record_id.rsplit_once('#').map_or(record_id, |(d, _)| d)
}

/// Whether Pinecone can store `v` as a metadata value: string, number,
/// boolean, or a list of strings.
pub(crate) fn storable(v: &Value) -> bool {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        Value::Null | Value::Object(_) => false,
    }
}

/// The JSON line for `record`: `_id`, the text under `text_field`, then
/// the storable metadata (never overriding `_id` or the text).
pub(crate) fn to_line(record: &Record, text_field: &str) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), Value::String(record.id.clone()));
    m.insert(text_field.into(), Value::String(record.text.clone()));
    for (k, v) in &record.metadata {
        if k != "_id" && k != "id" && k != text_field && storable(v) {
            m.insert(k.clone(), v.clone());
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_bounded() {
        assert_eq!(
            record_id("slack:C1:U1:2026-01-01T10", 0),
            "slack:C1:U1:2026-01-01T10#0"
        );
        assert_eq!(record_id("a", 800), record_id("a", 800));
        let long = "é".repeat(400);
        let id = record_id(&long, 1000);
        assert!(id.len() <= MAX_ID_BYTES, "{}", id.len());
        assert!(id.ends_with("#1000"));
        assert_ne!(
            record_id(&format!("{long}x"), 0),
            record_id(&format!("{long}y"), 0)
        );
        assert_eq!(document_of("mail:<a#b@x>#200"), "mail:<a#b@x>");
    }

    #[test]
    fn lines_drop_what_pinecone_cannot_store() {
        let mut metadata = Map::new();
        metadata.insert("url".into(), Value::String("https://x".into()));
        metadata.insert("none".into(), Value::Null);
        metadata.insert("tags".into(), serde_json::json!(["a", "b"]));
        metadata.insert("mixed".into(), serde_json::json!(["a", 1]));
        metadata.insert("_id".into(), Value::String("spoof".into()));
        let line = to_line(
            &Record {
                id: "d#0".into(),
                text: "hello".into(),
                metadata,
            },
            "chunk_text",
        );
        assert_eq!(
            line,
            serde_json::json!({"_id": "d#0", "chunk_text": "hello", "url": "https://x", "tags": ["a", "b"]})
        );
    }
}
