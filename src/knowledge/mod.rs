//! The knowledge base: what enquiries are answered from. Entries (a question, its answer,
//! keywords, a category) and uploaded documents (split into passages, [`split`]) are kept in the
//! database and changed through the admin API; `fixtures/knowledge.yaml` is imported into it
//! ([`import`]); the catalog's services and prices join them as passages. Retrieval ranks the
//! passages with BM25F ([`rank`]); an answer worded by the LLM is checked against the passages it
//! cites ([`check`]).
//!
//! Each change bumps the base's revision; a process reads the revision when a turn needs the
//! knowledge and rebuilds its [`Shelf`] (passages and index) when it moved, so every instance
//! answers from a change on its next such turn.

pub mod check;
pub mod import;
pub mod rank;
pub mod review;
pub mod split;
pub mod upload;

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::flow::Fact;
use crate::flow::graph::ChoiceOption;
use rank::{Fields, Index};

/// Questions scoring below this are not answered (the flow's "I don't know" path takes them).
/// A question sharing only a word found in most passages ("car") stays below it; one rare word
/// of a passage's text, or any word of a title or keyword, is above it.
pub const MIN_SCORE: f32 = 1.0;
/// Passages within this share of the best score are offered beside it (a list to pick from);
/// a clear best is answered alone.
pub const CLOSE_TO_BEST: f32 = 0.8;
/// At most this many passages are offered (a WhatsApp list's ten rows).
pub const MAX_FOUND: usize = crate::flow::MAX_LIST_ROWS;
/// Words of a question that ask about prices: every catalog item carries them as keywords.
pub const PRICE_WORDS: &[&str] = &["price", "prices", "cost", "costs", "rate", "rates", "charge", "fee", "services"];

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// A question and its answer, said as written.
    Entry,
    /// An uploaded document, answered from passage by passage.
    Document,
}

impl ItemKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Entry => "entry",
            ItemKind::Document => "document",
        }
    }
}

/// One item of the knowledge base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Item {
    /// Stable id (letters, digits, `_` and `-`).
    pub id: String,
    /// Entry or document.
    pub kind: ItemKind,
    /// Its title: a list row's title for an entry (24 characters are shown), a document's name.
    pub title: String,
    /// The question an entry answers, in a customer's words; `None` for a document.
    #[serde(default)]
    pub question: Option<String>,
    /// Other wordings of the question (added when a person links a flagged question to it).
    #[serde(default)]
    pub also_asked: Vec<String>,
    /// An entry's answer as said to the customer; a document's whole text.
    pub answer: String,
    /// Words or phrases of questions it answers.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Free grouping ("prices", "policies").
    #[serde(default)]
    pub category: Option<String>,
    /// Where it came from: an uploaded file's name, `fixtures/knowledge.yaml`, or `None` when
    /// written in the console.
    #[serde(default)]
    pub source: Option<String>,
    /// The base's revision at its last change.
    #[serde(default)]
    pub revision: i64,
}

impl Item {
    /// An entry made from a fact of `fixtures/knowledge.yaml`.
    pub fn from_fact(f: &Fact) -> Item {
        Item {
            id: f.id.clone(),
            kind: ItemKind::Entry,
            title: f.title.clone(),
            question: None,
            also_asked: vec![],
            answer: f.answer.clone(),
            keywords: f.keywords.clone(),
            category: None,
            source: Some(import::KNOWLEDGE_FILE.into()),
            revision: 0,
        }
    }
}

/// Where a passage comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PassageKind {
    /// An entry (its answer).
    Entry,
    /// A part of a document.
    Document,
    /// A catalog item (its price and description).
    Catalog,
}

/// One passage retrieval ranks and the bot may say.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// Its id: an entry's id, `<document>#<n>` for a document's n-th passage (from 1), or
    /// `service:<catalog id>`.
    pub id: String,
    /// The item it belongs to (the catalog id for a catalog item).
    pub item: String,
    /// Where it comes from.
    pub kind: PassageKind,
    /// Its title: an entry's, a catalog item's, or a document's title with the passage's heading.
    pub title: String,
    /// What is said.
    pub text: String,
    /// Keywords and questions it answers.
    pub keywords: Vec<String>,
    /// A catalog item's price.
    pub price: Option<f64>,
}

/// One passage found for a question.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<'a> {
    /// The passage.
    pub passage: &'a Passage,
    /// Its BM25F score.
    pub score: f32,
}

/// The passages of one revision of the base and one catalog, indexed.
#[derive(Debug, Default)]
pub struct Shelf {
    /// The base's revision it was built from (0 for the file's facts).
    pub revision: i64,
    /// Every passage: entries, then documents' passages, then the catalog.
    pub passages: Vec<Passage>,
    index: Index,
    key: u64,
}

impl Shelf {
    /// Splits and indexes `items` and `catalog`.
    pub fn build(revision: i64, items: &[Item], catalog: &[ChoiceOption]) -> Shelf {
        let mut passages = Vec::new();
        for item in items.iter().filter(|i| i.kind == ItemKind::Entry) {
            let mut keywords = item.keywords.clone();
            keywords.extend(item.question.iter().cloned());
            keywords.extend(item.also_asked.iter().cloned());
            passages.push(Passage {
                id: item.id.clone(),
                item: item.id.clone(),
                kind: PassageKind::Entry,
                title: item.title.clone(),
                text: item.answer.clone(),
                keywords,
                price: None,
            });
        }
        for item in items.iter().filter(|i| i.kind == ItemKind::Document) {
            for (n, piece) in split::split(&item.answer).into_iter().enumerate() {
                let title = match &piece.heading {
                    Some(h) if h != &item.title => format!("{} — {h}", item.title),
                    _ => item.title.clone(),
                };
                let mut keywords = item.keywords.clone();
                keywords.extend(item.also_asked.iter().cloned());
                passages.push(Passage {
                    id: format!("{}#{}", item.id, n + 1),
                    item: item.id.clone(),
                    kind: PassageKind::Document,
                    title,
                    text: piece.text,
                    keywords,
                    price: None,
                });
            }
        }
        for c in catalog {
            let price = c.price.map(|p| format!("AED {p:.0}")).unwrap_or_else(|| "price on request".into());
            let about = c.description.as_deref().map(|d| format!(" — {d}")).unwrap_or_default();
            passages.push(Passage {
                id: format!("service:{}", c.id),
                item: c.id.clone(),
                kind: PassageKind::Catalog,
                title: c.title.clone(),
                text: format!("{price}{about}"),
                keywords: PRICE_WORDS.iter().map(|w| w.to_string()).collect(),
                price: c.price,
            });
        }
        let index =
            Index::build(passages.iter().map(|p| Fields { title: &p.title, keywords: &p.keywords, text: &p.text }));
        Shelf { revision, passages, index, key: 0 }
    }

    /// The passages that answer `question`: those scoring at least [`MIN_SCORE`] and within
    /// [`CLOSE_TO_BEST`] of the best, best first, at most [`MAX_FOUND`]; empty when none does.
    pub fn find(&self, question: &str) -> Vec<Found<'_>> {
        let hits = self.index.search(question);
        let best = hits.first().map_or(0.0, |h| h.score);
        if best < MIN_SCORE {
            return vec![];
        }
        hits.into_iter()
            .take_while(|h| h.score >= best * CLOSE_TO_BEST)
            .take(MAX_FOUND)
            .map(|h| Found { passage: &self.passages[h.passage], score: h.score })
            .collect()
    }

    /// Every passage ranked for `question`, best first, with no threshold (for the console's
    /// "why this answer" view and the benchmark).
    pub fn ranked(&self, question: &str) -> Vec<Found<'_>> {
        self.index
            .search(question)
            .into_iter()
            .map(|h| Found { passage: &self.passages[h.passage], score: h.score })
            .collect()
    }

    /// What to offer when no question was asked: entries and catalog items (not documents'
    /// passages), at most [`MAX_FOUND`].
    pub fn topics(&self) -> Vec<&Passage> {
        self.passages.iter().filter(|p| p.kind != PassageKind::Document).take(MAX_FOUND).collect()
    }

    /// The passage with this id.
    pub fn passage(&self, id: &str) -> Option<&Passage> {
        self.passages.iter().find(|p| p.id == id)
    }
}

/// Errors of the knowledge base, each with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// An upload that is not plain text, Markdown or PDF.
    #[error("{name}: {media_type} is not a supported document; upload plain text (.txt), Markdown (.md) or PDF (.pdf)")]
    Unsupported {
        /// The file's name.
        name: String,
        /// Its declared media type or extension.
        media_type: String,
    },
    /// A document with no text to answer from (a scanned PDF without a text layer, an empty file).
    #[error("{name} has no text to answer from{hint}")]
    NoText {
        /// The file's name.
        name: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// An upload over [`upload::MAX_UPLOAD_BYTES`].
    #[error("{name} is {bytes} bytes; documents may be at most {max} bytes: split it into smaller files")]
    TooLarge {
        /// The file's name.
        name: String,
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Another item already has this title (titles are unique, whatever the case).
    #[error("an item titled {0:?} already exists: choose another title or edit that item")]
    DuplicateTitle(String),
    /// A field is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// No item with this id.
    #[error("no knowledge item {0:?}")]
    NotFound(String),
    /// The database failed.
    #[error("the knowledge base could not be read or written: {0}")]
    Store(String),
}

impl KnowledgeError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            KnowledgeError::Unsupported { .. } => "knowledge.unsupported_type",
            KnowledgeError::NoText { .. } => "knowledge.no_text",
            KnowledgeError::TooLarge { .. } => "knowledge.too_large",
            KnowledgeError::DuplicateTitle(_) => "knowledge.duplicate_title",
            KnowledgeError::Invalid(_) => "knowledge.invalid",
            KnowledgeError::NotFound(_) => "knowledge.not_found",
            KnowledgeError::Store(_) => "knowledge.store",
        }
    }
}

/// A future the [`Source`] returns.
pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KnowledgeError>> + Send + 'a>>;

/// Where the base is kept (the database; see `crate::store`).
pub trait Source: Send + Sync {
    /// The base's current revision (0 when nothing was ever stored).
    fn revision(&self) -> SourceFuture<'_, i64>;
    /// Every item, with the revision they were read at.
    fn items(&self) -> SourceFuture<'_, (i64, Vec<Item>)>;
}

/// This process's view of the base: the last [`Shelf`] built, rebuilt when the base's revision
/// or the catalog changed.
#[derive(Default)]
pub struct Library {
    source: Option<Arc<dyn Source>>,
    shelf: Mutex<Option<Arc<Shelf>>>,
}

impl Library {
    /// A library reading `source`; without one it answers from the flow set's facts (the file).
    pub fn new(source: Option<Arc<dyn Source>>) -> Library {
        Library { source, shelf: Mutex::new(None) }
    }

    /// The shelf for the base's current revision and `catalog`; `facts` (the file's) when there is
    /// no source.
    ///
    /// Errors: [`KnowledgeError::Store`] when the revision or the items cannot be read.
    pub async fn shelf(&self, facts: &[Fact], catalog: &[ChoiceOption]) -> Result<Arc<Shelf>, KnowledgeError> {
        let revision = match &self.source {
            Some(source) => source.revision().await?,
            None => 0,
        };
        let key = content_key(revision, if self.source.is_some() { &[] } else { facts }, catalog);
        if let Some(shelf) = self.current().filter(|s| s.key == key) {
            return Ok(shelf);
        }
        let (revision, items) = match &self.source {
            Some(source) => source.items().await?,
            None => (0, facts.iter().map(Item::from_fact).collect()),
        };
        let key = content_key(revision, if self.source.is_some() { &[] } else { facts }, catalog);
        let shelf = Arc::new(Shelf { key, ..Shelf::build(revision, &items, catalog) });
        if let Ok(mut current) = self.shelf.lock() {
            *current = Some(shelf.clone());
        }
        Ok(shelf)
    }

    fn current(&self) -> Option<Arc<Shelf>> {
        self.shelf.lock().ok().and_then(|s| s.clone())
    }
}

/// A digest of what a shelf is built from.
fn content_key(revision: i64, facts: &[Fact], catalog: &[ChoiceOption]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    revision.hash(&mut h);
    for f in facts {
        (&f.id, &f.title, &f.answer, &f.keywords).hash(&mut h);
    }
    for c in catalog {
        (&c.id, &c.title, &c.description, c.price.map(f64::to_bits)).hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, title: &str, keywords: &[&str], answer: &str) -> Item {
        Item {
            id: id.into(),
            kind: ItemKind::Entry,
            title: title.into(),
            question: None,
            also_asked: vec![],
            answer: answer.into(),
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            category: None,
            source: None,
            revision: 1,
        }
    }

    fn catalog() -> Vec<ChoiceOption> {
        ["Full Wash", "Exterior Wash"]
            .iter()
            .map(|t| ChoiceOption {
                id: t.to_string(),
                title: t.to_string(),
                description: None,
                synonyms: vec![],
                price: Some(75.0),
            })
            .collect()
    }

    fn shelf() -> Shelf {
        let items = vec![
            entry("hours", "Opening hours", &["open", "hours", "friday"], "8 to 6, closed on Fridays"),
            entry("areas", "Areas we serve", &["sharjah", "come to", "dubai"], "Dubai and Sharjah"),
            Item {
                kind: ItemKind::Document,
                ..entry(
                    "guide",
                    "Care guide",
                    &[],
                    "## Ceramic coating\nLasts two years.\n\n## Leather\nConditioned twice a year.",
                )
            },
        ];
        Shelf::build(3, &items, &catalog())
    }

    fn ids(shelf: &Shelf, q: &str) -> Vec<String> {
        shelf.find(q).into_iter().map(|f| f.passage.id.clone()).collect()
    }

    #[test]
    fn the_best_passages_only_and_nothing_for_an_unrelated_question() {
        let s = shelf();
        assert_eq!(ids(&s, "Do you come to Sharjah?"), ["areas"]);
        assert_eq!(ids(&s, "how much is a full wash"), ["service:Full Wash"]);
        assert_eq!(ids(&s, "what are your prices"), ["service:Full Wash", "service:Exterior Wash"]);
        assert_eq!(ids(&s, "how long does a ceramic coating last?"), ["guide#1"]);
        assert_eq!(s.passage("guide#2").map(|p| p.title.as_str()), Some("Care guide — Leather"));
        assert!(ids(&s, "can you fix my laptop").is_empty());
        assert_eq!(s.topics().len(), 4, "entries and services, not documents' passages");
    }

    #[tokio::test]
    async fn the_library_rebuilds_only_when_the_content_changes() {
        let lib = Library::new(None);
        let facts = vec![Fact { id: "a".into(), title: "Alpha".into(), keywords: vec![], answer: "one".into() }];
        let first = lib.shelf(&facts, &[]).await.unwrap();
        let again = lib.shelf(&facts, &[]).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let changed = vec![Fact { answer: "two".into(), ..facts[0].clone() }];
        let rebuilt = lib.shelf(&changed, &[]).await.unwrap();
        assert_eq!(rebuilt.passages[0].text, "two");
        let with_catalog = lib.shelf(&changed, &catalog()).await.unwrap();
        assert_eq!(with_catalog.passages.len(), 3);
    }
}
