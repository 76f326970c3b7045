use super::prelude::*;
use vigil_ticketing::auth::*;

#[tokio::test]
async fn passwords_sessions_and_tokens() {
    for (backend, store, _dir) in stores::both().await {
        let now: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().unwrap();
        let user = store
            .create_user("officer1", "correct horse battery", Role::Officer, now)
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_user("officer1", "another long password", Role::Admin, now)
                .await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.create_user("short", "short", Role::Admin, now).await,
            Err(StoreError::Invalid(_))
        ));
        // Stored as an argon2id hash, never the password.
        let hash: String =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'officer1'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{backend}: {hash}");
        assert_eq!(
            store
                .check_password("officer1", "correct horse battery")
                .await
                .unwrap(),
            Some(user.clone())
        );
        assert_eq!(
            store.check_password("officer1", "wrong").await.unwrap(),
            None
        );
        assert_eq!(store.check_password("nobody", "wrong").await.unwrap(), None);

        let (token, session) = store.create_session(&user, now).await.unwrap();
        assert_eq!(store.session(&token, now).await.unwrap(), Some(session));
        assert_eq!(
            store
                .session(&token, now + SESSION_LIFETIME + Duration::seconds(1))
                .await
                .unwrap(),
            None
        );
        store.end_session(&token).await.unwrap();
        assert_eq!(store.session(&token, now).await.unwrap(), None);

        let api = store
            .create_api_token("officer1", "test", now)
            .await
            .unwrap();
        assert_eq!(store.token_user(&api).await.unwrap(), Some(user));
        assert_eq!(store.token_user("vgl_nope").await.unwrap(), None);
    }
}
