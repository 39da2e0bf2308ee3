//! Which tenant an inbound request belongs to, from what the platform guarantees only.
//!
//! - A WhatsApp webhook: the `phone_number_id` of its metadata (a signed field), each number
//!   claimed by one tenant in its `tenant.yaml`.
//! - A website chat: the site key, each declared by one tenant's `business.yaml`.
//! - A conversation: its id, `<phone_number_id>:<wa_id>` or `web.<site>:<session>`, made by
//!   this service from the above.
//! - The console and admin API: the user's or API key's row (see `server::auth`).
//!
//! With a single business every number and site is the default tenant's.

use std::collections::HashMap;

use super::declaration::TenantDecl;
use super::{TenantError, TenantId};

/// The numbers' owners.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Set for an installation without `TENANTS_DIR`: every number is this tenant's.
    single: Option<TenantId>,
    numbers: HashMap<String, TenantId>,
}

impl Directory {
    /// The directory of `tenants`; `single` for an installation without `TENANTS_DIR`.
    /// Errors: [`TenantError::ClaimedTwice`] when two tenants claim one number.
    pub fn new(tenants: &[TenantDecl], single: bool) -> Result<Directory, TenantError> {
        let mut numbers: HashMap<String, TenantId> = HashMap::new();
        for t in tenants {
            for n in &t.phone_number_ids {
                if let Some(first) = numbers.insert(n.clone(), t.id.clone()) {
                    return Err(TenantError::ClaimedTwice {
                        what: "phone_number_id",
                        value: n.clone(),
                        first: first.to_string(),
                        second: t.id.to_string(),
                    });
                }
            }
        }
        let single = single.then(|| tenants.first().map(|t| t.id.clone()).unwrap_or_default());
        Ok(Directory { single, numbers })
    }

    /// Whether the installation serves one business (no `TENANTS_DIR`).
    pub fn is_single(&self) -> bool {
        self.single.is_some()
    }

    /// The tenant whose webhooks arrive on `phone_number_id`; `None` when no tenant claims it.
    pub fn of_number(&self, phone_number_id: &str) -> Option<TenantId> {
        self.single.clone().or_else(|| self.numbers.get(phone_number_id).cloned())
    }
}

/// What a conversation id says about where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin<'a> {
    /// `<phone_number_id>:<wa_id>`.
    WhatsApp(&'a str),
    /// `web.<site>:<session>`.
    Web(&'a str),
}

/// Reads a conversation id (see [`Origin`]); `None` for an id of neither shape.
pub fn origin(conversation_id: &str) -> Option<Origin<'_>> {
    let (head, _) = conversation_id.split_once(':')?;
    match head.strip_prefix(crate::channel::web::WEB_PREFIX) {
        Some(site) => Some(Origin::Web(site)),
        None => Some(Origin::WhatsApp(head)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(id: &str, numbers: &[&str]) -> TenantDecl {
        let mut d = TenantDecl::single(std::path::Path::new("flows"));
        d.id = TenantId::parse(id).expect("id");
        d.phone_number_ids = numbers.iter().map(|n| n.to_string()).collect();
        d
    }

    #[test]
    fn each_number_belongs_to_the_one_tenant_that_claims_it() {
        let d = Directory::new(&[decl("a", &["1"]), decl("b", &["2", "3"])], false).expect("directory");
        assert_eq!(d.of_number("1").map(|t| t.to_string()).as_deref(), Some("a"));
        assert_eq!(d.of_number("3").map(|t| t.to_string()).as_deref(), Some("b"));
        assert_eq!(d.of_number("4"), None, "a number nobody claims");
        let twice = Directory::new(&[decl("a", &["1"]), decl("b", &["1"])], false).expect_err("refused");
        assert_eq!(twice.code(), "tenant.claimed_twice");
    }

    #[test]
    fn a_single_business_owns_every_number() {
        let d = Directory::new(&[TenantDecl::single(std::path::Path::new("flows"))], true).expect("directory");
        assert_eq!(d.of_number("anything"), Some(TenantId::default()));
    }

    #[test]
    fn a_conversation_id_names_its_number_or_its_site() {
        assert_eq!(origin("106540352242922:971500000001"), Some(Origin::WhatsApp("106540352242922")));
        assert_eq!(origin("web.sparkle-site:abc"), Some(Origin::Web("sparkle-site")));
        assert_eq!(origin("nocolon"), None);
    }
}
