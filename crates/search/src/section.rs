//! The dashboard's search page (`/dashboard/search`, behind its sign-in):
//! a form with the filters and the ranked results with their snippets.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::PathBuf;

use bdc_dashboard::{Section, escape};
use bdc_storage::Storage;

use crate::find::{Filters, find};
use crate::http::parse_since;

/// The section (registered in `bdc`'s section list).
pub struct SearchSection {
    pub storage: Storage,
    pub workspace: PathBuf,
}

fn param(q: &HashMap<String, String>, k: &str) -> Option<String> {
    q.get(k)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[async_trait::async_trait]
impl Section for SearchSection {
    fn path(&self) -> &'static str {
        "search"
    }
    fn label(&self) -> &'static str {
        "Search"
    }
    async fn render(&self, query: &HashMap<String, String>) -> Result<String, String> {
        let v = |k: &str| escape(&param(query, k).unwrap_or_default());
        let mut html = String::new();
        let _ = write!(
            html,
            "<form class=\"filters\" method=\"get\" action=\"/dashboard/search\" id=\"search-form\">\
             <label>Query <input name=\"q\" id=\"s-q\" value=\"{}\" size=\"40\"></label>\
             <label>Source <input name=\"source\" id=\"s-source\" value=\"{}\" size=\"12\"></label>\
             <label>Kind <input name=\"kind\" value=\"{}\" size=\"10\"></label>\
             <label>Since <input name=\"since\" value=\"{}\" size=\"10\" placeholder=\"YYYY-MM-DD\"></label>\
             <label>Person <input name=\"person\" value=\"{}\" size=\"16\"></label>\
             <label>Library <input name=\"library\" value=\"{}\" size=\"10\"></label>\
             <button type=\"submit\" id=\"s-go\">Search</button></form>",
            v("q"),
            v("source"),
            v("kind"),
            v("since"),
            v("person"),
            v("library")
        );
        let Some(q) = param(query, "q") else {
            html.push_str("<p class=\"muted\">Words must all match; \"a phrase\" matches in order. The index is kept by <code>bdc run search-index-sync</code>.</p>");
            return Ok(html);
        };
        let since = match param(query, "since") {
            None => None,
            Some(s) => match parse_since(&s) {
                Some(t) => Some(t),
                None => {
                    let _ = write!(
                        html,
                        "<p class=\"bad\">Since {:?}: expected YYYY-MM-DD.</p>",
                        escape(&s)
                    );
                    return Ok(html);
                }
            },
        };
        let filters = Filters {
            source: param(query, "source"),
            kind: param(query, "kind"),
            since,
            person: param(query, "person"),
            library: param(query, "library"),
            limit: 50,
        };
        let hits = match find(&self.storage, &self.workspace, &q, &filters).await {
            Ok(h) => h,
            Err(crate::find::FindError::Person { person, reason }) => {
                let _ = write!(
                    html,
                    "<p class=\"bad\">Person {}: {}</p>",
                    escape(&person),
                    escape(&reason)
                );
                return Ok(html);
            }
            Err(e) => return Err(e.to_string()),
        };
        if hits.is_empty() {
            html.push_str("<p class=\"muted\" id=\"no-results\">No results.</p>");
            return Ok(html);
        }
        let _ = write!(html, "<ol id=\"results\">");
        for h in &hits {
            let title = escape(&h.title);
            let link = match &h.url {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                    format!("<a href=\"{}\">{title}</a>", escape(u))
                }
                _ => title,
            };
            // The snippet HTML comes from tantivy: text escaped, <b> added.
            let _ = write!(
                html,
                "<li class=\"result\" data-source=\"{}\"><div>{link}</div><div class=\"muted\">{} · {} · {}</div><div class=\"snippet\">{}</div></li>",
                escape(&h.source),
                escape(&h.source),
                escape(&h.kind),
                h.at.format("%Y-%m-%d"),
                h.snippet_html.replace('\n', " ")
            );
        }
        html.push_str("</ol>");
        Ok(html)
    }
}
