//! RFC 7512 `pkcs11:` URIs naming a token and, optionally, an object in it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::Error;

/// Characters kept as-is when a URI is written back (RFC 7512 `pchar` without `;`).
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The object class a URI selects (`type=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// `type=private`
    Private,
    /// `type=public`
    Public,
    /// `type=secret-key`
    SecretKey,
}

/// A parsed `pkcs11:` URI.
///
/// Supported path attributes: `token`, `object`, `id`, `type`; supported query
/// attribute: `module-path`. A `pin-value` or `pin-source` is refused: PINs
/// come from the unseal flow, never from configuration. Any other attribute is
/// refused rather than silently ignored, so a URI never selects less precisely
/// than its author believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// Token label (`token=`).
    pub token: Option<String>,
    /// Object label (`object=`).
    pub object: Option<String>,
    /// Object `CKA_ID` (`id=`, percent-encoded bytes).
    pub id: Option<Vec<u8>>,
    /// Object class (`type=`).
    pub object_type: Option<ObjectType>,
    /// Path of the PKCS#11 module (`?module-path=`).
    pub module_path: Option<PathBuf>,
}

impl FromStr for Pkcs11Uri {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidUri {
            uri: redact(uri),
            reason,
        };
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| invalid("must start with 'pkcs11:'".into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut out = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = split_attr(attr).map_err(&invalid)?;
            let bytes = decode(value).map_err(&invalid)?;
            match name {
                "token" => set_once(&mut out.token, utf8(name, bytes).map_err(&invalid)?, name),
                "object" => set_once(&mut out.object, utf8(name, bytes).map_err(&invalid)?, name),
                "id" => set_once(&mut out.id, bytes, name),
                "type" => {
                    let t = match utf8(name, bytes).map_err(&invalid)?.as_str() {
                        "private" => ObjectType::Private,
                        "public" => ObjectType::Public,
                        "secret-key" => ObjectType::SecretKey,
                        other => return Err(invalid(format!("unsupported type '{other}'"))),
                    };
                    set_once(&mut out.object_type, t, name)
                }
                other => Err(format!("path attribute '{other}' is not supported")),
            }
            .map_err(&invalid)?;
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            // Never echo query text: it may hold a PIN.
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| invalid("a query attribute has no '='".into()))?;
            match name {
                "module-path" => {
                    let p = utf8(name, decode(value).map_err(&invalid)?).map_err(&invalid)?;
                    set_once(&mut out.module_path, PathBuf::from(p), name).map_err(&invalid)?;
                }
                "pin-value" | "pin-source" => {
                    return Err(invalid(format!(
                        "'{name}' is refused: PINs are never taken from a URI"
                    )));
                }
                other => {
                    return Err(invalid(format!(
                        "query attribute '{other}' is not supported"
                    )));
                }
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = &self.token {
            parts.push(format!("token={}", utf8_percent_encode(t, KEEP)));
        }
        if let Some(o) = &self.object {
            parts.push(format!("object={}", utf8_percent_encode(o, KEEP)));
        }
        if let Some(id) = &self.id {
            let enc: String = id.iter().map(|b| format!("%{b:02X}")).collect();
            parts.push(format!("id={enc}"));
        }
        if let Some(t) = self.object_type {
            let name = match t {
                ObjectType::Private => "private",
                ObjectType::Public => "public",
                ObjectType::SecretKey => "secret-key",
            };
            parts.push(format!("type={name}"));
        }
        write!(f, "pkcs11:{}", parts.join(";"))?;
        if let Some(p) = &self.module_path {
            write!(
                f,
                "?module-path={}",
                utf8_percent_encode(&p.to_string_lossy(), KEEP)
            )?;
        }
        Ok(())
    }
}

fn split_attr(attr: &str) -> Result<(&str, &str), String> {
    match attr.split_once('=') {
        Some(pair) => Ok(pair),
        None => Err(format!("attribute '{}' has no '='", redact(attr))),
    }
}

fn decode(value: &str) -> Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit())
        {
            return Err("malformed percent-encoding".into());
        }
    }
    Ok(percent_decode_str(value).collect())
}

fn utf8(name: &str, bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| format!("'{name}' is not valid UTF-8"))
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("attribute '{name}' appears twice"));
    }
    *slot = Some(value);
    Ok(())
}

/// A URI fit to be shown in an error: the query part, where a `pin-value`
/// could be, is never echoed.
fn redact(uri: &str) -> String {
    match uri.split_once('?') {
        Some((path, _)) => format!("{path}?[query not shown]"),
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_object_id_type_and_module() {
        let uri: Pkcs11Uri = "pkcs11:token=My%20CA;object=root-2026;id=%01%AB;type=private\
                              ?module-path=/usr/lib/softhsm/libsofthsm2.so"
            .parse()
            .expect("parses");
        assert_eq!(uri.token.as_deref(), Some("My CA"));
        assert_eq!(uri.object.as_deref(), Some("root-2026"));
        assert_eq!(uri.id.as_deref(), Some(&[0x01, 0xAB][..]));
        assert_eq!(uri.object_type, Some(ObjectType::Private));
        assert_eq!(
            uri.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        let again: Pkcs11Uri = uri.to_string().parse().expect("round trip");
        assert_eq!(again, uri);
    }

    #[test]
    fn refuses_pins_and_never_echoes_them() {
        for uri in [
            "pkcs11:token=a?pin-value=hunter2",
            "pkcs11:token=a?pin-value=x&pin-value=hunter2",
            "pkcs11:token=a?PIN-VALUE=hunter2",
            "pkcs11:token=a?module-path=/m&pin-source=hunter2",
            "pkcs11:token=a?hunter2",
        ] {
            let msg = uri.parse::<Pkcs11Uri>().expect_err("refused").to_string();
            assert!(!msg.contains("hunter2"), "{msg}");
        }
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in [
            "token=a",
            "pkcs11:token",
            "pkcs11:token=a;token=b",
            "pkcs11:serial=1234",
            "pkcs11:token=%zz",
            "pkcs11:token=%4",
            "pkcs11:type=cert",
            "pkcs11:token=a?module-name=softhsm2",
        ] {
            assert!(bad.parse::<Pkcs11Uri>().is_err(), "{bad} should be refused");
        }
    }
}
