//! The tantivy index under `WORKSPACE_DIR/index/tantivy/`: one tantivy
//! document per chunk, with the document's stored fields repeated.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, TantivyDocument, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};

use crate::SearchError;
use crate::chunk::{ChunkConfig, chunk};
use crate::doc::SearchDoc;

/// Memory of the index writer (tantivy splits it over its threads).
const WRITER_HEAP: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
struct Fields {
    chunk_id: Field,
    doc_id: Field,
    source: Field,
    kind: Field,
    title: Field,
    body: Field,
    url: Field,
    actor: Field,
    library: Field,
    at: Field,
    start: Field,
    version: Field,
    /// 1 on the first chunk of each document (counts documents).
    first: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        chunk_id: b.add_text_field("chunk_id", STRING | STORED),
        doc_id: b.add_text_field("doc_id", STRING | STORED),
        source: b.add_text_field("source", STRING | STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        title: b.add_text_field("title", TEXT | STORED),
        body: b.add_text_field("body", TEXT | STORED),
        url: b.add_text_field("url", STORED),
        actor: b.add_text_field("actor", STRING | STORED),
        library: b.add_text_field("library", STRING | STORED),
        at: b.add_date_field("at", INDEXED | STORED | FAST),
        start: b.add_u64_field("start", STORED),
        version: b.add_u64_field("version", STORED),
        first: b.add_u64_field("first", INDEXED),
    };
    (b.build(), f)
}

/// What to look for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// Free text; search syntax (`"phrase"`, `+must`, `field:`) is honoured
    /// where it parses and the rest is taken as plain terms.
    pub text: String,
    pub source: Option<String>,
    pub kind: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Any of these actors (a person's actors across sources).
    pub actors: Option<Vec<String>>,
    pub library: Option<String>,
    pub limit: usize,
}

/// One ranked result (the best chunk of a document).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub score: f32,
    pub doc_id: String,
    pub source: String,
    pub kind: String,
    pub title: String,
    pub url: Option<String>,
    pub actor: Option<String>,
    pub library: Option<String>,
    pub at: DateTime<Utc>,
    /// Highlighted snippet, HTML (`<b>` around matches, text escaped).
    pub snippet_html: String,
    /// The same snippet as plain text.
    pub snippet: String,
}

/// The embedded index.
pub struct SearchIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .finish()
    }
}

fn tv(e: tantivy::TantivyError, dir: &Path, what: &'static str) -> SearchError {
    SearchError::Index {
        dir: dir.to_path_buf(),
        what,
        detail: e.to_string(),
    }
}

/// `WORKSPACE_DIR/index/tantivy`.
pub fn index_dir(workspace: &Path) -> PathBuf {
    workspace.join("index").join("tantivy")
}

impl SearchIndex {
    /// Open the index in `dir`, creating it when absent. Whatever a killed
    /// writer left uncommitted is not part of the index (tantivy's commit
    /// semantics) and its files are garbage-collected.
    pub fn open(dir: &Path) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir).map_err(|source| SearchError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema();
        let mmap = MmapDirectory::open(dir).map_err(|e| SearchError::Index {
            dir: dir.to_path_buf(),
            what: "opening the directory",
            detail: e.to_string(),
        })?;
        let index = Index::open_or_create(mmap, schema).map_err(|e| match e {
            tantivy::TantivyError::SchemaError(_) => SearchError::Layout {
                dir: dir.to_path_buf(),
            },
            e => tv(e, dir, "opening"),
        })?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| tv(e, dir, "opening a reader"))?;
        Ok(SearchIndex {
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
        })
    }

    /// Delete the index directory (a corrupted index is rebuilt from the
    /// database: `bdc search --reindex`).
    pub fn destroy(dir: &Path) -> Result<(), SearchError> {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SearchError::Io {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A writer for one sync (one per process: tantivy locks the index).
    pub fn writer(&self) -> Result<Writer<'_>, SearchError> {
        let w = self.index.writer(WRITER_HEAP).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => SearchError::Busy {
                dir: self.dir.clone(),
            },
            e => tv(e, &self.dir, "opening the writer"),
        })?;
        Ok(Writer {
            index: self,
            writer: w,
        })
    }

    /// Number of chunks in the committed index.
    pub fn chunks(&self) -> Result<u64, SearchError> {
        self.reader
            .reload()
            .map_err(|e| tv(e, &self.dir, "reloading"))?;
        Ok(self.reader.searcher().num_docs())
    }

    /// The version ([`SearchDoc::version`]) of document `doc_id` in the
    /// committed index; None when it is not there.
    pub fn version_of(&self, doc_id: &str) -> Result<Option<u64>, SearchError> {
        let d = self.first(self.fields.doc_id, doc_id)?;
        Ok(d.map(|d| {
            d.get_first(self.fields.version)
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
        }))
    }

    /// The first stored chunk whose `field` is `value`.
    fn first(&self, field: Field, value: &str) -> Result<Option<TantivyDocument>, SearchError> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        );
        let top = searcher
            .search(&q, &TopDocs::with_limit(1).order_by_score())
            .map_err(|e| tv(e, &self.dir, "finding a chunk"))?;
        let Some((_, addr)) = top.into_iter().next() else {
            return Ok(None);
        };
        let d = searcher
            .doc(addr)
            .map_err(|e| tv(e, &self.dir, "reading a chunk"))?;
        Ok(Some(d))
    }

    /// Number of documents in the committed index.
    pub fn documents(&self) -> Result<u64, SearchError> {
        let q = TermQuery::new(
            Term::from_field_u64(self.fields.first, 1),
            IndexRecordOption::Basic,
        );
        let n = self
            .reader
            .searcher()
            .search(&q, &tantivy::collector::Count)
            .map_err(|e| tv(e, &self.dir, "counting documents"))?;
        Ok(n as u64)
    }

    /// Whether the committed index holds document `doc_id`.
    pub fn contains(&self, doc_id: &str) -> Result<bool, SearchError> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_text(self.fields.doc_id, doc_id),
            IndexRecordOption::Basic,
        );
        let n = searcher
            .search(&q, &tantivy::collector::Count)
            .map_err(|e| tv(e, &self.dir, "looking a document up"))?;
        Ok(n > 0)
    }

    /// The chunk ids of `doc_id` in the committed index (what a remote
    /// index must delete when the document goes).
    pub fn chunk_ids(&self, doc_id: &str) -> Result<Vec<String>, SearchError> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_text(self.fields.doc_id, doc_id),
            IndexRecordOption::Basic,
        );
        // Every chunk, however long the document (no fixed cap).
        let n = searcher
            .search(&q, &tantivy::collector::Count)
            .map_err(|e| tv(e, &self.dir, "counting chunks"))?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let top = searcher
            .search(&q, &TopDocs::with_limit(n).order_by_score())
            .map_err(|e| tv(e, &self.dir, "listing chunks"))?;
        let mut out = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let d: TantivyDocument = searcher
                .doc(addr)
                .map_err(|e| tv(e, &self.dir, "reading a chunk"))?;
            if let Some(id) = d.get_first(self.fields.chunk_id).and_then(|v| v.as_str()) {
                out.push(id.to_owned());
            }
        }
        Ok(out)
    }

    /// One stored chunk by id: (its document's fields, the chunk text).
    pub fn chunk(&self, chunk_id: &str) -> Result<Option<(SearchDoc, String)>, SearchError> {
        let f = self.fields;
        let Some(d) = self.first(f.chunk_id, chunk_id)? else {
            return Ok(None);
        };
        let text = |field: Field| {
            d.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let at = d
            .get_first(f.at)
            .and_then(|v| v.as_datetime())
            .and_then(|t| DateTime::from_timestamp_micros(t.into_timestamp_micros()))
            .unwrap_or_default();
        let body = text(f.body).unwrap_or_default();
        Ok(Some((
            SearchDoc {
                doc_id: text(f.doc_id).unwrap_or_default(),
                source: text(f.source).unwrap_or_default(),
                kind: text(f.kind).unwrap_or_default(),
                title: text(f.title).unwrap_or_default(),
                text: String::new(),
                url: text(f.url),
                actor: text(f.actor),
                library: text(f.library),
                at,
                version: d.get_first(f.version).and_then(|v| v.as_u64()).unwrap_or(0),
            },
            body,
        )))
    }

    /// Make the last commit visible to [`chunk`](Self::chunk) and
    /// [`chunk_ids`](Self::chunk_ids).
    pub fn reload(&self) -> Result<(), SearchError> {
        self.reader
            .reload()
            .map_err(|e| tv(e, &self.dir, "reloading"))
    }

    /// Ranked results, one per document (its best chunk), best first.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>, SearchError> {
        self.reader
            .reload()
            .map_err(|e| tv(e, &self.dir, "reloading"))?;
        let searcher = self.reader.searcher();
        let f = self.fields;
        let mut parser = QueryParser::for_index(&self.index, vec![f.title, f.body]);
        parser.set_field_boost(f.title, 3.0);
        parser.set_conjunction_by_default();
        // Lenient: what does not parse is dropped or taken as terms, so a
        // query never errors out on syntax.
        let (text_query, _errors) = parser.parse_query_lenient(q.text.trim());
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query)];
        let term = |field: Field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, v),
                IndexRecordOption::Basic,
            ))
        };
        if let Some(s) = &q.source {
            clauses.push((Occur::Must, term(f.source, s)));
        }
        if let Some(k) = &q.kind {
            clauses.push((Occur::Must, term(f.kind, k)));
        }
        if let Some(l) = &q.library {
            clauses.push((Occur::Must, term(f.library, l)));
        }
        if let Some(actors) = &q.actors {
            let any: Vec<(Occur, Box<dyn Query>)> = actors
                .iter()
                .map(|a| (Occur::Should, term(f.actor, a)))
                .collect();
            // A person without actors matches nothing.
            if any.is_empty() {
                return Ok(Vec::new());
            }
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if let Some(since) = q.since {
            let t = tantivy::DateTime::from_timestamp_micros(since.timestamp_micros());
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    std::ops::Bound::Included(Term::from_field_date_for_search(f.at, t)),
                    std::ops::Bound::Unbounded,
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let limit = q.limit.clamp(1, 1000);
        // Chunks of one document compete; fetch extra to fill `limit`
        // documents.
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit * 4).order_by_score())
            .map_err(|e| tv(e, &self.dir, "searching"))?;
        // Best chunk per document, then the order and the cut; snippets
        // only for what is returned.
        let mut best: Vec<(f32, DateTime<Utc>, String, TantivyDocument)> = Vec::new();
        for (score, addr) in top {
            let d: TantivyDocument = searcher
                .doc(addr)
                .map_err(|e| tv(e, &self.dir, "reading a result"))?;
            let doc_id = d
                .get_first(f.doc_id)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            // Chunks come best first: a later chunk of a document is worse.
            if best.iter().any(|(_, _, id, _)| *id == doc_id) {
                continue;
            }
            let at = d
                .get_first(f.at)
                .and_then(|v| v.as_datetime())
                .and_then(|t| DateTime::from_timestamp_micros(t.into_timestamp_micros()))
                .unwrap_or_default();
            best.push((score, at, doc_id, d));
        }
        // Equal scores: newer first, then by id (stable across segment
        // layouts, so a rebuilt index ranks the same).
        best.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| b.1.cmp(&a.1))
                .then_with(|| a.2.cmp(&b.2))
        });
        best.truncate(limit);
        let mut snippets = SnippetGenerator::create(&searcher, &query, f.body)
            .map_err(|e| tv(e, &self.dir, "preparing snippets"))?;
        snippets.set_max_num_chars(200);
        let mut out: Vec<Hit> = Vec::with_capacity(best.len());
        for (score, at, doc_id, d) in best {
            let text = |field: Field| {
                d.get_first(field)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let snippet = snippets.snippet_from_doc(&d);
            let mut snippet_html = snippet.to_html();
            let mut plain = snippet.fragment().to_owned();
            if plain.is_empty() {
                let body = text(f.body).unwrap_or_default();
                plain = body.chars().take(200).collect();
                snippet_html = bdc_dashboard::escape(&plain);
            }
            out.push(Hit {
                score,
                doc_id,
                source: text(f.source).unwrap_or_default(),
                kind: text(f.kind).unwrap_or_default(),
                title: text(f.title).unwrap_or_default(),
                url: text(f.url),
                actor: text(f.actor),
                library: text(f.library),
                at,
                snippet_html,
                snippet: plain,
            });
        }
        Ok(out)
    }
}

/// A writer: replace and delete documents, then [`commit`](Writer::commit).
pub struct Writer<'i> {
    index: &'i SearchIndex,
    writer: IndexWriter<TantivyDocument>,
}

impl Writer<'_> {
    /// Replace `doc` (every earlier chunk of its id goes); returns the
    /// chunk ids and texts written (nothing for a text that is all junk).
    pub fn upsert(
        &mut self,
        doc: &SearchDoc,
        cfg: &ChunkConfig,
    ) -> Result<Vec<(String, String)>, SearchError> {
        let f = self.index.fields;
        self.writer
            .delete_term(Term::from_field_text(f.doc_id, &doc.doc_id));
        let full = if doc.text.trim().is_empty() {
            doc.title.clone()
        } else {
            doc.text.clone()
        };
        let mut chunks = chunk(&full, cfg);
        if chunks.is_empty() && !doc.title.trim().is_empty() {
            // A document with a title but junk text still has its title.
            chunks.push(crate::chunk::Chunk {
                start: 0,
                text: String::new(),
            });
        }
        let at = tantivy::DateTime::from_timestamp_micros(doc.at.timestamp_micros());
        let mut written = Vec::with_capacity(chunks.len());
        for c in chunks {
            let id = bdc_pinecone::record_id(&doc.doc_id, c.start);
            let mut d = TantivyDocument::default();
            d.add_text(f.chunk_id, &id);
            d.add_text(f.doc_id, &doc.doc_id);
            d.add_text(f.source, &doc.source);
            d.add_text(f.kind, &doc.kind);
            d.add_text(f.title, &doc.title);
            d.add_text(f.body, &c.text);
            if let Some(u) = &doc.url {
                d.add_text(f.url, u);
            }
            if let Some(a) = &doc.actor {
                d.add_text(f.actor, a);
            }
            if let Some(l) = &doc.library {
                d.add_text(f.library, l);
            }
            d.add_date(f.at, at);
            d.add_u64(f.start, c.start as u64);
            d.add_u64(f.version, doc.version);
            if written.is_empty() {
                d.add_u64(f.first, 1);
            }
            self.writer
                .add_document(d)
                .map_err(|e| tv(e, &self.index.dir, "adding a document"))?;
            written.push((id, c.text));
        }
        Ok(written)
    }

    /// Remove every chunk of `doc_id`.
    pub fn delete(&mut self, doc_id: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.index.fields.doc_id, doc_id));
    }

    /// Remove every document of `source` (a full rebuild of that source).
    pub fn delete_source(&mut self, source: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.index.fields.source, source));
    }

    /// Make everything since the last commit durable and visible.
    pub fn commit(&mut self) -> Result<(), SearchError> {
        self.writer
            .commit()
            .map_err(|e| tv(e, &self.index.dir, "committing"))?;
        Ok(())
    }

    /// Close the writer once its background merges are done (what is
    /// committed stays; merged segments replace the small ones).
    pub fn wait_merges(self) -> Result<(), SearchError> {
        let dir = self.index.dir.clone();
        self.writer
            .wait_merging_threads()
            .map_err(|e| tv(e, &dir, "merging segments"))
    }
}
