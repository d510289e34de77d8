//! Transit key names.

use std::fmt;

use crate::error::TransitError;

/// Longest key name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// A transit key's name: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, not
/// starting with a dot.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyName(String);

impl KeyName {
    /// Checks and wraps a name.
    pub fn new(name: &str) -> Result<Self, TransitError> {
        let reason = if name.is_empty() {
            Some("must not be empty".to_string())
        } else if name.len() > MAX_NAME_LEN {
            Some(format!("longer than {MAX_NAME_LEN} characters"))
        } else if name.starts_with('.') {
            Some("must not start with '.'".to_string())
        } else {
            name.chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                .map(|c| {
                    format!("character {c:?} is not allowed (use A-Z, a-z, 0-9, '.', '_', '-')")
                })
        };
        match reason {
            Some(reason) => Err(TransitError::input("key", reason)),
            None => Ok(KeyName(name.to_string())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_follow_the_documented_alphabet() {
        for good in ["a", "payments-2026", "A.b_c-9", &"x".repeat(128)] {
            assert_eq!(KeyName::new(good).unwrap().as_str(), good);
        }
        for bad in ["", ".hidden", "a/b", "a b", "é", &"x".repeat(129)] {
            let err = KeyName::new(bad).unwrap_err().to_string();
            assert!(err.starts_with("key: "), "{err}");
        }
    }
}
