//! Password hashes: argon2id in the PHC string format, with the crate's recommended parameters.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
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
        assert!(matches!(
            verify("x", "not a hash"),
            Err(PasswordError::StoredHash(_))
        ));
    }
}
