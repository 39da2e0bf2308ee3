//! Tenants: one installation serving several businesses, none seeing another's data.
//!
//! A tenant is one business: its flows, business settings, ERP and WhatsApp credentials,
//! knowledge, users and API keys. It is named by a [`TenantId`] and resolved only from what the
//! platform guarantees (see [`registry::Directory`]): the WhatsApp `phone_number_id` a webhook
//! arrived on, a website chat's site key, an API key or a console login; never from a parameter a
//! client chooses.
//!
//! Without `TENANTS_DIR` the installation serves one business, the tenant [`TenantId::default`]
//! (`default`), from `FLOWS_DIR` and the environment's credentials, as before tenants existed.
//! With it, each folder `TENANTS_DIR/<id>/` is one tenant: `tenant.yaml` (name, numbers,
//! credentials sealed with `TENANT_SECRETS_KEY`, quotas; see [`declaration`]) beside its own
//! `flows/`, `prompts/` and `fixtures/knowledge.yaml`.

pub mod declaration;
pub mod quota;
pub mod registry;
pub mod secret;

use std::sync::Arc;

/// A tenant's id: 1 to 40 characters of `a-z`, `0-9` and `-`, starting with a letter or digit
/// (the name of its folder under `TENANTS_DIR`). Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

/// The id of the single business of an installation without `TENANTS_DIR`, and of every row
/// written before tenants existed.
pub const DEFAULT_TENANT: &str = "default";

impl TenantId {
    /// Reads an id. Errors: [`TenantError::BadId`] when it is not 1–40 of `a-z0-9-` starting
    /// with a letter or digit.
    pub fn parse(id: &str) -> Result<TenantId, TenantError> {
        let ok = !id.is_empty()
            && id.len() <= 40
            && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-');
        if ok { Ok(TenantId(id.into())) } else { Err(TenantError::BadId(id.to_string())) }
    }

    /// The tenant a stored row names (its `tenant` column, written from a `TenantId`); a value
    /// that is not an id (a hand-edited row) is read as the single business's, and logged.
    pub fn of_row(stored: &str) -> TenantId {
        TenantId::parse(stored).unwrap_or_else(|_| {
            tracing::error!(
                code = "tenant.bad_row",
                stored,
                "a row names no valid tenant; read as the default tenant's"
            );
            TenantId::default()
        })
    }

    /// The id as text (as stored in every table's `tenant` column).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    /// [`DEFAULT_TENANT`].
    fn default() -> Self {
        TenantId(DEFAULT_TENANT.into())
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for TenantId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Tenant failures, each with a stable code and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// A folder under `TENANTS_DIR` is not a valid id.
    #[error("tenant.bad_id: {0:?} is not a tenant id; name tenant folders with 1-40 of a-z, 0-9 and -")]
    BadId(String),
    /// A file could not be read.
    #[error("tenant.io: {path}: {source}")]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `tenant.yaml` does not parse or says something impossible.
    #[error("tenant.invalid: {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Two tenants claim one WhatsApp number or one website.
    #[error(
        "tenant.claimed_twice: {what} {value:?} is claimed by tenants {first} and {second}; each number and site belongs to one tenant"
    )]
    ClaimedTwice {
        /// `phone_number_id` or `site key`.
        what: &'static str,
        /// The number or key.
        value: String,
        /// One tenant.
        first: String,
        /// The other.
        second: String,
    },
    /// A credential in `tenant.yaml` is written in clear.
    #[error(
        "tenant.secret_not_sealed: {path}: {field} must be sealed (`carewell tenants seal {tenant}` prints the sealed form); secrets are never kept in clear"
    )]
    NotSealed {
        /// The file.
        path: String,
        /// The field.
        field: &'static str,
        /// The tenant.
        tenant: String,
    },
    /// Sealed secrets but no key to open them.
    #[error("tenant.key_missing: set TENANT_SECRETS_KEY (64 hex digits, the key the secrets were sealed with)")]
    KeyMissing,
    /// `TENANT_SECRETS_KEY` is not 32 bytes in hex.
    #[error(
        "tenant.bad_key: TENANT_SECRETS_KEY must be 64 hex digits (32 bytes); generate one with `carewell tenants new-key`"
    )]
    BadKey,
    /// A sealed secret does not open with this key for this tenant.
    #[error(
        "tenant.secret_unreadable: {path}: {field} does not open with TENANT_SECRETS_KEY for tenant {tenant} (sealed with another key, for another tenant, or damaged)"
    )]
    Unreadable {
        /// The file.
        path: String,
        /// The field.
        field: &'static str,
        /// The tenant.
        tenant: String,
    },
    /// No tenant has been configured.
    #[error("tenant.none: TENANTS_DIR {0:?} holds no tenant folder with a tenant.yaml")]
    Empty(std::path::PathBuf),
}

impl TenantError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            TenantError::BadId(_) => "tenant.bad_id",
            TenantError::Io { .. } => "tenant.io",
            TenantError::Invalid { .. } => "tenant.invalid",
            TenantError::ClaimedTwice { .. } => "tenant.claimed_twice",
            TenantError::NotSealed { .. } => "tenant.secret_not_sealed",
            TenantError::KeyMissing => "tenant.key_missing",
            TenantError::BadKey => "tenant.bad_key",
            TenantError::Unreadable { .. } => "tenant.secret_unreadable",
            TenantError::Empty(_) => "tenant.none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_folder_names_of_lowercase_letters_digits_and_dashes() {
        assert_eq!(TenantId::parse("sparkle-2").map(|t| t.to_string()).ok().as_deref(), Some("sparkle-2"));
        for bad in ["", "-x", "Sparkle", "a b", "../etc", "a/b", &"x".repeat(41)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(TenantId::default().as_str(), DEFAULT_TENANT);
    }
}
