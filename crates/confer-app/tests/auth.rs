//! Authentication against a real store: passwords, session tokens, and the bounded caches.

use confer_app::{
    auth::{AuthError, Authenticator, SESSION_CACHE_TTL, tokens::SigningKey},
    users::{self, NewUser, UserRole},
};
use confer_core::Role;
use confer_store::testing::SqliteTest;

fn alice() -> NewUser {
    NewUser {
        username: "alice".into(),
        role: UserRole::Agent,
        phone_number: Some("15010".into()),
        user_id: None,
        email: None,
        accounts: Vec::new(),
        device_id: None,
        password: "s3cret".into(),
    }
}

#[tokio::test]
async fn sessions_are_checked_every_time_and_see_user_changes_within_the_cache_bound() {
    let db = SqliteTest::new().await;
    let store = db.store();
    users::add(store.as_ref(), alice()).await.unwrap();
    let key = SigningKey::random();
    let auth = Authenticator::new(store.clone(), key.clone());

    let actor = auth.verify_password("alice", "s3cret").await.unwrap();
    assert!(matches!(
        auth.verify_password("alice", "wrong").await,
        Err(AuthError::Invalid)
    ));
    let token = auth.issue_session(&actor);
    assert_eq!(
        auth.verify_session(&token).await.unwrap().user_id,
        actor.user_id
    );

    // A token signed by another key, or for an expired time, is refused even right after a
    // valid one was cached.
    let forged = SigningKey::random().issue_session("alice", i64::MAX);
    assert!(auth.verify_session(&forged).await.is_err());
    let expired = key.issue_session("alice", 1);
    assert!(auth.verify_session(&expired).await.is_err());

    // The user becomes a supervisor: seen once the cached read expires.
    let mut record = store.get_user_by_username("alice").await.unwrap().unwrap();
    let mut profile = users::profile_of(&record).unwrap();
    profile.roles = vec![Role::Supervisor];
    record.profile = serde_json::to_value(&profile).unwrap();
    store.update_user(record).await.unwrap();
    tokio::time::sleep(SESSION_CACHE_TTL + std::time::Duration::from_millis(200)).await;
    let after = auth.verify_session(&token).await.unwrap();
    assert!(after.roles.contains(&Role::Supervisor), "{:?}", after.roles);
}
