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

/// The most a PDF page's content may decompress to, in bytes: a small file cannot expand
/// without bound (a "zip bomb").
pub const MAX_PDF_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// The text layer of a PDF, page by page (a blank line between pages).
///
/// Errors: [`KnowledgeError::NoText`] when the file does not parse as a PDF, is encrypted, or has
/// no text layer (a scan).
fn pdf_text(name: &str, bytes: &[u8]) -> Result<String, KnowledgeError> {
    let unreadable = |why: &'static str| KnowledgeError::NoText { name: name.into(), hint: why };
    let doc = lopdf::Document::load_mem(bytes)
        .map_err(|_| unreadable(": it does not read as a PDF; export it again as PDF, or upload its text as .txt"))?;
    if doc.is_encrypted() {
        return Err(unreadable(": it is password-protected; upload an unprotected copy"));
    }
    let mut text = String::new();
    for page in doc.get_pages().keys() {
        // A page whose text cannot be read is skipped; the others still answer.
        if let Ok(t) = doc.extract_text_with_limit(&[*page], MAX_PDF_PAGE_BYTES) {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(t.trim());
        }
    }
    if !text.chars().any(char::is_alphanumeric) {
        return Err(unreadable(": it has no text layer (a scan?); run it through OCR, or upload its text as .txt"));
    }
    Ok(text)
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
        let e = read_document("scan.pdf", None, b"%PDF-1.4 not really").unwrap_err();
        assert_eq!(e.code(), "knowledge.no_text");
        let big = vec![b'a'; MAX_UPLOAD_BYTES + 1];
        assert_eq!(read_document("a.txt", None, &big).unwrap_err().code(), "knowledge.too_large");
    }
}

#[cfg(test)]
mod pdf_tests {
    use super::*;

    /// A one-page PDF showing `lines` in Helvetica (no text when empty), with a correct
    /// cross-reference table.
    pub fn pdf(lines: &[&str]) -> Vec<u8> {
        let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
        for l in lines {
            content.push_str(&format!("({l}) Tj T*\n"));
        }
        content.push_str("ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
            format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
        for off in offsets {
            out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
        );
        out
    }

    #[test]
    fn a_pdf_is_read_through_its_text_layer_and_a_scan_is_refused() {
        let text = read_document("prices.pdf", None, &pdf(&["Ceramic coating: AED 900.", "Lasts two years."])).unwrap();
        assert!(text.contains("Ceramic coating: AED 900.") && text.contains("Lasts two years."), "{text:?}");
        let e = read_document("scan.pdf", Some("application/pdf"), &pdf(&[])).unwrap_err();
        assert_eq!(e.code(), "knowledge.no_text");
        assert!(e.to_string().contains("no text layer"), "{e}");
    }
}
