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
        return Some(format!(
            "DNS name {} must be 1 to 253 characters",
            quoted(name)
        ));
    }
    if name.ends_with('.') {
        return Some(format!("DNS name {} must not end with a dot", quoted(name)));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!(
            "DNS name {} ends in a numeric label (an IP address belongs in an IP SAN)",
            quoted(name)
        ));
    }
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
///
/// Linear in `pattern.len() * text.len()` (the classic two-pointer matcher
/// with one backtrack point), so hostile input cannot make it slow.
pub(crate) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

/// Whether `uri` matches a URI pattern: both are split at `/`, and `*` matches
/// within one segment only, so `spiffe://example.test/ns/*` allows
/// `spiffe://example.test/ns/a` but not `spiffe://example.test/ns/a/b`.
pub(crate) fn uri_matches(pattern: &str, uri: &str) -> bool {
    let (ps, us): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), uri.split('/').collect());
    ps.len() == us.len()
        && ps
            .iter()
            .zip(&us)
            .all(|(p, u)| glob(p.as_bytes(), u.as_bytes()))
}

/// Why a URI is not an absolute URI we accept, or `None` if it is.
///
/// Besides a scheme and printable ASCII, it refuses what lets one path pass
/// for another: `.` and `..` segments, empty segments after the authority,
/// percent-escapes, queries, fragments and user information.
pub fn uri_problem(uri: &str) -> Option<String> {
    let shown = quoted(uri);
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Some(format!("URI {shown} has no scheme"));
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
    if !scheme_ok || rest.is_empty() || uri.len() > 512 {
        return Some(format!(
            "URI {shown} is not an absolute URI of at most 512 characters"
        ));
    }
    if uri.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Some(format!(
            "URI {shown} contains spaces or non-ASCII characters"
        ));
    }
    if uri
        .bytes()
        .any(|b| matches!(b, b'%' | b'?' | b'#' | b'@' | b'\\'))
    {
        return Some(format!(
            "URI {shown} contains '%', '?', '#', '@' or '\\', which are not accepted"
        ));
    }
    let path = rest
        .strip_prefix("//")
        .map_or(rest, |r| r.split_once('/').map_or("", |(_, p)| p));
    if path
        .split('/')
        .enumerate()
        .any(|(i, seg)| seg == "." || seg == ".." || (seg.is_empty() && i > 0))
    {
        return Some(format!("URI {shown} has '.', '..' or empty path segments"));
    }
    None
}

/// Caller input for an error message: quoted, at most 64 characters.
pub(crate) fn quoted(text: &str) -> String {
    let mut shown: String = text.chars().take(64).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!("'{shown}'")
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
        for bad in [
            "spiffe://ex.org/ns/a/../b",
            "spiffe://ex.org/ns/./a",
            "spiffe://ex.org/ns//a",
            "spiffe://ex.org/ns/%2e%2e/a",
            "https://user@ex.org/a",
            "https://ex.org/a?b=c",
            "https://ex.org/a#f",
        ] {
            assert!(uri_problem(bad).is_some(), "{bad} should be refused");
        }
        assert!(dns_name_problem("10.0.0.1").is_some());
        assert!(dns_name_problem("host.123").is_some());
    }

    #[test]
    fn uri_patterns_match_one_segment_per_star_in_linear_time() {
        assert!(uri_matches("spiffe://ex.org/ns/*", "spiffe://ex.org/ns/a"));
        assert!(!uri_matches(
            "spiffe://ex.org/ns/*",
            "spiffe://ex.org/ns/a/b"
        ));
        assert!(uri_matches(
            "spiffe://ex.org/ns/*/sa/*",
            "spiffe://ex.org/ns/x/sa/y"
        ));
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(!glob(b"a*b*c", b"axxbyy"));
        // Many stars against a long non-matching text: a backtracking matcher
        // would not return from this in any reasonable time.
        let pattern = "*a".repeat(20);
        let text = "b".repeat(5000);
        assert!(!glob(pattern.as_bytes(), text.as_bytes()));
    }
}
