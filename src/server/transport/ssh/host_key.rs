//! The server's SSH host key: read, or made once.

use std::io;
use std::path::Path;

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;

/// Loads the host key at `path`, or makes a new ed25519 key there (mode 0600) if there is
/// none. The key is never logged; the error is one line naming the file.
pub fn host_key(path: &Path) -> Result<PrivateKey, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => PrivateKey::from_openssh(text.as_bytes())
            .map_err(|e| format!("cannot read the SSH host key {}: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| io::Read::read_exact(&mut f, &mut seed))
                .map_err(|e| format!("cannot get randomness for an SSH host key: {e}"))?;
            let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
            let text = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| format!("cannot encode the SSH host key: {e}"))?;
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| format!("cannot write the SSH host key {}: {e}", path.display()))?;
            log::info!("made a new SSH host key in {}", path.display());
            Ok(key)
        }
        Err(e) => Err(format!(
            "cannot read the SSH host key {}: {e}",
            path.display()
        )),
    }
}
