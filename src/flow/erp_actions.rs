//! `flows/erp.yaml`: which ERP endpoints a journey reads and writes, and the JSON bodies it sends.
//!
//! Every business's ERP differs, so nothing about doctypes or fields is hard-coded: the catalog
//! query and each action's documents are declared here. Bodies are JSON templates with `${path}`
//! placeholders, filled from the journey's slots and validated against the JSON Schema written next
//! to them before anything leaves (Frappe conventions: `../shared/reference/frappe-rest-api.md` §2).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::format::Located;

/// The ERP file as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErpFile {
    /// How the service catalog is read.
    pub catalog: CatalogDecl,
    /// Writes, by name; a flow's `erp` step names one.
    pub actions: IndexMap<String, Located<ActionDecl>>,
    /// Reads of the customer's own documents (upcoming bookings, invoices due, offers), by name;
    /// a slot's `options: { lookup: <name> }` names one.
    #[serde(default)]
    pub lookups: IndexMap<String, Located<LookupDecl>>,
    /// Support tickets the service drafts replies for (see [`super::tickets`]); none by default.
    #[serde(default)]
    pub tickets: Option<Located<super::tickets::TicketsDecl>>,
}

/// A read whose rows become a choice slot's options: the customer's upcoming bookings, unpaid
/// invoices, subscriptions, current offers. Several sources are listed one after the other.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupDecl {
    /// The lists read, in order.
    pub sources: Vec<LookupSource>,
    /// Seconds an answer may be reused (0, the default: read every time). Only for lists that
    /// are the same for every customer, such as offers; a customer's own documents change as
    /// they book and pay.
    #[serde(default)]
    pub cache_seconds: u64,
}

/// One list read: `GET /api/resource/{doctype}?fields=…&filters=…&order_by=…&limit_page_length=…`
/// (Frappe reference §2).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupSource {
    /// The doctype listed ("Sales Order").
    pub doctype: String,
    /// Frappe list filters, `[[field, operator, value], …]`; values may hold `${customer_phone}`,
    /// `${wa_id}` and `${today}` (`YYYY-MM-DD` in the business's time zone).
    #[serde(default)]
    pub filters: Vec<Value>,
    /// The fields read; the title and description templates may use them.
    pub fields: Vec<String>,
    /// Frappe `order_by` ("delivery_date asc").
    #[serde(default)]
    pub order_by: Option<String>,
    /// At most this many rows (a WhatsApp list shows 10).
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// The field stored as the option id (the document `name` by default).
    #[serde(default = "default_id_field")]
    pub id_field: String,
    /// The row's title as the customer sees it: a template over the row's fields
    /// (`"${delivery_date} · ${name}"`, at most 24 characters are shown).
    pub title: String,
    /// A second line, also a template (`"${vehicle} · ${status}"`).
    #[serde(default)]
    pub description: Option<String>,
    /// Other words the customer may type for a row, also templates (`["${service_name?}",
    /// "${name}"]`), so "the Wax & Polish one" picks it.
    #[serde(default)]
    pub synonyms: Vec<String>,
    /// Words the customer reads instead of the ERP's values, by field: `{status: {"To Deliver
    /// and Bill": "Scheduled"}}`. Applied before the templates; the option id is never relabelled.
    #[serde(default)]
    pub labels: IndexMap<String, IndexMap<String, String>>,
    /// A numeric field shown and checked as the option's amount (`outstanding_amount`).
    #[serde(default)]
    pub amount_field: Option<String>,
    /// A JSON file (relative to the project root) answering for the ERP when none is configured:
    /// `{"data": [rows]}`; the same filters apply. A string `@today+N` in it is a date N days
    /// from today, so the sample data never goes stale.
    #[serde(default)]
    pub fixture: Option<String>,
}

fn default_limit() -> usize {
    10
}

fn default_id_field() -> String {
    "name".into()
}

/// The catalog query: `GET /api/resource/{doctype}?fields=…&filters=…`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogDecl {
    /// The doctype listed ("Item").
    pub doctype: String,
    /// Frappe list filters, `[[field, operator, value], …]`.
    #[serde(default)]
    pub filters: Vec<Value>,
    /// Field holding the option id stored in the slot.
    pub id_field: String,
    /// Field holding the title shown to the customer.
    pub title_field: String,
    /// Field holding the price (a number), if any.
    #[serde(default)]
    pub price_field: Option<String>,
    /// Field holding a description, if any.
    #[serde(default)]
    pub description_field: Option<String>,
    /// A JSON file (relative to the project root) answering for the ERP when none is configured.
    pub fixture: String,
    /// Seconds the catalog stays cached.
    #[serde(default = "default_ttl")]
    pub cache_seconds: u64,
}

fn default_ttl() -> u64 {
    300
}

/// One ERP action: documents written in order, each safe to repeat.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionDecl {
    /// The documents, in the order they are written; a later body may use `${<as>.name}` of an
    /// earlier one.
    pub documents: Vec<DocumentDecl>,
    /// The `as` of the document whose `name` is the reference given to the customer.
    pub reference: String,
    /// Files the customer sent, attached to an ERP document after the documents are written.
    #[serde(default)]
    pub attach: Vec<AttachDecl>,
}

/// A file the customer sent (a media slot), downloaded from WhatsApp and uploaded to the ERP
/// attached to a document (`POST /api/method/upload_file`, Frappe reference §5).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachDecl {
    /// The media slot holding the file.
    pub slot: String,
    /// The doctype of the document it is attached to ("Sales Invoice").
    pub doctype: String,
    /// That document's name, a template (`"${invoice}"`, or `"${note.name}"` for a document
    /// this action wrote).
    pub name: String,
}

/// A rendered [`AttachDecl`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedAttachment {
    /// The channel's media id.
    pub media_id: String,
    /// Its MIME type.
    pub mime_type: String,
    /// The file name given to the ERP; derived from the idempotency key, so a repeated upload
    /// is recognised (`wa-<key digest>.<ext>`).
    pub file_name: String,
    /// Attached to this doctype.
    pub doctype: String,
    /// Attached to this document: a name, or a reference to a document of the same action
    /// written first (see [`fill_references`]).
    pub name: Value,
}

/// One document write. Frappe has no idempotency keys (reference §7): a write is made safe to
/// repeat either by `find_by` (reuse a document whose fields match) or by `idempotency_field` (a
/// unique custom field holding our key, looked up before the POST and after a conflict).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentDecl {
    /// The name later bodies use for this document.
    #[serde(rename = "as")]
    pub alias: String,
    /// The doctype ("Sales Order").
    pub doctype: String,
    /// Reuse an existing document whose fields equal these (templated) values.
    #[serde(default)]
    pub find_by: Option<Map<String, Value>>,
    /// A unique custom field that receives the action's idempotency key.
    #[serde(default)]
    pub idempotency_field: Option<String>,
    /// Update this existing document (a template of its `name`, `"${booking}"`) with `PUT`
    /// instead of creating one. A `PUT` sets the same fields to the same values when repeated,
    /// so it is safe to repeat as it is (Frappe reference §2).
    #[serde(default)]
    pub update: Option<String>,
    /// Only look the document up by `find_by`, never create it: a customer the ERP may or may
    /// not know (a lead linked to its existing Customer). When none matches, `${<as>.name?}` is
    /// null in later bodies. Such a document has no `body` or `schema`.
    #[serde(default)]
    pub find_only: bool,
    /// The body template (not with `find_only`).
    #[serde(default)]
    pub body: Value,
    /// The JSON Schema (draft 2020-12) the rendered body must satisfy (not with `find_only`).
    #[serde(default)]
    pub schema: Value,
}

/// Why a template could not be rendered or its result failed its schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BodyProblem {
    /// The document alias.
    pub document: String,
    /// JSON pointer inside the body, or the placeholder that failed.
    pub at: String,
    /// What is wrong, in words.
    pub message: String,
}

/// The key of the object that stands for a reference to a document written earlier in the same
/// action (`{"$ref": "customer.name"}`), left by [`render`] for a name in `keep` and replaced by
/// [`fill_references`] once that document is written.
pub const REFERENCE_KEY: &str = "$ref";

/// The key of the object that stands for a text with such references inside
/// (`{"$concat": ["Visit for ", {"$ref": "customer.name"}]}`).
pub const CONCAT_KEY: &str = "$concat";

/// Renders a template: every string `${a.b}` is looked up in `context` (`${a.b?}` is optional:
/// null, or nothing inside a longer string, when there is no value). A string that is exactly one
/// placeholder keeps the JSON type of the value found; inside a longer string the value is
/// written as text. `keep` lists top-level names left as references (documents not written yet):
/// a [`REFERENCE_KEY`] object, or a [`CONCAT_KEY`] one inside a longer string. Values are
/// inserted once and never read as templates again, so a customer's words that look like a
/// placeholder (`${x}`) are sent as written. A missing value is reported, never sent as empty.
pub fn render(template: &Value, context: &Map<String, Value>, keep: &[&str]) -> Result<Value, String> {
    match template {
        Value::String(s) => render_string(s, context, keep),
        Value::Array(items) => {
            items.iter().map(|v| render(v, context, keep)).collect::<Result<Vec<_>, _>>().map(Value::Array)
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), render(v, context, keep)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

fn lookup<'a>(context: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = context.get(parts.next()?)?;
    for part in parts {
        current = current.get(part)?;
    }
    // A structured slot value stands for its `value` field when used whole.
    if let Value::Object(obj) = current {
        if let Some(v) = obj.get("value") {
            return Some(v);
        }
    }
    Some(current)
}

fn render_string(s: &str, context: &Map<String, Value>, keep: &[&str]) -> Result<Value, String> {
    let kept = |path: &str| keep.iter().any(|k| path.split('.').next() == Some(*k));
    let trimmed = s.trim();
    if trimmed.starts_with("${") && trimmed.ends_with('}') && trimmed.matches("${").count() == 1 {
        let path = &trimmed[2..trimmed.len() - 1];
        if kept(path) {
            return Ok(reference(path));
        }
        // `${name?}`: optional, null when the slot is empty.
        if let Some(optional) = path.strip_suffix('?') {
            return Ok(lookup(context, optional).cloned().unwrap_or(Value::Null));
        }
        return lookup(context, path)
            .filter(|v| !v.is_null())
            .cloned()
            .ok_or_else(|| format!("no value for ${{{path}}}"));
    }
    // Text, with a reference part wherever a kept name stands.
    let mut parts: Vec<Value> = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unclosed placeholder in {s:?}"))?;
        let path = &after[..end];
        if kept(path) {
            parts.push(Value::String(std::mem::take(&mut text)));
            parts.push(reference(path));
        } else {
            let (path, optional) = match path.strip_suffix('?') {
                Some(p) => (p, true),
                None => (path, false),
            };
            match lookup(context, path) {
                Some(Value::String(v)) => text.push_str(v),
                Some(Value::Null) | None if optional => {}
                Some(Value::Null) | None => return Err(format!("no value for ${{{path}}}")),
                Some(other) => text.push_str(&other.to_string()),
            }
        }
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if parts.is_empty() {
        return Ok(Value::String(text));
    }
    parts.push(Value::String(text));
    parts.retain(|p| p.as_str() != Some(""));
    Ok(serde_json::json!({ CONCAT_KEY: parts }))
}

/// The object standing for a reference to `path` (`customer.name`).
fn reference(path: &str) -> Value {
    serde_json::json!({ REFERENCE_KEY: path })
}

/// The path of a reference object, if `value` is one.
fn reference_path(value: &Value) -> Option<&str> {
    let map = value.as_object().filter(|m| m.len() == 1)?;
    map.get(REFERENCE_KEY)?.as_str()
}

/// The parts of a text-with-references object, if `value` is one.
fn concat_parts(value: &Value) -> Option<&Vec<Value>> {
    let map = value.as_object().filter(|m| m.len() == 1)?;
    map.get(CONCAT_KEY)?.as_array()
}

/// Replaces the references [`render`] left (to documents written earlier in the same action)
/// by their values in `written` (alias → the document's fields, `{"customer": {"name": …}}`).
/// Nothing else is read: strings stay as they are, whatever they hold.
///
/// Errors: a reference to a document or field not in `written`.
pub fn fill_references(value: &Value, written: &Map<String, Value>) -> Result<Value, String> {
    if let Some(path) = reference_path(value) {
        // `${customer.name?}`: a document looked up and not found leaves null.
        if let Some(optional) = path.strip_suffix('?') {
            return Ok(lookup(written, optional).cloned().unwrap_or(Value::Null));
        }
        return lookup(written, path)
            .filter(|v| !v.is_null())
            .cloned()
            .ok_or_else(|| format!("no value for ${{{path}}}"));
    }
    if let Some(parts) = concat_parts(value) {
        let mut text = String::new();
        for part in parts {
            match fill_references(part, written)? {
                Value::String(s) => text.push_str(&s),
                Value::Null => {}
                other => text.push_str(&other.to_string()),
            }
        }
        return Ok(Value::String(text));
    }
    match value {
        Value::Array(items) => {
            items.iter().map(|v| fill_references(v, written)).collect::<Result<_, _>>().map(Value::Array)
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| fill_references(v, written).map(|v| (k.clone(), v)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// Lists the `${…}` placeholder paths used in a template, for the flow checker.
pub fn placeholders(template: &Value, out: &mut Vec<String>) {
    match template {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                let after = &rest[start + 2..];
                match after.find('}') {
                    Some(end) => {
                        out.push(after[..end].trim_end_matches('?').to_string());
                        rest = &after[end + 1..];
                    }
                    None => break,
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| placeholders(v, out)),
        Value::Object(map) => map.values().for_each(|v| placeholders(v, out)),
        _ => {}
    }
}

/// The names (first path segment) of the placeholders that produced the field at `problem.at`
/// of the document `problem.document` of `action`: the slots to ask for again when the body
/// failed its schema there. Empty when the field came from no placeholder.
pub fn names_behind(action: &ActionDecl, problem: &BodyProblem) -> Vec<String> {
    let Some(doc) = action.documents.iter().find(|d| d.alias == problem.document) else { return vec![] };
    let Some(template) = doc.body.pointer(&problem.at) else { return vec![] };
    let mut found = Vec::new();
    placeholders(template, &mut found);
    let mut names: Vec<String> = found.iter().map(|p| p.split('.').next().unwrap_or(p).to_string()).collect();
    names.dedup();
    names
}

pub use super::body_schema::validate;

/// An action with every slot placeholder filled and every body checked against its schema;
/// references to earlier documents (`${customer.name}`) are still placeholders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedAction {
    /// The action's name in `flows/erp.yaml`.
    pub action: String,
    /// The idempotency key of this write (one per journey and action).
    pub idempotency_key: String,
    /// The documents to write, in order.
    pub documents: Vec<RenderedDocument>,
    /// The alias whose `name` is the reference.
    pub reference: String,
    /// Files to attach after the documents are written.
    #[serde(default)]
    pub attachments: Vec<RenderedAttachment>,
}

/// One document of a [`RenderedAction`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedDocument {
    /// Alias (`as`).
    pub alias: String,
    /// The doctype.
    pub doctype: String,
    /// Rendered `find_by` filters.
    pub find_by: Option<Map<String, Value>>,
    /// The unique custom field that carries the idempotency key.
    pub idempotency_field: Option<String>,
    /// The rendered body.
    pub body: Value,
    /// Its schema, validated again after late placeholders are filled.
    pub schema: Value,
    /// The `name` of the existing document to update (`PUT`), rendered from the journey.
    #[serde(default)]
    pub update: Option<String>,
    /// Only looked up by `find_by`, never written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub find_only: bool,
}

/// Renders and validates `action` from `context` (the journey's slot values plus `wa_id`,
/// `idempotency_key` and `today`). Errors name the document and the field, for the customer
/// ("asked again with the reason") and for the turn record.
pub fn render_action(
    name: &str,
    action: &ActionDecl,
    context: &Map<String, Value>,
    idempotency_key: &str,
) -> Result<RenderedAction, Vec<BodyProblem>> {
    let aliases: Vec<&str> = action.documents.iter().map(|d| d.alias.as_str()).collect();
    let mut problems = Vec::new();
    let mut documents = Vec::new();
    for doc in &action.documents {
        let render_one = |t: &Value| render(t, context, &aliases);
        let body = match render_one(&doc.body) {
            Ok(b) => b,
            Err(message) => {
                problems.push(BodyProblem { document: doc.alias.clone(), at: "body".into(), message });
                continue;
            }
        };
        let find_by = match &doc.find_by {
            Some(f) => match render_one(&Value::Object(f.clone())) {
                Ok(Value::Object(m)) => Some(m),
                Ok(_) => None,
                Err(message) => {
                    problems.push(BodyProblem { document: doc.alias.clone(), at: "find_by".into(), message });
                    continue;
                }
            },
            None => None,
        };
        let update = match &doc.update {
            Some(u) => match render_one(&Value::String(u.clone())) {
                Ok(Value::String(name)) if !name.is_empty() => Some(name),
                Ok(other) => {
                    let message = format!("the document to update has no usable name ({other})");
                    problems.push(BodyProblem { document: doc.alias.clone(), at: "update".into(), message });
                    continue;
                }
                Err(message) => {
                    problems.push(BodyProblem { document: doc.alias.clone(), at: "update".into(), message });
                    continue;
                }
            },
            None => None,
        };
        let mut body = body;
        if let (Some(field), Value::Object(map)) = (&doc.idempotency_field, &mut body) {
            map.insert(field.clone(), Value::String(idempotency_key.to_string()));
        }
        if !doc.find_only {
            for (at, message) in validate(&doc.schema, &with_pending_filled(&body)) {
                problems.push(BodyProblem { document: doc.alias.clone(), at, message });
            }
        }
        documents.push(RenderedDocument {
            alias: doc.alias.clone(),
            doctype: doc.doctype.clone(),
            find_by,
            idempotency_field: doc.idempotency_field.clone(),
            body,
            schema: doc.schema.clone(),
            update,
            find_only: doc.find_only,
        });
    }
    let mut attachments = Vec::new();
    for (i, a) in action.attach.iter().enumerate() {
        let media = context.get(&a.slot);
        let media_id = media.and_then(|m| m.get("media_id")).and_then(Value::as_str);
        let mime_type =
            media.and_then(|m| m.get("mime_type")).and_then(Value::as_str).unwrap_or("application/octet-stream");
        let target = render(&Value::String(a.name.clone()), context, &aliases);
        let usable = |t: &Value| t.as_str().is_some_and(|s| !s.is_empty()) || reference_path(t).is_some();
        match (media_id, target) {
            (Some(id), Ok(target)) if usable(&target) => {
                let digest: String = idempotency_key
                    .bytes()
                    .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
                    .to_string();
                let ext = match mime_type {
                    "image/jpeg" => "jpg",
                    "image/png" => "png",
                    "image/webp" => "webp",
                    "application/pdf" => "pdf",
                    _ => "bin",
                };
                attachments.push(RenderedAttachment {
                    media_id: id.to_string(),
                    mime_type: mime_type.to_string(),
                    file_name: format!("wa-{digest}-{i}.{ext}"),
                    doctype: a.doctype.clone(),
                    name: target,
                });
            }
            (None, _) => problems.push(BodyProblem {
                document: format!("attach {}", a.slot),
                at: "slot".into(),
                message: format!("slot {:?} holds no file", a.slot),
            }),
            (_, Err(message)) => {
                problems.push(BodyProblem { document: format!("attach {}", a.slot), at: "name".into(), message })
            }
            (_, Ok(other)) => problems.push(BodyProblem {
                document: format!("attach {}", a.slot),
                at: "name".into(),
                message: format!("the document to attach to has no usable name ({other})"),
            }),
        }
    }
    if problems.is_empty() {
        Ok(RenderedAction {
            action: name.to_string(),
            idempotency_key: idempotency_key.to_string(),
            documents,
            reference: action.reference.clone(),
            attachments,
        })
    } else {
        Err(problems)
    }
}

/// Stands in a non-empty string for every late placeholder, so a body can be validated before
/// the documents it refers to exist.
fn with_pending_filled(body: &Value) -> Value {
    if reference_path(body).is_some() || concat_parts(body).is_some() {
        return Value::String("pending".into());
    }
    match body {
        Value::Array(items) => Value::Array(items.iter().map(with_pending_filled).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), with_pending_filled(v))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_placeholder_keeps_type_and_partial_interpolates() {
        let ctx = json!({"service": {"value": "WASH", "price": 45.5}, "first_name": "Jane"});
        let ctx = ctx.as_object().unwrap();
        let out =
            render(&json!({"rate": "${service.price}", "code": "${service}", "hi": "Hi ${first_name}!"}), ctx, &[])
                .unwrap();
        assert_eq!(out, json!({"rate": 45.5, "code": "WASH", "hi": "Hi Jane!"}));
    }

    #[test]
    fn missing_value_is_an_error_and_kept_aliases_stay() {
        let ctx = Map::new();
        assert!(render(&json!("${nope}"), &ctx, &[]).is_err());
        assert_eq!(
            render(&json!({"f": "${nope?}", "s": "a${nope?}b"}), &ctx, &[]).unwrap(),
            json!({"f": null, "s": "ab"})
        );
        assert_eq!(render(&json!("${customer.name}"), &ctx, &["customer"]).unwrap(), json!({"$ref": "customer.name"}));
    }

    #[test]
    fn references_are_filled_once_and_customers_words_are_never_read_as_templates() {
        let words = "streaks ${x} {{y}} \"quoted\" back\\slash 🚗🧽 ${customer.name}";
        let ctx = json!({"description": words, "first_name": "Jane"});
        let body = render(
            &json!({"customer": "${customer.name}", "text": "${description}", "title": "Complaint of ${first_name} for ${customer.name}"}),
            ctx.as_object().unwrap(),
            &["customer"],
        )
        .unwrap();
        assert_eq!(body["text"], words, "inserted as written");
        let written = json!({"customer": {"name": "CUST-0001"}});
        let filled = fill_references(&body, written.as_object().unwrap()).unwrap();
        assert_eq!(
            filled,
            json!({"customer": "CUST-0001", "text": words, "title": "Complaint of Jane for CUST-0001"}),
            "only the references were filled"
        );
        assert!(fill_references(&body, &Map::new()).is_err(), "a reference to a document not written yet");
    }
}
