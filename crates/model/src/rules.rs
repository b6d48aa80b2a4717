//! The sign-in rules of a Custom OIDC configuration (SPEC §11): which email
//! domains may sign in, whether the email must be verified, and whether new
//! users may be created at all.

use crate::{ErrorCode, Invalid, Result};

/// Domains in `allowed_email_domains`, at most.
pub const MAX_EMAIL_DOMAINS: usize = 50;

/// One entry of `allowed_email_domains`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRule {
    /// `example.com`: exactly this domain.
    Exact(String),
    /// `*.example.com`: its subdomains only (not `example.com` itself).
    Subdomains(String),
}

impl DomainRule {
    /// The entry as the API shows it (IDNA-normalised, lower-case).
    pub fn as_string(&self) -> String {
        match self {
            DomainRule::Exact(d) => d.clone(),
            DomainRule::Subdomains(d) => format!("*.{d}"),
        }
    }

    fn matches(&self, domain: &str) -> bool {
        match self {
            DomainRule::Exact(d) => domain == d,
            DomainRule::Subdomains(d) => domain
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

/// A domain lower-cased after IDNA (punycode) normalisation, or `None` if
/// it is not a domain name (empty labels, a trailing dot, spaces, …).
pub fn normalize_domain(raw: &str) -> Option<String> {
    if raw.is_empty()
        || raw.ends_with('.')
        || raw.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let ascii = idna::domain_to_ascii(raw).ok()?.to_ascii_lowercase();
    let labels_ok = ascii.split('.').count() >= 2
        && ascii.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    (labels_ok && ascii.len() <= 253).then_some(ascii)
}

/// `allowed_email_domains` as configured: each checked and normalised,
/// duplicates dropped.
pub fn email_domains(raw: &[String]) -> Result<Vec<DomainRule>> {
    if raw.len() > MAX_EMAIL_DOMAINS {
        return Err(Invalid::new(
            ErrorCode::EmailDomainInvalid,
            format!("at most {MAX_EMAIL_DOMAINS} allowed email domains"),
        ));
    }
    let mut out = Vec::new();
    for r in raw {
        let r = r.trim();
        let rule = match r.strip_prefix("*.") {
            Some(rest) => normalize_domain(rest).map(DomainRule::Subdomains),
            None => normalize_domain(r).map(DomainRule::Exact),
        }
        .ok_or_else(|| {
            Invalid::new(
                ErrorCode::EmailDomainInvalid,
                format!(
                    "{:?} is not a domain (use example.com, or *.example.com for its subdomains)",
                    r.chars().take(100).collect::<String>()
                ),
            )
        })?;
        if !out.contains(&rule) {
            out.push(rule);
        }
    }
    Ok(out)
}

/// The normalised domain of a well-formed email: exactly one `@`, no
/// quotes, spaces or control characters, no trailing dot.
pub fn email_domain(email: &str) -> Option<String> {
    if email
        .chars()
        .any(|c| c == '"' || c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let mut parts = email.split('@');
    let (local, domain) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || local.is_empty() {
        return None;
    }
    normalize_domain(domain)
}

/// Whether a verified email passes `allowed_email_domains` (an empty list
/// allows any).
pub fn email_allowed(rules: &[DomainRule], verified_email: Option<&str>) -> bool {
    if rules.is_empty() {
        return true;
    }
    let Some(domain) = verified_email.and_then(email_domain) else {
        return false;
    };
    rules.iter().any(|r| r.matches(&domain))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn adversarial_emails_never_pass_an_example_com_rule() {
        let rules = email_domains(&["example.com".into()]).unwrap();
        for ok in [
            "alice@example.com",
            "Alice@EXAMPLE.COM",
            "a.b+tag@example.com",
        ] {
            assert!(email_allowed(&rules, Some(ok)), "{ok}");
        }
        for bad in [
            "alice@sub.example.com",
            "alice@example.com.evil.test",
            "alice@evil-example.com",
            "alice@evilexample.com",
            "alice@example.co",
            "alice@example.com.",
            "alice@@example.com",
            "alice@example.com@evil.test",
            "alice@evil.test@example.com",
            "\"alice@example.com\"@evil.test",
            "\"a@b\"@example.com",
            "alice @example.com",
            "alice@ example.com",
            "alice@example.com ",
            "alice@exam ple.com",
            "@example.com",
            "alice",
            "",
            "alice@xn--exmple-cua.com",
            "alice@exämple.com",
            "alice@еxample.com",
            "alice@EXAMPLE.COM.evil.test",
            "alice@example.com\u{0}",
            "alice@example.com\nx@evil.test",
        ] {
            assert!(!email_allowed(&rules, Some(bad)), "{bad:?}");
        }
        // no verified email at all
        assert!(!email_allowed(&rules, None));
        // an empty list allows anyone, even without an email
        assert!(email_allowed(&[], None));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let rules = email_domains(&["*.example.com".into()]).unwrap();
        assert!(email_allowed(&rules, Some("a@eu.example.com")));
        assert!(email_allowed(&rules, Some("a@x.eu.example.com")));
        assert!(!email_allowed(&rules, Some("a@example.com")));
        assert!(!email_allowed(&rules, Some("a@badexample.com")));
    }

    #[test]
    fn configured_domains_are_checked_and_normalised() {
        let rules = email_domains(&[
            "Example.COM".into(),
            "bücher.example".into(),
            "*.Corp.Example".into(),
            "example.com".into(),
        ])
        .unwrap();
        let shown: Vec<String> = rules.iter().map(DomainRule::as_string).collect();
        assert_eq!(
            shown,
            ["example.com", "xn--bcher-kva.example", "*.corp.example"]
        );
        assert!(email_allowed(&rules, Some("a@BÜCHER.example")));
        for bad in [
            "",
            "com",
            "exa mple.com",
            "example.com.",
            "*.",
            "*",
            "a..b",
            "-a.com",
            "@x.com",
        ] {
            let e = email_domains(&[bad.into()]).unwrap_err();
            assert_eq!(e.code, ErrorCode::EmailDomainInvalid, "{bad:?}");
        }
        let many: Vec<String> = (0..51).map(|i| format!("d{i}.example")).collect();
        assert!(email_domains(&many).is_err());
    }
}
