//! Wire bodies built from stored rows, shared by the services that answer
//! with them.

use keystead_proto as proto;
use keystead_store::WalletRow;

use crate::time_fmt::rfc3339;

/// A wallet as the API shows it (SPEC §7).
pub(crate) fn wallet_view(w: &WalletRow) -> proto::Wallet {
    proto::Wallet {
        id: w.id.clone(),
        kind: w.kind.as_str().to_string(),
        status: w.status.clone(),
        address: w.address.clone(),
        public_key: w.public_key.clone(),
        created_at: rfc3339(w.created_at),
        user_identifier: w.user_identifier.clone(),
        user_identifier_type: w.user_identifier_type.map(|t| t.as_str().to_string()),
    }
}

/// `{"wallet": {…}}`
pub(crate) fn wallet_body(w: &WalletRow) -> proto::WalletBody {
    proto::WalletBody {
        wallet: wallet_view(w),
    }
}
