//! The Evo Voice (ServiceStack) dialect end to end: real HTTP against a real server (in process
//! through `confer::server::start`, and the `confer` binary for the README's curl commands).

mod support;

use std::time::Duration;

use confer::server::{RunningServer, start};
use confer_app::{
    config::ServeArgs,
    users::{self, NewUser, UserRole},
};
use confer_evo::wire::{AuthenticateResponse, ErrorResponse, ResponseStatus, SessionList};
use confer_model::evo::{SessionInfo, SessionMemberRoles};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

/// evo-user's id in the demo world.
const EVO_USER_ID: &str = "e70e7a5e4f3d4c2b9a1f0e9d8c7b6a50";
const JSV: &str = "text/jsv";

/// A server with the demo world, on ephemeral ports, with its own data directory.
struct Evo {
    server: RunningServer,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Evo {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = ServeArgs {
            listen: Some("127.0.0.1:0".parse().expect("an address")),
            grpc_listen: Some("127.0.0.1:0".parse().expect("an address")),
            data_dir: Some(dir.path().to_path_buf()),
            demo: Some(true),
            csrf: Some(true),
            ..ServeArgs::default()
        }
        .resolve()
        .expect("a valid config");
        let server = start(config).await.expect("the server starts");
        Self {
            server,
            client: support::http(),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.rest_addr)
    }

    /// A request with no credentials.
    fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request as `username` (password `demo`) with HTTP Basic.
    fn as_user(&self, username: &str, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path)
            .basic_auth(username, Some("demo"))
    }

    /// A request as the demo's Evo user.
    fn evo(&self, method: Method, path: &str) -> RequestBuilder {
        self.as_user("evo-user", method, path)
    }

    async fn add_user(&self, username: &str, role: UserRole, accounts: &[&str]) {
        users::add(
            self.server.app.store.as_ref(),
            NewUser {
                username: username.to_owned(),
                role,
                phone_number: None,
                user_id: None,
                email: Some(format!("{username}@example.com")),
                accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
                device_id: None,
                password: "demo".to_owned(),
            },
        )
        .await
        .expect("add a user");
    }

    async fn stop(self) {
        self.server.shutdown().await.expect("a clean shutdown");
    }
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A successful SessionInfo reply, read in the format its Content-Type says (which must be
/// `expected`), with the raw text.
async fn session_reply(response: Response, expected: &str) -> (SessionInfo, String) {
    let status = response.status();
    let kind = content_type(&response);
    let text = response.text().await.expect("a body");
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        kind.starts_with(expected),
        "content type {kind}, wanted {expected}"
    );
    let info = if expected == JSV {
        jsv::from_str(&text).unwrap_or_else(|e| panic!("JSV reply does not parse: {e}\n{text}"))
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("JSON reply does not parse: {e}\n{text}"))
    };
    (info, text)
}

/// A ServiceStack error reply with this status, in the format `expected`.
async fn error_reply(response: Response, status: StatusCode, expected: &str) -> ResponseStatus {
    let got = response.status();
    let kind = content_type(&response);
    let text = response.text().await.expect("a body");
    assert_eq!(got, status, "{text}");
    assert!(
        kind.starts_with(expected),
        "content type {kind}, wanted {expected}: {text}"
    );
    let body: ErrorResponse = if expected == JSV {
        assert!(text.starts_with("{responseStatus:{"), "{text}");
        jsv::from_str(&text).unwrap_or_else(|e| panic!("JSV error does not parse: {e}\n{text}"))
    } else {
        let raw: Value = serde_json::from_str(&text).expect("a JSON error");
        assert!(raw["responseStatus"]["errors"].is_array(), "{text}");
        serde_json::from_value(raw).expect("a ServiceStack error")
    };
    body.response_status
}

fn member_sids(info: &SessionInfo) -> Vec<String> {
    info.members
        .iter()
        .map(|m| m.call_sid.clone().unwrap_or_default())
        .collect()
}

/// Replaces every date of a SessionInfo in `text` by `<date>` (they change with every run).
fn redact_dates(info: &SessionInfo, text: &str) -> String {
    let mut dates: Vec<String> = info
        .log
        .iter()
        .filter_map(|entry| entry.date.clone())
        .chain(info.date_created.clone())
        .chain(info.date_last_modified.clone())
        .chain(info.date_completed.clone())
        .filter(|date| !date.is_empty())
        .collect();
    dates.sort();
    dates.dedup();
    dates.iter().fold(text.to_owned(), |text, date| {
        text.replace(date.as_str(), "<date>")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_removal_in_jsv_and_json_agree_field_by_field() {
    let evo = Evo::start().await;
    let (before, _) = session_reply(
        evo.evo(Method::GET, "/sessions/demo-session")
            .send()
            .await
            .unwrap(),
        "application/json",
    )
    .await;
    assert_eq!(member_sids(&before), ["m1", "m2", "m3"]);
    // The dates have millisecond precision: make sure the removal is later than the last change.
    tokio::time::sleep(Duration::from_millis(5)).await;

    // The seed request, as printed: DELETE with Accept: text/jsv.
    let (removed, raw_jsv) = session_reply(
        evo.evo(Method::DELETE, "/sessions/demo-session/members/m3")
            .header("Accept", "text/jsv")
            .header("Idempotency-Key", "seed-removal")
            .send()
            .await
            .unwrap(),
        JSV,
    )
    .await;
    assert_eq!(member_sids(&removed), ["m1", "m2"]);
    assert!(
        !removed
            .members
            .iter()
            .any(|m| m.identity.as_deref() == Some("+15550101"))
    );
    let last = removed.log.last().expect("a log entry");
    assert_eq!(
        last.message.as_deref(),
        Some("agent@example.com removed +15550101")
    );
    assert_eq!(last.date, removed.date_last_modified);
    assert!(removed.date_last_modified > before.date_last_modified);
    assert_eq!(removed.last_modified_by.as_deref(), Some(EVO_USER_ID));
    assert_eq!(removed.log.len(), before.log.len() + 1);
    assert!(!removed.ended);
    // The compact reply is exactly the model written as JSV: nothing outside the wire type.
    assert_eq!(jsv::to_string(&removed).unwrap(), raw_jsv);

    // The same request (same Idempotency-Key) in JSON: answered again, identically.
    let (replayed, raw_json) = session_reply(
        evo.evo(
            Method::DELETE,
            "/sessions/demo-session/members/m3?format=json",
        )
        .header("Accept", "text/jsv")
        .header("Idempotency-Key", "seed-removal")
        .send()
        .await
        .unwrap(),
        "application/json",
    )
    .await;
    let json_fields: Value = serde_json::from_str(&raw_json).unwrap();
    let jsv_fields = serde_json::to_value(&removed).unwrap();
    let (Value::Object(json_fields), Value::Object(jsv_fields)) = (json_fields, jsv_fields) else {
        panic!("SessionInfo is an object");
    };
    assert_eq!(
        json_fields.keys().collect::<Vec<_>>(),
        jsv_fields.keys().collect::<Vec<_>>(),
        "the same fields in the same order"
    );
    for (name, value) in &json_fields {
        assert_eq!(Some(value), jsv_fields.get(name), "field {name}");
    }
    assert_eq!(replayed, removed);

    // And the stored session agrees with both.
    let (stored, _) = session_reply(
        evo.evo(Method::GET, "/sessions/demo-session.jsv")
            .send()
            .await
            .unwrap(),
        JSV,
    )
    .await;
    assert_eq!(stored, removed);

    // Removed once, replayed once: the metrics say so.
    let metrics = evo
        .anonymous(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"confer_removals_total{dialect="evo",outcome="removed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"confer_removals_total{dialect="evo",outcome="replayed"} 1"#),
        "{metrics}"
    );

    // Snapshots of the seed-shaped reply, dates redacted. The JSV one is laid out like the
    // seed's metadata page (the wire reply is the compact form, checked equal above).
    let pretty_json = serde_json::to_string_pretty(&Value::Object(json_fields)).unwrap();
    insta::assert_snapshot!(
        "evo_seed_removal_reply_json",
        redact_dates(&removed, &pretty_json)
    );
    insta::assert_snapshot!(
        "evo_seed_removal_reply_jsv",
        redact_dates(&removed, &jsv::to_string_pretty(&removed).unwrap())
    );
    insta::assert_snapshot!(
        "evo_seed_removal_reply_jsv_compact",
        redact_dates(&removed, &raw_jsv)
    );
    evo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_named_by_id_phone_or_email_and_the_last_one_ends_the_session() {
    let evo = Evo::start().await;
    // MemberToRemove (any case) names the member; the path segment then names nobody.
    let (info, _) = session_reply(
        evo.evo(
            Method::DELETE,
            "/sessions/demo-session/members/x?memberToRemove=%2B1%20555%200101",
        )
        .send()
        .await
        .unwrap(),
        "application/json",
    )
    .await;
    assert_eq!(member_sids(&info), ["m1", "m2"]);
    // An email in the path, any case, with a suffix.
    let (info, _) = session_reply(
        evo.evo(
            Method::DELETE,
            "/sessions/demo-session/members/AGENT@example.com.jsv",
        )
        .send()
        .await
        .unwrap(),
        JSV,
    )
    .await;
    assert_eq!(member_sids(&info), ["m1"]);
    assert_eq!(info.answered_by_id.as_deref(), Some(""));
    // A phone number in the path; the last member on the call: the session ends.
    let (info, _) = session_reply(
        evo.evo(Method::DELETE, "/sessions/demo-session/members/+15550100")
            .send()
            .await
            .unwrap(),
        "application/json",
    )
    .await;
    assert!(info.members.is_empty());
    assert!(info.ended);
    assert!(!info.date_completed.clone().unwrap_or_default().is_empty());
    assert_eq!(
        info.log.last().and_then(|l| l.message.as_deref()),
        Some("Session ended: no member is left on the call")
    );
    evo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_negotiation_route_answers_in_its_format() {
    let evo = Evo::start().await;
    let path = "/sessions/demo-session";
    let cases: [(&str, Option<&str>, &str); 10] = [
        (path, None, "application/json"),
        (path, Some("application/json"), "application/json"),
        (path, Some("text/jsv"), JSV),
        (path, Some("application/jsv"), JSV),
        (
            path,
            Some("text/html, text/jsv;q=0.9, application/json;q=0.5"),
            JSV,
        ),
        (path, Some("text/html"), "application/json"),
        ("/sessions/demo-session?format=jsv", None, JSV),
        (
            "/sessions/demo-session?format=json",
            Some("text/jsv"),
            "application/json",
        ),
        ("/sessions/demo-session.jsv", Some("application/json"), JSV),
        (
            "/sessions/demo-session.json?format=jsv",
            Some("text/jsv"),
            "application/json",
        ),
    ];
    let mut seen = Vec::new();
    for (route, accept, expected) in cases {
        let mut request = evo.evo(Method::GET, route);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers().get("vary").and_then(|v| v.to_str().ok()),
            Some("Accept")
        );
        let (info, _) = session_reply(response, expected).await;
        seen.push(info);
    }
    assert!(seen.windows(2).all(|pair| pair[0] == pair[1]));

    // Lists, with every way too.
    for (route, accept, expected) in [
        ("/sessions", Some("text/jsv"), JSV),
        ("/sessions.jsv", None, JSV),
        ("/sessions.json", Some("text/jsv"), "application/json"),
        ("/sessions?format=jsv", None, JSV),
    ] {
        let mut request = evo.evo(Method::GET, route);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(content_type(&response).starts_with(expected), "{route}");
        let text = response.text().await.unwrap();
        let list: SessionList = if expected == JSV {
            jsv::from_str(&text).unwrap()
        } else {
            serde_json::from_str(&text).unwrap()
        };
        assert_eq!(list.items.len(), 1, "{route}");
    }

    // Bodies: JSON, JSV (with PascalCase names, as .NET clients send them), on suffixed routes.
    let (info, _) = session_reply(
        evo.evo(Method::POST, "/sessions/demo-session/members.jsv")
            .header("Content-Type", "text/jsv")
            .body("{MemberToAdd:+15550199,DisplayName:\"Supervisor, on call\",Role:Agent,MemberId:m4}")
            .send()
            .await
            .unwrap(),
        JSV,
    )
    .await;
    let added = info.members.last().unwrap();
    assert_eq!(added.identity.as_deref(), Some("+15550199"));
    assert_eq!(added.display_name.as_deref(), Some("Supervisor, on call"));
    assert_eq!(added.role, SessionMemberRoles::Agent);
    assert_eq!(added.call_sid.as_deref(), Some("m4"));
    assert!(!added.is_original_member);
    let (info, _) = session_reply(
        evo.evo(Method::POST, "/sessions/demo-session/members.json")
            .header("Content-Type", "application/json; charset=utf-8")
            .body(r#"{"memberToAdd":"boss@example.com","unknownField":[1,2]}"#)
            .send()
            .await
            .unwrap(),
        "application/json",
    )
    .await;
    let added = info.members.last().unwrap();
    assert_eq!(added.identity.as_deref(), Some("boss@example.com"));
    assert!(added.call_sid.as_deref().unwrap().starts_with('m'));
    assert_eq!(info.most_recent_participant_call_sid, added.call_sid);

    // An unknown ?format is refused, in the format Accept asks for.
    let status = error_reply(
        evo.evo(Method::GET, "/sessions/demo-session?format=xml")
            .header("Accept", "text/jsv")
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        JSV,
    )
    .await;
    assert_eq!(status.error_code, "ArgumentException");
    assert_eq!(status.errors[0].field_name, "format");
    evo.stop().await;
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// The value of cookie `name` among Set-Cookie headers.
fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies.iter().find_map(|cookie| {
        let (pair, _) = cookie.split_once(';').unwrap_or((cookie, ""));
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_and_credentials_with_cookies_and_logout() {
    let evo = Evo::start().await;
    // Nothing: 401 with a Basic challenge, in either format.
    let response = evo
        .anonymous(Method::GET, "/sessions")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Basic"))
    );
    let status = error_reply(response, StatusCode::UNAUTHORIZED, "application/json").await;
    assert_eq!(
        (status.error_code.as_str(), status.message.as_str()),
        ("Unauthorized", "Not Authenticated")
    );
    let status = error_reply(
        evo.anonymous(Method::GET, "/sessions.jsv")
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        JSV,
    )
    .await;
    assert_eq!(status.error_code, "Unauthorized");
    // A wrong password.
    let status = error_reply(
        evo.anonymous(Method::GET, "/sessions")
            .basic_auth("evo-user", Some("nope"))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "application/json",
    )
    .await;
    assert_eq!(status.message, "Invalid UserName or Password");

    // Credentials in JSON with rememberMe: ss-id, ss-pid and ss-opt=perm.
    let response = evo
        .anonymous(Method::POST, "/auth/credentials")
        .json(&json!({"userName": "evo-user", "password": "demo", "rememberMe": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(&response);
    let body: AuthenticateResponse = response.json().await.unwrap();
    assert_eq!(body.user_name.as_deref(), Some("evo-user"));
    assert_eq!(body.user_id.as_deref(), Some(EVO_USER_ID));
    assert_eq!(body.display_name.as_deref(), Some("agent@example.com"));
    let ss_id = cookie_value(&cookies, "ss-id").expect("ss-id");
    let ss_pid = cookie_value(&cookies, "ss-pid").expect("ss-pid");
    assert_eq!(body.session_id.as_deref(), Some(ss_id.as_str()));
    assert_eq!(cookie_value(&cookies, "ss-opt").as_deref(), Some("perm"));
    assert!(
        cookies
            .iter()
            .all(|c| c.contains("HttpOnly") && c.contains("SameSite=Lax"))
    );

    // Either cookie authenticates, for reading and for changing.
    for cookie in [
        format!("ss-id={ss_id}"),
        format!("other=1; ss-pid={ss_pid}"),
    ] {
        let response = evo
            .anonymous(Method::GET, "/sessions/demo-session")
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{cookie}");
    }
    let (info, _) = session_reply(
        evo.anonymous(Method::DELETE, "/sessions/demo-session/members/m3")
            .header("Cookie", format!("ss-id={ss_id}"))
            .send()
            .await
            .unwrap(),
        "application/json",
    )
    .await;
    assert_eq!(member_sids(&info), ["m1", "m2"]);
    let who: AuthenticateResponse = evo
        .anonymous(Method::GET, "/auth")
        .header("Cookie", format!("ss-id={ss_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who.user_name.as_deref(), Some("evo-user"));
    assert!(who.roles.contains(&"User".to_owned()));

    // Credentials in JSV without rememberMe: only the browser-session cookie.
    let response = evo
        .anonymous(Method::POST, "/auth/credentials.jsv")
        .header("Content-Type", "text/jsv")
        .body("{UserName:evo-user,Password:demo}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with(JSV));
    let cookies = set_cookies(&response);
    assert!(cookie_value(&cookies, "ss-id").is_some());
    assert!(cookie_value(&cookies, "ss-pid").is_none());
    assert_eq!(cookie_value(&cookies, "ss-opt").as_deref(), Some("temp"));
    let body: AuthenticateResponse = jsv::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body.user_name.as_deref(), Some("evo-user"));

    // A form, on ServiceStack's generic route.
    let response = evo
        .anonymous(Method::POST, "/auth")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("provider=credentials&userName=evo-user&password=demo&rememberMe=false")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(cookie_value(&set_cookies(&response), "ss-id").is_some());

    // Refusals: a wrong password, a missing user name (per field), both formats.
    let status = error_reply(
        evo.anonymous(Method::POST, "/auth/credentials")
            .header("Accept", "text/jsv")
            .json(&json!({"userName": "evo-user", "password": "wrong"}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        JSV,
    )
    .await;
    assert_eq!(status.message, "Invalid UserName or Password");
    let status = error_reply(
        evo.anonymous(Method::POST, "/auth/credentials")
            .json(&json!({"password": "demo"}))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "application/json",
    )
    .await;
    assert_eq!(status.errors[0].field_name, "UserName");

    // A forged or tampered token is not a session.
    let forged = format!("{ss_id}x");
    let status = error_reply(
        evo.anonymous(Method::GET, "/sessions")
            .header("Cookie", format!("ss-id={forged}"))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "application/json",
    )
    .await;
    assert_eq!(status.message, "Invalid UserName or Password");

    // Logout, both ways, clears all three cookies.
    for method in [Method::POST, Method::GET] {
        let response = evo
            .anonymous(method.clone(), "/auth/logout")
            .header("Cookie", format!("ss-id={ss_id}; ss-pid={ss_pid}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        let cookies = set_cookies(&response);
        for name in ["ss-id", "ss-pid", "ss-opt"] {
            assert_eq!(cookie_value(&cookies, name).as_deref(), Some(""), "{name}");
        }
        assert!(cookies.iter().all(|c| c.contains("Max-Age=0")));
    }
    evo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_case_in_both_formats() {
    let evo = Evo::start().await;
    evo.add_user("other-user", UserRole::User, &["other-account"])
        .await;
    evo.add_user("agent-in-account", UserRole::Agent, &["demo-account"])
        .await;

    for (accept, expected) in [("application/json", "application/json"), ("text/jsv", JSV)] {
        let check = async |request: RequestBuilder, status: StatusCode, code: &str| {
            let body = error_reply(
                request.header("Accept", accept).send().await.unwrap(),
                status,
                expected,
            )
            .await;
            assert_eq!(body.error_code, code, "{accept}: {}", body.message);
            body
        };

        // Bad input: unreadable bodies, unknown enum values, missing and blank parameters, bad
        // paging; never a 500.
        let body = check(
            evo.evo(Method::POST, "/sessions/demo-session/members")
                .header("Content-Type", "application/json")
                .body("{\"memberToAdd\":"),
            StatusCode::BAD_REQUEST,
            "SerializationException",
        )
        .await;
        assert!(body.message.contains("JSON"), "{}", body.message);
        let body = check(
            evo.evo(Method::POST, "/sessions/demo-session/members")
                .header("Content-Type", "text/jsv")
                .body("{memberToAdd:+15550111,role:Owner}"),
            StatusCode::BAD_REQUEST,
            "SerializationException",
        )
        .await;
        assert_eq!(body.errors[0].field_name, "role");
        check(
            evo.evo(Method::POST, "/sessions/demo-session/members")
                .header("Content-Type", "text/jsv")
                .body("{memberToAdd:[unterminated"),
            StatusCode::BAD_REQUEST,
            "SerializationException",
        )
        .await;
        let body = check(
            evo.evo(Method::POST, "/sessions/demo-session/members")
                .json(&json!({"displayName": "nobody"})),
            StatusCode::BAD_REQUEST,
            "ArgumentNullException",
        )
        .await;
        assert_eq!(body.errors[0].field_name, "memberToAdd");
        let body = check(
            evo.evo(Method::DELETE, "/sessions/demo-session/members/%20"),
            StatusCode::BAD_REQUEST,
            "ArgumentNullException",
        )
        .await;
        assert_eq!(body.errors[0].field_name, "MemberToRemove");
        let body = check(
            evo.evo(Method::GET, "/sessions/%FF"),
            StatusCode::BAD_REQUEST,
            "ArgumentException",
        )
        .await;
        assert_eq!(body.errors[0].field_name, "path");
        check(
            evo.evo(Method::GET, "/sessions?countPerPage=0"),
            StatusCode::BAD_REQUEST,
            "ArgumentException",
        )
        .await;
        check(
            evo.evo(Method::POST, "/sessions")
                .json(&json!({"id": "a/b"})),
            StatusCode::BAD_REQUEST,
            "ArgumentException",
        )
        .await;
        check(
            evo.evo(Method::DELETE, "/sessions/demo-session/members/m1")
                .header("Idempotency-Key", "has space"),
            StatusCode::BAD_REQUEST,
            "ArgumentException",
        )
        .await;
        check(
            evo.evo(Method::POST, "/sessions")
                .header("Content-Type", "text/xml")
                .body("<NewSession/>"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
        )
        .await;
        check(
            evo.evo(Method::POST, "/sessions")
                .header("Content-Type", "application/json")
                .body(format!("{{\"displayName\":\"{}\"}}", "x".repeat(70 * 1024))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
        )
        .await;

        // Not authenticated.
        check(
            evo.anonymous(Method::DELETE, "/sessions/demo-session/members/m3"),
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
        )
        .await;

        // Wrong role (a GWS agent, even in the account; and a GWS agent of no account):
        // ServiceStack's "Invalid Role".
        for (user, method, path) in [
            (
                "agent-in-account",
                Method::DELETE,
                "/sessions/demo-session/members/m3",
            ),
            ("agent15000", Method::GET, "/sessions"),
        ] {
            let body = check(
                evo.as_user(user, method.clone(), path),
                StatusCode::FORBIDDEN,
                "Forbidden",
            )
            .await;
            assert_eq!(body.message, "Invalid Role", "{user} {method} {path}");
        }
        // A user of another account probing the demo session: answered exactly as for a session
        // that does not exist (same status, same body but for the id it asked about), so ids of
        // other accounts cannot be told from missing ones. Nothing changes.
        for (method, path) in [
            (Method::DELETE, "/sessions/{id}/members/m3"),
            (Method::GET, "/sessions/{id}"),
            (Method::POST, "/sessions/{id}/members"),
            (Method::DELETE, "/sessions/{id}"),
        ] {
            let mut bodies = Vec::new();
            for id in ["demo-session", "no-such-session"] {
                let mut request =
                    evo.as_user("other-user", method.clone(), &path.replace("{id}", id));
                if method == Method::POST {
                    request = request.json(&json!({"memberToAdd": "+15550142"}));
                }
                let body = check(request, StatusCode::NOT_FOUND, "NotFound").await;
                bodies.push(serde_json::to_string(&body).unwrap().replace(id, "{id}"));
            }
            assert_eq!(bodies[0], bodies[1], "{method} {path}");
        }
        let after = evo
            .evo(Method::GET, "/sessions/demo-session?format=json")
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), StatusCode::OK, "the session is still there");
        let body = check(
            evo.as_user("other-user", Method::POST, "/sessions")
                .json(&json!({"accountId": "demo-account"})),
            StatusCode::FORBIDDEN,
            "Forbidden",
        )
        .await;
        assert_eq!(body.message, "Invalid Role");

        // Unknown session (also: an id that is a GWS call, not a session), unknown member.
        for path in [
            "/sessions/no-such-session/members/m1",
            "/sessions/01RCC3N118B1V0SL8O7GK2LAES00000O/members/m1",
        ] {
            let body = check(
                evo.evo(Method::DELETE, path),
                StatusCode::NOT_FOUND,
                "NotFound",
            )
            .await;
            assert!(body.message.starts_with("Session "), "{}", body.message);
        }
        check(
            evo.evo(Method::GET, "/sessions/no-such-session"),
            StatusCode::NOT_FOUND,
            "NotFound",
        )
        .await;
        let body = check(
            evo.evo(Method::DELETE, "/sessions/demo-session/members/nobody"),
            StatusCode::NOT_FOUND,
            "NotFound",
        )
        .await;
        assert_eq!(
            body.message,
            "Participant nobody is not in session demo-session"
        );

        // Conflicts: a session id in use, a member already there, an idempotency key reused for
        // another request.
        check(
            evo.evo(Method::POST, "/sessions")
                .json(&json!({"id": "demo-session"})),
            StatusCode::CONFLICT,
            "Conflict",
        )
        .await;
        check(
            evo.evo(Method::POST, "/sessions/demo-session/members")
                .json(&json!({"memberToAdd": "AGENT@example.com"})),
            StatusCode::CONFLICT,
            "Conflict",
        )
        .await;
        check(
            evo.evo(Method::POST, "/sessions/demo-session/members")
                .json(&json!({"memberToAdd": "+15550177", "memberId": "m1"})),
            StatusCode::CONFLICT,
            "Conflict",
        )
        .await;
    }

    // A key first used for one request and then for another.
    let first = evo
        .evo(Method::POST, "/sessions")
        .header("Idempotency-Key", "k-create")
        .json(&json!({"id": "idem-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let again = evo
        .evo(Method::POST, "/sessions")
        .header("Idempotency-Key", "k-create")
        .header("Content-Type", "text/jsv")
        .body("{id:idem-1}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "the same request in JSV is a replay"
    );
    for (accept, expected) in [("application/json", "application/json"), ("text/jsv", JSV)] {
        let body = error_reply(
            evo.evo(Method::POST, "/sessions")
                .header("Idempotency-Key", "k-create")
                .header("Accept", accept)
                .json(&json!({"id": "idem-2"}))
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            expected,
        )
        .await;
        assert_eq!(body.error_code, "UnprocessableEntity");
    }

    // A refused removal changed nothing.
    let (info, _) = session_reply(
        evo.evo(Method::GET, "/sessions/demo-session")
            .send()
            .await
            .unwrap(),
        "application/json",
    )
    .await;
    assert_eq!(member_sids(&info), ["m1", "m2", "m3"]);
    evo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_the_servicestack_way_and_show_only_own_accounts() {
    let evo = Evo::start().await;
    evo.add_user("other-user", UserRole::User, &["other-account"])
        .await;
    for n in 1..=5 {
        let response = evo
            .evo(Method::POST, "/sessions")
            .json(&json!({"id": format!("paged-{n}"), "members": [{"identity": format!("+1555020{n}")}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // Distinct creation times, so the newest-first order is fixed.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let page = async |query: &str| -> (SessionList, Value) {
        let text = evo
            .evo(Method::GET, &format!("/sessions{query}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (
            serde_json::from_str(&text).unwrap(),
            serde_json::from_str(&text).unwrap(),
        )
    };
    let (first, raw) = page("?countPerPage=2").await;
    let keys: Vec<&String> = raw.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["items", "totalCount", "totalPages", "hasMorePages"]);
    assert_eq!(
        (first.total_count, first.total_pages, first.has_more_pages),
        (6, 3, true)
    );
    let ids = |list: &SessionList| -> Vec<String> {
        list.items.iter().map(|s| s.id.clone().unwrap()).collect()
    };
    assert_eq!(ids(&first), ["paged-5", "paged-4"]);
    let (second, _) = page("?countPerPage=2&page=1").await;
    assert_eq!(ids(&second), ["paged-3", "paged-2"]);
    let (last, _) = page("?CountPerPage=2&Page=2").await;
    assert_eq!(ids(&last), ["paged-1", "demo-session"]);
    assert!(!last.has_more_pages);
    let (beyond, _) = page("?countPerPage=2&page=9").await;
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total_count, 6);
    let (all, _) = page("?all=true&countPerPage=1").await;
    assert_eq!(
        (all.items.len(), all.total_pages, all.has_more_pages),
        (6, 1, false)
    );

    // The other account sees none of these, in JSV too.
    let text = evo
        .as_user("other-user", Method::GET, "/sessions.jsv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let list: SessionList = jsv::from_str(&text).unwrap();
    assert_eq!(
        (
            list.items.len(),
            list.total_count,
            list.total_pages,
            list.has_more_pages
        ),
        (0, 0, 0, false)
    );
    evo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_get_invite_and_end_a_session() {
    let evo = Evo::start().await;
    let (created, _) = session_reply(
        evo.evo(Method::POST, "/sessions")
            .header("Idempotency-Key", "create-1")
            .json(&json!({
                "channel": "Voice",
                "direction": "Outgoing",
                "destination": "+15550300",
                "customerId": "c-42",
                "customerName": "Ada Lovelace",
                "members": [
                    {"identity": "agent@example.com", "role": "Agent", "displayName": "Agent"},
                    {"identity": "+15550300", "role": "Caller", "callState": "Ringing"}
                ]
            }))
            .send()
            .await
            .unwrap(),
        "application/json",
    )
    .await;
    let id = created.id.clone().unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(created.account_id.as_deref(), Some("demo-account"));
    assert_eq!(created.destination.as_deref(), Some("+15550300"));
    assert_eq!(created.customer_breadcrumb.len(), 1);
    assert_eq!(
        created.customer_breadcrumb[0].name.as_deref(),
        Some("Ada Lovelace")
    );
    assert_eq!(created.created_by.as_deref(), Some(EVO_USER_ID));
    assert_eq!(created.members.len(), 2);
    assert!(created.members.iter().all(|m| m.is_original_member));
    assert_eq!(
        created.log[0].message.as_deref(),
        Some("agent@example.com created the session")
    );
    // The same request again (same key) is the same session, not a second one.
    let (replayed, _) = session_reply(
        evo.evo(Method::POST, "/sessions")
            .header("Idempotency-Key", "create-1")
            .json(&json!({
                "channel": "Voice",
                "direction": "Outgoing",
                "destination": "+15550300",
                "customerId": "c-42",
                "customerName": "Ada Lovelace",
                "members": [
                    {"identity": "agent@example.com", "role": "Agent", "displayName": "Agent"},
                    {"identity": "+15550300", "role": "Caller", "callState": "Ringing"}
                ]
            }))
            .send()
            .await
            .unwrap(),
        "application/json",
    )
    .await;
    assert_eq!(replayed, created);

    let list: SessionList = evo
        .evo(Method::GET, "/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.total_count, 2);
    assert_eq!(list.items[0], created, "newest first");

    let (got, _) = session_reply(
        evo.evo(Method::GET, &format!("/sessions/{id}"))
            .send()
            .await
            .unwrap(),
        "application/json",
    )
    .await;
    assert_eq!(got, created);

    let (invited, _) = session_reply(
        evo.evo(Method::POST, &format!("/sessions/{id}/members"))
            .header("Content-Type", "text/jsv")
            .header("Accept", "text/jsv")
            .body("{memberToAdd:+15550301,callerId:+15550000,role:Transfer}")
            .send()
            .await
            .unwrap(),
        JSV,
    )
    .await;
    assert_eq!(invited.members.len(), 3);
    let new_member = invited.members.last().unwrap();
    assert_eq!(new_member.identity.as_deref(), Some("+15550301"));
    assert_eq!(new_member.role, SessionMemberRoles::Transfer);
    assert_eq!(
        invited.log.last().and_then(|l| l.message.as_deref()),
        Some("agent@example.com added +15550301")
    );

    // Remove the new member by the callSid the reply showed.
    let sid = new_member.call_sid.clone().unwrap();
    let (removed, _) = session_reply(
        evo.evo(Method::DELETE, &format!("/sessions/{id}/members/{sid}"))
            .send()
            .await
            .unwrap(),
        "application/json",
    )
    .await;
    assert_eq!(removed.members.len(), 2);

    let (ended, _) = session_reply(
        evo.evo(Method::DELETE, &format!("/sessions/{id}.json"))
            .send()
            .await
            .unwrap(),
        "application/json",
    )
    .await;
    assert!(ended.ended);
    assert_eq!(
        ended.call_state,
        confer_model::evo::SessionCallState::Disconnected
    );
    assert!(!ended.date_completed.clone().unwrap().is_empty());
    assert_eq!(
        ended.log.last().and_then(|l| l.message.as_deref()),
        Some("agent@example.com ended the session")
    );
    // An ended session takes no new members.
    let body = error_reply(
        evo.evo(Method::POST, &format!("/sessions/{id}/members"))
            .json(&json!({"memberToAdd": "+15550302"}))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "application/json",
    )
    .await;
    assert_eq!(body.error_code, "InvalidOperationException");
    // Ended sessions are still listed (Evo lists ended sessions too).
    let list: SessionList = evo
        .evo(Method::GET, "/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.total_count, 2);
    evo.stop().await;
}

/// The README's commands against the real binary: `confer serve --demo`, then the seed removal
/// with `Accept: text/jsv` and with `?format=json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_commands_against_the_binary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let process = support::ConferProcess::start(dir.path(), &["--demo"]);
    assert!(
        process.banner.contains("Evo session demo-session"),
        "{}",
        process.banner
    );
    let client = support::http();
    let response = client
        .delete(process.url("/sessions/demo-session/members/m3"))
        .basic_auth("evo-user", Some("demo"))
        .header("Accept", "text/jsv")
        .send()
        .await
        .unwrap();
    let (info, text) = session_reply(response, JSV).await;
    assert!(text.starts_with("{dialState:"), "{text}");
    assert_eq!(member_sids(&info), ["m1", "m2"]);
    let response = client
        .delete(process.url("/sessions/demo-session/members/m2?format=json"))
        .basic_auth("evo-user", Some("demo"))
        .send()
        .await
        .unwrap();
    let (info, text) = session_reply(response, "application/json").await;
    assert!(text.starts_with("{\"dialState\":"), "{text}");
    assert_eq!(member_sids(&info), ["m1"]);
    assert!(process.terminate(), "a clean exit on SIGTERM");
}
