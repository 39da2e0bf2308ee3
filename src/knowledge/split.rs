//! Splitting an uploaded document into passages: the pieces retrieval ranks and the bot says.
//! A Markdown heading starts a new section whose passages carry it in their title; within a
//! section, paragraphs (blank-line separated) are joined up to [`MAX_PASSAGE_CHARS`], and a longer
//! paragraph is cut after a sentence. So a price list with one heading per service gives one
//! passage per service.

/// A passage's longest text, in characters: short enough for one WhatsApp message and for the
/// LLM's context with a few others, long enough for a whole answer.
pub const MAX_PASSAGE_CHARS: usize = 700;

/// One passage of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The heading it stands under (the nearest), when any.
    pub heading: Option<String>,
    /// Its text, Markdown emphasis and list marks kept as written.
    pub text: String,
}

/// The passages of `text` (plain text or Markdown), in order; empty when it has no words.
pub fn split(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut heading: Option<String> = None;
    let mut current = String::new();
    let flush = |heading: &Option<String>, current: &mut String, pieces: &mut Vec<Piece>| {
        let text = current.trim().to_string();
        if text.chars().any(char::is_alphanumeric) {
            pieces.push(Piece { heading: heading.clone(), text });
        }
        current.clear();
    };
    for paragraph in paragraphs(text) {
        if let Some(h) = markdown_heading(&paragraph) {
            flush(&heading, &mut current, &mut pieces);
            heading = Some(h);
            continue;
        }
        for part in sentences_within(&paragraph, MAX_PASSAGE_CHARS) {
            let joined = current.chars().count() + 2 + part.chars().count();
            if !current.is_empty() && joined > MAX_PASSAGE_CHARS {
                flush(&heading, &mut current, &mut pieces);
            }
            if !current.is_empty() {
                current.push_str("\n\n");
            }
            current.push_str(&part);
        }
    }
    flush(&heading, &mut current, &mut pieces);
    pieces
}

/// Blank-line separated paragraphs; a heading line is a paragraph of its own.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() || markdown_heading(line).is_some() {
            if !current.is_empty() {
                out.push(current.join("\n"));
                current.clear();
            }
            if !line.trim().is_empty() {
                out.push(line.to_string());
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        out.push(current.join("\n"));
    }
    out
}

/// The heading of a Markdown ATX heading line (`## Prices` → `Prices`).
fn markdown_heading(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    let hashes = trimmed.chars().take_while(|c| *c == '#').count();
    if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') && !line.contains('\n') {
        let h = trimmed[hashes..].trim().trim_end_matches('#').trim();
        (!h.is_empty()).then(|| h.to_string())
    } else {
        None
    }
}

/// `paragraph` in parts of at most `max` characters, cut after a sentence's end (`.`, `!`, `?`
/// followed by a space) where one is found, else at a space, else anywhere.
fn sentences_within(paragraph: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = paragraph.trim();
    while rest.chars().count() > max {
        let limit = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..limit];
        let cut = window
            .rfind(['.', '!', '?'])
            .filter(|&i| window[i + 1..].starts_with(char::is_whitespace) && i > 0)
            .map(|i| i + 1)
            .or_else(|| window.rfind(char::is_whitespace).filter(|&i| i > 0))
            .unwrap_or(limit);
        out.push(rest[..cut].trim().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_start_passages_and_name_them() {
        let doc = "# Price list\n\nAll prices include VAT.\n\n## Full Wash\nAED 75, about 45 minutes.\n\n## Polish\n\nAED 250.\nTwo to three hours.\n";
        let pieces = split(doc);
        assert_eq!(
            pieces,
            vec![
                Piece { heading: Some("Price list".into()), text: "All prices include VAT.".into() },
                Piece { heading: Some("Full Wash".into()), text: "AED 75, about 45 minutes.".into() },
                Piece { heading: Some("Polish".into()), text: "AED 250.\nTwo to three hours.".into() },
            ]
        );
    }

    #[test]
    fn long_text_is_cut_after_sentences_within_the_limit() {
        let sentence = "We wash cars at your door every day of the week. ";
        let doc = sentence.repeat(40);
        let pieces = split(&doc);
        assert!(pieces.len() >= 3, "{}", pieces.len());
        for p in &pieces {
            assert!(p.text.chars().count() <= MAX_PASSAGE_CHARS, "{}", p.text.len());
            assert!(p.text.ends_with('.'), "cut after a sentence: {:?}", &p.text[p.text.len() - 10..]);
        }
        assert!(split("  \n\n ### \n").is_empty());
    }

    #[test]
    fn short_paragraphs_are_joined_and_a_hash_without_space_is_text() {
        let pieces = split("Plain text.\n\nSecond paragraph.\n\n#hashtag stays");
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].text, "Plain text.\n\nSecond paragraph.\n\n#hashtag stays");
        assert_eq!(pieces[0].heading, None);
    }
}
