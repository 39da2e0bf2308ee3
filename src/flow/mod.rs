//! Flows are data, checked like code.
//!
//! `flows/` holds one `*.flow.yaml` file per journey, `business.yaml` (time zone, visit times,
//! fixed messages) and `erp.yaml` (catalog query and ERP writes). [`FlowSet::load`] reads them all,
//! compiles each journey into the typed graph of [`graph`], and refuses the whole set with every
//! problem found, each as `file:line:col: code: message`, so a running server can keep its last
//! good version.
//!
//! Checks made here: YAML syntax and unknown keys; each step has exactly one kind; every target
//! step, collected slot, condition slot, lookup, ERP action, prompt and output type exists; no slot
//! is collected by two steps; every step is reachable from the start and can reach an end;
//! `{placeholders}` in texts name declared slots; option titles fit WhatsApp's limits (20
//! characters for a reply button, 24 for a list row: `../shared/reference/whatsapp-cloud-api.md` §7).

mod analysis;
mod body_schema;
pub mod business;
mod compile;
pub use business::Business;
pub use compile::compile_flow;
pub mod diagram;
pub mod erp_actions;
pub mod format;
pub mod graph;
pub mod messages;
pub mod tickets;
mod visits;
pub mod web;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use business::{BusinessFile, compile_business};
use erp_actions::{ActionDecl, CatalogDecl, ErpFile, LookupDecl};
use format::{FlowFile, Located, SlotType};
use graph::{
    Branch, ChoiceOption, Condition, Flow, KNOWN_LOOKUPS, LlmGuard, OptionSource, Slot, SourceRef, Step, StepKind,
};

/// WhatsApp's longest reply-button title, in characters (reference §7).
pub const MAX_BUTTON_TITLE: usize = 20;
/// WhatsApp's longest list-row title, in characters (reference §7).
pub const MAX_ROW_TITLE: usize = 24;
/// WhatsApp's largest number of rows in one list message (reference §7).
pub const MAX_LIST_ROWS: usize = 10;
/// WhatsApp's largest number of reply buttons in one message (reference §7).
pub const MAX_BUTTONS: usize = 3;

/// The output types an LLM guard may name: each is a Rust type deriving `JsonSchema`.
pub const KNOWN_OUTPUTS: &[&str] = &["slot_extraction", "knowledge_answer"];

/// One problem in a flow file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowProblem {
    /// The file, as given to the loader.
    pub file: String,
    /// 1-based line (0 when the problem concerns the whole file).
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// Stable code, `flow.<what>`.
    pub code: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for FlowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.column, self.code, self.message)
    }
}

/// Why a flow set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The directory or a file could not be read.
    #[error("flow.io: cannot read {path}: {source}. Check that the path exists and is readable.")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// One or more files are broken; nothing was loaded.
    #[error("{} problem(s) in the flow files:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FlowProblem>),
}

impl FlowError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            FlowError::Io { .. } => "flow.io",
            FlowError::Invalid(_) => "flow.invalid",
        }
    }
}

/// `fixtures/knowledge.yaml`: the facts enquiries are answered from.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeFile {
    /// The facts.
    pub facts: Vec<Fact>,
}

/// One thing the bot may say about the business.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// Stable id.
    pub id: String,
    /// Its title in a list (at most 24 characters are shown).
    pub title: String,
    /// Words or phrases of a question it answers.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The answer, as said to the customer.
    pub answer: String,
}

/// Everything under `flows/` and `prompts/`, compiled and checked.
#[derive(Debug, Clone)]
pub struct FlowSet {
    /// Journeys by id.
    pub flows: IndexMap<String, Arc<Flow>>,
    /// Business facts.
    pub business: Arc<Business>,
    /// Catalog query.
    pub catalog: CatalogDecl,
    /// ERP actions by name.
    pub actions: IndexMap<String, ActionDecl>,
    /// `fixtures/knowledge.yaml`: what enquiries are answered from (lookup `knowledge`).
    pub knowledge: Vec<Fact>,
    /// `prompts/understand.md`: the intent-and-emotion guard's prompt, when present.
    pub understand_prompt: Option<String>,
    /// ERP reads of the customer's documents by name (`flows/erp.yaml`, `lookups`).
    pub lookups: IndexMap<String, LookupDecl>,
    /// Support tickets the service drafts replies for (`flows/erp.yaml`, `tickets`), if any.
    pub tickets: Option<tickets::Tickets>,
    /// The project root (parent of `flows/`), for fixtures.
    pub root: PathBuf,
    /// Every version of every flow loaded by this process, so a conversation keeps the version it
    /// started with after an edit is reloaded.
    pub archive: HashMap<(String, u32), Arc<Flow>>,
    /// Every compiled flow this process knows, by content hash: loaded from files, or from the
    /// database for a conversation still on an older one ([`FlowSet::adopt`]).
    pub by_hash: HashMap<String, Arc<Flow>>,
}

impl FlowSet {
    /// Loads and checks `flows_dir` (and `prompts/` beside it).
    ///
    /// Errors: [`FlowError::Io`] for an unreadable path, [`FlowError::Invalid`] with every problem
    /// found otherwise.
    pub fn load(flows_dir: &Path) -> Result<FlowSet, FlowError> {
        let root = flows_dir.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let prompts_dir = root.join("prompts");
        let display = |p: &Path| -> String {
            p.strip_prefix(&root).map(|r| r.display().to_string()).unwrap_or_else(|_| p.display().to_string())
        };
        let read =
            |p: &Path| std::fs::read_to_string(p).map_err(|source| FlowError::Io { path: p.to_path_buf(), source });

        let mut problems = Vec::new();
        let business_path = flows_dir.join("business.yaml");
        let business_file: Option<BusinessFile> =
            parse_yaml(&display(&business_path), &read(&business_path)?, &mut problems);
        let erp_path = flows_dir.join("erp.yaml");
        let erp_file: Option<ErpFile> = parse_yaml(&display(&erp_path), &read(&erp_path)?, &mut problems);

        let mut prompts = HashMap::new();
        if prompts_dir.is_dir() {
            for entry in
                std::fs::read_dir(&prompts_dir).map_err(|source| FlowError::Io { path: prompts_dir.clone(), source })?
            {
                let path = entry.map_err(|source| FlowError::Io { path: prompts_dir.clone(), source })?.path();
                if path.extension().is_some_and(|e| e == "md") {
                    if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                        prompts.insert(stem.to_string(), read(&path)?);
                    }
                }
            }
        }

        let knowledge_path = root.join("fixtures").join("knowledge.yaml");
        let knowledge: Option<KnowledgeFile> = if knowledge_path.is_file() {
            parse_yaml(&display(&knowledge_path), &read(&knowledge_path)?, &mut problems)
        } else {
            None
        };

        let mut paths: Vec<PathBuf> = std::fs::read_dir(flows_dir)
            .map_err(|source| FlowError::Io { path: flows_dir.to_path_buf(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".flow.yaml"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            problems.push(FlowProblem {
                file: display(flows_dir),
                line: 0,
                column: 0,
                code: "flow.none",
                message: "no *.flow.yaml file here: add at least one journey".into(),
            });
        }

        let overrides = business_file.as_ref().map(|b| b.messages.clone()).unwrap_or_default();
        let messages = load_messages(flows_dir, &display, &overrides, &mut problems);
        let lookups: IndexMap<String, LookupDecl> = erp_file
            .as_ref()
            .map(|e| e.lookups.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect())
            .unwrap_or_default();
        let lookup_names: Vec<&String> = lookups.keys().collect();
        let business = business_file
            .and_then(|b| compile_business(&display(&business_path), b, &lookup_names, &mut problems))
            .map(|mut b| {
                b.messages = messages;
                b
            });
        let mut flows = IndexMap::new();
        let actions: IndexMap<String, ActionDecl> = erp_file
            .as_ref()
            .map(|e| e.actions.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect())
            .unwrap_or_default();
        let mut ticket_settings = None;
        if let Some(erp) = &erp_file {
            check_actions(&display(&erp_path), erp, &mut problems);
            if let Some(t) = &erp.tickets {
                ticket_settings = tickets::check(&display(&erp_path), t, &actions, &mut problems);
            }
        }
        let known_lookups: Vec<String> =
            KNOWN_LOOKUPS.iter().map(|l| l.to_string()).chain(lookups.keys().cloned()).collect();
        for path in paths {
            let file = display(&path);
            let Some(parsed) = parse_yaml::<FlowFile>(&file, &read(&path)?, &mut problems) else {
                continue;
            };
            if let Some(flow) = compile_flow(&file, parsed, &prompts, &actions, &known_lookups, &mut problems) {
                if let Some(existing) = flows.get(&flow.id) {
                    let existing: &Arc<Flow> = existing;
                    problems.push(FlowProblem {
                        file: file.clone(),
                        line: 1,
                        column: 1,
                        code: "flow.duplicate_id",
                        message: format!(
                            "flow id {:?} is already used by {}: give each flow its own id",
                            flow.id, existing.file
                        ),
                    });
                } else {
                    flows.insert(flow.id.clone(), Arc::new(flow));
                }
            }
        }
        visits::check_answers(&flows, &mut problems);
        match (business, erp_file) {
            (Some(business), Some(erp)) if problems.is_empty() => {
                let archive = flows.values().map(|f: &Arc<Flow>| ((f.id.clone(), f.version), f.clone())).collect();
                let by_hash = flows.values().map(|f: &Arc<Flow>| (f.hash.clone(), f.clone())).collect();
                Ok(FlowSet {
                    flows,
                    business: Arc::new(business),
                    catalog: erp.catalog,
                    actions,
                    lookups,
                    understand_prompt: prompts.get("understand").cloned(),
                    knowledge: knowledge.map(|k| k.facts).unwrap_or_default(),
                    tickets: ticket_settings,
                    root,
                    archive,
                    by_hash,
                })
            }
            _ => Err(FlowError::Invalid(problems)),
        }
    }

    /// Which flow a message asks for: the one with the most of its keywords in the message
    /// (whole words), then the higher `priority`. When no keyword appears as written, the same
    /// with their regular inflections ("washed" for `wash`, "cancelled" for `cancel`: see
    /// [`crate::text::inflects`]), so that a message routed today is routed as before.
    /// `None` when neither finds a keyword.
    pub fn route(&self, text: &str) -> Option<Arc<Flow>> {
        let text = crate::text::Folded::new(text);
        self.route_by(|k| text.has(k)).or_else(|| self.route_by(|k| text.has_inflected(k)))
    }

    /// The flow with the most keywords for which `found` holds, then the higher `priority`.
    fn route_by(&self, found: impl Fn(&str) -> bool) -> Option<Arc<Flow>> {
        self.flows
            .values()
            .map(|f| (f.keywords.iter().filter(|k| found(k)).count(), f.priority, f))
            .filter(|(n, _, _)| *n > 0)
            .max_by_key(|(n, p, _)| (*n, *p))
            .map(|(_, _, f)| f.clone())
    }

    /// The flow with this id.
    pub fn flow(&self, id: &str) -> Option<&Arc<Flow>> {
        self.flows.get(id)
    }

    /// A flow at a given version: the one a journey started on. Falls back to the current
    /// version when this process never loaded that one (it was started after the edit).
    pub fn flow_at(&self, id: &str, version: u32) -> Option<&Arc<Flow>> {
        self.archive.get(&(id.to_string(), version)).or_else(|| self.flows.get(id))
    }

    /// Keeps the versions of `older` that this set does not have, for conversations under way.
    pub fn inherit(&mut self, older: &FlowSet) {
        for (key, flow) in &older.archive {
            self.archive.entry(key.clone()).or_insert_with(|| flow.clone());
        }
        for (hash, flow) in &older.by_hash {
            self.by_hash.entry(hash.clone()).or_insert_with(|| flow.clone());
        }
    }

    /// The flow a journey runs on: the content it started with (by hash), else its flow at its
    /// version, else the flow's current version.
    pub fn flow_of(&self, j: &crate::engine::Journey) -> Option<&Arc<Flow>> {
        j.flow_hash.as_ref().and_then(|h| self.by_hash.get(h)).or_else(|| self.flow_at(&j.flow, j.version))
    }

    /// Takes in a compiled flow read back from the database (a version this process never loaded
    /// from a file).
    pub fn adopt(&mut self, flow: Flow) {
        let flow = Arc::new(flow);
        self.archive.entry((flow.id.clone(), flow.version)).or_insert_with(|| flow.clone());
        self.by_hash.insert(flow.hash.clone(), flow);
    }

    /// The hashes `state`'s journeys run on that this set does not know.
    pub fn missing_hashes(&self, state: &crate::engine::ConversationState) -> Vec<String> {
        state
            .journey
            .iter()
            .chain(state.suspended.iter())
            .filter_map(|j| j.flow_hash.clone())
            .filter(|h| !self.by_hash.contains_key(h))
            .collect()
    }
}

fn parse_yaml<T: serde::de::DeserializeOwned>(file: &str, text: &str, problems: &mut Vec<FlowProblem>) -> Option<T> {
    let options = serde_saphyr::options! { strict_booleans: true };
    match serde_saphyr::from_str_with_options::<T>(text, options) {
        Ok(v) => Some(v),
        Err(e) => {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            let message = e.to_string();
            // The crate's message may carry its own snippet; the first line says what is wrong.
            let first = message.lines().next().unwrap_or("invalid YAML");
            // Drop the crate's own "error: line L column C:" prefix; the location is ours.
            let first = match first.split_once(": ") {
                Some((head, rest)) if head.starts_with("error") && rest.starts_with("line ") => {
                    rest.split_once(": ").map(|(_, m)| m).unwrap_or(rest).to_string()
                }
                _ => first.to_string(),
            };
            problems.push(FlowProblem { file: file.into(), line, column, code: "flow.parse", message: first });
            None
        }
    }
}

fn at<T>(file: &str, l: &Located<T>, code: &'static str, message: String) -> FlowProblem {
    FlowProblem { file: file.into(), line: l.line, column: l.column, code, message }
}

/// The SHA-256 of a compiled flow's JSON (its `hash` empty), in hex.
pub fn flow_hash(flow: &Flow) -> String {
    use sha2::Digest;
    let body = serde_json::to_string(&Flow { hash: String::new(), ..flow.clone() }).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(body.as_bytes()))
}

/// Reads `flows/messages.yaml` (optional: every key has a default) with the overrides of
/// `business.yaml`'s `messages`, and checks them (placeholders, button lengths).
fn load_messages(
    flows_dir: &Path,
    display: &dyn Fn(&Path) -> String,
    overrides: &indexmap::IndexMap<String, String>,
    problems: &mut Vec<FlowProblem>,
) -> messages::Messages {
    let path = flows_dir.join("messages.yaml");
    let file = display(&path);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut loaded: messages::Messages = if text.trim().is_empty() {
        messages::Messages::default()
    } else {
        parse_yaml(&file, &text, problems).unwrap_or_default()
    };
    if !overrides.is_empty() {
        let mut value = serde_json::to_value(&loaded).unwrap_or_default();
        for (k, v) in overrides {
            value[k] = serde_json::Value::String(v.clone());
        }
        match serde_json::from_value(value) {
            Ok(m) => loaded = m,
            Err(e) => problems.push(FlowProblem {
                file: "flows/business.yaml".into(),
                line: 0,
                column: 0,
                code: "flow.messages",
                message: format!("messages: {e}; the keys are those of messages.yaml"),
            }),
        }
    }
    for (key, message) in messages::check(&loaded) {
        let line = text.lines().position(|l| l.starts_with(&format!("{key}:"))).map_or(0, |i| i as u64 + 1);
        problems.push(FlowProblem {
            file: file.clone(),
            line,
            column: u64::from(line > 0),
            code: "flow.message",
            message,
        });
    }
    loaded
}

fn check_actions(file: &str, erp: &ErpFile, problems: &mut Vec<FlowProblem>) {
    for (name, action) in &erp.actions {
        let aliases: Vec<&str> = action.value.documents.iter().map(|d| d.alias.as_str()).collect();
        if !aliases.contains(&action.value.reference.as_str()) {
            problems.push(at(
                file,
                action,
                "flow.erp",
                format!(
                    "action {name:?}: reference {:?} is not the `as` of one of its documents ({})",
                    action.value.reference,
                    aliases.join(", ")
                ),
            ));
        }
        for doc in &action.value.documents {
            if doc.find_only {
                if doc.find_by.is_none() || !doc.body.is_null() || !doc.schema.is_null() || doc.update.is_some() {
                    problems.push(at(
                        file,
                        action,
                        "flow.erp",
                        format!(
                            "action {name:?}, document {:?}: a `find_only` document is looked up by `find_by` \
                             and never written: give it `find_by` and no `body`, `schema` or `update`",
                            doc.alias
                        ),
                    ));
                }
                continue;
            }
            if doc.body.is_null() || doc.schema.is_null() {
                problems.push(at(
                    file,
                    action,
                    "flow.erp",
                    format!(
                        "action {name:?}, document {:?}: give it a `body` and the `schema` that body must satisfy",
                        doc.alias
                    ),
                ));
                continue;
            }
            if let Err(e) = jsonschema::validator_for(&doc.schema) {
                problems.push(at(
                    file,
                    action,
                    "flow.erp",
                    format!("action {name:?}, document {:?}: its schema does not compile: {e}", doc.alias),
                ));
            }
            if doc.find_by.is_none() && doc.idempotency_field.is_none() && doc.update.is_none() {
                problems.push(at(
                    file,
                    action,
                    "flow.erp",
                    format!(
                        "action {name:?}, document {:?}: a repeated POST would create a second document; \
                     give it `find_by` or `idempotency_field` (see the Frappe reference, section 7)",
                        doc.alias
                    ),
                ));
            }
        }
    }
}

/// The `{name}` placeholders of a message text.
pub fn text_placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 1..];
    }
    out
}

/// What the LLM guard fills in a prompt template of the output `slot_extraction`.
pub const PROMPT_PLACEHOLDERS: &[&str] = &["business", "now", "time_zone", "question", "slots"];
/// What is filled in a prompt template of the output `knowledge_answer` (see
/// `crate::guard::knowledge::worded`).
pub const KNOWLEDGE_PROMPT_PLACEHOLDERS: &[&str] = &["business", "passages"];

/// The placeholders a prompt for `output` may use.
pub fn placeholders_for(output: &str) -> &'static [&'static str] {
    if output == "knowledge_answer" { KNOWLEDGE_PROMPT_PLACEHOLDERS } else { PROMPT_PLACEHOLDERS }
}

/// The `{{name}}` placeholders of a prompt template.
pub fn prompt_placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}

/// The JSON Schema of the flow-file format, generated from [`format::FlowFile`].
pub fn flow_file_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(FlowFile)).unwrap_or_default()
}
