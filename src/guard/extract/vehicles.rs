//! Car make and model, read against the shipped dataset `fixtures/vehicles.yaml` (its source and
//! licence are in the file). A model is always one of the dataset's (or, when the car is what
//! was asked, the one word after a known make), so it can never be a fragment of another word,
//! a colour or "plate".
//!
//! Spellings are matched on words with separators optional: "CX-5", "cx5" and "cx 5" are one
//! model; "Mazda3" is the make and the model glued.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::LazyLock;

use serde::Deserialize;

use super::words::{COLOURS, COMMON, is_in};
use crate::text::{Token, title_case, tokens};

#[derive(Deserialize)]
struct Dataset {
    makes: BTreeMap<String, MakeDecl>,
}

#[derive(Deserialize)]
struct MakeDecl {
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    everyday: bool,
    models: Vec<Scalar>,
}

/// A model entry; YAML reads `308` or `500` as numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(u64),
}

/// One way of writing a make or model: its words glued (`cx5`), and whether it may stand alone.
#[derive(Debug)]
struct Form {
    glued: String,
    standalone: bool,
}

/// A model of the dataset.
#[derive(Debug)]
pub struct Model {
    /// How it is shown ("CX-5").
    pub name: String,
    forms: Vec<Form>,
}

/// A make of the dataset.
#[derive(Debug)]
pub struct Make {
    /// How it is shown ("Mazda").
    pub name: String,
    forms: Vec<String>,
    /// Also an everyday word ("seat", "smart"): alone, read only when the car was asked.
    everyday: bool,
    /// Its models.
    pub models: Vec<Model>,
}

fn glue(s: &str) -> String {
    tokens(s).into_iter().map(|t| t.text).collect()
}

/// The dataset, parsed once.
pub static MAKES: LazyLock<Vec<Make>> = LazyLock::new(|| {
    let text = include_str!("../../../fixtures/vehicles.yaml");
    let options = serde_saphyr::options! { strict_booleans: true };
    // The file ships inside the binary and a unit test parses it: it cannot fail at run time.
    let data: Dataset =
        serde_saphyr::from_str_with_options(text, options).unwrap_or(Dataset { makes: BTreeMap::new() });
    data.makes
        .into_iter()
        .map(|(name, decl)| {
            let mut forms = vec![glue(&name)];
            forms.extend(decl.aliases.iter().map(|a| glue(a)));
            let models = decl
                .models
                .into_iter()
                .map(|m| {
                    let raw = match m {
                        Scalar::Text(t) => t,
                        Scalar::Number(n) => format!("~{n}"),
                    };
                    let mut parts = raw.split('|');
                    let display = parts.next().unwrap_or_default();
                    let name = display.trim_start_matches('~').trim().to_string();
                    let mut forms = Vec::new();
                    for (i, f) in std::iter::once(display).chain(parts).enumerate() {
                        let bound = f.starts_with('~');
                        let glued = glue(f.trim_start_matches('~'));
                        let digits_only = glued.chars().all(|c| c.is_ascii_digit());
                        let _ = i;
                        forms.push(Form { standalone: !bound && !digits_only && distinctive(&glued), glued });
                    }
                    Model { name, forms }
                })
                .collect();
            Make { name, forms, everyday: decl.everyday, models }
        })
        .collect()
});

/// Whether a model written alone is unmistakable: four letters or more, or letters with digits.
fn distinctive(glued: &str) -> bool {
    let letters = glued.chars().filter(|c| c.is_alphabetic()).count();
    let digits = glued.chars().filter(|c| c.is_ascii_digit()).count();
    letters >= 4 || (letters >= 1 && digits >= 1)
}

/// A car read from a message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CarRead {
    /// The make as the dataset writes it, and the customer's words for it.
    pub make: Option<(String, String)>,
    /// The model as the dataset writes it (or the word after the make, when the car was asked),
    /// and the customer's words for it.
    pub model: Option<(String, String)>,
    /// Byte ranges of the text the car was read from: the plate reader leaves them alone.
    pub spans: Vec<Range<usize>>,
}

/// The number of tokens from `at` whose words glued together are `glued`, if any.
fn matches_at(words: &[Token], at: usize, glued: &str) -> Option<usize> {
    let mut acc = String::new();
    for (k, t) in words.iter().enumerate().skip(at).take(5) {
        acc.push_str(&t.text);
        if acc == glued {
            return Some(k + 1 - at);
        }
        if !glued.starts_with(&acc) {
            return None;
        }
    }
    None
}

/// The longest model of `make` written at `at`, with the tokens it takes.
fn model_at<'a>(make: &'a Make, words: &[Token], at: usize, bound_ok: bool) -> Option<(&'a Model, usize)> {
    let mut best: Option<(&Model, usize, usize)> = None;
    for m in &make.models {
        for f in &m.forms {
            if !bound_ok && !f.standalone {
                continue;
            }
            if let Some(n) = matches_at(words, at, &f.glued) {
                if best.is_none_or(|(_, _, len)| f.glued.len() > len) {
                    best = Some((m, n, f.glued.len()));
                }
            }
        }
    }
    best.map(|(m, n, _)| (m, n))
}

/// A make and model glued in one word ("mazda3", "bmwx5").
fn glued_pair<'a>(make: &'a Make, word: &str) -> Option<&'a Model> {
    for f in &make.forms {
        if let Some(rest) = word.strip_prefix(f.as_str()).filter(|r| !r.is_empty()) {
            if let Some(m) = make.models.iter().find(|m| m.forms.iter().any(|mf| mf.glued == rest)) {
                return Some(m);
            }
        }
    }
    None
}

fn quote(text: &str, words: &[Token], from: usize, to: usize) -> String {
    text[words[from].start..words[to - 1].end].to_string()
}

/// Reads a car's make and model from `text`. With `asked` (the car question is open), the one
/// word after a known make is taken as the model even when the dataset lacks it ("Toyota
/// Fortuna"), unless it is an everyday word, a colour or has the shape of a plate.
pub fn find_car(text: &str, asked: bool) -> CarRead {
    let words = tokens(text);
    let mut out = CarRead::default();
    // A make, longest form first ("Land Rover" before "Rover"), at its first place.
    let mut found: Option<(&Make, usize, usize)> = None;
    'outer: for i in 0..words.len() {
        let mut best: Option<(&Make, usize, usize)> = None;
        for make in MAKES.iter() {
            for f in &make.forms {
                if let Some(n) = matches_at(&words, i, f) {
                    if best.is_none_or(|(_, _, len)| f.len() > len) {
                        best = Some((make, n, f.len()));
                    }
                }
            }
            if let Some(m) = glued_pair(make, &words[i].text) {
                out.make = Some((make.name.clone(), quote(text, &words, i, i + 1)));
                out.model = Some((m.name.clone(), quote(text, &words, i, i + 1)));
                out.spans.push(words[i].start..words[i].end);
                return out;
            }
        }
        if let Some((make, n, _)) = best {
            // "a smart choice", "my seat": an everyday word is a make only with a model after
            // it, or when the car was asked.
            if make.everyday && !asked && model_at(make, &words, i + n, true).is_none() {
                continue;
            }
            found = Some((make, i, n));
            break 'outer;
        }
    }
    if let Some((make, i, n)) = found {
        out.make = Some((make.name.clone(), quote(text, &words, i, i + n)));
        out.spans.push(words[i].start..words[i + n - 1].end);
        let after = i + n;
        if let Some((model, k)) = model_at(make, &words, after, true) {
            out.model = Some((model.name.clone(), quote(text, &words, after, after + k)));
            out.spans.push(words[after].start..words[after + k - 1].end);
            return out;
        }
        if asked {
            if let Some(w) = words.get(after).filter(|w| model_like(w)) {
                let shown = if w.text.chars().any(|c| c.is_ascii_digit()) {
                    text[w.start..w.end].to_uppercase()
                } else {
                    title_case(&text[w.start..w.end])
                };
                out.model = Some((shown, text[w.start..w.end].to_string()));
                out.spans.push(w.start..w.end);
            }
        }
        return out;
    }
    // No make: a model that stands alone ("it's a Corolla", "CX-5"); the make is the one it
    // belongs to when only one make has it.
    for i in 0..words.len() {
        let mut hits: Vec<(&Make, &Model, usize)> = Vec::new();
        for make in MAKES.iter() {
            if let Some((model, k)) = model_at(make, &words, i, false) {
                hits.push((make, model, k));
            }
        }
        let Some(longest) = hits.iter().map(|(_, _, k)| *k).max() else { continue };
        hits.retain(|(_, _, k)| *k == longest);
        let (_, model, k) = hits[0];
        out.model = Some((model.name.clone(), quote(text, &words, i, i + k)));
        out.spans.push(words[i].start..words[i + k - 1].end);
        let mut makes: Vec<&str> = hits.iter().map(|(m, _, _)| m.name.as_str()).collect();
        makes.dedup();
        if let [only] = makes.as_slice() {
            out.make = Some((only.to_string(), quote(text, &words, i, i + k)));
        }
        return out;
    }
    out
}

/// Whether a word after a make can be an unknown model: not an everyday word, colour or "plate",
/// and not the shape of a plate (four digits or more).
fn model_like(w: &Token) -> bool {
    let digits = w.text.chars().filter(|c| c.is_ascii_digit()).count();
    let letters = w.text.chars().filter(|c| c.is_alphabetic()).count();
    !is_in(&w.text, COMMON)
        && !is_in(&w.text, COLOURS)
        && letters >= 1
        && digits < 4
        && w.text.chars().count() <= 12
        && w.text.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car(text: &str) -> (Option<String>, Option<String>) {
        let c = find_car(text, false);
        (c.make.map(|m| m.0), c.model.map(|m| m.0))
    }

    #[test]
    fn the_dataset_loads() {
        assert!(MAKES.len() > 60, "{} makes", MAKES.len());
        assert!(MAKES.iter().all(|m| !m.models.is_empty()));
    }

    #[test]
    fn makes_and_models_as_people_write_them() {
        let s = |a: &str, b: &str| (Some(a.to_string()), Some(b.to_string()));
        assert_eq!(car("It's a blue Mazda 3, plate DXB 4521"), s("Mazda", "3"));
        assert_eq!(car("Mazda 3 DXB 4521"), s("Mazda", "3"));
        assert_eq!(car("it's a Mazda3"), s("Mazda", "3"));
        assert_eq!(car("CX-5, plate DXB 4521"), s("Mazda", "CX-5"));
        assert_eq!(car("cx5"), s("Mazda", "CX-5"));
        assert_eq!(car("BMW X5"), s("BMW", "X5"));
        assert_eq!(car("mercedes c200"), s("Mercedes-Benz", "C200"));
        assert_eq!(car("Merc C 200 white"), s("Mercedes-Benz", "C200"));
        assert_eq!(car("toyota land cruiser"), s("Toyota", "Land Cruiser"));
        assert_eq!(car("my corolla cross"), s("Toyota", "Corolla Cross"));
        assert_eq!(car("grey Honda Civic KA 01 AB 1234"), s("Honda", "Civic"));
        assert_eq!(car("Tesla Model 3"), s("Tesla", "Model 3"));
        assert_eq!(car("range rover sport"), s("Land Rover", "Range Rover Sport"));
        assert_eq!(car("a black Honda Civic, plate TB66BBB"), s("Honda", "Civic"));
    }

    #[test]
    fn never_a_fragment_a_colour_or_plate() {
        assert_eq!(car("Honda plate ABC123"), (Some("Honda".into()), None));
        assert_eq!(car("I need a wash"), (None, None));
        assert_eq!(car("see you at 3"), (None, None));
        assert_eq!(car("my note says"), (None, None), "an everyday word is a model only after its make");
        assert_eq!(car("is there a seat cover option"), (None, None), "an everyday make needs its model");
        assert_eq!(car("seat leon"), (Some("SEAT".into()), Some("Leon".into())));
        assert_eq!(find_car("Smart", true).make.map(|m| m.0).as_deref(), Some("Smart"));
        assert_eq!(
            car("Swift"),
            (None, None),
            "a word that is a model of two makes and a word stands only after a make"
        );
        // Asked, the word after a known make is taken when it looks like a model.
        let asked = find_car("Toyota Fortuna", true);
        assert_eq!(asked.model.map(|m| m.0).as_deref(), Some("Fortuner"), "an alias in the dataset");
        let asked = find_car("Toyota Zenix", true);
        assert_eq!(asked.model.map(|m| m.0).as_deref(), Some("Zenix"));
        let asked = find_car("Toyota white", true);
        assert_eq!(asked.model, None);
    }
}
