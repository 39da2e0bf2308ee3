//! `TENANTS_DIR/<id>/tenant.yaml`: who a tenant is and what it may use.
//!
//! ```yaml
//! name: Sparkle Car Care
//! whatsapp:
//!   phone_number_ids: ["106540352242922"]   # the numbers whose webhooks are this tenant's
//!   access_token: sealed:v1:…               # optional; otherwise WHATSAPP_ACCESS_TOKEN
//! erp:                                      # optional; otherwise the in-process sandbox
//!   base_url: https://erp.sparkle.example
//!   api_key: sealed:v1:…
//!   api_secret: sealed:v1:…
//! admin_token: sealed:v1:…                  # optional break-glass bearer token of this tenant
//! quotas:                                   # optional; none means no limit
//!   conversations_per_day: 5000
//!   llm_tokens_per_day: 2000000
//! ```
//!
//! Every credential must be sealed (see [`super::secret`]); the flows, prompts and knowledge
//! file sit beside it in `flows/`, `prompts/` and `fixtures/`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::quota::Quotas;
use super::secret::{SecretsKey, is_sealed};
use super::{TenantError, TenantId};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantFile {
    name: String,
    #[serde(default)]
    whatsapp: WhatsAppFile,
    erp: Option<ErpFile>,
    admin_token: Option<String>,
    #[serde(default)]
    quotas: Quotas,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WhatsAppFile {
    #[serde(default)]
    phone_number_ids: Vec<String>,
    access_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErpFile {
    base_url: String,
    api_key: String,
    api_secret: String,
}

/// A tenant's ERP credentials, opened.
#[derive(Clone)]
pub struct ErpCredentials {
    /// Site URL.
    pub base_url: String,
    /// API key of the integration user.
    pub api_key: String,
    /// API secret.
    pub api_secret: String,
}

/// One tenant as declared, its secrets opened. `Debug` shows no secret.
#[derive(Clone)]
pub struct TenantDecl {
    /// The id (its folder's name).
    pub id: TenantId,
    /// The business's name, for operators.
    pub name: String,
    /// Its flows folder (`<folder>/flows`).
    pub flows_dir: PathBuf,
    /// The WhatsApp `phone_number_id`s whose webhooks are this tenant's.
    pub phone_number_ids: Vec<String>,
    /// Its Graph API access token, when it has its own.
    pub access_token: Option<String>,
    /// Its ERP, when it has one (otherwise the in-process sandbox).
    pub erp: Option<ErpCredentials>,
    /// Its break-glass admin token, if any.
    pub admin_token: Option<String>,
    /// Its quotas.
    pub quotas: Quotas,
}

impl std::fmt::Debug for TenantDecl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantDecl")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("flows_dir", &self.flows_dir)
            .field("phone_number_ids", &self.phone_number_ids)
            .field("erp", &self.erp.as_ref().map(|e| &e.base_url))
            .field("quotas", &self.quotas)
            .finish_non_exhaustive()
    }
}

impl TenantDecl {
    /// The tenant of an installation without `TENANTS_DIR`: `default`, `flows_dir`, the
    /// environment's credentials (carried by the settings, not here), no quota.
    pub fn single(flows_dir: &Path) -> TenantDecl {
        TenantDecl {
            id: TenantId::default(),
            name: "default".into(),
            flows_dir: flows_dir.to_path_buf(),
            phone_number_ids: Vec::new(),
            access_token: None,
            erp: None,
            admin_token: None,
            quotas: Quotas::default(),
        }
    }

    /// Reads `folder/tenant.yaml`, opening its secrets with `key`. Errors: the file cannot be
    /// read or parsed, a credential is in clear, a sealed one does not open, or no key is given
    /// for a file that has sealed secrets.
    pub fn read(folder: &Path, key: Option<&SecretsKey>) -> Result<TenantDecl, TenantError> {
        let name = folder.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let id = TenantId::parse(name)?;
        let path = folder.join("tenant.yaml");
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| TenantError::Io { path: path.clone(), source })?;
        let options = serde_saphyr::options! { strict_booleans: true };
        let file: TenantFile = serde_saphyr::from_str_with_options(&text, options)
            .map_err(|e| TenantError::Invalid { path: shown.clone(), message: e.to_string() })?;
        let open = |field: &'static str, value: &str| -> Result<String, TenantError> {
            if !is_sealed(value) {
                return Err(TenantError::NotSealed { path: shown.clone(), field, tenant: id.to_string() });
            }
            let key = key.ok_or(TenantError::KeyMissing)?;
            key.open(&id, value).ok_or_else(|| TenantError::Unreadable {
                path: shown.clone(),
                field,
                tenant: id.to_string(),
            })
        };
        let access_token =
            file.whatsapp.access_token.as_deref().map(|t| open("whatsapp.access_token", t)).transpose()?;
        let admin_token = file.admin_token.as_deref().map(|t| open("admin_token", t)).transpose()?;
        let erp = match &file.erp {
            Some(e) => Some(ErpCredentials {
                base_url: e.base_url.trim_end_matches('/').to_string(),
                api_key: open("erp.api_key", &e.api_key)?,
                api_secret: open("erp.api_secret", &e.api_secret)?,
            }),
            None => None,
        };
        if let Some(bad) =
            file.whatsapp.phone_number_ids.iter().find(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(TenantError::Invalid {
                path: shown,
                message: format!(
                    "whatsapp.phone_number_ids: {bad:?} is not a phone number id (digits, as in the webhook's metadata)"
                ),
            });
        }
        Ok(TenantDecl {
            id,
            name: file.name,
            flows_dir: folder.join("flows"),
            phone_number_ids: file.whatsapp.phone_number_ids,
            access_token,
            erp,
            admin_token,
            quotas: file.quotas,
        })
    }
}

/// Every tenant under `dir`: one per sub-folder holding a `tenant.yaml`, in id order. Errors:
/// any tenant's file is wrong (all or nothing: a half-configured installation does not start),
/// or there is none.
pub fn read_all(dir: &Path, key: Option<&SecretsKey>) -> Result<Vec<TenantDecl>, TenantError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TenantError::Io { path: dir.to_path_buf(), source })?;
    let mut folders: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("tenant.yaml").is_file()).collect();
    folders.sort();
    let tenants = folders.iter().map(|f| TenantDecl::read(f, key)).collect::<Result<Vec<_>, _>>()?;
    if tenants.is_empty() {
        return Err(TenantError::Empty(dir.to_path_buf()));
    }
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: &str, yaml: &str) -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let folder = dir.path().join(id);
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join("tenant.yaml"), yaml).expect("write");
        (dir, folder)
    }

    mod tempdir {
        /// A scratch folder removed on drop.
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir().join(format!("carewell-tenant-{}", uuid::Uuid::new_v4().simple()));
                std::fs::create_dir_all(&p).expect("mkdir");
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn a_tenant_file_opens_its_sealed_credentials_and_refuses_clear_ones() {
        let key = SecretsKey::from_hex(&"11".repeat(32)).expect("key");
        let id = TenantId::parse("sparkle").expect("id");
        let yaml = format!(
            "name: Sparkle\nwhatsapp:\n  phone_number_ids: [\"1001\"]\n  access_token: {}\nerp:\n  base_url: http://erp.test/\n  api_key: {}\n  api_secret: {}\nquotas:\n  conversations_per_day: 10\n",
            key.seal(&id, "EAAG-sec-1"),
            key.seal(&id, "k"),
            key.seal(&id, "s")
        );
        let (_dir, f) = folder("sparkle", &yaml);
        let t = TenantDecl::read(&f, Some(&key)).expect("reads");
        assert_eq!((t.id.as_str(), t.name.as_str()), ("sparkle", "Sparkle"));
        assert_eq!(t.phone_number_ids, vec!["1001".to_string()]);
        assert_eq!(t.access_token.as_deref(), Some("EAAG-sec-1"));
        let erp = t.erp.as_ref().expect("erp");
        assert_eq!(
            (erp.base_url.as_str(), erp.api_key.as_str(), erp.api_secret.as_str()),
            ("http://erp.test", "k", "s")
        );
        assert_eq!(t.quotas.conversations_per_day, Some(10));
        assert!(!format!("{t:?}").contains("EAAG"), "Debug shows no secret: {t:?}");
        assert!(matches!(TenantDecl::read(&f, None), Err(TenantError::KeyMissing)));

        let clear = "name: Sparkle\nwhatsapp:\n  access_token: EAAG-in-clear\n";
        let (_dir2, f2) = folder("sparkle", clear);
        let err = TenantDecl::read(&f2, Some(&key)).expect_err("refused");
        assert_eq!(err.code(), "tenant.secret_not_sealed");
        assert!(err.to_string().contains("whatsapp.access_token"), "{err}");

        let other = TenantId::parse("shine").expect("id");
        let stolen = format!("name: Shine\nadmin_token: {}\n", key.seal(&other, "x"));
        let (_dir3, f3) = folder("sparkle", &stolen);
        assert_eq!(TenantDecl::read(&f3, Some(&key)).err().map(|e| e.code()), Some("tenant.secret_unreadable"));
    }

    #[test]
    fn a_folder_name_that_is_no_tenant_id_and_an_unknown_field_are_refused() {
        let (_d, f) = folder("Bad_Name", "name: x\n");
        assert_eq!(TenantDecl::read(&f, None).err().map(|e| e.code()), Some("tenant.bad_id"));
        let (_d2, f2) = folder("ok", "name: x\nwhatsap: {}\n");
        assert_eq!(TenantDecl::read(&f2, None).err().map(|e| e.code()), Some("tenant.invalid"));
        let (_d3, f3) = folder("ok", "name: x\nwhatsapp:\n  phone_number_ids: [\"+1 555\"]\n");
        assert_eq!(TenantDecl::read(&f3, None).err().map(|e| e.code()), Some("tenant.invalid"));
    }
}
