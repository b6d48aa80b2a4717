//! Wallet types and the identifiers of pregenerated wallets (SPEC §4).

use std::fmt;

use crate::{ErrorCode, Invalid, Result};

/// The chain family of a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WalletType {
    Evm,
    Solana,
    Cosmos,
}

impl WalletType {
    pub const ALL: [WalletType; 3] = [WalletType::Evm, WalletType::Solana, WalletType::Cosmos];

    pub fn as_str(self) -> &'static str {
        match self {
            WalletType::Evm => "EVM",
            WalletType::Solana => "SOLANA",
            WalletType::Cosmos => "COSMOS",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        WalletType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl TryFrom<&str> for WalletType {
    type Error = Invalid;
    fn try_from(raw: &str) -> Result<Self> {
        WalletType::parse(raw).ok_or_else(|| {
            Invalid::new(
                ErrorCode::InvalidRequest,
                "type must be EVM, SOLANA or COSMOS",
            )
        })
    }
}

impl fmt::Display for WalletType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a pregenerated wallet's `userIdentifier` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierType {
    Email,
    Phone,
    CustomId,
    GuestId,
    Telegram,
    Discord,
    Twitter,
}

impl IdentifierType {
    pub const ALL: [IdentifierType; 7] = [
        IdentifierType::Email,
        IdentifierType::Phone,
        IdentifierType::CustomId,
        IdentifierType::GuestId,
        IdentifierType::Telegram,
        IdentifierType::Discord,
        IdentifierType::Twitter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierType::Email => "EMAIL",
            IdentifierType::Phone => "PHONE",
            IdentifierType::CustomId => "CUSTOM_ID",
            IdentifierType::GuestId => "GUEST_ID",
            IdentifierType::Telegram => "TELEGRAM",
            IdentifierType::Discord => "DISCORD",
            IdentifierType::Twitter => "TWITTER",
        }
    }
}

impl TryFrom<&str> for IdentifierType {
    type Error = Invalid;
    fn try_from(raw: &str) -> Result<Self> {
        IdentifierType::ALL
            .into_iter()
            .find(|t| t.as_str() == raw)
            .ok_or_else(|| {
                let names: Vec<&str> = IdentifierType::ALL.iter().map(|t| t.as_str()).collect();
                Invalid::new(
                    ErrorCode::InvalidRequest,
                    format!("userIdentifierType must be one of {}", names.join(", ")),
                )
            })
    }
}

impl fmt::Display for IdentifierType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pregenerated wallet's owner-to-be: its type and its normalised value
/// (trimmed; an email lower-cased, as claiming by verified email compares).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserIdentifier {
    kind: IdentifierType,
    value: String,
}

impl UserIdentifier {
    pub fn new(kind: &str, raw: &str) -> Result<Self> {
        let kind = IdentifierType::try_from(kind)?;
        let bad = |m: &str| Invalid::new(ErrorCode::InvalidRequest, m);
        let v = raw.trim();
        if v.is_empty() || v.chars().count() > 255 || v.chars().any(char::is_control) {
            return Err(bad(
                "userIdentifier must be 1–255 characters without control characters",
            ));
        }
        let value = if kind == IdentifierType::Email {
            if !v.contains('@') || v.contains(char::is_whitespace) {
                return Err(bad("userIdentifier is not an email address"));
            }
            v.to_ascii_lowercase()
        } else {
            v.to_string()
        };
        Ok(UserIdentifier { kind, value })
    }

    pub fn kind(&self) -> IdentifierType {
        self.kind
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wallet_and_identifier_types() {
        for t in WalletType::ALL {
            assert_eq!(WalletType::try_from(t.as_str()).unwrap(), t);
        }
        assert!(WalletType::try_from("BTC").is_err());
        for t in IdentifierType::ALL {
            assert_eq!(IdentifierType::try_from(t.as_str()).unwrap(), t);
        }
        let e = UserIdentifier::new("EMAIL", " Alice@Example.COM ").unwrap();
        assert_eq!(
            (e.kind(), e.value()),
            (IdentifierType::Email, "alice@example.com")
        );
        assert!(UserIdentifier::new("EMAIL", "not-an-email").is_err());
        assert!(UserIdentifier::new("PHONE", "").is_err());
        assert!(UserIdentifier::new("NICKNAME", "x").is_err());
        assert!(UserIdentifier::new("FAX", "x").is_err());
        assert_eq!(
            UserIdentifier::new("CUSTOM_ID", "User-42").unwrap().value(),
            "User-42"
        );
        assert_eq!(
            UserIdentifier::new("CUSTOM_ID", " Ab ").unwrap().value(),
            "Ab"
        );
    }
}
