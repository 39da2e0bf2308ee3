//! Choosing one option by typing: its number in the list, its title, id or a synonym, a word of
//! exactly one title ("Interior" when one service says it), or a title with one typo ("Ful
//! Wash"). A word several titles share is not a pick: the customer is asked which of those.

use super::words::is_in;
use crate::flow::graph::ChoiceOption;
use crate::text::{Folded, fold, tokens};

/// What a message says about a choice.
#[derive(Debug, Clone, PartialEq)]
pub enum ChoiceRead {
    /// One option, with the customer's words for it.
    One(ChoiceOption, String),
    /// The words fit several options equally: ask which.
    Several(Vec<ChoiceOption>),
    /// Nothing.
    Nothing,
}

/// Whether `a` and `b` are at most one edit apart (insert, delete, substitute or swap two
/// neighbours): a typo.
pub fn one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a == b {
        return true;
    }
    let (la, lb) = (a.len(), b.len());
    if la.abs_diff(lb) > 1 {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    match la.cmp(&lb) {
        std::cmp::Ordering::Equal => {
            a[prefix + 1..] == b[prefix + 1..]
                || (prefix + 1 < la
                    && a[prefix] == b[prefix + 1]
                    && a[prefix + 1] == b[prefix]
                    && a[prefix + 2..] == b[prefix + 2..])
        }
        std::cmp::Ordering::Less => a[prefix..] == b[prefix + 1..],
        std::cmp::Ordering::Greater => a[prefix + 1..] == b[prefix..],
    }
}

/// Words around a choice that do not choose ("I'd like the full one please").
const FILLER: &[&str] = &[
    "a", "an", "the", "and", "or", "of", "for", "to", "with", "my", "me", "i", "im", "id", "want", "would", "like",
    "need", "please", "pls", "plz", "just", "get", "some", "option", "one", "service", "thanks", "thank", "you", "ok",
    "okay", "yes", "go", "take", "choose", "pick", "that", "this", "it", "is", "be", "lets", "do",
];

/// The words of a title that can name it alone: three letters or more, not filler.
fn key_words(title: &str) -> Vec<String> {
    tokens(title).into_iter().map(|t| t.text).filter(|w| w.chars().count() >= 3 && !is_in(w, FILLER)).collect()
}

/// Reads a choice among `options` from `text`. `focused`: the choice is the open question, so a
/// row number, a single word or a typo may pick; otherwise only a whole title or synonym in the
/// text does (and, at four letters or more, nothing shorter).
pub fn read_choice(text: &str, options: &[ChoiceOption], focused: bool) -> ChoiceRead {
    let f = fold(text);
    let trimmed = text.trim().to_string();
    if focused {
        if let Ok(n) = f.trim_end_matches('.').parse::<usize>() {
            return match n.checked_sub(1).and_then(|i| options.get(i)) {
                Some(o) => ChoiceRead::One(o.clone(), trimmed),
                None => ChoiceRead::Nothing,
            };
        }
        if let Some(o) = options.iter().find(|o| fold(&o.title) == f || fold(&o.id) == f) {
            return ChoiceRead::One(o.clone(), trimmed);
        }
    }
    // A whole title or synonym in the text; the longest wins.
    let mut best: Option<(usize, &ChoiceOption, String)> = None;
    let folded = Folded::new(text);
    for o in options {
        let mut names = vec![o.title.clone()];
        names.extend(o.synonyms.iter().cloned());
        for name in names {
            let n = fold(&name);
            if n.len() < 3 || (!focused && n.len() < 4) {
                continue;
            }
            if folded.has(&n) && best.as_ref().is_none_or(|(len, _, _)| n.len() > *len) {
                best = Some((n.len(), o, name.clone()));
            }
        }
    }
    if let Some((_, o, ev)) = best {
        return ChoiceRead::One(o.clone(), ev);
    }
    if !focused {
        return ChoiceRead::Nothing;
    }
    // A title with one typo ("ful wash", "subscripton").
    let typo: Vec<&ChoiceOption> =
        options.iter().filter(|o| fold(&o.title).chars().count() >= 5 && one_edit(&fold(&o.title), &f)).collect();
    if let [o] = typo.as_slice() {
        return ChoiceRead::One((*o).clone(), trimmed);
    }
    // A word of the titles: one title picks, several ask. Words of five letters or more may
    // carry one typo ("Interor") or be cut short ("detail" for "Detailing").
    let typed: Vec<String> = tokens(text).into_iter().map(|t| t.text).filter(|w| !is_in(w, FILLER)).collect();
    if typed.is_empty() || typed.len() > 4 {
        return ChoiceRead::Nothing;
    }
    let fits = |o: &ChoiceOption| {
        let keys = key_words(&o.title);
        typed.iter().all(|w| {
            keys.iter().any(|k| k == w || (w.chars().count() >= 5 && (one_edit(k, w) || k.starts_with(w.as_str()))))
        })
    };
    let matching: Vec<&ChoiceOption> = options.iter().filter(|o| fits(o)).collect();
    match matching.as_slice() {
        [] => ChoiceRead::Nothing,
        [o] => ChoiceRead::One((*o).clone(), trimmed),
        several => ChoiceRead::Several(several.iter().map(|o| (*o).clone()).collect()),
    }
}

/// Matches typed text to one option (see [`read_choice`]); several fitting is no match.
pub fn match_option(text: &str, options: &[ChoiceOption], focused: bool) -> Option<(ChoiceOption, String)> {
    match read_choice(text, options, focused) {
        ChoiceRead::One(o, ev) => Some((o, ev)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(id: &str, title: &str, synonyms: &[&str]) -> ChoiceOption {
        ChoiceOption {
            id: id.into(),
            title: title.into(),
            description: None,
            synonyms: synonyms.iter().map(|s| s.to_string()).collect(),
            price: None,
        }
    }

    fn services() -> Vec<ChoiceOption> {
        vec![
            opt("ext", "Exterior Wash", &[]),
            opt("full", "Full Wash", &[]),
            opt("int", "Interior Detailing", &[]),
            opt("pol", "Polish & Wax", &[]),
        ]
    }

    fn picked(r: ChoiceRead) -> Option<String> {
        match r {
            ChoiceRead::One(o, _) => Some(o.id),
            _ => None,
        }
    }

    #[test]
    fn typed_titles_numbers_and_synonyms() {
        let opts = vec![
            opt("one_time", "One-time", &["once", "single"]),
            opt("subscription", "Subscription", &["monthly plan"]),
        ];
        assert_eq!(picked(read_choice("SUBSCRIPTION", &opts, true)).as_deref(), Some("subscription"));
        assert_eq!(picked(read_choice("2", &opts, true)).as_deref(), Some("subscription"));
        assert_eq!(picked(read_choice("just once please", &opts, true)).as_deref(), Some("one_time"));
        assert_eq!(picked(read_choice("2", &opts, false)), None);
        assert_eq!(picked(read_choice("banana", &opts, true)), None);
        assert_eq!(picked(read_choice("subscripton", &opts, true)).as_deref(), Some("subscription"), "one typo");
    }

    #[test]
    fn a_word_of_one_title_picks_a_word_of_several_asks() {
        assert_eq!(picked(read_choice("Interior", &services(), true)).as_deref(), Some("int"));
        assert_eq!(picked(read_choice("interor", &services(), true)).as_deref(), Some("int"), "a typo in the word");
        assert_eq!(picked(read_choice("ful wash", &services(), true)).as_deref(), Some("full"));
        assert_eq!(picked(read_choice("polish", &services(), true)).as_deref(), Some("pol"));
        match read_choice("wash", &services(), true) {
            ChoiceRead::Several(o) => {
                assert_eq!(o.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["ext", "full"]);
            }
            other => panic!("expected a question between the washes, got {other:?}"),
        }
        assert_eq!(picked(read_choice("Interior", &services(), false)), None, "not asked: whole titles only");
    }

    #[test]
    fn typos_are_one_edit() {
        assert!(one_edit("interior", "interor"));
        assert!(one_edit("wash", "wahs"));
        assert!(one_edit("wash", "wash"));
        assert!(!one_edit("wash", "wish me"));
        assert!(!one_edit("full", "fall in"));
    }
}
