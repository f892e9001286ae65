//! Blake2b-256, `hash_pair` and the lineage chain (KSPEC-1 §3.1, §3.4).

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

/// A 32-byte hash (KSPEC-1 §1).
pub type Hash = [u8; 32];

/// `Blake2b-256("kernel:oog_marker")`, the marker that routes out-of-gas pauses (KSPEC-1 §1, §10.5).
pub const OOG_MARKER: Hash = [
    0x54, 0xbf, 0x86, 0x0a, 0x79, 0xfd, 0xb4, 0x37, 0x88, 0x8d, 0x43, 0x6d, 0xc1, 0x74, 0xee, 0xf4, 0xc5, 0x56, 0xc0,
    0xe9, 0x80, 0x94, 0xd1, 0xd7, 0xf5, 0x0c, 0xd6, 0x43, 0x4a, 0xdb, 0x99, 0x1f,
];

/// Incremental BLAKE2b with a 32-byte digest parameter: no key, salt or personalisation, and not a
/// truncated BLAKE2b-512 (KSPEC-1 §3.1).
#[derive(Clone, Default)]
pub struct Blake2b256(Blake2b<U32>);

impl Blake2b256 {
    /// A fresh hasher (KSPEC-1 §3.1).
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes` into the hash (KSPEC-1 §3.1).
    pub fn update(&mut self, bytes: &[u8]) {
        Digest::update(&mut self.0, bytes);
    }

    /// The 32-byte digest of everything fed so far (KSPEC-1 §3.1).
    pub fn finalize(self) -> Hash {
        self.0.finalize().into()
    }
}

impl std::fmt::Debug for Blake2b256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blake2b256")
    }
}

/// `Blake2b-256(bytes)` (KSPEC-1 §3.1).
pub fn blake2b256(bytes: &[u8]) -> Hash {
    let mut h = Blake2b256::new();
    h.update(bytes);
    h.finalize()
}

/// `hash_pair(a, b) = Blake2b-256(a ‖ b)`: 64 bytes in, no domain prefix, not commutative
/// (KSPEC-1 §3.4).
pub fn hash_pair(a: &Hash, b: &Hash) -> Hash {
    let mut h = Blake2b256::new();
    h.update(a);
    h.update(b);
    h.finalize()
}

/// The lineage chain after binding the Image whose JCAP-1 cap hash is `image_hash`:
/// `hash_pair(chain, image_hash)`. Used by `SET_IMAGE` on the running frame and by
/// `DERIVE_SPAWN` for the child (KSPEC-1 §3.4).
pub fn extend_chain(chain: &Hash, image_hash: &Hash) -> Hash {
    hash_pair(chain, image_hash)
}

/// Lowercase hex of a hash, for messages and reports.
pub fn to_hex(hash: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for &b in hash {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parses 64 hex digits; test helper only.
    pub(crate) fn hx(s: &str) -> Hash {
        assert_eq!(s.len(), 64, "a hash has 64 hex digits");
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex digit");
        }
        out
    }

    #[test]
    fn empty_input_sanity_check() {
        assert_eq!(blake2b256(b""), hx("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"));
    }

    #[test]
    fn oog_marker_is_hash_of_its_label() {
        assert_eq!(blake2b256(b"kernel:oog_marker"), OOG_MARKER);
        assert_eq!(to_hex(&OOG_MARKER), "54bf860a79fdb437888d436dc174eef4c556c0e98094d1d7f50cd6434adb991f");
    }

    #[test]
    fn incremental_matches_one_shot() {
        let mut h = Blake2b256::new();
        h.update(b"JC");
        h.update(b"");
        h.update(b"AP");
        assert_eq!(h.finalize(), blake2b256(b"JCAP"));
    }

    #[test]
    fn hash_pair_is_hash_of_concatenation() {
        let (a, b) = ([0x01; 32], [0x02; 32]);
        let mut joined = [0u8; 64];
        joined[..32].copy_from_slice(&a);
        joined[32..].copy_from_slice(&b);
        assert_eq!(hash_pair(&a, &b), blake2b256(&joined));
    }

    #[test]
    fn hash_pair_is_not_commutative() {
        let (a, b) = ([0x01; 32], [0x02; 32]);
        assert_ne!(hash_pair(&a, &b), hash_pair(&b, &a));
    }

    #[test]
    fn lineage_chain_extends_step_by_step() {
        let genesis = [0x01; 32];
        let (img1, img2) = ([0xAA; 32], [0xBB; 32]);
        let c1 = extend_chain(&genesis, &img1);
        assert_eq!(c1, hash_pair(&genesis, &img1));
        assert_eq!(c1, hx("988ec4dbbff2f435a7de86ec8977c8205e1d682787f3b8b73f615cae7a364672"));
        let c2 = extend_chain(&c1, &img2);
        assert_eq!(c2, hash_pair(&c1, &img2));
        // Order of bindings matters: binding img2 then img1 gives another type.
        assert_ne!(c2, extend_chain(&extend_chain(&genesis, &img2), &img1));
        // Rebinding the same image still moves the chain on.
        assert_ne!(extend_chain(&c1, &img1), c1);
    }

    #[test]
    fn to_hex_is_lowercase_and_complete() {
        let mut h = [0u8; 32];
        h[0] = 0xAB;
        h[31] = 0x0F;
        let s = to_hex(&h);
        assert_eq!(s.len(), 64);
        assert!(s.starts_with("ab00"));
        assert!(s.ends_with("000f"));
    }
}
