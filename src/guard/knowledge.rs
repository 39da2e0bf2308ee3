//! The `knowledge` lookup: the facts an enquiry is answered from — `fixtures/knowledge.yaml` and
//! the catalog's services and prices — ranked against the customer's question. Only these facts
//! are ever said; a question that matches none is answered honestly ("I don't know") by the flow.

use crate::flow::Fact;
use crate::flow::graph::ChoiceOption;
use crate::text::{contains_words, fold};

/// Words that ask about prices: every service matches them a little.
const PRICE_WORDS: &[&str] =
    &["price", "prices", "cost", "costs", "how much", "rate", "rates", "charge", "fee", "services"];

/// The facts closest to `question` as choice options (`description` is the answer): those with
/// the best score, at most 10; every fact when there is no question (a topic list). Scores: a
/// keyword found counts its word count, a title found counts twice its word count, and a price
/// word counts 1 for each service. Empty when nothing matches.
pub fn closest(facts: &[Fact], catalog: &[ChoiceOption], question: Option<&str>) -> Vec<ChoiceOption> {
    let mut all: Vec<(usize, ChoiceOption)> = Vec::new();
    let words = |s: &str| fold(s).split_whitespace().count();
    for f in facts {
        let score = question.map_or(0, |q| {
            f.keywords.iter().filter(|k| contains_words(q, k)).map(|k| words(k)).sum::<usize>()
                + if contains_words(q, &f.title) { 2 * words(&f.title) } else { 0 }
        });
        all.push((
            score,
            ChoiceOption {
                id: f.id.clone(),
                title: crate::text::truncate(&f.title, crate::flow::MAX_ROW_TITLE),
                description: Some(f.answer.clone()),
                synonyms: vec![f.title.clone()],
                price: None,
            },
        ));
    }
    for item in catalog {
        let score = question.map_or(0, |q| {
            let priced = PRICE_WORDS.iter().any(|w| contains_words(q, w));
            usize::from(priced) + if contains_words(q, &item.title) { 2 * words(&item.title) } else { 0 }
        });
        let price = item.price.map(|p| format!("AED {p:.0}")).unwrap_or_else(|| "price on request".into());
        let about = item.description.as_deref().map(|d| format!(" — {d}")).unwrap_or_default();
        all.push((
            score,
            ChoiceOption {
                id: format!("service:{}", item.id),
                title: item.title.clone(),
                description: Some(format!("{price}{about}")),
                synonyms: vec![],
                price: item.price,
            },
        ));
    }
    if question.is_none() {
        return all.into_iter().map(|(_, o)| o).take(crate::flow::MAX_LIST_ROWS).collect();
    }
    let best = all.iter().map(|(s, _)| *s).max().unwrap_or(0);
    if best == 0 {
        return vec![];
    }
    all.into_iter().filter(|(s, _)| *s == best).map(|(_, o)| o).take(crate::flow::MAX_LIST_ROWS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Vec<Fact> {
        vec![
            Fact {
                id: "hours".into(),
                title: "Opening hours".into(),
                keywords: vec!["open".into(), "hours".into()],
                answer: "8 to 6".into(),
            },
            Fact {
                id: "areas".into(),
                title: "Areas we serve".into(),
                keywords: vec!["sharjah".into(), "come to".into()],
                answer: "Dubai and Sharjah".into(),
            },
        ]
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

    #[test]
    fn the_best_matching_facts_only_and_nothing_for_an_unrelated_question() {
        let ids = |q| closest(&facts(), &catalog(), Some(q)).into_iter().map(|o| o.id).collect::<Vec<_>>();
        assert_eq!(ids("Do you come to Sharjah?"), ["areas"]);
        assert_eq!(ids("how much is a full wash"), ["service:Full Wash"]);
        assert_eq!(ids("what are your prices"), ["service:Full Wash", "service:Exterior Wash"]);
        assert!(ids("can you fix my laptop").is_empty());
        assert_eq!(closest(&facts(), &catalog(), None).len(), 4, "every topic without a question");
    }
}
