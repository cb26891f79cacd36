//! Digests that name things: SHA-256 over length-prefixed fields (so no two different inputs
//! share an encoding), written as lower-case hex behind a versioned prefix. Cache keys and token
//! verdict keys are made this way.

use sha2::{Digest as _, Sha256};

/// SHA-256 over fields, each preceded by its length.
pub(crate) struct Fields(Sha256);

impl Fields {
    pub(crate) fn new() -> Self {
        Self(Sha256::new())
    }

    pub(crate) fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    /// `prefix` followed by the digest in hex.
    pub(crate) fn finish_hex(self, prefix: &str) -> String {
        let digest = self.0.finalize();
        let mut out = String::with_capacity(prefix.len() + 2 * digest.len());
        out.push_str(prefix);
        push_hex(&mut out, &digest);
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lower-case hex.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// `bytes` as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    push_hex(&mut out, bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_run_together() {
        let digest = |parts: &[&[u8]]| {
            let mut f = Fields::new();
            for p in parts {
                f.field(p);
            }
            f.finish_hex("x-")
        };
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert!(digest(&[b"ab"]).starts_with("x-"));
        assert_eq!(digest(&[b"ab"]).len(), 2 + 64);
        assert_eq!(hex(&[0x00, 0x0f, 0xa5]), "000fa5");
    }
}
