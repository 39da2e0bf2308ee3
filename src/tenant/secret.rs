//! Credentials sealed at rest: a tenant's WhatsApp token, ERP key and secret and break-glass
//! token are written in `tenant.yaml` only in sealed form, `sealed:v1:<hex>`, and opened at
//! start-up with `TENANT_SECRETS_KEY` (32 bytes, 64 hex digits) from the environment.
//!
//! The cipher is XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`): a random 24-byte nonce
//! per secret, so sealing the same secret twice gives two different texts, and the tenant's id as
//! associated data, so a secret copied into another tenant's file does not open.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};

use super::{TenantError, TenantId};

/// What a sealed secret starts with.
pub const SEALED_PREFIX: &str = "sealed:v1:";

/// Nonce length of XChaCha20-Poly1305, in bytes.
const NONCE_BYTES: usize = 24;

/// The key secrets are sealed with. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SecretsKey(chacha20poly1305::Key);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(…)")
    }
}

impl SecretsKey {
    /// Reads a key of 64 hex digits. Errors: [`TenantError::BadKey`].
    pub fn from_hex(text: &str) -> Result<SecretsKey, TenantError> {
        let bytes = hex::decode(text.trim()).map_err(|_| TenantError::BadKey)?;
        let key = chacha20poly1305::Key::try_from(bytes.as_slice()).map_err(|_| TenantError::BadKey)?;
        Ok(SecretsKey(key))
    }

    /// A new random key, as 64 hex digits.
    pub fn generate_hex() -> String {
        hex::encode(chacha20poly1305::Key::generate())
    }

    /// Seals `secret` for `tenant`: `sealed:v1:<hex of nonce and ciphertext>`.
    pub fn seal(&self, tenant: &TenantId, secret: &str) -> String {
        let cipher = XChaCha20Poly1305::new(&self.0);
        let nonce = chacha20poly1305::XNonce::generate();
        // Encryption with a valid key and nonce does not fail for inputs this size.
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: secret.as_bytes(), aad: tenant.as_str().as_bytes() })
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", hex::encode(out))
    }

    /// Opens a sealed secret of `tenant`; `None` when it is not sealed form, was sealed with
    /// another key or for another tenant, or was altered.
    pub fn open(&self, tenant: &TenantId, sealed: &str) -> Option<String> {
        let bytes = hex::decode(sealed.strip_prefix(SEALED_PREFIX)?).ok()?;
        if bytes.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, body) = bytes.split_at(NONCE_BYTES);
        let nonce = chacha20poly1305::XNonce::try_from(nonce).ok()?;
        let cipher = XChaCha20Poly1305::new(&self.0);
        let clear = cipher.decrypt(&nonce, Payload { msg: body, aad: tenant.as_str().as_bytes() }).ok()?;
        String::from_utf8(clear).ok()
    }
}

/// Whether `text` is in sealed form.
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(SEALED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretsKey {
        SecretsKey::from_hex(&"ab".repeat(32)).expect("key")
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_tenant_with_its_key() {
        let a = TenantId::parse("sparkle").expect("id");
        let b = TenantId::parse("shine").expect("id");
        let sealed = key().seal(&a, "EAAG-token");
        assert!(is_sealed(&sealed) && !sealed.contains("EAAG"), "{sealed}");
        assert_ne!(sealed, key().seal(&a, "EAAG-token"), "a fresh nonce each time");
        assert_eq!(key().open(&a, &sealed).as_deref(), Some("EAAG-token"));
        assert_eq!(key().open(&b, &sealed), None, "copied into another tenant's file");
        let other = SecretsKey::from_hex(&"cd".repeat(32)).expect("key");
        assert_eq!(other.open(&a, &sealed), None, "another key");
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert_eq!(key().open(&a, &altered), None, "altered");
        assert_eq!(key().open(&a, "EAAG-token"), None, "clear text is not sealed");
    }

    #[test]
    fn a_key_is_64_hex_digits() {
        assert!(SecretsKey::from_hex(&SecretsKey::generate_hex()).is_ok());
        for bad in ["", "abcd", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(matches!(SecretsKey::from_hex(bad), Err(TenantError::BadKey)), "{bad:?}");
        }
    }
}
