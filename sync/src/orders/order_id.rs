//! Order and line identifiers.

use sha2::{Digest, Sha256};

/// Longest order or line id, bytes.
pub const ORDER_ID_LEN_MAX: usize = 64;

/// Checks an order or line id: 1..=64 characters of `a-z`, `0-9` and `-`.
///
/// # Errors
/// A message naming what is wrong.
pub fn validate_order_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > ORDER_ID_LEN_MAX {
        return Err(format!(
            "id {id:?} must be 1 to {ORDER_ID_LEN_MAX} characters long"
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "id {id:?} contains {bad:?}; only a-z, 0-9 and '-' are allowed"
        ));
    }
    Ok(())
}

/// A store-unique id derived from the device that creates the object and the client's
/// Idempotency-Key: `"{device_id}-{first 12 hex digits of SHA-256(kind, device, key)}"`, so a
/// retried request finds the object it created. `kind` separates orders from lines.
pub fn derived_id(kind: &str, device_id: &str, idempotency_key: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [kind, device_id, idempotency_key] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    format!("{device_id}-{}", hex::encode(&digest[..6]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_valid_and_distinct() {
        let a = derived_id("order", "till-1", "k1");
        assert_eq!(a, derived_id("order", "till-1", "k1"));
        assert_ne!(a, derived_id("line", "till-1", "k1"));
        assert_ne!(a, derived_id("order", "till-2", "k1"));
        assert!(a.starts_with("till-1-"));
        validate_order_id(&a).expect("valid");
    }

    #[test]
    fn bad_ids_are_refused() {
        assert!(validate_order_id("").is_err());
        assert!(validate_order_id("Till-1").is_err());
        assert!(validate_order_id("a/b").is_err());
        assert!(validate_order_id(&"a".repeat(65)).is_err());
        validate_order_id(&"a".repeat(64)).expect("64 is fine");
    }
}
