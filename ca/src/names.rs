//! Subject alternative names and the patterns profiles allow them by.

use std::fmt;
use std::net::IpAddr;

/// The names a certificate is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// DNS names, lower-case; a leading `*.` makes a wildcard name.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<IpAddr>,
    /// URIs (e.g. SPIFFE IDs).
    pub uris: Vec<String>,
}

impl Names {
    /// Whether there is no name at all.
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ips.is_empty() && self.uris.is_empty()
    }

    /// Every name as `DNS:…`, `IP:…` or `URI:…`, in that order.
    pub fn to_strings(&self) -> Vec<String> {
        self.dns
            .iter()
            .map(|d| format!("DNS:{d}"))
            .chain(self.ips.iter().map(|i| format!("IP:{i}")))
            .chain(self.uris.iter().map(|u| format!("URI:{u}")))
            .collect()
    }

    /// Adds a DNS name once, normalised to lower case.
    pub(crate) fn push_dns(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        if !self.dns.contains(&name) {
            self.dns.push(name);
        }
    }

    /// Adds an IP address once.
    pub(crate) fn push_ip(&mut self, ip: IpAddr) {
        if !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
    }

    /// Adds a URI once.
    pub(crate) fn push_uri(&mut self, uri: &str) {
        if !self.uris.iter().any(|u| u == uri) {
            self.uris.push(uri.to_string());
        }
    }
}

/// Why a DNS name is not a valid host name, or `None` if it is.
///
/// Letters, digits and hyphens; labels of 1 to 63 characters that neither
/// start nor end with a hyphen; 253 characters at most; a `*` only as the
/// whole leftmost label of a name with at least two more labels.
pub fn dns_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 253 {
        return Some(format!("DNS name '{name}' must be 1 to 253 characters"));
    }
    if name.ends_with('.') {
        return Some(format!("DNS name '{name}' must not end with a dot"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" {
            if i != 0 || labels.len() < 3 {
                return Some(format!(
                    "DNS name '{name}': '*' may only be the whole leftmost label of a name with at least two more labels"
                ));
            }
            continue;
        }
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Some(format!(
                "DNS name '{name}': label '{label}' is not 1-63 letters, digits or inner hyphens"
            ));
        }
    }
    None
}

/// A pattern of allowed DNS names.
///
/// - `api.example.com` allows exactly that name;
/// - `*` as a label matches any one label (`*.example.com` allows
///   `a.example.com`, not `a.b.example.com`), and `*` inside a label matches
///   any characters of that label (`api-*.example.com`);
/// - a leading `**.` matches one or more labels (`**.example.com` allows every
///   subdomain at any depth, not `example.com` itself).
///
/// A requested wildcard name (`*.x.example.com`) is matched with its `*` as a
/// literal label, so `**.example.com` covers it while `api.example.com` does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPattern {
    text: String,
    any_depth_prefix: bool,
    labels: Vec<String>,
}

impl DomainPattern {
    /// Parses a pattern; refuses empty labels and patterns that are only wildcards.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let text = pattern.trim().to_ascii_lowercase();
        let (any_depth_prefix, rest) = match text.strip_prefix("**.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, text.clone()),
        };
        let labels: Vec<String> = rest.split('.').map(str::to_string).collect();
        if labels.iter().any(|l| l.is_empty() || l.contains("**")) {
            return Err(format!(
                "domain pattern '{pattern}' has an empty or '**' label"
            ));
        }
        if labels.iter().all(|l| l.contains('*')) {
            return Err(format!(
                "domain pattern '{pattern}' must name at least one label literally"
            ));
        }
        Ok(DomainPattern {
            text,
            any_depth_prefix,
            labels,
        })
    }

    /// Whether `name` (already lower-case and valid) matches.
    pub fn matches(&self, name: &str) -> bool {
        let name_labels: Vec<&str> = name.split('.').collect();
        let n = self.labels.len();
        if self.any_depth_prefix {
            if name_labels.len() <= n {
                return false;
            }
            let tail = &name_labels[name_labels.len() - n..];
            tail.iter()
                .zip(&self.labels)
                .all(|(l, p)| label_matches(p, l))
        } else {
            name_labels.len() == n
                && name_labels
                    .iter()
                    .zip(&self.labels)
                    .all(|(l, p)| label_matches(p, l))
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Matches one label against one pattern label, `*` standing for any run of
/// characters (possibly empty) within the label.
fn label_matches(pattern: &str, label: &str) -> bool {
    glob(pattern.as_bytes(), label.as_bytes())
}

/// `*` matches any run of bytes; everything else matches itself.
pub(crate) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// Why a URI is not an absolute URI we accept, or `None` if it is.
pub fn uri_problem(uri: &str) -> Option<String> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Some(format!("URI '{uri}' has no scheme"));
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
    if !scheme_ok || rest.is_empty() || uri.len() > 2048 {
        return Some(format!("URI '{uri}' is not an absolute URI"));
    }
    if uri.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Some(format!(
            "URI '{uri}' contains spaces or non-ASCII characters"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> DomainPattern {
        DomainPattern::parse(p).expect("valid pattern")
    }

    #[test]
    fn exact_single_label_and_any_depth_patterns() {
        assert!(pattern("localhost").matches("localhost"));
        assert!(!pattern("localhost").matches("a.localhost"));
        let one = pattern("*.example.com");
        assert!(one.matches("a.example.com"));
        assert!(!one.matches("a.b.example.com"));
        assert!(!one.matches("example.com"));
        let deep = pattern("**.test");
        assert!(deep.matches("a.test"));
        assert!(deep.matches("a.b.c.test"));
        assert!(
            deep.matches("*.b.test"),
            "wildcard names are matched literally"
        );
        assert!(!deep.matches("test"));
        assert!(!deep.matches("a.testing"));
        let partial = pattern("api-*.example.com");
        assert!(partial.matches("api-eu.example.com"));
        assert!(!partial.matches("web.example.com"));
        assert!(!pattern("api.example.com").matches("*.example.com"));
    }

    #[test]
    fn bad_patterns_and_names_are_refused() {
        assert!(DomainPattern::parse("*").is_err());
        assert!(DomainPattern::parse("**.*").is_err());
        assert!(DomainPattern::parse("a..b").is_err());
        for bad in [
            "", "-a.test", "a-.test", "a_b.test", "*.test", "a.*.test", "x.test.", "é.test",
        ] {
            assert!(dns_name_problem(bad).is_some(), "{bad} should be invalid");
        }
        for good in [
            "localhost",
            "a.test",
            "*.a.test",
            "xn--bcher-kva.test",
            "a1-b2.test",
        ] {
            assert!(dns_name_problem(good).is_none(), "{good} should be valid");
        }
        assert!(uri_problem("spiffe://example.org/ns/a").is_none());
        assert!(uri_problem("no-scheme").is_some());
        assert!(uri_problem("https://a b").is_some());
    }
}
