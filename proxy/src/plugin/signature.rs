//! Optional Ed25519 signatures: when `plugins.trusted_keys` is set, a plugin file loads only with
//! a detached signature (`<file>.sig`, or the `x-switchyard-signature` header of an upload) made
//! by one of the trusted keys. Checked before compiling, so an unsigned file never reaches
//! Cranelift.
//!
//! What is signed binds the bytes to the plugin's name and a version: the text
//! [`signed_message`] (name, version, sha256 of the `.wasm`). So a signed plugin cannot be
//! installed under another name, and the registry refuses an older version than one it already
//! ran (a rollback to a signed but vulnerable build).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Parse a trusted key: base64 of the 32 raw public-key bytes.
pub(crate) fn parse_key(b64: &str) -> Result<VerifyingKey, String> {
    let bytes = STANDARD.decode(b64.trim()).map_err(|e| format!("not base64: {e}"))?;
    let raw: [u8; 32] =
        bytes.try_into().map_err(|_| "an Ed25519 public key is 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&raw).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// A signature document: `{"name": ..., "version": N, "signature": "<base64 of 64 bytes>"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureDoc {
    name: String,
    version: u64,
    signature: String,
}

/// The exact text that is signed: one line each, ending in a newline.
pub fn signed_message(name: &str, version: u64, wasm: &[u8]) -> String {
    let sha256: String = Sha256::digest(wasm).iter().map(|b| format!("{b:02x}")).collect();
    format!("switchyard-plugin-signature v1\nname: {name}\nversion: {version}\nsha256: {sha256}\n")
}

/// Checks `signature` (a signature document) over `wasm` as plugin `name` against the trusted
/// keys (already validated by config). Returns the signed version.
pub(crate) fn verify(
    name: &str,
    wasm: &[u8],
    signature: Option<&[u8]>,
    keys: &[String],
) -> Result<u64, String> {
    let Some(doc) = signature else {
        return Err("trusted_keys is set but there is no signature (<file>.sig)".into());
    };
    let doc: SignatureDoc = serde_json::from_slice(doc).map_err(|e| {
        format!("the signature is not a signature document {{name, version, signature}}: {e}")
    })?;
    if doc.name != name {
        return Err(format!("the signature is for plugin `{}`, not `{name}`", doc.name));
    }
    let raw = STANDARD
        .decode(doc.signature.trim())
        .map_err(|e| format!("the signature is not base64: {e}"))?;
    let raw: [u8; 64] =
        raw.try_into().map_err(|_| "an Ed25519 signature is 64 bytes".to_string())?;
    let sig = Signature::from_bytes(&raw);
    let message = signed_message(name, doc.version, wasm);
    let ok = keys
        .iter()
        .filter_map(|k| parse_key(k).ok())
        .any(|key| key.verify_strict(message.as_bytes(), &sig).is_ok());
    if ok { Ok(doc.version) } else { Err("no trusted key verifies the signature".into()) }
}
