//! Optional Ed25519 signatures: when `plugins.trusted_keys` is set, a plugin file loads only with
//! a detached signature over its exact bytes (`<file>.sig`: 64 raw bytes, or their base64) made by
//! one of the trusted keys. Checked before compiling, so an unsigned file never reaches Cranelift.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};

/// Parse a trusted key: base64 of the 32 raw public-key bytes.
pub(crate) fn parse_key(b64: &str) -> Result<VerifyingKey, String> {
    let bytes = STANDARD.decode(b64.trim()).map_err(|e| format!("not base64: {e}"))?;
    let raw: [u8; 32] =
        bytes.try_into().map_err(|_| "an Ed25519 public key is 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&raw).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// Parse a detached signature: 64 raw bytes, or base64 text of them.
fn parse_signature(sig: &[u8]) -> Result<Signature, String> {
    let raw: Vec<u8> = if sig.len() == 64 {
        sig.to_vec()
    } else {
        let text =
            std::str::from_utf8(sig).map_err(|_| "signature is neither 64 bytes nor base64")?;
        STANDARD
            .decode(text.trim())
            .map_err(|e| format!("signature is neither 64 bytes nor base64: {e}"))?
    };
    let raw: [u8; 64] =
        raw.try_into().map_err(|_| "an Ed25519 signature is 64 bytes".to_string())?;
    Ok(Signature::from_bytes(&raw))
}

/// Check `signature` over `wasm` against the trusted keys (already validated by config).
pub(crate) fn verify(wasm: &[u8], signature: Option<&[u8]>, keys: &[String]) -> Result<(), String> {
    let Some(sig) = signature else {
        return Err("trusted_keys is set but there is no signature (<file>.sig)".into());
    };
    let sig = parse_signature(sig)?;
    let ok = keys
        .iter()
        .filter_map(|k| parse_key(k).ok())
        .any(|key| key.verify_strict(wasm, &sig).is_ok());
    if ok { Ok(()) } else { Err("no trusted key verifies the signature".into()) }
}
