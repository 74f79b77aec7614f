//! Chunking long texts the way the original's Pinecone sync does: split on
//! paragraphs, then lines, then words, into pieces of at most
//! `chunk_size` characters with `overlap` characters carried into the next
//! piece; junk pieces (too short, too few words, mostly punctuation or
//! markup) are dropped. Hand-written: the text-splitter crates split by
//! tokens or need a tokenizer model; this is the original's character rule.

/// Chunking settings (`PINECONE_CHUNK_SIZE`, `PINECONE_CHUNK_OVERLAP`,
/// `PINECONE_MIN_TEXT_LENGTH`, `PINECONE_MIN_WORDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    pub chunk_size: usize,
    pub overlap: usize,
    pub min_text_length: usize,
    pub min_words: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            chunk_size: 1000,
            overlap: 200,
            min_text_length: 20,
            min_words: 3,
        }
    }
}

impl ChunkConfig {
    /// From the environment through `var`; a bad value names the variable.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let d = ChunkConfig::default();
        let get = |k: &str, default: usize| -> Result<usize, String> {
            match var(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
            {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .map_err(|_| format!("{k}={v:?}: expected a whole number")),
            }
        };
        let c = ChunkConfig {
            chunk_size: get("PINECONE_CHUNK_SIZE", d.chunk_size)?,
            overlap: get("PINECONE_CHUNK_OVERLAP", d.overlap)?,
            min_text_length: get("PINECONE_MIN_TEXT_LENGTH", d.min_text_length)?,
            min_words: get("PINECONE_MIN_WORDS", d.min_words)?,
        };
        if c.chunk_size < 50 {
            return Err(format!(
                "PINECONE_CHUNK_SIZE={}: at least 50 characters",
                c.chunk_size
            ));
        }
        if c.overlap >= c.chunk_size {
            return Err(format!(
                "PINECONE_CHUNK_OVERLAP={}: must be smaller than PINECONE_CHUNK_SIZE={}",
                c.overlap, c.chunk_size
            ));
        }
        Ok(c)
    }
}

/// One piece of a text: its start (in characters) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub start: usize,
    pub text: String,
}

/// Split `text` into chunks (see the module docs). A text that fits in one
/// chunk is one chunk at 0 (unless it is junk).
pub fn chunk(text: &str, cfg: &ChunkConfig) -> Vec<Chunk> {
    let chars: Vec<char> = text.chars().collect();
    let size = cfg.chunk_size.max(1);
    let mut out = Vec::new();
    let mut start = 0usize;
    loop {
        // A piece never starts with whitespace: its start is its id.
        while start < chars.len() && chars[start].is_whitespace() {
            start += 1;
        }
        if start >= chars.len() {
            break;
        }
        let hard_end = (start + size).min(chars.len());
        let end = if hard_end == chars.len() {
            hard_end
        } else {
            split_point(&chars[start..hard_end]).map_or(hard_end, |p| start + p)
        };
        let piece: String = chars[start..end].iter().collect();
        let trimmed = piece.trim_end();
        if !trimmed.is_empty() && !is_junk(trimmed, cfg) {
            out.push(Chunk {
                start,
                text: trimmed.to_owned(),
            });
        }
        if end >= chars.len() {
            break;
        }
        // Carry `overlap` characters into the next piece, starting at a
        // word boundary, and always move forward.
        let mut next = end.saturating_sub(cfg.overlap).max(start + 1);
        while next < end && !chars[next - 1].is_whitespace() {
            next += 1;
        }
        start = if next >= end { end } else { next };
    }
    out
}

/// Where to end a piece: the last paragraph break, else the last line
/// break, else the last space, in its second half (offset after the break).
fn split_point(piece: &[char]) -> Option<usize> {
    let half = piece.len() / 2;
    let find = |pred: &dyn Fn(usize) -> bool| (half..piece.len()).rev().find(|&i| pred(i));
    find(&|i| i > 0 && piece[i] == '\n' && piece[i - 1] == '\n')
        .or_else(|| find(&|i| piece[i] == '\n'))
        .or_else(|| find(&|i| piece[i].is_whitespace()))
        .map(|i| i + 1)
}

/// Too short, too few words, or mostly punctuation/markup.
pub fn is_junk(text: &str, cfg: &ChunkConfig) -> bool {
    let n = text.chars().count();
    if n < cfg.min_text_length {
        return true;
    }
    let words = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count();
    if words < cfg.min_words {
        return true;
    }
    let letters = text.chars().filter(|c| c.is_alphanumeric()).count();
    letters * 2 < n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(size: usize, overlap: usize) -> ChunkConfig {
        ChunkConfig {
            chunk_size: size,
            overlap,
            min_text_length: 5,
            min_words: 2,
        }
    }

    #[test]
    fn short_text_is_one_chunk_and_junk_is_dropped() {
        let c = chunk("Hello boost asio world", &cfg(100, 20));
        assert_eq!(
            c,
            vec![Chunk {
                start: 0,
                text: "Hello boost asio world".into()
            }]
        );
        assert!(chunk("!!! --- ### <<>>", &cfg(100, 20)).is_empty());
        assert!(chunk("ok", &cfg(100, 20)).is_empty());
        assert!(chunk("", &cfg(100, 20)).is_empty());
    }

    #[test]
    fn splits_on_paragraphs_first_with_overlap() {
        let a = "First paragraph about strands and executors. ".repeat(2);
        let b = "Second paragraph about coroutines in asio. ".repeat(2);
        let text = format!("{a}\n\n{b}");
        let c = chunk(&text, &cfg(120, 30));
        assert!(c.len() >= 2, "{c:?}");
        assert!(c[0].text.starts_with("First paragraph"));
        assert!(c[0].text.ends_with("executors."), "{:?}", c[0].text);
        assert!(c.iter().any(|x| x.text.contains("Second paragraph")));
    }

    #[test]
    fn environment_values_are_checked() {
        let ok = ChunkConfig::from_lookup(|k| (k == "PINECONE_CHUNK_SIZE").then(|| "500".into()))
            .unwrap();
        assert_eq!((ok.chunk_size, ok.overlap), (500, 200));
        let e = ChunkConfig::from_lookup(|k| (k == "PINECONE_CHUNK_OVERLAP").then(|| "x".into()))
            .unwrap_err();
        assert!(e.contains("PINECONE_CHUNK_OVERLAP"), "{e}");
        let e =
            ChunkConfig::from_lookup(|k| (k == "PINECONE_CHUNK_OVERLAP").then(|| "2000".into()))
                .unwrap_err();
        assert!(e.contains("smaller"), "{e}");
    }

    /// Generated texts (xorshift, fixed seed): chunks are bounded, in
    /// order, taken verbatim from the text, and cover every word.
    #[test]
    fn chunks_are_bounded_ordered_and_cover_the_words() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..300 {
            let n = next(400) as usize;
            let words: Vec<String> = (0..n)
                .map(|_| {
                    let len = 1 + next(12) as usize;
                    (0..len).map(|_| (b'a' + next(26) as u8) as char).collect()
                })
                .collect();
            let seps = [" ", " ", " ", "\n", "\n\n"];
            let mut text = String::new();
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    text.push_str(seps[next(5) as usize]);
                }
                text.push_str(w);
            }
            let size = 50 + next(350) as usize;
            let overlap = next(49) as usize;
            let c = chunk(&text, &cfg(size, overlap));
            let mut last = None;
            for ch in &c {
                assert!(ch.text.chars().count() <= size);
                if let Some(l) = last {
                    assert!(ch.start > l);
                }
                last = Some(ch.start);
                let at: String = text
                    .chars()
                    .skip(ch.start)
                    .take(ch.text.chars().count())
                    .collect();
                assert_eq!(at, ch.text);
            }
            if !c.is_empty() {
                for w in &words {
                    assert!(c.iter().any(|ch| ch.text.contains(w.as_str())), "{w} lost");
                }
            }
        }
    }
}
