//! The OpenAPI 3.1 document of the JSON API, generated from the handlers' own types and
//! annotations, served at /docs/openapi.json and rendered as the /docs/api reference page.
use std::sync::OnceLock;

use axum::{http::header, response::IntoResponse, routing::get, Router};
use gateway::state::AppState;
use serde_json::Value;
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use super::schema::{
    DryRunResponse, ErrorResponse, EventsResponse, HealthResponse, PolicyReason, SandboxCallBody, SandboxInboundBody,
    SandboxInboundResponse, SandboxLinkBody, SandboxLinkResponse, SandboxStatusResponse, SendMessageBody,
    SendMessageResponse,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "WA Gateway API",
        description = "A guarded WhatsApp gateway for transactional, operational, support, authentication and internal-team messages. Authenticate with `Authorization: Bearer YOUR_API_KEY`; keys are created in the portal at /api-keys.",
    ),
    paths(
        super::send::send_message,
        super::events::list_events,
        super::sandbox::link,
        super::sandbox::disconnect,
        super::sandbox::reconnect,
        super::sandbox::inbound,
        super::sandbox::call,
        crate::health::healthz,
        crate::health::readyz
    ),
    components(schemas(
        SendMessageBody,
        SendMessageResponse,
        DryRunResponse,
        PolicyReason,
        ErrorResponse,
        SandboxLinkBody,
        SandboxLinkResponse,
        SandboxInboundBody,
        SandboxInboundResponse,
        SandboxCallBody,
        SandboxStatusResponse,
        EventsResponse,
        HealthResponse
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from the portal, e.g. `Authorization: Bearer wag_…`"))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".into()))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/docs/openapi.json", get(openapi_json))
}

async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

/// The reference page's Markdown, written from the document: one section per operation with
/// its fields and answers.
pub fn reference_markdown() -> String {
    let doc: Value = serde_json::from_str(document()).unwrap_or(Value::Null);
    let mut out = String::from(
        "# API reference\n\nGenerated from the server's own types. The machine-readable OpenAPI 3.1 document is at \
         [/docs/openapi.json]({{BASE_URL}}/docs/openapi.json).\n\n",
    );
    let Some(paths) = doc["paths"].as_object() else { return out };
    for (path, operations) in paths {
        let Some(operations) = operations.as_object() else { continue };
        for (method, op) in operations {
            out.push_str(&format!("## {} {path}\n\n", method.to_uppercase()));
            if let Some(text) = op["summary"].as_str() {
                out.push_str(&format!("{text}\n\n"));
            }
            if let Some(text) = op["description"].as_str() {
                out.push_str(&format!("{text}\n\n"));
            }
            if op["security"].is_array() {
                out.push_str("Authentication: `Authorization: Bearer YOUR_API_KEY`.\n\n");
            }
            if let Some(params) = op["parameters"].as_array() {
                for p in params {
                    out.push_str(&format!(
                        "Header `{}` (optional): {}\n\n",
                        p["name"].as_str().unwrap_or_default(),
                        p["description"].as_str().unwrap_or_default()
                    ));
                }
            }
            if let Some(schema_ref) = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() {
                out.push_str("Request body (`Content-Type: application/json`):\n\n");
                out.push_str(&fields_table(&doc, schema_ref));
            }
            if let Some(responses) = op["responses"].as_object() {
                out.push_str("| Status | Meaning |\n|---|---|\n");
                for (status, response) in responses {
                    out.push_str(&format!("| {status} | {} |\n", response["description"].as_str().unwrap_or_default()));
                }
                out.push('\n');
            }
        }
    }
    out.push_str("## Schemas\n\n");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for name in schemas.keys() {
            out.push_str(&format!("### {name}\n\n"));
            out.push_str(&fields_table(&doc, &format!("#/components/schemas/{name}")));
        }
    }
    out
}

fn fields_table(doc: &Value, schema_ref: &str) -> String {
    let name = schema_ref.trim_start_matches("#/components/schemas/");
    let schema = &doc["components"]["schemas"][name];
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else { return String::new() };
    let mut out = String::from("| Field | Type | Required | Description |\n|---|---|---|---|\n");
    for (field, property) in properties {
        let kind = match &property["type"] {
            Value::String(t) => t.clone(),
            Value::Array(types) => {
                types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join(" or ")
            }
            _ => property["$ref"]
                .as_str()
                .map(|r| r.trim_start_matches("#/components/schemas/").to_string())
                .unwrap_or_default(),
        };
        let description = property["description"].as_str().unwrap_or_default().replace('\n', " ");
        let is_required = if required.contains(&field.as_str()) { "yes" } else { "no" };
        out.push_str(&format!("| `{field}` | {kind} | {is_required} | {description} |\n"));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_the_api() {
        let doc: Value = serde_json::from_str(document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        assert!(doc["paths"]["/api/send-message"]["post"]["responses"]["429"].is_object());
        let body = &doc["components"]["schemas"]["SendMessageBody"]["properties"];
        for field in [
            "instance_id",
            "phone",
            "message",
            "message_purpose",
            "media_type",
            "mime_type",
            "file_name",
            "media",
            "dry_run",
        ] {
            assert!(body[field].is_object(), "{field}");
        }
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        let page = reference_markdown();
        assert!(page.contains("## POST /api/send-message"));
        assert!(page.contains("`message_purpose`"));
    }
}
