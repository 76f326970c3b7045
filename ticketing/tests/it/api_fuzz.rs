//! Schema-driven requests to every operation the OpenAPI document lists, as schemathesis
//! makes them (`scripts/fuzz api` runs schemathesis itself, for longer): bodies made from
//! each operation's request schema, mostly well-formed and then bent (wrong types, missing
//! and unknown fields, huge numbers and strings), path parameters of every shape, query
//! strings of the keys the routes read, every role's token. No answer may be a 5xx, and
//! every answer must be one the document describes (checked by `Harness::call`).

use reqwest::Method;
use serde_json::{Map, Value, json};
use vigil_fuzzing::mutate::Rng;
use vigil_ticketing::Role;
use vigil_ticketing::http::openapi_document;

use super::http::start;
use super::prelude::stores;

/// One of `all`, drawn by the seeded generator (the same requests on every run).
fn pick<'a, T>(rng: &mut Rng, all: &'a [T]) -> &'a T {
    &all[rng.below(all.len())]
}

fn strings(rng: &mut Rng) -> Value {
    let long = "A".repeat(1 << (8 + rng.below(10)));
    let all = [
        "98A-123.45",
        "99B1-123.45",
        "98A-l23.4S",
        "officer",
        "a strong enough password",
        "",
        " ",
        "../../etc/passwd",
        "/etc/shadow",
        "%2e%2e%2f",
        "\u{0000}",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "Đường Lê Lợi",
        "2025-03-01T08:00:00Z",
        "9999-12-31T23:59:59Z",
        "red_light",
        "confirmed",
        long.as_str(),
    ];
    json!(pick(rng, &all))
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/components/schemas/")
            .map(|name| &doc["components"]["schemas"][name])
            .unwrap_or(&Value::Null),
        None => schema,
    }
}

/// A value for `schema`: usually of its type and shape, sometimes anything at all.
fn generate(doc: &Value, schema: &Value, rng: &mut Rng, depth: usize) -> Value {
    let schema = resolve(doc, schema);
    if depth > 6 || rng.below(12) == 0 {
        return wrong(rng);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array().filter(|o| !o.is_empty()) {
            return generate(doc, pick(rng, options), rng, depth + 1);
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        let mut merged = Map::new();
        for part in all {
            if let Value::Object(o) = generate(doc, part, rng, depth + 1) {
                merged.extend(o);
            }
        }
        return Value::Object(merged);
    }
    if let Some(values) = schema["enum"].as_array().filter(|v| !v.is_empty()) {
        return pick(rng, values).clone();
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) if !ts.is_empty() => pick(rng, ts).as_str().unwrap_or("null").to_string(),
        _ if schema["properties"].is_object() => "object".into(),
        _ => return wrong(rng),
    };
    match kind.as_str() {
        "object" => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (name, prop) in props {
                    let keep = required.contains(&name.as_str()) && rng.below(10) != 0
                        || rng.below(2) == 0;
                    if keep {
                        out.insert(name.clone(), generate(doc, prop, rng, depth + 1));
                    }
                }
            }
            if rng.below(8) == 0 {
                out.insert("unexpected_field".into(), wrong(rng));
            }
            Value::Object(out)
        }
        "array" => {
            let n = rng.below(4);
            Value::Array(
                (0..n)
                    .map(|_| generate(doc, &schema["items"], rng, depth + 1))
                    .collect(),
            )
        }
        "integer" => json!(pick(
            rng,
            &[0i64, 1, 2, 3, -1, 42, 100_000, i64::MAX, i64::MIN]
        )),
        "number" => json!(pick(
            rng,
            &[0.0f64, 0.5, 1.0, 2.0, -1.0, 1e308, -1e308, 1e-300]
        )),
        "boolean" => json!(rng.below(2) == 0),
        "string" => match schema["format"].as_str() {
            Some("date-time") => json!(pick(
                rng,
                &[
                    "2025-03-01T08:00:00Z",
                    "2025-03-01T08:00:00+07:00",
                    "1900-01-01T00:00:00Z",
                    "9999-12-31T23:59:59Z",
                    "2025-02-30T00:00:00Z",
                    "yesterday",
                ]
            )),
            _ => strings(rng),
        },
        _ => Value::Null,
    }
}

/// A value of no particular type: what a hostile client sends where anything else belongs.
fn wrong(rng: &mut Rng) -> Value {
    match rng.below(7) {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(1e308),
        3 => json!([]),
        4 => json!({}),
        5 => json!(true),
        _ => strings(rng),
    }
}

/// A value for a path parameter of `schema`'s type, percent-encoded where it needs to be.
fn path_value(schema: &Value, known: &[String], rng: &mut Rng) -> String {
    let numbers = [
        "1",
        "2",
        "0",
        "-1",
        "9223372036854775807",
        "99999999999999999999",
        "1e3",
        "x",
    ];
    let names = [
        "..",
        "%2e%2e",
        "..%2f..%2fetc%2fpasswd",
        "manifest.json",
        "signature.json",
        "clip.mp4",
        "frame.jpg",
        "%00",
        "%20",
        "admin",
        "officer",
        "bn-demo-01",
        "cam-1",
    ];
    if schema["type"] == "integer" {
        return pick(rng, &numbers).to_string();
    }
    match rng.below(4) {
        0 if !known.is_empty() => pick(rng, known).clone(),
        1 => "A".repeat(1 << (6 + rng.below(8))),
        _ => pick(rng, &names).to_string(),
    }
}

/// A query string of the parameters the operation documents (and now and then one it
/// does not), each a value of its type, a wrong one or a very long one.
fn query(doc: &Value, op: &Value, rng: &mut Rng) -> String {
    let documented: Vec<&Value> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .collect();
    let mut pairs = Vec::new();
    for p in documented {
        if p["required"] != true && rng.below(2) == 0 {
            continue;
        }
        let mut value = match generate(doc, &p["schema"], rng, 0) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        // Past 8 KiB a URL is refused by the client before it is sent (servers refuse
        // longer request lines anyway).
        value.truncate(8 << 10);
        let encoded: String = value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        pairs.push(format!("{}={encoded}", p["name"].as_str().unwrap_or("x")));
    }
    if rng.below(8) == 0 {
        pairs.push("unknown=1".into());
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// Operations that end a caller's access; fuzzed last, so the others meet live tokens.
fn ends_access(path: &str, method: &str) -> bool {
    method == "delete"
        || ["revoke", "disable", "logout", "password"]
            .iter()
            .any(|w| path.contains(w))
}

#[tokio::test]
async fn schema_driven_requests_to_every_operation_get_no_5xx_and_only_documented_answers() {
    let (backend, store, _dir) = stores::sqlite().await;
    let h = start(backend, store).await;
    let mut known = Vec::new();
    for n in 1..=3 {
        let e = h.event(n);
        let (status, _) = h.send_event(&e).await;
        assert!(status.is_success(), "{status}");
        known.push(e.event_id.to_string());
    }
    let doc = openapi_document();
    let mut operations: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("an operation") {
            operations.push((path.clone(), method.clone(), op.clone()));
        }
    }
    operations.sort_by_key(|(path, method, _)| ends_access(path, method));
    assert!(operations.len() > 30, "{} operations", operations.len());

    let mut rng = Rng::new(0x5eed);
    let mut sent = 0;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for (path, method, op) in &operations {
        for _ in 0..24 {
            let mut concrete = path.clone();
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let name = p["name"].as_str().expect("a parameter name");
                    let value = path_value(&p["schema"], &known, &mut rng);
                    concrete = concrete.replace(&format!("{{{name}}}"), &value);
                }
            }
            concrete.push_str(&query(&doc, op, &mut rng));
            let body = op["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|_| {
                    generate(
                        &doc,
                        &op["requestBody"]["content"]["application/json"]["schema"],
                        &mut rng,
                        0,
                    )
                });
            let role = match rng.below(6) {
                0 => None,
                _ => Some(*pick(&mut rng, &Role::ALL)),
            };
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let (status, answer) = h.call(role, m, &concrete, body).await;
            assert!(
                status.as_u16() < 500,
                "{method} {concrete} as {role:?} answered {status}: {answer}"
            );
            *by_status.entry(status.as_u16()).or_default() += 1;
            sent += 1;
        }
    }
    // The requests reached past authentication and validation, not only their refusals.
    assert!(
        by_status.get(&200).copied().unwrap_or(0) > 50,
        "{by_status:?}"
    );
    assert!(
        by_status.get(&400).copied().unwrap_or(0) > 50,
        "{by_status:?}"
    );
    assert!(sent >= 24 * operations.len());
}

/// Sighting bodies whose every text field is drawn from the server's own files (the
/// signing key, the database, the evidence folder, files outside it, spelled every way a
/// path can be): whatever is posted and however it is asked for, no file is served
/// through a sighting, since a client's sighting never names one.
#[tokio::test]
async fn no_sighting_body_makes_the_service_open_a_path() {
    let (backend, store, _dir) = stores::sqlite().await;
    let h = start(backend, store).await;
    std::fs::create_dir_all(h.data.evidence()).unwrap();
    std::fs::write(h.data.database(), b"SQLite format 3\0").unwrap();
    let root = h.data.root().display().to_string();
    let paths = [
        format!("{root}/keys/evidence-signing.key"),
        format!("{root}/vigil.db"),
        format!("{root}/vigil.db-wal"),
        format!("{root}/evidence"),
        format!("{root}/evidence/../keys/evidence-signing.key"),
        format!("{root}//keys///evidence-signing.key"),
        format!("file://{root}/vigil.db"),
        "/etc/passwd".into(),
        "/proc/self/environ".into(),
        "../../../../etc/passwd".into(),
        "keys/evidence-signing.key".into(),
        "vigil.db".into(),
        "rtsp://cam/stream".into(),
        "".into(),
    ];
    let mut rng = Rng::new(0x516e);
    let mut posted = 0;
    for n in 0..200u128 {
        let pick_path = |rng: &mut Rng| json!(pick(rng, &paths));
        let mut sighting = json!({
            "sighting_id": uuid::Uuid::from_u128(0xF00D_0000 + n),
            "camera_id": "cam-1",
            "plate": "98A-123.45",
            "confidence": 0.9,
            "vehicle_class": "car",
            "plate_colour": null,
            "seen_at": "2025-03-01T08:00:00Z",
            "source": pick_path(&mut rng),
            "thumbnail": pick_path(&mut rng),
            "video_offset_ms": if rng.chance(4) { Value::Null } else { json!(rng.below(100_000)) },
        });
        if rng.chance(3) {
            sighting["camera_id"] = pick_path(&mut rng);
        }
        let body = json!({"sighting": sighting});
        let (status, answer) = h
            .call(
                Some(Role::Operator),
                Method::POST,
                "/api/sightings",
                Some(body),
            )
            .await;
        assert!(!status.is_server_error(), "{status}: {answer}");
        posted += usize::from(status.is_success());
    }
    assert!(posted >= 100, "only {posted} of 200 sightings taken");
    let (_, found) = h
        .call(
            Some(Role::Investigator),
            Method::GET,
            "/api/sightings?plate=98A-123.45&limit=500",
            None,
        )
        .await;
    let ids: Vec<i64> = found
        .as_array()
        .expect("a list")
        .iter()
        .map(|f| f["id"].as_i64().expect("an id"))
        .collect();
    assert!(!ids.is_empty());
    h.serves_no_file(&ids).await;
}
