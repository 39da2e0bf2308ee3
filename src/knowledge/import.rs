//! `fixtures/knowledge.yaml` as an import into the knowledge base. At start and on each reload of
//! the flows, the file's facts are compared with the stored items: a fact not stored yet is
//! created; one stored from the file and changed in it is updated; one a person has since edited
//! in the console is kept as they left it (the console wins, and the import says so).

use super::{Item, ItemKind};
use crate::flow::Fact;

/// The file's path under the project root, and the `source` of the items it created.
pub const KNOWLEDGE_FILE: &str = "fixtures/knowledge.yaml";

/// What importing the file changes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportPlan {
    /// Facts to store as new entries.
    pub create: Vec<Item>,
    /// Entries to rewrite from the file.
    pub update: Vec<Item>,
    /// Ids of entries edited in the console since, left as they are.
    pub kept: Vec<String>,
}

impl ImportPlan {
    /// Whether the import changes nothing.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty()
    }
}

/// Compares `facts` (the file's) with `stored` (every item of the base).
pub fn plan(facts: &[Fact], stored: &[Item]) -> ImportPlan {
    let mut out = ImportPlan::default();
    for fact in facts {
        let fresh = Item::from_fact(fact);
        match stored.iter().find(|i| i.id == fact.id) {
            None => out.create.push(fresh),
            Some(item) if item.source.as_deref() != Some(KNOWLEDGE_FILE) || item.kind != ItemKind::Entry => {
                out.kept.push(item.id.clone())
            }
            Some(item) => {
                let same = item.title == fresh.title && item.answer == fresh.answer && item.keywords == fresh.keywords;
                if !same {
                    // Wordings a person linked to it are kept through the file's change.
                    out.update.push(Item { also_asked: item.also_asked.clone(), ..fresh });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(id: &str, answer: &str) -> Fact {
        Fact { id: id.into(), title: id.to_uppercase(), keywords: vec![], answer: answer.into() }
    }

    #[test]
    fn new_facts_are_created_changed_ones_updated_and_console_edits_kept() {
        let stored = vec![
            Item { revision: 4, ..Item::from_fact(&fact("same", "one")) },
            Item { also_asked: vec!["when do you open".into()], ..Item::from_fact(&fact("changed", "old")) },
            Item { source: None, ..Item::from_fact(&fact("edited", "by hand")) },
        ];
        let facts = [fact("same", "one"), fact("changed", "new"), fact("edited", "file"), fact("fresh", "x")];
        let p = plan(&facts, &stored);
        assert_eq!(p.create.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["fresh"]);
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].answer, "new");
        assert_eq!(p.update[0].also_asked, ["when do you open"]);
        assert_eq!(p.kept, ["edited"]);
        assert!(plan(&facts[..1], &stored).is_empty());
    }
}
