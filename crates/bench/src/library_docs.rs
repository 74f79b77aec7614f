//! `library-docs` benchmark: pages converted per second (HTML → Markdown →
//! stored: file written through a rename, row upserted) on a generated
//! tree of 10,000 pages (1,000 with `--quick`) in 10 libraries, read with
//! `--use-local` from an already extracted release tree (so archive
//! decompression is not part of the figure), then the unchanged re-run
//! (every page re-read, re-converted and hash-compared, nothing written),
//! and the process's peak resident memory (VmHWM) after the runs.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use bdc_collector::{CollectContext, Collector};
use bdc_config::Config;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

use crate::collectors_mail_git::vm_hwm_mib;
use crate::{Row, backend_name};

const LIBRARIES: usize = 10;

/// A realistic Boost documentation page (~6 KB): navigation, headings,
/// paragraphs, a list, a table, a code block and links.
fn page(lib: usize, n: usize, per_lib: usize) -> String {
    let mut s = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Section {n} of lib{lib}</title>\
         <link rel=\"stylesheet\" href=\"../../../../doc/src/boostbook.css\"><style>p{{margin:0}}</style></head><body>\
         <div class=\"spirit-nav\"><a href=\"p{}.html\">Prev</a> <a href=\"index.html\">Home</a> <a href=\"p{}.html\">Next</a></div>\
         <h2>Section {n}</h2>",
        n.saturating_sub(1),
        (n + 1) % per_lib
    );
    for p in 0..8 {
        s.push_str(&format!(
            "<p>Paragraph {p}: the <code>basic_value&lt;T&gt;</code> type holds any JSON value; \
             see <a href=\"p{}.html#sec{p}\">the reference</a> for <em>allocation</em> and <strong>ownership</strong> rules. \
             Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.</p>",
            (n * 7 + p) % per_lib
        ));
    }
    s.push_str("<ul>");
    for i in 0..6 {
        s.push_str(&format!("<li>Item {i} with <code>f{i}()</code></li>"));
    }
    s.push_str("</ul><table><tr><th>Name</th><th>Description</th></tr>");
    for i in 0..6 {
        s.push_str(&format!(
            "<tr><td>member{i}</td><td>Does thing {i}.</td></tr>"
        ));
    }
    s.push_str("</table><pre><code>#include &lt;boost/json.hpp&gt;\nint main() {\n  auto v = boost::json::parse(\"[1,2,3]\");\n  return v.as_array().size();\n}</code></pre>");
    s.push_str("<script>var x = 1;</script></body></html>\n");
    s
}

/// `libs/lib<i>/index.html` links every page of the library.
fn generate(root: &Path, per_lib: usize) -> Result<()> {
    for lib in 0..LIBRARIES {
        let dir = root.join(format!("libs/lib{lib}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut index =
            format!("<html><head><title>lib{lib}</title></head><body><h1>lib{lib}</h1><ul>");
        for n in 0..per_lib.saturating_sub(1) {
            index.push_str(&format!("<li><a href=\"p{n}.html\">Section {n}</a></li>"));
            std::fs::write(dir.join(format!("p{n}.html")), page(lib, n, per_lib - 1))?;
        }
        index.push_str("</ul></body></html>");
        std::fs::write(dir.join("index.html"), index)?;
    }
    Ok(())
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let pages: usize = if quick { 1_000 } else { 10_000 };
    let per_lib = pages / LIBRARIES;
    let backend = backend_name(kind);
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage
        .migrate_parts(&[
            &bdc_http::SCHEMA,
            &bdc_collector_boost_libraries::SCHEMA,
            &bdc_collector_library_docs::SCHEMA,
        ])
        .await?;
    let ws = tempfile::tempdir()?;
    generate(&ws.path().join("library-docs/extract/1_86_0"), per_lib)?;
    let wsd = ws.path().display().to_string();
    let url = db.url().to_owned();
    let config = Arc::new(Config::from_lookup(|k| match k {
        "WORKSPACE_DIR" => Some(wsd.clone()),
        "DATABASE_URL" => Some(url.clone()),
        _ => None,
    })?);
    let libs: Vec<String> = (0..LIBRARIES).map(|i| format!("lib{i}")).collect();
    let args: Vec<String> = [
        "--use-local",
        "--versions",
        "1.86.0",
        "--max-pages",
        "0",
        "--library",
        &libs.join(","),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let ctx = CollectContext {
        run_id: "bench-library-docs".into(),
        command: bdc_collector_library_docs::NAME.into(),
        args,
        schedule_group: None,
        storage: storage.clone(),
        config,
        interactive: false,
    };
    let mut rows = Vec::new();
    let size = format!("{pages} pages");
    for (label, expect) in [
        ("library-docs convert+store (first run)", "inserted"),
        ("library-docs re-run (unchanged)", "unchanged"),
    ] {
        let start = Instant::now();
        let r = bdc_collector_library_docs::LibraryDocsCollector
            .run(&ctx)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.source))?;
        let secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(
            r.count(expect) == pages as u64,
            "{label}: {expect} = {} of {pages}",
            r.count(expect)
        );
        rows.push(Row {
            bench: label.into(),
            backend,
            size: size.clone(),
            value: pages as f64 / secs,
            unit: "pages/s",
        });
    }
    rows.push(Row {
        bench: "library-docs peak RSS (process, after runs)".into(),
        backend,
        size,
        value: vm_hwm_mib(),
        unit: "MiB VmHWM",
    });
    Ok(rows)
}
