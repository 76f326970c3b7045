//! Every answer the HTTP tests receive is checked against the server's own OpenAPI
//! document: the route and status must be documented, the content type must be the one
//! declared, and a JSON body must match its schema. A document that drifts from the API
//! fails whichever test first meets the difference.

use std::sync::OnceLock;

use serde_json::Value;
use vigil_ticketing::http::openapi_document;

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(openapi_document)
}

/// The documented path template `path` (without its query) falls under: the one with
/// the most literal segments, as the router picks it.
fn template<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let path = path.split('?').next().unwrap_or(path);
    let wanted: Vec<&str> = path.split('/').collect();
    let mut best: Option<(&str, usize)> = None;
    for tpl in doc["paths"].as_object()?.keys() {
        let parts: Vec<&str> = tpl.split('/').collect();
        if parts.len() != wanted.len() {
            continue;
        }
        let mut literal = 0;
        let fits = parts.iter().zip(&wanted).all(|(t, w)| {
            if t.starts_with('{') && t.ends_with('}') {
                !w.is_empty()
            } else {
                literal += 1;
                t == w
            }
        });
        if fits && best.is_none_or(|(_, n)| literal > n) {
            best = Some((tpl, literal));
        }
    }
    best.map(|(t, _)| t)
}

/// Check one answer. `body` is the parsed JSON, or the text as a JSON string.
pub fn check(method: &str, path: &str, status: u16, content_type: &str, body: &Value) {
    if let Err(e) = conforms(method, path, status, content_type, body) {
        panic!(
            "{method} {path} answered {status} ({content_type}) off the OpenAPI document: {e}\nbody: {}",
            body.to_string().chars().take(600).collect::<String>()
        );
    }
}

pub fn conforms(
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Result<(), String> {
    let doc = document();
    // Pages and their assets are not the API; the document does not describe them.
    let Some(tpl) = template(doc, path) else {
        if path.starts_with("/api/") {
            return Err("no documented path".into());
        }
        return Ok(());
    };
    let op = &doc["paths"][tpl][method.to_lowercase()];
    if op.is_null() {
        // The router answers 405 for a documented path with another method.
        return if status == 405 {
            Ok(())
        } else {
            Err(format!("{method} is not documented for {tpl}"))
        };
    }
    let response = &op["responses"][status.to_string()];
    if response.is_null() {
        return Err(format!(
            "status {status} is not documented for {method} {tpl}"
        ));
    }
    let kind = content_type.split(';').next().unwrap_or("").trim();
    let Some(content) = response["content"].as_object() else {
        let empty = body.is_null() || body.as_str().is_some_and(str::is_empty);
        return if empty || kind.is_empty() || !kind.contains("json") {
            Ok(())
        } else {
            Err(format!("a {kind} body where none is documented"))
        };
    };
    let Some(media) = content.get(kind) else {
        return Err(format!(
            "content type {kind:?}; documented: {:?}",
            content.keys().collect::<Vec<_>>()
        ));
    };
    let Some(schema) = media.get("schema") else {
        return Ok(());
    };
    match kind {
        "application/json" => validate(doc, schema, body, "$"),
        "application/x-ndjson" => {
            let text = body
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string());
            for (n, line) in text.lines().enumerate() {
                let item: Value = serde_json::from_str(line)
                    .map_err(|e| format!("line {}: not JSON: {e}", n + 1))?;
                validate(doc, schema, &item, &format!("line {}", n + 1))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> Result<&'a Value, String> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .ok_or_else(|| format!("unresolvable $ref {r}"))?;
            let found = &doc["components"]["schemas"][name];
            if found.is_null() {
                return Err(format!("$ref to undefined schema {name}"));
            }
            resolve(doc, found)
        }
        None => Ok(schema),
    }
}

fn type_fits(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

/// An `allOf` (what `#[serde(flatten)]` makes) as one object schema: the fields of all
/// its parts, each part's required ones required.
fn merged(doc: &Value, s: &Value) -> Result<Value, String> {
    let Some(all) = s.get("allOf").and_then(Value::as_array) else {
        return Ok(s.clone());
    };
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for part in all {
        let part = merged(doc, resolve(doc, part)?)?;
        if let Some(p) = part.get("properties").and_then(Value::as_object) {
            properties.extend(p.clone());
        }
        if let Some(r) = part.get("required").and_then(Value::as_array) {
            required.extend(r.iter().cloned());
        }
    }
    Ok(serde_json::json!({"type": "object", "properties": properties, "required": required}))
}

pub fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let s = &merged(doc, resolve(doc, schema)?)?;
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = s.get(key).and_then(Value::as_array) {
            let fits: Vec<bool> = options
                .iter()
                .map(|o| validate(doc, o, v, at).is_ok())
                .collect();
            let n = fits.iter().filter(|f| **f).count();
            if n == 0 || (key == "oneOf" && n > 1) {
                return Err(format!("{at}: {n} of the {key} alternatives fit {v}"));
            }
        }
    }
    if v.is_null() && s.get("nullable").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_fits(t, v) => {
            return Err(format!("{at}: {v} is not {t}"));
        }
        Some(Value::Array(ts)) if !ts.iter().filter_map(Value::as_str).any(|t| type_fits(t, v)) => {
            return Err(format!("{at}: {v} is none of {ts:?}"));
        }
        _ => {}
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !v.is_null()
        && !options.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {options:?}"));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64())
        && n < min
    {
        return Err(format!("{at}: {n} is below the minimum {min}"));
    }
    if s.get("format").and_then(Value::as_str) == Some("date-time")
        && let Some(text) = v.as_str()
        && chrono::DateTime::parse_from_rfc3339(text).is_err()
    {
        return Err(format!("{at}: {text:?} is not an RFC 3339 time"));
    }
    if let Some(obj) = v.as_object() {
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(name) {
                    return Err(format!("{at}: lacks the required field {name}"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (name, value) in obj {
            match props.and_then(|p| p.get(name)) {
                Some(p) => validate(doc, p, value, &format!("{at}.{name}"))?,
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        return Err(format!("{at}: undocumented field {name}"));
                    }
                    Some(extra @ Value::Object(_)) => {
                        validate(doc, extra, value, &format!("{at}.{name}"))?
                    }
                    // A declared object's fields are all its fields: one the document
                    // does not name is drift.
                    _ if props.is_some() => {
                        return Err(format!("{at}: undocumented field {name}"));
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(list)) = (s.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            validate(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[test]
fn the_validator_finds_what_the_document_does_not_say() {
    let doc = serde_json::json!({"components": {"schemas": {
        "Thing": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "integer", "format": "int64"},
            "name": {"type": ["string", "null"]},
            "at": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}}
        }}
    }}});
    let thing = serde_json::json!({"$ref": "#/components/schemas/Thing"});
    let ok = |v: Value| validate(&doc, &thing, &v, "$");
    ok(serde_json::json!({"id": 1, "name": null, "tags": ["a"], "at": "2026-12-01T00:00:00Z"}))
        .unwrap();
    assert!(
        ok(serde_json::json!({"id": "1"}))
            .unwrap_err()
            .contains("is not integer")
    );
    assert!(
        ok(serde_json::json!({"name": "x"}))
            .unwrap_err()
            .contains("required field id")
    );
    assert!(
        ok(serde_json::json!({"id": 1, "extra": 2}))
            .unwrap_err()
            .contains("undocumented field extra")
    );
    assert!(
        ok(serde_json::json!({"id": 1, "tags": [3]}))
            .unwrap_err()
            .contains("tags[0]")
    );
    assert!(ok(serde_json::json!({"id": 1, "at": "yesterday"})).is_err());
    assert!(
        ok(serde_json::json!([{"id": 1}]))
            .unwrap_err()
            .contains("is not object")
    );
}
