//! `switchyard plugin keygen` and `sign`: Ed25519 keys and the detached signature document the
//! proxy checks (`plugin::signature`): `{"name", "version", "signature"}` over the text
//! [`signed_message`] (name, version, sha256 of the `.wasm`), written to `<file>.sig`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};

use crate::plugin::signature::signed_message;

/// A new signing key from the OS's randomness: (private key file text, public key for
/// `plugins.trusted_keys`), both base64 of the 32 raw bytes.
pub fn keygen() -> Result<(String, String), String> {
    let mut seed = [0u8; 32];
    let mut urandom =
        std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
    std::io::Read::read_exact(&mut urandom, &mut seed).map_err(|e| format!("/dev/urandom: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((STANDARD.encode(seed) + "\n", STANDARD.encode(key.verifying_key().as_bytes())))
}

/// Read a private key file written by [`keygen`].
pub fn read_key(path: &Path) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let raw =
        STANDARD.decode(text.trim()).map_err(|e| format!("{}: not base64: {e}", path.display()))?;
    let seed: [u8; 32] = raw
        .try_into()
        .map_err(|_| format!("{}: an Ed25519 private key is 32 bytes", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The signature document for `wasm` as plugin `name`, version `version`.
pub fn signature_doc(key: &SigningKey, name: &str, version: u64, wasm: &[u8]) -> String {
    let sig = key.sign(signed_message(name, version, wasm).as_bytes());
    serde_json::json!({ "name": name, "version": version, "signature": STANDARD.encode(sig.to_bytes()) })
        .to_string()
}

/// Sign the file `wasm` and write `<wasm>.sig`; returns the signature file's path.
pub fn sign_file(
    key: &SigningKey,
    name: &str,
    version: u64,
    wasm: &Path,
) -> Result<std::path::PathBuf, String> {
    let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let out = crate::plugin::registry::sig_path(wasm);
    std::fs::write(&out, signature_doc(key, name, version, &bytes))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}
