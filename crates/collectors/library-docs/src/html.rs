//! One documentation page: charset decoding, the "is this HTML?" check,
//! title and link extraction, and the HTML → Markdown conversion (`htmd`,
//! html5ever based; no pandoc).

use std::rc::Rc;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use markup5ever_rcdom::{Node, NodeData};

/// Why a page body was not converted (counted skips, never fatal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageSkip {
    /// The body does not look like an HTML document.
    #[error("not HTML: {0}")]
    NotHtml(String),
    /// The declared charset is unknown, or the bytes are invalid in it.
    #[error("undecodable: {0}")]
    Undecodable(String),
}

/// A converted page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// `<title>` text (whitespace collapsed), else the first `<h1>`, else
    /// empty.
    pub title: String,
    pub markdown: String,
    /// `href` values of `<a>` elements, in document order (unresolved).
    pub links: Vec<String>,
}

/// How many leading bytes are sniffed for markup and a charset.
const SNIFF: usize = 4096;

/// True when the start of `body` looks like an HTML document (a tag that
/// only HTML has, and no NUL bytes, which text formats never contain).
pub fn looks_like_html(body: &[u8]) -> bool {
    let head = &body[..body.len().min(SNIFF)];
    if head.contains(&0) {
        return false;
    }
    let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
    [
        "<!doctype html",
        "<html",
        "<head",
        "<body",
        "<title",
        "<meta",
        "<h1",
        "<p>",
        "<div",
        "<table",
    ]
    .iter()
    .any(|t| lower.contains(t))
}

/// The charset named by a BOM, a `<meta charset=…>` or a
/// `<meta http-equiv content="…; charset=…">` in the first bytes.
fn declared_charset(body: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&body[..body.len().min(SNIFF)]).to_ascii_lowercase();
    let at = head.find("charset=")?;
    let rest = &head[at + "charset=".len()..];
    let rest = rest.trim_start_matches(['"', '\'', ' ']);
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    let label = &rest[..end];
    (!label.is_empty()).then(|| label.to_owned())
}

/// Decode a page: a BOM wins, then a declared charset (strict: invalid
/// bytes are an error), then UTF-8, then windows-1252 (the web's default
/// for undeclared legacy pages, as browsers do).
pub fn decode(body: &[u8]) -> Result<String, PageSkip> {
    if let Some((enc, bom)) = Encoding::for_bom(body) {
        return strict(enc, &body[bom..]);
    }
    if let Some(label) = declared_charset(body) {
        let Some(enc) = Encoding::for_label(label.as_bytes()) else {
            return Err(PageSkip::Undecodable(format!("unknown charset {label:?}")));
        };
        // A page that says UTF-16 but was sniffed as ASCII-compatible text
        // is really ASCII-compatible (WHATWG rule).
        let enc = if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
            UTF_8
        } else {
            enc
        };
        return strict(enc, body);
    }
    match std::str::from_utf8(body) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => strict(WINDOWS_1252, body),
    }
}

fn strict(enc: &'static Encoding, bytes: &[u8]) -> Result<String, PageSkip> {
    enc.decode_without_bom_handling_and_without_replacement(bytes)
        .map(|c| c.into_owned())
        .ok_or_else(|| PageSkip::Undecodable(format!("bytes that are not valid {}", enc.name())))
}

/// The converter used for every page (scripts, styles and the `<head>`'s
/// non-visible parts are dropped).
pub fn converter() -> htmd::HtmlToMarkdown {
    htmd::HtmlToMarkdown::builder()
        .skip_tags(vec!["script", "style", "noscript", "head"])
        .build()
}

/// Sniff, decode and convert `body`.
pub fn convert(conv: &htmd::HtmlToMarkdown, body: &[u8]) -> Result<Converted, PageSkip> {
    if !looks_like_html(body) {
        let shown: String = String::from_utf8_lossy(&body[..body.len().min(40)])
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect();
        return Err(PageSkip::NotHtml(format!("starts with {shown:?}")));
    }
    let text = decode(body)?;
    let tree = conv
        .html_to_tree(&text)
        .map_err(|e| PageSkip::NotHtml(format!("HTML parser failed: {e}")))?;
    let mut title = None;
    let mut h1 = None;
    let mut links = Vec::new();
    walk(&tree, &mut title, &mut h1, &mut links);
    let markdown = conv.tree_to_markdown(&tree);
    let title = title.filter(|t| !t.is_empty()).or(h1).unwrap_or_default();
    Ok(Converted {
        title,
        markdown,
        links,
    })
}

fn text_of(node: &Rc<Node>, out: &mut String) {
    match &node.data {
        NodeData::Text { contents } => out.push_str(&contents.borrow()),
        _ => {
            for c in node.children.borrow().iter() {
                text_of(c, out);
            }
        }
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The URL of a refresh `content` value (`0; URL=target`, `0;url='t'`).
fn refresh_target(content: &str) -> Option<String> {
    let lower = content.to_ascii_lowercase();
    let at = lower.find("url")?;
    let rest = content[at + 3..].trim_start();
    let rest = rest.strip_prefix('=')?.trim();
    let rest = rest.trim_matches(['"', '\'']);
    (!rest.is_empty()).then(|| rest.to_owned())
}

fn walk(
    node: &Rc<Node>,
    title: &mut Option<String>,
    h1: &mut Option<String>,
    links: &mut Vec<String>,
) {
    if let NodeData::Element { name, attrs, .. } = &node.data {
        match &*name.local {
            "title" if title.is_none() => {
                let mut t = String::new();
                text_of(node, &mut t);
                *title = Some(collapse(&t));
            }
            "h1" if h1.is_none() => {
                let mut t = String::new();
                text_of(node, &mut t);
                *h1 = Some(collapse(&t));
            }
            "a" => {
                if let Some(href) = attrs.borrow().iter().find(|a| &*a.name.local == "href") {
                    links.push(href.value.to_string());
                }
            }
            "meta" => {
                // `<meta http-equiv="refresh" content="0; URL=doc/html/index.html">`:
                // how many Boost libraries' index.html lead to their docs.
                let attrs = attrs.borrow();
                let refresh = attrs.iter().any(|a| {
                    &*a.name.local == "http-equiv" && a.value.eq_ignore_ascii_case("refresh")
                });
                if let Some(content) = attrs.iter().find(|a| &*a.name.local == "content")
                    && refresh
                    && let Some(target) = refresh_target(&content.value)
                {
                    links.push(target);
                }
            }
            _ => {}
        }
    }
    for c in node.children.borrow().iter() {
        walk(c, title, h1, links);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_title_links_and_markdown() {
        let page = b"<!DOCTYPE html><html><head><title> Boost.Json \n Intro </title>\
            <style>p{}</style></head><body><h1>JSON</h1><p>See <a href=\"ref.html#x\">ref</a>.</p>\
            <script>alert(1)</script></body></html>";
        let c = convert(&converter(), page).unwrap();
        assert_eq!(c.title, "Boost.Json Intro");
        assert_eq!(c.links, vec!["ref.html#x"]);
        assert!(c.markdown.contains("# JSON"), "{}", c.markdown);
        assert!(c.markdown.contains("[ref](ref.html#x)"), "{}", c.markdown);
        assert!(!c.markdown.contains("alert"), "{}", c.markdown);
        assert!(!c.markdown.contains("p{}"), "{}", c.markdown);
    }

    #[test]
    fn meta_refresh_is_a_link() {
        let c = convert(
            &converter(),
            b"<html><head><meta http-equiv=\"Refresh\" content=\"0; URL=doc/html/index.html\"></head><body>Moved</body></html>",
        )
        .unwrap();
        assert_eq!(c.links, vec!["doc/html/index.html"]);
    }

    #[test]
    fn title_falls_back_to_h1() {
        let c = convert(
            &converter(),
            b"<html><body><h1>Only  heading</h1></body></html>",
        )
        .unwrap();
        assert_eq!(c.title, "Only heading");
    }

    #[test]
    fn not_html_and_undecodable() {
        assert!(matches!(
            convert(&converter(), b"%PDF-1.4 binary\0\0"),
            Err(PageSkip::NotHtml(_))
        ));
        assert!(matches!(
            convert(&converter(), b"just some plain text"),
            Err(PageSkip::NotHtml(_))
        ));
        assert!(matches!(
            convert(
                &converter(),
                b"<html><meta charset=\"klingon-9\"><p>x</p></html>"
            ),
            Err(PageSkip::Undecodable(_))
        ));
        assert!(matches!(
            convert(
                &converter(),
                b"<html><meta charset=\"utf-8\"><p>\xff\xfe\xfd</p></html>"
            ),
            Err(PageSkip::Undecodable(_))
        ));
    }

    #[test]
    fn legacy_charsets() {
        let c = convert(
            &converter(),
            b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"></head><body><p>Caf\xe9</p></body></html>",
        )
        .unwrap();
        assert!(c.markdown.contains("Café"), "{}", c.markdown);
        // Undeclared and not UTF-8: windows-1252, like a browser.
        let c = convert(&converter(), b"<html><body><p>na\xefve</p></body></html>").unwrap();
        assert!(c.markdown.contains("naïve"), "{}", c.markdown);
    }
}
