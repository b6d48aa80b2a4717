//! The storage interfaces, one per aggregate. `Store` implements them all
//! on both databases (the SQL is written once, `db/` runs it natively on
//! SQLite and PostgreSQL); each domain service names the ones it uses, so
//! its storage surface is visible in its type. "Not there" is `None`.

use std::future::Future;

use keystead_crypto::{Sealed, WrappedKey};

use crate::*;

/// Partners, their projects, API keys and return URLs, and developers.
pub trait PartnerStore: Send + Sync {
    fn insert_project(
        &self,
        id: &str,
        name: &str,
    ) -> impl Future<Output = Result<ProjectRow>> + Send;

    fn project(&self, id: &str) -> impl Future<Output = Result<Option<ProjectRow>>> + Send;

    #[allow(clippy::too_many_arguments)]
    fn insert_partner(
        &self,
        id: &str,
        project_id: &str,
        name: &str,
        publishable_key: &str,
        secret_key_hash: &str,
        session_ttl_secs: i64,
    ) -> impl Future<Output = Result<PartnerRow>> + Send;

    fn partner(&self, id: &str) -> impl Future<Output = Result<Option<PartnerRow>>> + Send;

    fn partner_by_secret_hash(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<PartnerRow>>> + Send;

    fn partner_by_publishable_key(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<PartnerRow>>> + Send;

    /// A partner by its publishable key, with its Custom OIDC settings if
    /// it has any: one statement for the public routes (`/v1/sdk/config`,
    /// the sign-in start), which need both.
    fn partner_with_oidc_by_publishable_key(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(PartnerRow, Option<CustomOidcRow>)>>> + Send;

    fn set_allowed_return_urls(
        &self,
        partner_id: &str,
        urls: &[String],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Creates the account and its project memberships in one transaction.
    fn insert_developer(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
        project_ids: &[String],
    ) -> impl Future<Output = Result<DeveloperRow>> + Send;

    /// `(developer id, password hash)` for a sign-in attempt.
    fn developer_credentials(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<(String, String)>>> + Send;
}

/// A partner's Custom OIDC configuration and its sealed client secret.
pub trait OidcConfigStore: Send + Sync {
    fn custom_oidc(
        &self,
        partner_id: &str,
    ) -> impl Future<Output = Result<Option<CustomOidcRow>>> + Send;

    /// Inserts or replaces the settings. A changed issuer, client id or auth
    /// method makes the last verification stale, so it is dropped. The
    /// domain refuses to enable a secret method without a secret; the
    /// `CASE` keeps that true even if the secret was removed concurrently.
    fn upsert_custom_oidc(
        &self,
        c: &CustomOidcRow,
    ) -> impl Future<Output = Result<CustomOidcRow>> + Send;

    fn set_verification(
        &self,
        partner_id: &str,
        json: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes the config and its secret together.
    fn delete_custom_oidc(&self, partner_id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Stores the sealed client secret and its timestamp in one transaction.
    /// `NotFound` also when the config's method is `none` (the domain
    /// checked it before; this closes the race with a concurrent PUT).
    fn set_client_secret(
        &self,
        partner_id: &str,
        sealed: &Sealed,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes the secret; `disable` also turns the config off (the method
    /// needs a secret, so it can no longer be used).
    fn clear_client_secret(
        &self,
        partner_id: &str,
        disable: bool,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Sealed secrets by owner and purpose (client secrets, wallet keys, session JWT keys).
pub trait SecretStore: Send + Sync {
    fn secret(
        &self,
        owner_id: &str,
        purpose: &str,
    ) -> impl Future<Output = Result<Option<Sealed>>> + Send;

    /// Replaces the data of one sealed secret row as is. For tests of the
    /// AAD binding and for `kms rewrap`.
    fn overwrite_secret(
        &self,
        owner_id: &str,
        purpose: &str,
        sealed: &Sealed,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Any one sealed secret, to check at start that the key provider can
    /// still open what the database holds.
    fn any_secret(&self) -> impl Future<Output = Result<Option<(String, String, Sealed)>>> + Send;

    /// How many secrets each key version wraps (`keystead kms status`).
    fn key_id_counts(&self) -> impl Future<Output = Result<Vec<(String, i64)>>> + Send;

    /// Up to `limit` wrapped keys not under `key_id`, after `(owner,
    /// purpose)` in key order (a rewrap walks them once, resumably).
    fn wrapped_keys_not_on(
        &self,
        key_id: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(String, String, WrappedKey)>>> + Send;

    /// Replaces a secret's wrapped key (one durable statement) if it is
    /// still `old`: the ciphertext stays, only the wrapping changes.
    fn replace_wrapped_key(
        &self,
        owner_id: &str,
        purpose: &str,
        old: &WrappedKey,
        new: &WrappedKey,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// Deployment-wide settings and the session JWT signing keys.
pub trait SettingStore: Send + Sync {
    fn setting(&self, name: &str) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Sets `name` only if it is unset; returns whether this call set it.
    /// Two instances starting together agree on one value.
    fn init_setting(&self, name: &str, value: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Sets `name`, replacing any value.
    fn set_setting(&self, name: &str, value: &str) -> impl Future<Output = Result<()>> + Send;

    fn insert_signing_key(
        &self,
        kid: &str,
        public_jwk: &str,
        sealed: &Sealed,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    fn delete_signing_key(&self, kid: &str) -> impl Future<Output = Result<()>> + Send;

    fn signing_keys(&self) -> impl Future<Output = Result<Vec<(String, String)>>> + Send;
}

/// The sign-in: login states, the one-transaction finish, login codes, sessions, and what a session shows.
pub trait SignInStore: Send + Sync {
    fn insert_login_state(&self, s: &LoginStateRow) -> impl Future<Output = Result<()>> + Send;

    /// `(user id, identity id)` of an existing identity.
    fn find_identity(
        &self,
        partner_id: &str,
        issuer: &str,
        sub: &str,
    ) -> impl Future<Output = Result<Option<(String, String)>>> + Send;

    fn wallets_of_user(&self, user_id: &str)
        -> impl Future<Output = Result<Vec<WalletRow>>> + Send;

    fn identities_of_user(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<IdentityRow>>> + Send;

    fn insert_login_code(
        &self,
        code_hash: &str,
        c: &LoginCodeRow,
        now: i64,
        ttl: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    fn insert_session(
        &self,
        token_hash: &str,
        s: &SessionRow,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    fn session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<SessionRow>>> + Send;

    fn revoke_session(&self, token_hash: &str, now: i64)
        -> impl Future<Output = Result<()>> + Send;

    /// Deletes login states and codes that can no longer be used.
    fn purge_expired(&self, now: i64) -> impl Future<Output = Result<u64>> + Send;

    /// A login state bound to this browser, unused and unexpired (read only).
    fn peek_login_state(
        &self,
        state_hash: &str,
        browser_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<LoginStateRow>>> + Send;

    /// Marks a state used (a failed sign-in cannot be retried with it).
    fn consume_login_state(
        &self,
        state_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Durable (fsync) when it creates a user or claims a wallet; a
    /// returning login that changes no ownership commits without fsync (a
    /// power cut could lose its login code and `last_login_at`, which costs
    /// the user one retry).
    fn finish_login(
        &self,
        f: &FinishLogin<'_>,
    ) -> impl Future<Output = Result<LoginFinished>> + Send;

    /// Uses up a login code and, if `verifier_ok` accepts its PKCE
    /// challenge, creates the session — one transaction.
    #[allow(clippy::too_many_arguments)]
    fn redeem_login_code(
        &self,
        code_hash: &str,
        partner_id: &str,
        now: i64,
        verifier_ok: impl FnOnce(&str) -> bool + Send,
        token_hash: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<Redeemed>> + Send;
}

/// The shared cache of partner IdPs' checked documents (one row per URL).
pub trait DocCacheStore: Send + Sync {
    fn cached_doc(&self, url: &str) -> impl Future<Output = Result<Option<CachedDoc>>> + Send;

    fn put_cached_doc(&self, url: &str, doc: &CachedDoc)
        -> impl Future<Output = Result<()>> + Send;

    /// Claims the right to refetch `url` now (a token named an unknown
    /// key) if the last such refetch is at least `min_age` seconds old;
    /// ordinary fetches do not count. Across instances one caller wins.
    fn claim_refetch(
        &self,
        url: &str,
        now: i64,
        min_age: i64,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// Wallets, their sealed keys and the idempotency of their creation.
pub trait WalletStore: Send + Sync {
    /// The pregenerated wallets a verified `email` would claim at sign-in.
    fn unclaimed_wallets_for_email(
        &self,
        partner_id: &str,
        email: &str,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    fn wallet(&self, id: &str) -> impl Future<Output = Result<Option<WalletRow>>> + Send;

    fn wallets_by_identifier(
        &self,
        partner_id: &str,
        kind: IdentifierType,
        identifier: &str,
    ) -> impl Future<Output = Result<Vec<WalletRow>>> + Send;

    fn idempotent_response(
        &self,
        partner_id: &str,
        key: &str,
        since: i64,
    ) -> impl Future<Output = Result<Option<IdempotentResponse>>> + Send;

    /// Inserts a wallet and its sealed key, and — in the same transaction —
    /// the response to replay for `idem` `(partner, key, request hash, status,
    /// body)`. Either everything is stored or nothing is.
    fn insert_wallet(
        &self,
        w: &WalletRow,
        key: &Sealed,
        idem: Option<(&str, &str, &str, i64, &str)>,
        now: i64,
    ) -> impl Future<Output = Result<WalletInsert>> + Send;

    /// A user's own (not claimed) wallet of one type.
    fn own_wallet_of_type(
        &self,
        user_id: &str,
        kind: WalletType,
    ) -> impl Future<Output = Result<Option<WalletRow>>> + Send;
}

/// The portal: developer sessions and what a developer may see.
pub trait PortalStore: Send + Sync {
    fn insert_portal_session(
        &self,
        token_hash: &str,
        developer_id: &str,
        csrf_token: &str,
        now: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The session and its developer's email, unless it expired.
    fn portal_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<PortalSessionRow>>> + Send;

    fn delete_portal_session(&self, token_hash: &str) -> impl Future<Output = Result<()>> + Send;

    fn projects_of_developer(
        &self,
        developer_id: &str,
    ) -> impl Future<Output = Result<Vec<ProjectRow>>> + Send;

    /// The project's API keys (one partner each), oldest first.
    fn partners_of_project(
        &self,
        project_id: &str,
    ) -> impl Future<Output = Result<Vec<PartnerRow>>> + Send;
}

/// Rate limits shared by every instance (PostgreSQL); `None` where the
/// database is one process's own (SQLite), whose limiter stays in memory.
pub trait RateStore: Send + Sync {
    /// Takes one token from `bucket` (refilled at `rate_per_sec`, holding at
    /// most `burst`): `Some(Ok(()))`, or `Some(Err(seconds to wait))`.
    fn take_token(
        &self,
        bucket: &str,
        rate_per_sec: f64,
        burst: f64,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<std::result::Result<(), u64>>>> + Send;
}

/// Test logins (SPEC §11).
pub trait TestLoginStore: Send + Sync {
    fn insert_test_login(
        &self,
        t: &TestLoginRow,
        start_hash: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    fn test_login(
        &self,
        test_id: &str,
    ) -> impl Future<Output = Result<Option<TestLoginRow>>> + Send;

    /// The pending, unexpired test a start link (by its hash) opens; the
    /// link is used up (it works once).
    fn take_test_login_start(
        &self,
        start_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<TestLoginRow>>> + Send;

    /// Stores a test's result once; `false` if it was not pending.
    fn finish_test_login(
        &self,
        test_id: &str,
        status: &str,
        result: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool>> + Send;
}
