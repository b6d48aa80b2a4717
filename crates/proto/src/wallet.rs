//! Wire types of the wallet routes (SPEC §7).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A wallet as the API shows it; never its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Wallet {
    pub id: String,
    /// `EVM`, `SOLANA` or `COSMOS`.
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub address: String,
    /// 0x-hex (EVM, COSMOS: compressed secp256k1) or base58 (SOLANA).
    #[serde(rename = "publicKey")]
    pub public_key: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(
        rename = "userIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_identifier: Option<String>,
    #[serde(
        rename = "userIdentifierType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_identifier_type: Option<String>,
}

/// `{"wallet": {…}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletBody {
    pub wallet: Wallet,
}

/// `{"wallets": [{…}]}`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WalletList {
    pub wallets: Vec<Wallet>,
}

/// `POST /v1/wallets`. The fields are in the order of their names, so the
/// body hashed for `Idempotency-Key` is the same however a client ordered
/// them. Absent fields are refused by the rules of each field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWallet {
    #[serde(
        rename = "cosmosPrefix",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cosmos_prefix: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(
        rename = "userIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_identifier: Option<String>,
    #[serde(
        rename = "userIdentifierType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_identifier_type: Option<String>,
}

/// `POST /v1/me/wallets`
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddWallet {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(
        rename = "cosmosPrefix",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cosmos_prefix: Option<String>,
}

/// `POST /v1/wallets/{id}/sign-message`: the message as UTF-8 text, or
/// `0x`-hex bytes for EVM.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignMessage {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub message: Option<Value>,
}

/// `POST /v1/wallets/{id}/sign-typed-data`: EIP-712 typed data as ethers,
/// viem and eth-account produce it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignTypedData {
    #[serde(rename = "typedData", default)]
    #[schema(value_type = Option<Object>)]
    pub typed_data: Option<Value>,
}

/// `POST /v1/wallets/{id}/sign-transaction`: an EVM transaction object, or a
/// base64 Solana message.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignTransaction {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub transaction: Option<Value>,
}

/// `POST /v1/wallets/{id}/sign-raw`: a 32-byte digest (EVM, COSMOS) or
/// bytes (SOLANA).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRaw {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub data: Option<Value>,
}

/// A signature (`{"signature"}`) or, for EVM transactions, the signed
/// transaction (`{"signedTransaction"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Signed {
    Signature {
        signature: String,
    },
    Transaction {
        #[serde(rename = "signedTransaction")]
        signed_transaction: String,
    },
}
