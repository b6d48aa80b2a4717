//! All integration tests in one binary (linking many test binaries is slow
//! on two cores). The kit boots real processes: the `keystead` binary, the
//! `oidc-provider` test IdP over HTTPS with a CA made here, and PostgreSQL
//! databases of their own. Shared fixtures are built once per run; run this
//! binary with `cargo test --test it` (threads share the fixtures).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod kit;

mod admin_api;
mod cli_flow;
mod concurrency;
mod isolation;
mod kms;
mod login_flow;
mod login_state;
mod oidc_config_api;
mod pages;
mod pg_faults;
mod robustness;
mod rp_negative;
mod secrets;
mod signin_rules;
mod test_login;
mod wallets;
