//! The OpenAPI 3.1 document of Confer's REST API, assembled from the dialects' annotations
//! (`confer_gws::rest::openapi`, `confer_evo::openapi`, `confer_app::health`), served at
//! `GET /openapi.json` with Swagger UI at `/swagger-ui`, and committed as `openapi/confer.json`
//! (`cargo xtask openapi` writes it; `cargo xtask openapi --check` fails when it is stale).

use axum::Router;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self, InfoBuilder,
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use utoipa_swagger_ui::SwaggerUi;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Where Swagger UI is served (its assets come from the binary).
pub const SWAGGER_UI_PATH: &str = "/swagger-ui";

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "Health",
    operation_id = "metrics",
    summary = "Prometheus metrics, in the OpenMetrics text format.",
    responses(
        (status = 200, description = "The metrics.", body = String, content_type = "application/openmetrics-text"),
    ),
    security(())
)]
#[allow(dead_code)]
/// Documents `confer_app::metrics::serve_metrics` (the route is mounted in `server.rs`).
fn metrics() {}

/// Health and metrics.
#[derive(OpenApi)]
#[openapi(
    paths(confer_app::health::healthz, confer_app::health::readyz, metrics),
    tags((name = "Health", description = "Liveness, readiness and metrics."))
)]
struct HealthApi;

/// The security schemes the annotations name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            confer_gws::rest::openapi::BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "A Confer user's name and password (`confer users add`; every demo user's password is `demo`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            confer_gws::rest::openapi::SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "JSESSIONID",
                "The GWS session cookie set on the first authenticated reply.",
            ))),
        );
        components.add_security_scheme(
            confer_gws::rest::openapi::CSRF,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-TOKEN",
                "The CSRF token every GWS `GET` reply carries in `X-CSRF-TOKEN`; required on GWS `POST`s (unless the server runs with `--csrf false`).",
            ))),
        );
        components.add_security_scheme(
            confer_evo::openapi::SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "ss-id",
                "The ServiceStack session cookie set by `/auth/credentials`.",
            ))),
        );
        components.add_security_scheme(
            confer_evo::openapi::PERMANENT_SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "ss-pid",
                "The ServiceStack permanent session cookie (`rememberMe`).",
            ))),
        );
    }
}

/// The whole document.
pub fn document() -> openapi::OpenApi {
    let mut doc = HealthApi::openapi();
    doc.merge(confer_gws::rest::openapi::GwsApi::openapi());
    doc.merge(confer_evo::openapi::EvoApi::openapi());
    doc.info = InfoBuilder::new()
        .title("Confer")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Who is in every conference, and removing participants safely, in the dialects clients already speak: Genesys Web Services voice and chat (REST; notifications over CometD at `/api/v2/notifications`), Evo Voice sessions (ServiceStack REST in JSON and JSV), and health. gRPC (`confer.v1`) is described by its own reflection service.",
        ))
        .license(Some(
            openapi::LicenseBuilder::new()
                .name("MIT OR Apache-2.0")
                .build(),
        ))
        .build();
    SecuritySchemes.modify(&mut doc);
    doc
}

/// The document as the committed file holds it: pretty JSON with a final newline.
pub fn document_json() -> anyhow::Result<String> {
    let mut text = document().to_pretty_json()?;
    text.push('\n');
    Ok(text)
}

/// `GET /openapi.json` and Swagger UI, with its assets from the binary.
pub fn router() -> Router {
    Router::new().merge(SwaggerUi::new(SWAGGER_UI_PATH).url(DOCUMENT_PATH, document()))
}
