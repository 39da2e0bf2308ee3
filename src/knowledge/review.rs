//! Grouping flagged questions for review: questions that share most of their words ("do you do
//! ceramic coating", "ceramic coating?") are one group, so a person answers each kind once.

use std::collections::BTreeSet;

use super::rank::terms;

/// Two questions are in one group when their words overlap this much (Jaccard: shared words
/// over all words, stop words aside).
pub const SAME_QUESTION: f32 = 0.5;

/// A group of similar questions.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Group {
    /// The question that stands for the group (its first, in the order given).
    pub question: String,
    /// The ids of its flags.
    pub flags: Vec<i64>,
    /// Its distinct wordings.
    pub questions: Vec<String>,
    /// Its reasons, each once.
    pub reasons: Vec<String>,
}

/// Groups `flags` (id, question, reason) in order: each joins the first group whose first
/// question it resembles, else starts one. Groups come largest first (then in order).
pub fn group(flags: &[(i64, String, String)]) -> Vec<Group> {
    let mut groups: Vec<(BTreeSet<String>, Group)> = Vec::new();
    for (id, question, reason) in flags {
        let words: BTreeSet<String> = terms(question).into_iter().collect();
        let found = groups.iter_mut().find(|(w, _)| similarity(w, &words) >= SAME_QUESTION);
        match found {
            Some((_, g)) => {
                g.flags.push(*id);
                if !g.questions.contains(question) {
                    g.questions.push(question.clone());
                }
                if !g.reasons.contains(reason) {
                    g.reasons.push(reason.clone());
                }
            }
            None => groups.push((
                words,
                Group {
                    question: question.clone(),
                    flags: vec![*id],
                    questions: vec![question.clone()],
                    reasons: vec![reason.clone()],
                },
            )),
        }
    }
    let mut out: Vec<Group> = groups.into_iter().map(|(_, g)| g).collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.flags.len()));
    out
}

fn similarity(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f32 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let shared = a.intersection(b).count();
    shared as f32 / (a.len() + b.len() - shared) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: i64, q: &str) -> (i64, String, String) {
        (id, q.to_string(), "unknown".to_string())
    }

    #[test]
    fn similar_questions_group_and_the_largest_group_comes_first() {
        let groups = group(&[
            f(1, "Can I pay with crypto?"),
            f(2, "Do you do ceramic coating?"),
            f(3, "ceramic coating price"),
            f(4, "Do you do CERAMIC coating"),
            f(5, "what about ceramic coatings?"),
        ]);
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(groups[0].flags, [2, 3, 4, 5]);
        assert_eq!(groups[0].questions.len(), 4);
        assert_eq!(groups[1].flags, [1]);
    }
}
