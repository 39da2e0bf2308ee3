//! Ranking passages against a question with BM25F: BM25 (Robertson and Zaragoza, "The
//! Probabilistic Relevance Framework: BM25 and Beyond", Foundations and Trends in Information
//! Retrieval 3(4), 2009, eq. 3.15) over term frequencies that weigh a passage's fields (§3.4,
//! "BM25F"): a word of the title counts [`TITLE_WEIGHT`] times, a word of a keyword or of an
//! alternative wording of the question [`KEYWORD_WEIGHT`] times, a word of the text once.
//!
//! Words are the project's folded text ([`crate::text::fold`]) split into letters and digits,
//! without the few English words that carry no topic ([`STOP_WORDS`]), and with the English
//! plural and `-ing` endings cut ([`stem`]), so "prices" finds "price" and "opening" finds
//! "open". Everything is deterministic: equal scores keep the passages' order.

use std::collections::HashMap;

/// BM25's term-frequency saturation (the usual 1.2).
pub const K1: f32 = 1.2;
/// BM25's length normalisation (the usual 0.75).
pub const B: f32 = 0.75;
/// How much a word of a passage's title counts.
pub const TITLE_WEIGHT: f32 = 3.0;
/// How much a word of a keyword or of a question the passage answers counts.
pub const KEYWORD_WEIGHT: f32 = 2.0;

/// English words that say nothing about a topic: dropped from questions and passages alike.
/// Question words that do ("where", "when", "long") are kept.
pub const STOP_WORDS: &[&str] = &[
    "a", "about", "am", "an", "and", "any", "anything", "are", "as", "at", "be", "been", "but", "by", "can", "could",
    "did", "do", "does", "for", "from", "get", "got", "had", "has", "have", "hello", "hi", "how", "i", "if", "in",
    "is", "it", "its", "just", "know", "like", "me", "much", "my", "need", "of", "on", "or", "our", "please",
    "question", "s", "so", "some", "tell", "thank", "thanks", "that", "the", "their", "them", "there", "they", "this",
    "to", "u", "us", "want", "was", "we", "what", "which", "who", "will", "with", "would", "you", "your",
];

/// The fields of one passage, as ranked.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// Its title.
    pub title: &'a str,
    /// Its keywords and the questions it answers.
    pub keywords: &'a [String],
    /// Its text.
    pub text: &'a str,
}

/// An inverted index of passages (built once per change of the knowledge or the catalog).
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// For each word, the passages holding it with its weighted frequency there.
    postings: HashMap<String, Vec<(u32, f32)>>,
    /// Each passage's weighted length.
    lengths: Vec<f32>,
    /// The mean of `lengths`.
    mean_length: f32,
}

/// One passage found: its position in the list the index was built from, and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Position of the passage in the built list.
    pub passage: usize,
    /// BM25F score (0 or more; higher is closer).
    pub score: f32,
}

impl Index {
    /// Indexes `passages` in order.
    pub fn build<'a>(passages: impl IntoIterator<Item = Fields<'a>>) -> Index {
        let mut postings: HashMap<String, Vec<(u32, f32)>> = HashMap::new();
        let mut lengths = Vec::new();
        for (n, p) in passages.into_iter().enumerate() {
            let mut counts: HashMap<String, f32> = HashMap::new();
            let mut add = |text: &str, weight: f32| {
                for t in terms(text) {
                    *counts.entry(t).or_default() += weight;
                }
            };
            add(p.title, TITLE_WEIGHT);
            for k in p.keywords {
                add(k, KEYWORD_WEIGHT);
            }
            add(p.text, 1.0);
            lengths.push(counts.values().sum());
            for (term, tf) in counts {
                postings.entry(term).or_default().push((n as u32, tf));
            }
        }
        let mean_length = if lengths.is_empty() { 0.0 } else { lengths.iter().sum::<f32>() / lengths.len() as f32 };
        Index { postings, lengths, mean_length }
    }

    /// How many passages are indexed.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// The passages sharing a word with `question`, best first (equal scores in passage order).
    pub fn search(&self, question: &str) -> Vec<Hit> {
        let mut words = terms(question);
        words.sort();
        words.dedup();
        let n = self.lengths.len() as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for word in &words {
            let Some(list) = self.postings.get(word) else { continue };
            let df = list.len() as f32;
            // The "+1" form of the inverse document frequency: never negative for common words.
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(doc, tf) in list {
                let norm = 1.0 - B + B * self.lengths[doc as usize] / self.mean_length.max(f32::EPSILON);
                *scores.entry(doc).or_default() += idf * tf * (K1 + 1.0) / (tf + K1 * norm);
            }
        }
        let mut hits: Vec<Hit> = scores.into_iter().map(|(p, score)| Hit { passage: p as usize, score }).collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.passage.cmp(&b.passage)));
        hits
    }
}

/// The ranked words of `text`: folded, split into letters and digits, stop words dropped,
/// [`stem`]med.
pub fn terms(text: &str) -> Vec<String> {
    crate::text::fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(w))
        .map(stem)
        .collect()
}

/// Cuts English plural and then `-ing` endings: "batteries" → "battery", "prices" → "price",
/// "washing" → "wash", "coatings" → "coat"; short words, "-ss", "-us" and "-is" words are kept as
/// they are.
pub fn stem(word: &str) -> String {
    if !word.is_ascii() || word.len() <= 3 {
        return word.to_string();
    }
    let singular = if let Some(s) = word.strip_suffix("ies").filter(|s| s.len() >= 2) {
        format!("{s}y")
    } else if let Some(s) = word.strip_suffix("sses") {
        format!("{s}ss")
    } else if word.ends_with('s') && !word.ends_with("ss") && !word.ends_with("us") && !word.ends_with("is") {
        word[..word.len() - 1].to_string()
    } else {
        word.to_string()
    };
    match singular.strip_suffix("ing").filter(|s| s.len() >= 3) {
        Some(s) => s.to_string(),
        None => singular,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(docs: &[(&str, &[&str], &str)]) -> (Index, Vec<Vec<String>>) {
        let keywords: Vec<Vec<String>> =
            docs.iter().map(|(_, k, _)| k.iter().map(|s| s.to_string()).collect()).collect();
        let idx =
            Index::build(docs.iter().zip(&keywords).map(|((title, _, text), k)| Fields { title, keywords: k, text }));
        (idx, keywords)
    }

    #[test]
    fn words_are_folded_stemmed_and_stop_words_dropped() {
        assert_eq!(terms("What are your PRICES?"), ["price"]);
        assert_eq!(terms("Opening hours on Fridays"), ["open", "hour", "friday"]);
        assert_eq!(terms("batteries, glass, bus"), ["battery", "glass", "bus"]);
        assert_eq!(terms("coatings coating things"), ["coat", "coat", "thing"]);
        assert_eq!(terms("Do you come to Sharjah?"), ["come", "sharjah"]);
        assert!(terms("how much is it?").is_empty());
    }

    #[test]
    fn the_passage_with_the_rarer_word_ranks_first_and_titles_count_more() {
        let (idx, _) = index(&[
            ("Opening hours", &["open"], "We visit Saturday to Thursday, 8:00 to 18:00."),
            ("Areas", &["dubai"], "We come to Dubai and Sharjah; we visit every day."),
            ("Water", &[], "We bring our own water."),
        ]);
        let hits = idx.search("when do you visit on saturday?");
        assert_eq!(hits[0].passage, 0, "{hits:?}");
        assert_eq!(hits.len(), 2, "only passages sharing a word: {hits:?}");
        assert!(hits[0].score > hits[1].score);
        let hits = idx.search("areas");
        assert_eq!(hits[0].passage, 1);
        assert!(idx.search("laptop repair").is_empty());
    }

    #[test]
    fn equal_scores_keep_the_passage_order() {
        let (idx, _) = index(&[("Full Wash", &["price"], ""), ("Exterior Wash", &["price"], "")]);
        let hits = idx.search("prices");
        assert_eq!(hits.iter().map(|h| h.passage).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(hits[0].score, hits[1].score);
    }
}
