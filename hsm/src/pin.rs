//! The PIN type: a secret that is never printed and is wiped on drop.

use secrecy::{ExposeSecret, SecretString};

/// A token PIN.
///
/// Not `Clone`, not `Copy`; `Debug` prints `Pin([REDACTED])`; the bytes are
/// zeroized when it is dropped. Only this crate reads its value, to log in.
pub struct Pin(SecretString);

impl Pin {
    /// Wraps a PIN given as a string.
    pub fn new(pin: impl Into<String>) -> Self {
        Pin(SecretString::from(pin.into()))
    }

    pub(crate) fn secret(&self) -> &SecretString {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }
}

impl From<SecretString> for Pin {
    fn from(s: SecretString) -> Self {
        Pin(s)
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_pin() {
        let pin = Pin::new("123456-secret");
        let shown = format!("{pin:?}");
        assert!(!shown.contains("123456"), "{shown}");
        assert_eq!(shown, "Pin([REDACTED])");
    }
}
