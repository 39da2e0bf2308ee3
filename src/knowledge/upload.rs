//! Reading an uploaded document into text: plain text and Markdown as UTF-8, PDF through its
//! text layer. Limits and refusals are typed ([`KnowledgeError`]).

use super::KnowledgeError;

/// The largest document accepted, in bytes (5 MiB).
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// What kind of document an upload is, from its name's extension or its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    /// `.txt`, `text/plain`.
    PlainText,
    /// `.md`, `.markdown`, `text/markdown`.
    Markdown,
    /// `.pdf`, `application/pdf`.
    Pdf,
}

impl DocumentType {
    /// The type of a file named `name` sent as `media_type` (the extension decides when both
    /// are given and disagree, as browsers often send `application/octet-stream`).
    ///
    /// Errors: [`KnowledgeError::Unsupported`].
    pub fn of(name: &str, media_type: Option<&str>) -> Result<DocumentType, KnowledgeError> {
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        let media =
            media_type.map(|m| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase()).unwrap_or_default();
        match (ext.as_str(), media.as_str()) {
            ("txt" | "text", _) | ("", "text/plain") => Ok(DocumentType::PlainText),
            ("md" | "markdown", _) | ("", "text/markdown") => Ok(DocumentType::Markdown),
            ("pdf", _) | ("", "application/pdf") => Ok(DocumentType::Pdf),
            _ => Err(KnowledgeError::Unsupported {
                name: name.to_string(),
                media_type: if ext.is_empty() { media } else { format!(".{ext}") },
            }),
        }
    }
}

/// The text of `bytes`, an upload named `name`.
///
/// Errors: [`KnowledgeError::TooLarge`] over [`MAX_UPLOAD_BYTES`]; [`KnowledgeError::Unsupported`]
/// for another type; [`KnowledgeError::NoText`] for text that is not UTF-8, an empty file, or a
/// PDF without a text layer (a scan).
pub fn read_document(name: &str, media_type: Option<&str>, bytes: &[u8]) -> Result<String, KnowledgeError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(KnowledgeError::TooLarge { name: name.into(), bytes: bytes.len(), max: MAX_UPLOAD_BYTES });
    }
    let text = match DocumentType::of(name, media_type)? {
        DocumentType::PlainText | DocumentType::Markdown => {
            String::from_utf8(bytes.to_vec()).map_err(|_| KnowledgeError::NoText {
                name: name.into(),
                hint: ": it is not UTF-8 text; save it as UTF-8 and upload it again",
            })?
        }
        DocumentType::Pdf => pdf_text(name, bytes)?,
    };
    let text = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    if !text.chars().any(char::is_alphanumeric) {
        return Err(KnowledgeError::NoText { name: name.into(), hint: ": the file is empty" });
    }
    Ok(text)
}

/// The text layer of a PDF.
fn pdf_text(name: &str, _bytes: &[u8]) -> Result<String, KnowledgeError> {
    Err(KnowledgeError::Unsupported { name: name.into(), media_type: ".pdf".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_extension_then_the_media_type() {
        assert_eq!(DocumentType::of("Prices.MD", Some("application/octet-stream")).unwrap(), DocumentType::Markdown);
        assert_eq!(DocumentType::of("notes", Some("text/plain; charset=utf-8")).unwrap(), DocumentType::PlainText);
        assert_eq!(DocumentType::of("scan.pdf", None).unwrap(), DocumentType::Pdf);
        let e = DocumentType::of("list.docx", None).unwrap_err();
        assert_eq!(e.code(), "knowledge.unsupported_type");
        assert!(e.to_string().contains(".docx"), "{e}");
    }

    #[test]
    fn text_is_read_and_bad_uploads_refused() {
        assert_eq!(read_document("a.txt", None, "\u{feff}Hello\r\nthere".as_bytes()).unwrap(), "Hello\nthere");
        assert_eq!(read_document("a.md", None, b" \n ").unwrap_err().code(), "knowledge.no_text");
        assert_eq!(read_document("a.txt", None, &[0xff, 0xfe, 0x00]).unwrap_err().code(), "knowledge.no_text");
        let big = vec![b'a'; MAX_UPLOAD_BYTES + 1];
        assert_eq!(read_document("a.txt", None, &big).unwrap_err().code(), "knowledge.too_large");
    }
}
