//! The supervisor console: one browser page at `/console/` where an agent sees their own calls
//! and chats and a supervisor monitors an agent, each removing participants with one click.
//!
//! The page is plain HTML, CSS and JavaScript modules (`assets/`), compiled into the binary with
//! `include_bytes!`: no CDN, no build step, nothing to install next to `confer`. It is a GWS
//! client like any other: it signs in with Basic once (`GET /api/v2/me`), then uses the
//! `JSESSIONID` cookie and the `X-CSRF-TOKEN` header, reads `/api/v2/me/calls` and
//! `/api/v2/me/chats`, posts the GWS operations, and follows CometD at `/api/v2/notifications`
//! with its own small Bayeux client (`assets/bayeux.js`). This crate serves the files and one
//! helper the page cannot do itself: forgetting the `HttpOnly` session cookie on sign-out.
//!
//! Operator documentation: `docs/console.md`.

use axum::{
    Router,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};

/// Where the console lives.
pub const CONSOLE_PATH: &str = "/console/";

/// GWS's session cookie (`confer_gws::auth::SESSION_COOKIE`), named here so that this crate
/// depends on nothing but axum.
const SESSION_COOKIE: &str = "JSESSIONID";

/// Only our own files, no inline code, talk only to this server, never framed. The page needs
/// nothing else, and an injected script or style would not run.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Browsers revalidate every time (a cheap `304` thanks to the `ETag`): the assets change only
/// with the binary, and a new binary must never run with an old page's scripts.
const CACHE_CONTROL: &str = "no-cache";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The file name under `/console/` (`""` is the page itself).
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// FNV-1a of the body, computed at compile time: the `ETag`.
    pub hash: u64,
}

/// FNV-1a (64 bit): a stable content hash for `ETag`s, computable in a `const`.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

macro_rules! asset {
    ($name:literal, $file:literal, $content_type:expr) => {{
        const BODY: &[u8] = include_bytes!(concat!("../assets/", $file));
        Asset {
            name: $name,
            content_type: $content_type,
            body: BODY,
            hash: fnv1a(BODY),
        }
    }};
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Every file the console serves.
pub static ASSETS: [Asset; 6] = [
    asset!("", "index.html", "text/html; charset=utf-8"),
    asset!("console.css", "console.css", "text/css; charset=utf-8"),
    asset!("console.js", "console.js", JAVASCRIPT),
    asset!("bayeux.js", "bayeux.js", JAVASCRIPT),
    asset!("gws.js", "gws.js", JAVASCRIPT),
    asset!("icon.svg", "icon.svg", "image/svg+xml"),
];

/// The embedded file named `name` (`""` for the page).
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// The console's routes: the page at `/console/` (and `/console` redirected there), its assets,
/// and `POST /console/sign-out`.
pub fn router() -> Router {
    Router::new()
        // Relative asset URLs in the page resolve under `/console/` only.
        .route("/console", get(|| async { Redirect::permanent(CONSOLE_PATH) }))
        .route(CONSOLE_PATH, get(|headers: HeaderMap| async move { serve("", &headers) }))
        .route("/console/sign-out", post(sign_out))
        .route(
            "/console/{file}",
            get(
                |axum::extract::Path(file): axum::extract::Path<String>, headers: HeaderMap| async move {
                    serve(&file, &headers)
                },
            ),
        )
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// The asset, `304` when the browser's copy is current, or a plain `404`.
fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(asset) = asset(name) else {
        let mut response = (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Not found: the console has no such file.\n",
        )
            .into_response();
        security_headers(response.headers_mut());
        return response;
    };
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = asset.body.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    security_headers(headers);
    response
}

/// Expires the session cookie in this browser. The page cannot do it itself (the cookie is
/// `HttpOnly`). A custom header is required so that another site cannot sign a user out with a
/// plain form post (a cross-origin request with it needs a CORS preflight, which nothing here
/// answers). The signed session token itself stays valid until it expires: GWS sessions are
/// stateless, so forgetting it is what signing out can do.
async fn sign_out(headers: HeaderMap) -> Response {
    if !headers.contains_key(HeaderName::from_static("x-csrf-token")) {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Signing out needs the X-CSRF-TOKEN header.\n",
        )
            .into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn send(request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = router().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).expect("request")
    }

    fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
        headers
            .get(&name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_content_type_and_cache_headers() {
        let expected = [
            ("/console/", "text/html; charset=utf-8", "<!doctype html>"),
            ("/console/console.css", "text/css; charset=utf-8", ":root"),
            ("/console/console.js", JAVASCRIPT, "import "),
            ("/console/bayeux.js", JAVASCRIPT, "export class Bayeux"),
            ("/console/gws.js", JAVASCRIPT, "export class Gws"),
            ("/console/icon.svg", "image/svg+xml", "<svg"),
        ];
        assert_eq!(expected.len(), ASSETS.len(), "a test per asset");
        for (path, content_type, start) in expected {
            let (status, headers, body) = send(get(path)).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(
                header(&headers, header::CONTENT_TYPE),
                content_type,
                "{path}"
            );
            assert_eq!(
                header(&headers, header::CACHE_CONTROL),
                "no-cache",
                "{path}"
            );
            assert_eq!(header(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            assert!(
                header(&headers, header::CONTENT_SECURITY_POLICY).contains("script-src 'self'")
            );
            assert!(header(&headers, header::ETAG).starts_with('"'), "{path}");
            let text = String::from_utf8(body).expect("utf-8");
            assert!(text.contains(start), "{path} should contain {start:?}");
        }
    }

    #[tokio::test]
    async fn the_page_references_only_embedded_assets() {
        let (_, _, body) = send(get("/console/")).await;
        let page = String::from_utf8(body).expect("utf-8");
        for reference in ["console.css", "console.js", "icon.svg"] {
            assert!(page.contains(&format!("\"{reference}\"")), "{reference}");
        }
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no CDN"
        );
        let (_, _, body) = send(get("/console/console.js")).await;
        let script = String::from_utf8(body).expect("utf-8");
        for module in ["./gws.js", "./bayeux.js"] {
            assert!(script.contains(module), "{module}");
            let name = module.trim_start_matches("./");
            assert!(asset(name).is_some(), "{name} is embedded");
        }
    }

    #[tokio::test]
    async fn a_current_copy_gets_304_and_a_changed_one_the_file() {
        let (_, headers, _) = send(get("/console/console.js")).await;
        let etag = header(&headers, header::ETAG).to_owned();
        let request = Request::get("/console/console.js")
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .expect("request");
        let (status, headers, body) = send(request).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert_eq!(header(&headers, header::ETAG), etag);
        let request = Request::get("/console/console.js")
            .header(header::IF_NONE_MATCH, "\"0000000000000000\"")
            .body(Body::empty())
            .expect("request");
        let (status, _, body) = send(request).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!body.is_empty());
    }

    #[tokio::test]
    async fn etags_differ_between_assets() {
        let mut tags: Vec<u64> = ASSETS.iter().map(|asset| asset.hash).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
    }

    #[tokio::test]
    async fn console_without_slash_redirects_and_unknown_files_are_404() {
        let (status, headers, _) = send(get("/console")).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(header(&headers, header::LOCATION), "/console/");
        for path in [
            "/console/nope.js",
            "/console/..%2FCargo.toml",
            "/console/index.html",
        ] {
            let (status, headers, _) = send(get(path)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(
                header(&headers, header::CONTENT_TYPE),
                "text/plain; charset=utf-8"
            );
        }
    }

    #[tokio::test]
    async fn head_answers_without_a_body() {
        let request = Request::head("/console/")
            .body(Body::empty())
            .expect("request");
        let (status, headers, body) = send(request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            header(&headers, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn sign_out_expires_the_session_cookie_only_with_the_header() {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/console/sign-out")
            .header("X-CSRF-TOKEN", "anything")
            .body(Body::empty())
            .expect("request");
        let (status, headers, _) = send(request).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let cookie = header(&headers, header::SET_COOKIE);
        assert!(cookie.starts_with("JSESSIONID=;"), "{cookie}");
        assert!(
            cookie.contains("Max-Age=0") && cookie.contains("Path=/"),
            "{cookie}"
        );

        let request = Request::builder()
            .method(Method::POST)
            .uri("/console/sign-out")
            .body(Body::empty())
            .expect("request");
        let (status, headers, _) = send(request).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(headers.get(header::SET_COOKIE).is_none());

        let (status, _, _) = send(get("/console/sign-out")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
}
