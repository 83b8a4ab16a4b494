//! Password hashes: argon2id in the PHC string format, with the crate's recommended parameters.

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{
        PasswordHasher, PasswordVerifier,
        phc::{Output, PasswordHash},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error("the stored password hash is not a valid PHC string: {0}")]
    StoredHash(String),
}

/// Hashes a new password (slow on purpose).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC hash (slow on purpose: call it off the async
/// runtime, and cache successes).
pub fn verify(password: &str, stored: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(stored).map_err(|e| PasswordError::StoredHash(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// The most memory a stored hash may ask a [`Verifier`] for (argon2's `m`, in KiB): a record
/// that asks for more is refused rather than allowed to make the server allocate it.
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// Verifies passwords with memory of its own, kept from one verification to the next.
///
/// `argon2` allocates (by default) 19 MiB per verification and frees it; the allocator keeps
/// those blocks resident per thread and fragments them, so a server whose threads verify in
/// turn grows by far more than the verifications running at once. A verifier per worker thread
/// holds exactly one block of memory for its whole life (see `crate::auth::pool`).
#[derive(Default)]
pub struct Verifier {
    blocks: Vec<Block>,
}

impl Verifier {
    /// Whether `password` matches the stored PHC hash (constant time on the output).
    pub fn verify(&mut self, password: &str, stored: &str) -> Result<bool, PasswordError> {
        let stored_error = |e: &dyn std::fmt::Display| PasswordError::StoredHash(e.to_string());
        let parsed = PasswordHash::new(stored).map_err(|e| stored_error(&e))?;
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return Err(PasswordError::StoredHash("no salt or no hash".into()));
        };
        let params = Params::try_from(&parsed).map_err(|e| stored_error(&e))?;
        if params.m_cost() > MAX_MEMORY_KIB {
            return Err(PasswordError::StoredHash(format!(
                "asks for {} KiB of memory",
                params.m_cost()
            )));
        }
        let algorithm =
            Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| stored_error(&e))?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| stored_error(&e))?
            .unwrap_or_default();
        let blocks = params.block_count();
        if self.blocks.len() < blocks {
            self.blocks.resize(blocks, Block::default());
        }
        let mut computed = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt.as_ref(),
                &mut computed,
                &mut self.blocks[..blocks],
            )
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        // `Output`'s equality is constant time.
        Ok(Output::new(&computed).map_err(|e| stored_error(&e))? == *expected)
    }
}

/// A hash of a random password, made with the same parameters as every user's: an unknown
/// username is verified against it, so that it costs exactly what a known one costs. Made once
/// per process.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 24];
        getrandom::fill(&mut secret).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        hash(&secret).unwrap_or_else(|e| panic!("argon2 cannot hash a fixed-size password: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash("demo").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("demo", &stored).unwrap());
        assert!(!verify("Demo", &stored).unwrap());
        assert!(matches!(hash(""), Err(PasswordError::Empty)));
        assert!(dummy_hash().starts_with("$argon2id$"));
        let mut verifier = Verifier::default();
        assert!(verifier.verify("demo", &stored).unwrap());
        assert!(!verifier.verify("Demo", &stored).unwrap());
        assert!(!verifier.verify("demo", dummy_hash()).unwrap());
        assert!(verifier.verify("demo", &stored).unwrap(), "memory reused");
        assert!(matches!(
            verifier.verify("x", "not a hash"),
            Err(PasswordError::StoredHash(_))
        ));
        let greedy = stored.replace("m=19456", "m=4194304");
        assert!(matches!(
            verifier.verify("demo", &greedy),
            Err(PasswordError::StoredHash(_))
        ));
        assert!(!verify("demo", dummy_hash()).unwrap());
        assert!(matches!(
            verify("x", "not a hash"),
            Err(PasswordError::StoredHash(_))
        ));
    }
}
