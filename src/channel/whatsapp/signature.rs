//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw request body with the app secret, sent as
//! `sha256=<64 lowercase hex>` (`../shared/reference/whatsapp-cloud-api.md` §2). Verified over the
//! exact bytes received, before any parsing, in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header.
    #[error("channel.signature_missing: the X-Hub-Signature-256 header is missing")]
    Missing,
    /// Not `sha256=<hex>`.
    #[error("channel.signature_malformed: X-Hub-Signature-256 must be sha256=<64 hex digits>")]
    Malformed,
    /// Does not match the body.
    #[error("channel.signature_mismatch: the signature does not match the body; check WHATSAPP_APP_SECRET")]
    Mismatch,
}

impl SignatureError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "channel.signature_missing",
            SignatureError::Malformed => "channel.signature_malformed",
            SignatureError::Mismatch => "channel.signature_mismatch",
        }
    }
}

/// Checks `header` (the header's value, if any) against `body` signed with `secret`.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_part = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_part).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// The header value for `body` signed with `secret`: `sha256=<hex>`. Used by `chat` and tests,
/// which post webhooks exactly as WhatsApp does.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_own_signature_and_refuses_others() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let sig = sign(b"secret", body);
        assert_eq!(verify(b"secret", body, Some(&sig)), Ok(()));
        assert_eq!(verify(b"other", body, Some(&sig)), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"secret", b"{}", Some(&sig)), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"secret", body, None), Err(SignatureError::Missing));
        assert_eq!(verify(b"secret", body, Some("sha1=abc")), Err(SignatureError::Malformed));
        assert_eq!(verify(b"secret", body, Some("sha256=zz")), Err(SignatureError::Malformed));
    }
}
