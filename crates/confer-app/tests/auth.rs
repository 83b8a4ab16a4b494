//! Authentication against a real store, as an attacker and an administrator would try it:
//! sessions and their revocation, the throttling of failed sign-ins, unknown users.

use std::{net::IpAddr, sync::Arc, time::Duration};

use confer_app::{
    auth::{
        AuthError, Authenticator, DEFAULT_SESSION_TTL, USER_CACHE_TTL,
        throttle::{ADDRESS_POLICY, USERNAME_POLICY},
        tokens::{KeyRing, SigningKey},
    },
    users::{self, NewUser, UserRole},
};
use confer_core::Role;
use confer_store::{Store, testing::SqliteTest};

fn user(username: &str) -> NewUser {
    NewUser {
        username: username.into(),
        role: UserRole::Agent,
        phone_number: Some("15010".into()),
        user_id: None,
        email: None,
        accounts: Vec::new(),
        device_id: None,
        password: "s3cret".into(),
    }
}

fn authenticator(store: Arc<dyn Store>, key: &SigningKey) -> Authenticator {
    Authenticator::new(store, KeyRing::single(key.clone()), DEFAULT_SESSION_TTL)
}

/// Long enough for every node to have re-read the user.
async fn past_the_user_cache() {
    tokio::time::sleep(USER_CACHE_TTL + Duration::from_millis(300)).await;
}

#[tokio::test]
async fn sessions_are_checked_every_time_and_see_user_changes_within_the_cache_bound() {
    let db = SqliteTest::new().await;
    let store = db.store();
    users::add(store.as_ref(), user("alice")).await.unwrap();
    let key = SigningKey::random();
    let auth = authenticator(store.clone(), &key);

    let actor = auth.verify_password("alice", "s3cret").await.unwrap();
    assert!(matches!(
        auth.verify_password("alice", "wrong").await,
        Err(AuthError::Invalid)
    ));
    let token = auth.issue_session(&actor).await.unwrap();
    assert_eq!(
        auth.verify_session(&token).await.unwrap().user_id,
        actor.user_id
    );

    // A token signed by another key, or for an expired time, is refused even right after a
    // valid one was cached.
    let forged = KeyRing::single(SigningKey::random()).issue_session("alice", 0, i64::MAX);
    assert!(auth.verify_session(&forged).await.is_err());
    let expired = KeyRing::single(key).issue_session("alice", 0, 1);
    assert!(auth.verify_session(&expired).await.is_err());

    // The user becomes a supervisor: seen once the cached read expires.
    let mut record = store.get_user_by_username("alice").await.unwrap().unwrap();
    let mut profile = users::profile_of(&record).unwrap();
    profile.roles = vec![Role::Supervisor];
    record.profile = serde_json::to_value(&profile).unwrap();
    store.update_user(record).await.unwrap();
    past_the_user_cache().await;
    let after = auth.verify_session(&token).await.unwrap();
    assert!(after.roles.contains(&Role::Supervisor), "{:?}", after.roles);
}

/// The attack: a session token (or a cached password) outlives a password change, a disabled
/// or a removed user. Two authenticators stand for two nodes; the change is made in the store,
/// as `confer users ...` makes it.
#[tokio::test]
async fn a_password_change_disabling_or_removal_ends_sessions_on_every_node() {
    let db = SqliteTest::new().await;
    let store = db.store();
    users::add(store.as_ref(), user("alice")).await.unwrap();
    let key = SigningKey::random();
    let node_a = authenticator(store.clone(), &key);
    let node_b = authenticator(store.clone(), &key);

    let actor = node_a.verify_password("alice", "s3cret").await.unwrap();
    let token = node_a.issue_session(&actor).await.unwrap();
    // Node B caches the password too, and accepts node A's session.
    node_b.verify_password("alice", "s3cret").await.unwrap();
    assert!(node_b.verify_session(&token).await.is_ok());
    let revision = node_b
        .current_revision(actor.user_id.as_str())
        .await
        .unwrap()
        .unwrap();

    users::set_password(store.as_ref(), "alice", "n3w-secret".into())
        .await
        .unwrap();
    past_the_user_cache().await;
    for node in [&node_a, &node_b] {
        assert!(
            matches!(node.verify_session(&token).await, Err(AuthError::Invalid)),
            "a session issued before the password change"
        );
        assert!(
            matches!(
                node.verify_password("alice", "s3cret").await,
                Err(AuthError::Invalid)
            ),
            "the old password, although it was cached"
        );
        assert!(
            !node
                .is_current(actor.user_id.as_str(), revision)
                .await
                .unwrap()
        );
    }
    let actor = node_b.verify_password("alice", "n3w-secret").await.unwrap();
    let token = node_b.issue_session(&actor).await.unwrap();
    assert!(node_a.verify_session(&token).await.is_ok());

    users::set_disabled(store.as_ref(), "alice", true)
        .await
        .unwrap();
    past_the_user_cache().await;
    assert!(node_a.verify_session(&token).await.is_err(), "disabled");
    assert!(
        node_a.verify_password("alice", "n3w-secret").await.is_err(),
        "a disabled user cannot sign in"
    );
    users::set_disabled(store.as_ref(), "alice", false)
        .await
        .unwrap();
    past_the_user_cache().await;
    assert!(
        node_a.verify_session(&token).await.is_err(),
        "enabling again does not bring old sessions back"
    );
    let actor = node_a.verify_password("alice", "n3w-secret").await.unwrap();
    let token = node_a.issue_session(&actor).await.unwrap();

    users::remove(store.as_ref(), "alice").await.unwrap();
    past_the_user_cache().await;
    assert!(node_b.verify_session(&token).await.is_err(), "removed");
    assert!(node_a.verify_password("alice", "n3w-secret").await.is_err());
}

/// The attack: guess passwords, and list usernames by how differently known and unknown ones
/// are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_slow_down_per_username_and_address_and_unknown_users_alike() {
    let db = SqliteTest::new().await;
    let store = db.store();
    users::add(store.as_ref(), user("alice")).await.unwrap();
    let auth = authenticator(store, &SigningKey::random());
    let attacker: IpAddr = "203.0.113.9".parse().unwrap();

    for username in ["alice", "nobody"] {
        let before = auth.pool().completed();
        for attempt in 1..=USERNAME_POLICY.free + 1 {
            let refused = auth
                .verify_password_from(username, "guess", Some(attacker))
                .await;
            assert!(
                matches!(refused, Err(AuthError::Invalid)),
                "{username} attempt {attempt}: {refused:?}"
            );
        }
        assert_eq!(
            auth.pool().completed() - before,
            usize::try_from(USERNAME_POLICY.free + 1).unwrap(),
            "{username}: every attempt ran argon2, known user or not"
        );
        // Locked now: even the right password is refused without being checked.
        let locked = auth
            .verify_password_from(username, "s3cret", Some("198.51.100.1".parse().unwrap()))
            .await;
        let Err(AuthError::Throttled { retry_after }) = locked else {
            panic!("{username}: {locked:?}");
        };
        assert!(retry_after > Duration::ZERO && retry_after <= USERNAME_POLICY.base);
    }

    // The same address guessing other usernames: throttled once it used its free failures.
    let used = 2 * (USERNAME_POLICY.free + 1);
    for i in used..ADDRESS_POLICY.free {
        let refused = auth
            .verify_password_from(&format!("user{i}"), "guess", Some(attacker))
            .await;
        assert!(matches!(refused, Err(AuthError::Invalid)), "{refused:?}");
    }
    let refused = auth
        .verify_password_from("someone-else", "guess", Some(attacker))
        .await;
    assert!(matches!(refused, Err(AuthError::Invalid)), "{refused:?}");
    let refused = auth
        .verify_password_from("another", "guess", Some(attacker))
        .await;
    assert!(
        matches!(refused, Err(AuthError::Throttled { .. })),
        "{refused:?}"
    );
    // Another address is not affected.
    let other = auth
        .verify_password_from("another", "guess", Some("198.51.100.7".parse().unwrap()))
        .await;
    assert!(matches!(other, Err(AuthError::Invalid)), "{other:?}");
}
