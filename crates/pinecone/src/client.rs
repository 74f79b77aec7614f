//! The REST client: control plane (describe an index) and data plane
//! (upsert records, delete, search) through [`bdc_http::HttpClient`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bdc_http::{ClientOptions, Clock, HttpClient, TokenAuth};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::PineconeError;
use crate::record::{Record, to_line};
use crate::settings::PineconeSettings;

/// Ids per delete request (Pinecone's limit).
pub const DELETE_BATCH: usize = 1000;

/// Which of the two indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Dense,
    Sparse,
}

/// What `describe_index` told us about one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    pub name: String,
    /// Data-plane base URL (`https://<host>`).
    pub host: Url,
    /// The field whose text Pinecone embeds (`embed.field_map.text`).
    pub text_field: String,
    pub model: Option<String>,
}

#[derive(Deserialize)]
struct DescribeIndex {
    name: String,
    host: String,
    #[serde(default)]
    embed: Option<Embed>,
}

#[derive(Deserialize)]
struct Embed {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    field_map: HashMap<String, String>,
}

struct IndexHandle {
    info: IndexInfo,
    http: HttpClient,
}

/// One record id that could not be written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    pub id: String,
    pub error: String,
}

/// The outcome of an [`upsert`](PineconeClient::upsert) or
/// [`delete`](PineconeClient::delete): a batch that failed after retries
/// does not stop the others; its ids are listed in `failed` so the caller
/// keeps them for the next run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub done: Vec<String>,
    pub failed: Vec<FailedRecord>,
    /// Data-plane requests sent (both indexes).
    pub requests: u64,
}

/// A search hit (hybrid: dense and sparse merged by reciprocal rank).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    /// Reciprocal-rank-fusion score (higher is better).
    pub score: f64,
    pub fields: Map<String, Value>,
}

#[derive(Deserialize)]
struct SearchResponse {
    result: SearchResult,
}

#[derive(Deserialize)]
struct SearchResult {
    #[serde(default)]
    hits: Vec<RawHit>,
}

#[derive(Deserialize)]
struct RawHit {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    fields: Map<String, Value>,
}

/// The Pinecone client of one sync run.
pub struct PineconeClient {
    settings: PineconeSettings,
    control: HttpClient,
    clock: Option<Arc<dyn Clock>>,
    max_retries: u32,
    handles: Mutex<HashMap<String, Arc<IndexHandle>>>,
}

impl std::fmt::Debug for PineconeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PineconeClient")
            .field("index", &self.settings.index_name)
            .field("instance", &self.settings.instance)
            .finish()
    }
}

const COLLECTOR: &str = "search-index-sync";

impl PineconeClient {
    pub fn new(settings: PineconeSettings) -> Result<Self, PineconeError> {
        let control = HttpClient::new(Self::options(&settings, settings.control_url.clone()))?;
        Ok(PineconeClient {
            settings,
            control,
            clock: None,
            max_retries: 4,
            handles: Mutex::new(HashMap::new()),
        })
    }

    /// Waits (backoff, `Retry-After`) go through `clock` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.control = self.control.with_clock(clock.clone());
        self.clock = Some(clock);
        self
    }

    /// Retries after the first attempt on `429`, `5xx` and network errors.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    pub fn settings(&self) -> &PineconeSettings {
        &self.settings
    }

    fn options(settings: &PineconeSettings, base: Url) -> ClientOptions {
        let mut o = ClientOptions::new(COLLECTOR, base);
        o.tokens = vec![settings.api_key.clone()];
        o.auth = TokenAuth::Header("Api-Key");
        o.timeout = Duration::from_secs(60);
        o.max_wait = Duration::from_secs(120);
        o
    }

    fn http_for(&self, base: Url) -> Result<HttpClient, PineconeError> {
        let mut o = Self::options(&self.settings, base);
        o.max_retries = self.max_retries;
        let mut c = HttpClient::new(o)?;
        if let Some(clock) = &self.clock {
            c = c.with_clock(clock.clone());
        }
        Ok(c)
    }

    fn version(&self) -> [(&str, &str); 1] {
        [("X-Pinecone-API-Version", self.settings.api_version.as_str())]
    }

    /// Describe `name` on the control plane: its host and embedded field.
    pub async fn describe_index(&self, name: &str) -> Result<IndexInfo, PineconeError> {
        let url = format!(
            "{}/indexes/{name}",
            self.settings.control_url.as_str().trim_end_matches('/')
        );
        let d: DescribeIndex = match self.control.get_json(&url).await {
            Ok(d) => d,
            Err(e) if e.status() == Some(404) => {
                return Err(PineconeError::IndexMissing { name: name.into() });
            }
            Err(e) => return Err(e.into()),
        };
        let Some(embed) = d.embed else {
            return Err(PineconeError::NoIntegratedEmbedding { name: d.name });
        };
        let text_field = embed
            .field_map
            .get("text")
            .cloned()
            .unwrap_or_else(|| "chunk_text".into());
        let host_str = if d.host.contains("://") {
            d.host.clone()
        } else {
            format!("https://{}", d.host)
        };
        let host = Url::parse(&host_str).map_err(|_| PineconeError::BadAnswer {
            what: "describe_index",
            detail: format!("index {name}: host {:?} is not a host name", d.host),
        })?;
        // The API key goes to this host: never in clear text unless the
        // control plane itself is plain HTTP (a local stand-in).
        if host.scheme() != "https" && self.settings.control_url.scheme() == "https" {
            return Err(PineconeError::BadAnswer {
                what: "describe_index",
                detail: format!("index {name}: host {host} is not https"),
            });
        }
        Ok(IndexInfo {
            name: d.name,
            host,
            text_field,
            model: embed.model,
        })
    }

    async fn handle(&self, flavor: Flavor) -> Result<Arc<IndexHandle>, PineconeError> {
        let name = match flavor {
            Flavor::Dense => self.settings.index_name.clone(),
            Flavor::Sparse => self.settings.sparse_index_name(),
        };
        if let Ok(map) = self.handles.lock()
            && let Some(h) = map.get(&name)
        {
            return Ok(h.clone());
        }
        let info = self.describe_index(&name).await?;
        let http = self.http_for(info.host.clone())?;
        let h = Arc::new(IndexHandle { info, http });
        if let Ok(mut map) = self.handles.lock() {
            map.insert(name, h.clone());
        }
        Ok(h)
    }

    /// Both indexes, described (fails when either is missing).
    pub async fn indexes(&self) -> Result<(IndexInfo, IndexInfo), PineconeError> {
        let d = self.handle(Flavor::Dense).await?;
        let s = self.handle(Flavor::Sparse).await?;
        Ok((d.info.clone(), s.info.clone()))
    }

    /// Upsert `records` into `namespace` of the dense and the sparse index,
    /// in batches of `PINECONE_BATCH_SIZE`. A record counts as done only
    /// when both indexes took its batch.
    pub async fn upsert(
        &self,
        namespace: &str,
        records: &[Record],
    ) -> Result<SyncReport, PineconeError> {
        let dense = self.handle(Flavor::Dense).await?;
        let sparse = self.handle(Flavor::Sparse).await?;
        let mut report = SyncReport::default();
        let path = format!("/records/namespaces/{}/upsert", encode(namespace));
        for batch in records.chunks(self.settings.batch_size.max(1)) {
            let mut error = None;
            for h in [&dense, &sparse] {
                let mut body = Vec::new();
                for r in batch {
                    // Serialising a `Value` cannot fail.
                    let line =
                        serde_json::to_vec(&to_line(r, &h.info.text_field)).unwrap_or_default();
                    body.extend_from_slice(&line);
                    body.push(b'\n');
                }
                report.requests += 1;
                if let Err(e) = h
                    .http
                    .post_with_headers(&path, "application/x-ndjson", &self.version(), body)
                    .await
                {
                    error = Some(format!("{}: {e}", h.info.name));
                    break;
                }
            }
            match error {
                None => report.done.extend(batch.iter().map(|r| r.id.clone())),
                Some(err) => {
                    tracing::warn!(namespace, records = batch.len(), error = %err, "Pinecone upsert batch failed; its ids are kept for the next run");
                    report.failed.extend(batch.iter().map(|r| FailedRecord {
                        id: r.id.clone(),
                        error: err.clone(),
                    }));
                }
            }
        }
        metrics::counter!("bdc_pinecone_records_total", "operation" => "upsert", "outcome" => "ok")
            .increment(report.done.len() as u64);
        metrics::counter!("bdc_pinecone_records_total", "operation" => "upsert", "outcome" => "failed")
            .increment(report.failed.len() as u64);
        Ok(report)
    }

    /// Delete `ids` from `namespace` of both indexes (batches of 1,000).
    pub async fn delete(
        &self,
        namespace: &str,
        ids: &[String],
    ) -> Result<SyncReport, PineconeError> {
        let dense = self.handle(Flavor::Dense).await?;
        let sparse = self.handle(Flavor::Sparse).await?;
        let mut report = SyncReport::default();
        for batch in ids.chunks(DELETE_BATCH) {
            let body = serde_json::json!({"ids": batch, "namespace": namespace});
            let body = serde_json::to_vec(&body).unwrap_or_default();
            let mut error = None;
            for h in [&dense, &sparse] {
                report.requests += 1;
                if let Err(e) = h
                    .http
                    .post_with_headers(
                        "/vectors/delete",
                        "application/json",
                        &self.version(),
                        body.clone(),
                    )
                    .await
                {
                    error = Some(format!("{}: {e}", h.info.name));
                    break;
                }
            }
            match error {
                None => report.done.extend(batch.iter().cloned()),
                Some(err) => report.failed.extend(batch.iter().map(|id| FailedRecord {
                    id: id.clone(),
                    error: err.clone(),
                })),
            }
        }
        metrics::counter!("bdc_pinecone_records_total", "operation" => "delete", "outcome" => "ok")
            .increment(report.done.len() as u64);
        metrics::counter!("bdc_pinecone_records_total", "operation" => "delete", "outcome" => "failed")
            .increment(report.failed.len() as u64);
        Ok(report)
    }

    /// Hybrid search: the same query text against the dense and the sparse
    /// index, merged by reciprocal rank fusion (k = 60), best first.
    /// `filter` is Pinecone's metadata filter (`{"source": {"$eq": "slack"}}`).
    pub async fn search(
        &self,
        namespace: &str,
        text: &str,
        top_k: usize,
        filter: Option<&Value>,
        fields: &[&str],
    ) -> Result<Vec<Hit>, PineconeError> {
        const RRF_K: f64 = 60.0;
        let path = format!("/records/namespaces/{}/search", encode(namespace));
        let mut query = serde_json::json!({"inputs": {"text": text}, "top_k": top_k});
        if let (Some(f), Some(q)) = (filter, query.as_object_mut()) {
            q.insert("filter".into(), f.clone());
        }
        let body = serde_json::to_vec(&serde_json::json!({"query": query, "fields": fields}))
            .unwrap_or_default();
        let mut merged: Vec<Hit> = Vec::new();
        for flavor in [Flavor::Dense, Flavor::Sparse] {
            let h = self.handle(flavor).await?;
            let resp = h
                .http
                .post_with_headers(&path, "application/json", &self.version(), body.clone())
                .await?;
            let parsed: SearchResponse =
                serde_json::from_slice(&resp.body).map_err(|e| PineconeError::BadAnswer {
                    what: "search",
                    detail: format!("{}: {e}", h.info.name),
                })?;
            for (rank, hit) in parsed.result.hits.into_iter().enumerate() {
                let add = 1.0 / (RRF_K + rank as f64 + 1.0);
                match merged.iter_mut().find(|m| m.id == hit.id) {
                    Some(m) => {
                        m.score += add;
                        for (k, v) in hit.fields {
                            m.fields.entry(k).or_insert(v);
                        }
                    }
                    None => merged.push(Hit {
                        id: hit.id,
                        score: add,
                        fields: hit.fields,
                    }),
                }
            }
        }
        merged.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        merged.truncate(top_k);
        Ok(merged)
    }
}

/// Percent-encode a namespace for a URL path segment.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
