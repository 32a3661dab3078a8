//! The OpenAPI 3.1 document of the JSON API, generated from the handlers' own types and
//! annotations, served at /docs/openapi.json and rendered as the /docs/api reference page.
use std::sync::OnceLock;

use std::sync::{Mutex, PoisonError};

use axum::{body::Bytes, extract::State, http::header, response::IntoResponse, routing::get, Router};
use gateway::{connectors::MediaKind, send::media, state::AppState};
use serde_json::{json, Value};
use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use super::schema::{
    DryRunResponse, ErrorResponse, EventsResponse, HealthResponse, MediaType, MessagePurpose, PolicyDecision,
    PolicyReason, SandboxCallBody, SandboxCallStatus, SandboxInboundBody, SandboxInboundResponse, SandboxLinkBody,
    SandboxLinkResponse, SandboxStatusResponse, SendAnswer, SendMessageBody, SendMessageResponse, ThreecxErrorResponse,
    ThreecxEvent, ThreecxEventType, ThreecxWebhookResponse,
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
        super::threecx::webhook,
        crate::health::healthz,
        crate::health::readyz
    ),
    components(schemas(
        SendMessageBody,
        MessagePurpose,
        MediaType,
        SendAnswer,
        SendMessageResponse,
        DryRunResponse,
        PolicyDecision,
        PolicyReason,
        ErrorResponse,
        SandboxLinkBody,
        SandboxLinkResponse,
        SandboxInboundBody,
        SandboxInboundResponse,
        SandboxCallBody,
        SandboxCallStatus,
        SandboxStatusResponse,
        EventsResponse,
        HealthResponse,
        ThreecxEvent,
        ThreecxEventType,
        ThreecxWebhookResponse,
        ThreecxErrorResponse
    )),
    servers((url = "/", description = "This server: the document is served at /docs/openapi.json of the server it describes, with the server's public base URL here.")),
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
        components.add_security_scheme(
            "threecx_secret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-WhatsApp-Gateway-3CX-Secret",
                "The 3CX integration's webhook secret, shown once in the portal.",
            ))),
        );
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
        cross_field_rules(&mut doc);
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
    })
}

/// The document as served: `servers` names this server's public base URL (the built document
/// has `/`, the server it is read from). Kept for the last base URL asked for.
fn served_document(base_url: &str) -> Bytes {
    static LAST: Mutex<Option<(String, Bytes)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((url, doc)) = last.as_ref().filter(|(url, _)| url == base_url) {
        debug_assert_eq!(url, base_url);
        return doc.clone();
    }
    let mut doc: Value = serde_json::from_str(document()).unwrap_or(Value::Null);
    doc["servers"] = json!([{"url": base_url, "description": "This server (its public base URL)."}]);
    let text = Bytes::from(serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into()));
    *last = Some((base_url.to_string(), text.clone()));
    text
}

pub fn router() -> Router<AppState> {
    Router::new().route("/docs/openapi.json", get(openapi_json))
}

async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], served_document(&state.config.public_base_url))
}

/// `gateway::send::text::is_invisible`'s characters of the basic plane, as a class body.
const INVISIBLE: &str = r"\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0";
/// Text-direction controls (`media::file_name_ok` refuses them in file names).
const BIDI: &str = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069";

/// Rules between fields that the types' annotations cannot state: which fields a text or a
/// media message needs (`send_request`: media fields make it a media message, null is absent;
/// each media type's mime types; the strict base64 the decoder accepts; a caption of at most
/// 1024 characters), and that a simulated inbound message has a text or a media type.
fn cross_field_rules(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    let absent = json!({"type": "null"});
    // A message must show something: one character that is not white space, a control, or one
    // of the invisible characters of `gateway::send::text::is_invisible` (those of the basic
    // plane; a regular expression without the `u` flag cannot name the others).
    let shown = format!(r"[^\s\u0000-\u001f\u007f-\u009f{INVISIBLE}]");
    let text_message = json!({
        "title": "Text message",
        "required": ["message"],
        "properties": {
            "message": {"type": "string", "pattern": shown},
            "media_type": absent, "mime_type": absent, "file_name": absent, "media": absent,
        },
    });
    // Whole groups of four, then an optional last group: two characters (the second with its
    // four low bits unset) and `==`, or three (the third with its two low bits unset) and `=`;
    // the padding may be left out. At least one byte.
    let base64 = r"^(?:data:[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+;base64,)?(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw](?:==)?|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=?)$";
    // No slash, control or text-direction character, and one character besides dots and
    // invisible ones (`media::file_name_ok`).
    let allowed = format!(r"[^/\\\u0000-\u001f\u007f-\u009f{BIDI}]");
    let file_name = json!({
        "type": "string",
        "pattern": format!(r"^{allowed}*[^/\\.\s\u0000-\u001f\u007f-\u009f{INVISIBLE}]{allowed}*$"),
    });
    let media_message = |kind: MediaKind, name: &str| {
        let mut required = vec!["media_type", "mime_type", "media"];
        if kind == MediaKind::Document {
            required.push("file_name");
        }
        json!({
            "title": format!("{}{} message", name[..1].to_uppercase(), &name[1..]),
            "required": required,
            "properties": {
                "message": {"maxLength": 1024},
                "media_type": {"const": name},
                "mime_type": {"enum": media::mime_types(kind)},
                "file_name": file_name,
                "media": {"type": "string", "pattern": base64},
            },
        })
    };
    schemas["SendMessageBody"]["oneOf"] = json!([
        text_message,
        media_message(MediaKind::Image, "image"),
        media_message(MediaKind::Document, "document"),
        media_message(MediaKind::Audio, "audio"),
        media_message(MediaKind::Video, "video"),
    ]);
    schemas["SandboxInboundBody"]["anyOf"] = json!([
        {"title": "Text", "required": ["message"], "properties": {"message": {"type": "string", "pattern": r"\S"}}},
        {"title": "Media", "required": ["media_type"], "properties": {"media_type": {"$ref": "#/components/schemas/MediaType"}}},
    ]);
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
            let schemes: Vec<&str> = op["security"]
                .as_array()
                .map(|s| s.iter().filter_map(Value::as_object).flat_map(|o| o.keys().map(String::as_str)).collect())
                .unwrap_or_default();
            if schemes.contains(&"bearer") {
                out.push_str("Authentication: `Authorization: Bearer YOUR_API_KEY`.\n\n");
            }
            if schemes.contains(&"threecx_secret") {
                out.push_str("Authentication: `X-WhatsApp-Gateway-3CX-Secret: YOUR_WEBHOOK_SECRET`.\n\n");
            }
            if let Some(params) = op["parameters"].as_array() {
                for p in params {
                    let place = match p["in"].as_str().unwrap_or_default() {
                        "query" => "Query parameter",
                        "path" => "Path parameter",
                        _ => "Header",
                    };
                    out.push_str(&format!(
                        "{place} `{}` ({}): {}\n\n",
                        p["name"].as_str().unwrap_or_default(),
                        if p["required"] == true { "required" } else { "optional" },
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
        assert!(page.contains("Query parameter `limit` (optional)"), "{page}");
        assert!(page.contains("Header `Idempotency-Key` (optional)"));
        assert!(page.contains("## POST /integrations/3cx/webhook/{integration_id}"));
    }
    /// Every status each operation can answer is documented, with the ranges validation keeps.
    #[test]
    fn every_operation_documents_its_statuses_and_ranges() {
        let doc: Value = serde_json::from_str(document()).unwrap();
        assert!(doc["servers"].as_array().is_some_and(|s| !s.is_empty()), "servers");
        let threecx = "/integrations/3cx/webhook/{integration_id}";
        assert!(doc["paths"][threecx]["post"].is_object(), "the 3CX webhook is documented");
        let mut checked = 0;
        for (path, operations) in doc["paths"].as_object().unwrap() {
            for (method, op) in operations.as_object().unwrap() {
                let has = |status: &str| op["responses"][status].is_object();
                let name = format!("{} {path}", method.to_uppercase());
                for status in ["408", "500"] {
                    assert!(has(status), "{name} documents {status}");
                }
                if op["requestBody"].is_object() {
                    // The 3CX webhook reads any content type (the spec's list has no 415).
                    let statuses: &[&str] =
                        if path == threecx { &["400", "413", "422"] } else { &["400", "413", "415", "422"] };
                    for status in statuses {
                        assert!(has(status), "{name} documents {status}");
                    }
                }
                if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                    assert!(has("401"), "{name} documents 401");
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 10);
        let sandbox = doc["paths"]["/api/sandbox/link"]["post"]["responses"].as_object().unwrap();
        for status in ["400", "401", "403", "404", "408", "413", "415", "422", "500"] {
            assert!(sandbox.contains_key(status), "sandbox link documents {status}");
        }

        let params = doc["paths"]["/api/events"]["get"]["parameters"].as_array().unwrap();
        let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], 500);
        let send = &doc["paths"]["/api/send-message"]["post"];
        let key = send["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "Idempotency-Key").unwrap();
        assert_eq!(key["schema"]["minLength"], 1);
        assert_eq!(key["schema"]["maxLength"], 255);
        for schema in ["SendMessageBody", "SandboxLinkBody", "SandboxInboundBody", "SandboxCallBody"] {
            let id = &doc["components"]["schemas"][schema]["properties"]["instance_id"];
            assert_eq!(id["minLength"], 1, "{schema}.instance_id");
        }
        // A dry run answers DryRunResponse under 200.
        let answer = &send["responses"]["200"]["content"]["application/json"]["schema"];
        let name = answer["$ref"].as_str().unwrap().trim_start_matches("#/components/schemas/");
        let alternatives: Vec<&str> = doc["components"]["schemas"][name]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["$ref"].as_str())
            .collect();
        assert_eq!(
            alternatives,
            ["#/components/schemas/SendMessageResponse", "#/components/schemas/DryRunResponse"],
            "{answer}"
        );
        // The 3CX event types are the handler's.
        let types = &doc["components"]["schemas"]["ThreecxEventType"]["enum"];
        assert_eq!(types.as_array().unwrap().len(), gateway::threecx::handler::EventType::NAMES.len());
        for name in gateway::threecx::handler::EventType::NAMES {
            assert!(types.as_array().unwrap().contains(&json!(name)), "{name}");
        }
    }
}
