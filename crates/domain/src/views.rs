//! Response bodies built from stored rows, shared by the services that
//! answer with them.

use keystead_store::WalletRow;
use serde_json::{json, Value};

use crate::time_fmt::rfc3339;

/// A wallet as the API shows it (SPEC §7).
pub(crate) fn wallet_json(w: &WalletRow) -> Value {
    let mut v = json!({
        "id": w.id, "type": w.kind.as_str(), "status": w.status, "address": w.address,
        "publicKey": w.public_key, "createdAt": rfc3339(w.created_at),
    });
    if let Some(i) = &w.user_identifier {
        v["userIdentifier"] = json!(i);
    }
    if let Some(t) = &w.user_identifier_type {
        v["userIdentifierType"] = json!(t.as_str());
    }
    v
}
