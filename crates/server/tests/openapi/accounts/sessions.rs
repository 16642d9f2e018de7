//! Accounts, page sessions, API tokens and identity-provider tokens.

use super::*;

#[tokio::test]
async fn accounts_sessions_and_api_tokens_answer_as_documented() {
    let spec = spec();
    let app = test_app().await;
    let sign_up = ("POST", "/api/v1/accounts");
    let sign_in = ("POST", "/api/v1/sessions");
    let me = ("GET", "/api/v1/me");
    let new_token = ("POST", "/api/v1/me/tokens");
    let json_only = [json_content()];

    // Signing up signs in: a page session, also as a cookie.
    let account =
        json!({ "email": " Ann@Example.com ", "password": PASSWORD, "display_name": "Ann" });
    let uri = "/api/v1/accounts";
    let answer = app
        .probe(&spec, sign_up, uri, &json_only, account.to_string())
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let session = answer.json();
    assert_eq!(session["account"]["email"], "ann@example.com");
    assert_eq!(session["account"]["role"], "viewer");
    let token = session["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("grs_"), "{session:#}");
    let cookie = answer.header("set-cookie").expect("a cookie");
    assert!(
        cookie.starts_with(&format!("greenroom_session={token};")) && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    for (body, status, code) in [
        (
            json!({ "email": "ANN@example.com", "password": PASSWORD, "display_name": "Ann" }),
            409,
            "email_taken",
        ),
        (
            json!({ "email": "ann.example.com", "password": PASSWORD, "display_name": "Ann" }),
            422,
            "invalid_email",
        ),
        (
            json!({ "email": "bo@example.com", "password": "short", "display_name": "Bo" }),
            422,
            "invalid_password",
        ),
        (
            json!({ "email": "bo@example.com", "password": PASSWORD, "display_name": " " }),
            422,
            "invalid_display_name",
        ),
        (
            json!({ "email": "bo@example.com", "password": PASSWORD, "display_name": "Bo", "role": "admin" }),
            400,
            "invalid_request",
        ),
        (
            json!({ "email": "bo@example.com", "password": PASSWORD }),
            400,
            "invalid_json",
        ),
        (
            json!({ "email": "bo@example.com", "password": PASSWORD, "display_name": "Bo", "admin": true }),
            400,
            "invalid_json",
        ),
    ] {
        expect(
            &app,
            &spec,
            sign_up,
            uri,
            &json_only,
            body.to_string(),
            status,
            code,
        )
        .await;
    }
    expect(
        &app,
        &spec,
        sign_up,
        uri,
        &[],
        account.to_string(),
        415,
        "unsupported_media_type",
    )
    .await;

    // Signing in: one answer for a wrong email and a wrong password.
    let uri = "/api/v1/sessions";
    for body in [
        json!({ "email": "ann@example.com", "password": "not the password" }),
        json!({ "email": "nobody@example.com", "password": PASSWORD }),
    ] {
        let answer = app
            .probe(&spec, sign_in, uri, &json_only, body.to_string())
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.json()["error"]["code"], "invalid_credentials");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
    let body = json!({ "email": "ANN@example.com", "password": PASSWORD });
    let session = expect(
        &app,
        &spec,
        sign_in,
        uri,
        &json_only,
        body.to_string(),
        201,
        "",
    )
    .await;
    let second = session["token"].as_str().expect("token").to_owned();

    // The caller's account, by cookie or bearer token; the admin is no account.
    let cookie = [("cookie".to_owned(), format!("greenroom_session={token}"))];
    let found = expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &cookie,
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(found["email"], "ann@example.com");
    expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&second)],
        Body::empty(),
        200,
        "",
    )
    .await;
    for headers in [
        vec![bearer(ADMIN)],
        vec![],
        vec![bearer("grs_no-such-session")],
        vec![bearer("gr1.a-playback-token.is-no-api-credential")],
    ] {
        expect(
            &app,
            &spec,
            me,
            "/api/v1/me",
            &headers,
            Body::empty(),
            401,
            "unauthorized",
        )
        .await;
    }

    // API tokens: made, used, revoked.
    let uri = "/api/v1/me/tokens";
    let made = expect(
        &app,
        &spec,
        new_token,
        uri,
        &with_json(&cookie),
        json!({ "name": "  upload script " }).to_string(),
        201,
        "",
    )
    .await;
    assert_eq!(made["name"], "upload script");
    let api_token = made["token"].as_str().expect("token").to_owned();
    assert!(api_token.starts_with("grt_"), "{made:#}");
    expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&api_token)],
        Body::empty(),
        200,
        "",
    )
    .await;
    for name in [json!(" "), json!("x".repeat(81))] {
        let body = json!({ "name": name }).to_string();
        expect(
            &app,
            &spec,
            new_token,
            uri,
            &with_json(&cookie),
            body,
            400,
            "invalid_request",
        )
        .await;
    }
    let revoke = ("DELETE", "/api/v1/me/tokens/{id}");
    let token_uri = format!("/api/v1/me/tokens/{}", made["id"].as_str().expect("id"));
    expect(
        &app,
        &spec,
        revoke,
        &token_uri,
        &cookie,
        Body::empty(),
        204,
        "",
    )
    .await;
    expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&api_token)],
        Body::empty(),
        401,
        "unauthorized",
    )
    .await;
    // Revoked already: the documented 404.
    let answer = app.send("DELETE", &token_uri, &cookie, Body::empty()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json()["error"]["code"], "api_token_not_found");
    assert!(operation(&spec, "/api/v1/me/tokens/{id}", "delete")["responses"]["404"].is_object());

    // Signing out revokes the session presented and clears the cookie.
    let sign_out = ("DELETE", "/api/v1/sessions/current");
    let answer = app
        .probe(
            &spec,
            sign_out,
            "/api/v1/sessions/current",
            &cookie,
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(
        answer
            .header("set-cookie")
            .is_some_and(|c| c.starts_with("greenroom_session=;") && c.contains("Max-Age=0"))
    );
    expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &cookie,
        Body::empty(),
        401,
        "unauthorized",
    )
    .await;
    // The stale cookie is no credential: signing out again just clears it, and public
    // reads answer as for anyone.
    let again = app
        .probe(
            &spec,
            sign_out,
            "/api/v1/sessions/current",
            &cookie,
            Body::empty(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let discover = app
        .send("GET", "/api/v1/discover", &cookie, Body::empty())
        .await;
    assert_eq!(discover.status, StatusCode::OK);
    let me_now = expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&second)],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert!(me_now["channel"].is_null(), "{me_now:#}");

    // The identity provider's tokens stand for an account made on first sight.
    let idris = identity_token("idris");
    let found = expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&idris)],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(found["display_name"], "Idris");
    assert_eq!(found["role"], "viewer");
    let again = expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&idris)],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(again["id"], found["id"]);
    let claims = json!({ "iss": IDENTITY_ISSUER, "aud": IDENTITY_AUDIENCE, "sub": "idris" });
    let forged = jwt::hs256(b"another-secret-of-at-least-32-bytes", &{
        let mut claims = claims.clone();
        claims["exp"] = json!(chrono::Utc::now().timestamp() + 3600);
        claims
    });
    let expired = jwt::hs256(IDENTITY_SECRET, &{
        let mut claims = claims.clone();
        claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
        claims
    });
    for token in [forged, expired] {
        let headers = [bearer(&token)];
        expect(
            &app,
            &spec,
            me,
            "/api/v1/me",
            &headers,
            Body::empty(),
            401,
            "invalid_identity_token",
        )
        .await;
    }
    app.engine.shutdown().await;
}
