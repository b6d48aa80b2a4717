//! Concurrent first logins of one identity create exactly one user and one
//! wallet, on SQLite and on PostgreSQL.

use std::collections::HashSet;

use crate::browser::{login_to_me, oidc_partner, Browser};
use crate::kit::{idp, postgres_db, Server, ServerOpts, CLIENT_ID, CLIENT_SECRET};

fn twenty_parallel_first_logins(server: &Server) {
    let p = oidc_partner(
        server,
        &idp().issuer("main"),
        &format!("{CLIENT_ID}-client_secret_basic"),
        "client_secret_basic",
        Some(CLIENT_SECRET),
    );
    let hint = keystead_crypto::random_token("twin-")[..18].to_string();
    let results: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let p = p.clone();
                let hint = hint.clone();
                s.spawn(move || {
                    let (_, me) = login_to_me(&Browser::new(server), &p, &hint);
                    let wallets = me["wallets"].as_array().unwrap();
                    assert_eq!(wallets.len(), 1, "{me}");
                    (
                        me["user"]["id"].as_str().unwrap().to_string(),
                        wallets[0]["id"].as_str().unwrap().to_string(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let users: HashSet<_> = results.iter().map(|r| r.0.clone()).collect();
    let wallets: HashSet<_> = results.iter().map(|r| r.1.clone()).collect();
    assert_eq!(users.len(), 1, "{results:?}");
    assert_eq!(wallets.len(), 1, "{results:?}");
}

#[test]
fn twenty_parallel_first_logins_on_sqlite_make_one_user_and_one_wallet() {
    let server = Server::start(Default::default());
    twenty_parallel_first_logins(&server);
}

#[test]
fn twenty_parallel_first_logins_on_postgres_make_one_user_and_one_wallet() {
    let server = Server::start(ServerOpts {
        database_url: Some(postgres_db()),
        ..Default::default()
    });
    twenty_parallel_first_logins(&server);
}
