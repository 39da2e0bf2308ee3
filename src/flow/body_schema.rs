//! Checking a rendered ERP body against its document's JSON Schema (draft 2020-12) with the
//! `jsonschema` crate, each schema compiled once per process.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use serde_json::Value;

/// Compiled validators by schema text. Compiling a schema costs far more than checking a body
/// with it (compiling at every check was a twentieth of the service's CPU under a load of
/// bookings), and the schemas are the flow files' few; the map is emptied when it reaches
/// [`VALIDATORS_KEPT`] (outbox rows written on older flow versions can bring others).
static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = LazyLock::new(Default::default);

/// How many compiled validators [`VALIDATORS`] keeps at most.
const VALIDATORS_KEPT: usize = 256;

/// The compiled validator of `schema`, compiled once per process. Errors: the schema does not
/// compile (the `jsonschema` crate's message).
fn validator(schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
    // The map holds only whole entries: a panic elsewhere cannot leave it half-written.
    let cache = || VALIDATORS.lock().unwrap_or_else(PoisonError::into_inner);
    let key = schema.to_string();
    if let Some(v) = cache().get(&key) {
        return Ok(v.clone());
    }
    let compiled = Arc::new(jsonschema::validator_for(schema).map_err(|e| e.to_string())?);
    let mut kept = cache();
    if kept.len() >= VALIDATORS_KEPT {
        kept.clear();
    }
    kept.insert(key, compiled.clone());
    Ok(compiled)
}

/// Validates `body` against `schema` with the `jsonschema` crate, returning every error as
/// `pointer: message`. A schema that does not compile is reported the same way, at `/`.
pub fn validate(schema: &Value, body: &Value) -> Vec<(String, String)> {
    match validator(schema) {
        Ok(validator) => validator
            .iter_errors(body)
            .map(|e| {
                let at = e.instance_path().to_string();
                (if at.is_empty() { "/".to_string() } else { at }, e.to_string())
            })
            .collect(),
        Err(e) => vec![("/".to_string(), format!("the schema itself is invalid: {e}"))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_errors_carry_pointers() {
        let schema =
            json!({"type": "object", "properties": {"qty": {"type": "integer", "minimum": 1}}, "required": ["qty"]});
        assert!(validate(&schema, &json!({"qty": 1})).is_empty());
        let errs = validate(&schema, &json!({"qty": 0}));
        assert_eq!(errs[0].0, "/qty");
    }

    #[test]
    fn a_schema_is_compiled_once_and_a_broken_one_is_reported_each_time() {
        let schema = json!({"type": "object", "required": ["compiled_once"]});
        let first = validator(&schema).unwrap_or_else(|e| panic!("{e}"));
        let again = validator(&schema).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&first, &again), "the second check reuses the first's validator");
        assert_eq!(validate(&schema, &json!({})).len(), 1);
        let broken = json!({"type": "no such type"});
        for _ in 0..2 {
            let errs = validate(&broken, &json!({}));
            assert_eq!(errs.len(), 1);
            assert!(errs[0].1.starts_with("the schema itself is invalid"), "{errs:?}");
        }
    }
}
