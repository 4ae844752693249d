//! The OpenAPI 3 document of the local API, generated from the handlers' annotations.

use super::query::QueryDoc;
use super::write_bar::WriteBarDoc;
use axum::Json;
use utoipa::OpenApi;

/// The API's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "posmesh device API",
        description = "Local sales API of a posmesh node. \
        Amounts are integer minor units of an ISO 4217 currency. Writes need an \
        Idempotency-Key header and are answered once durable. Reads are open to whoever         reaches the API (it listens on loopback by default), except the staff lists         (GET /v1/operators, GET /v1/shifts): a manager's X-Operator-Id / X-Operator-Pin         once the store has an operator."
    ),
    paths(
        super::sales::create_sale,
        super::sales::get_sale,
        super::sales::list_sales,
        super::sales::list_journal,
        super::sales::list_devices,
        super::sales::void_sale,
        super::sales::refund_sale,
        super::orders::create_order,
        super::orders::list_orders,
        super::orders::get_order,
        super::orders::add_line,
        super::orders::set_quantity,
        super::orders::remove_line,
        super::orders::update_order,
        super::orders::close_order,
        super::alerts::list_alerts,
        super::store_devices::remove_device,
        super::revocations::revoke_certificate,
        super::days::close_day,
        super::days::z,
        super::gift_cards::issue,
        super::gift_cards::redeem,
        super::gift_cards::balance,
        super::catalog::get_catalog,
        super::catalog::get_item,
        super::reports::day_totals,
        super::health::health,
        super::health::metrics,
        super::staff::set_operator,
        super::staff::list_operators,
        super::staff::disable_operator,
        super::staff::verify_pin,
        super::staff::open_shift,
        super::staff::close_shift,
        super::staff::list_shifts,
        super::staff::set_tax_rates,
        super::staff::list_tax_rates,
        super::card_sales::set_exposure_budget,
        super::card_sales::set_exposure_allotment,
        super::card_sales::queue,
        super::card_sales::create_qr,
        super::card_sales::confirm_qr,
        super::pin_unlock::unlock,
    ),
    tags(
        (name = "Sales", description = "Sales, voids, refunds and the journal of any device of the store."),
        (name = "Orders", description = "Shared orders (open tabs), edited on any device and merged."),
        (name = "Alerts", description = "Manager alerts: conflicts found when the tills' ledgers merge."),
        (name = "Payments", description = "Card and QR payments: the offline card budget, its allotments and the store-and-forward queue."),
        (name = "Gift cards", description = "Gift cards, issued and redeemed through the store's Raft group."),
        (name = "Staff", description = "Operators, PINs, shifts and tax rates."),
        (name = "Store", description = "The store's membership: removing a device, revoking a certificate."),
        (name = "Reports", description = "Day close, Z-reports and takings per business date."),
        (name = "Catalog", description = "The catalog in force."),
        (name = "Health", description = "Liveness and Prometheus metrics."),
    ),
    modifiers(&WriteBarDoc, &QueryDoc)
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::ApiDoc;
    use utoipa::OpenApi;

    /// The API says which reads need an operator.
    #[test]
    fn the_description_says_which_reads_need_an_operator() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let said = document["info"]["description"].as_str().unwrap_or_default();
        assert!(said.contains("GET /v1/shifts"), "{said}");
    }

    /// `SetOperatorBody.operator_id` documents the rule the API applies
    /// ([`super::super::staff::check_operator_id`]: the mesh's id rule), not the looser
    /// rule of names.
    #[test]
    fn the_operator_id_documents_the_id_rule() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let field =
            &document["components"]["schemas"]["SetOperatorBody"]["properties"]["operator_id"];
        assert_eq!(field["minLength"], 1, "{field}");
        assert_eq!(
            field["maxLength"],
            posmesh_mesh::identity::ID_BYTES_MAX,
            "{field}"
        );
        assert_eq!(field["pattern"], "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$");
        let said = field["description"].as_str().unwrap_or_default();
        assert!(
            said.contains(&format!("1–{} bytes", posmesh_mesh::identity::ID_BYTES_MAX))
                && said.contains("a-z")
                && said.contains("invalid_operator_id")
                && !said.contains("128"),
            "{said}"
        );
        // The pattern's examples agree with the check.
        for (id, ok) in [
            ("csh-1", true),
            ("-csh", false),
            ("Csh", false),
            ("csh_1", false),
        ] {
            assert_eq!(
                super::super::staff::check_operator_id(id).is_ok(),
                ok,
                "{id}"
            );
        }
    }

    /// The tags operations are grouped under (`tags(...)` of [`ApiDoc`]).
    const TAGS: &[&str] = &[
        "Sales",
        "Orders",
        "Alerts",
        "Payments",
        "Gift cards",
        "Staff",
        "Store",
        "Reports",
        "Catalog",
        "Health",
    ];

    /// Every operation has exactly one of the declared human tags — none falls back to the
    /// handler's Rust module path (`super::sales`), which is what utoipa gives an
    /// operation without a `tag` — and every declared tag is used and described.
    /// Every operation documents the query checks' 400 (`unknown_query_parameter`,
    /// `invalid_query`) with the error body: every route refuses a parameter it does not
    /// take ([`super::super::query`]).
    #[test]
    fn every_operation_documents_the_query_checks() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("json");
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let bad = &operation["responses"]["400"];
                let said = bad["description"].as_str().unwrap_or_default();
                assert!(
                    said.contains("unknown_query_parameter") && said.contains("invalid_query"),
                    "{method} {path} 400: {said}"
                );
                assert!(
                    bad["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .is_some_and(|r| r.ends_with("/ErrorBody")),
                    "{method} {path} 400: {bad}"
                );
            }
        }
    }

    /// A journal sequence number starts at 1 and a page holds at least one entry: every
    /// `seq` (path parameter, request or answer field) and `limit` documents `minimum: 1`,
    /// as the API refuses 0 (`invalid_sale_id`, `invalid_query`); `after_seq` takes 0 (from
    /// the start).
    #[test]
    fn documented_minimums_are_the_rules() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let name = parameter["name"].as_str().unwrap_or_default();
                    let minimum = &parameter["schema"]["minimum"];
                    let wanted = match name {
                        "seq" | "limit" => 1,
                        "after_seq" => 0,
                        _ => continue,
                    };
                    assert_eq!(minimum, wanted, "{method} {path} {name}");
                    *seen.entry(name.to_owned()).or_insert(0) += 1;
                }
            }
        }
        assert_eq!(seen.get("seq"), Some(&3), "{seen:?}");
        assert_eq!(seen.get("limit"), Some(&2), "{seen:?}");
        let schemas = &document["components"]["schemas"];
        for schema in ["EntryView", "QueuedPayment"] {
            assert_eq!(
                schemas[schema]["properties"]["seq"]["minimum"], 1,
                "{schema}"
            );
        }
    }

    #[test]
    fn every_operation_has_one_human_tag() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let declared: Vec<&str> = document["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|tag| {
                assert!(tag["description"].is_string(), "{tag}");
                tag["name"].as_str().expect("name")
            })
            .collect();
        assert_eq!(declared, TAGS);
        let mut used = std::collections::BTreeSet::new();
        let mut operations = 0;
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let tags: Vec<&str> = operation["tags"]
                    .as_array()
                    .map(|tags| tags.iter().filter_map(|t| t.as_str()).collect())
                    .unwrap_or_default();
                assert!(
                    tags.len() == 1 && TAGS.contains(&tags[0]) && !tags[0].contains("::"),
                    "{method} {path}: tags {tags:?}"
                );
                used.insert(tags[0]);
                operations += 1;
            }
        }
        assert!(operations >= 40, "{operations} operations");
        assert_eq!(
            used.len(),
            TAGS.len(),
            "every declared tag is used: {used:?}"
        );
    }

    /// The operations guarded by an authorising operator ([`super::super::operator_auth`]):
    /// (method, path, the statuses it answers beyond the operator check's: 409 for a
    /// committed or pre-checked refusal, 422 for a body or id the node refuses, 404 for
    /// an unknown target).
    const GUARDED: &[(&str, &str, &[&str])] = &[
        ("post", "/v1/operators", &["409", "422"]),
        ("get", "/v1/operators", &[]),
        ("post", "/v1/operators/{id}/disable", &["404", "409", "422"]),
        ("post", "/v1/shifts", &["404", "409", "422"]),
        ("get", "/v1/shifts", &[]),
        ("post", "/v1/shifts/{id}/close", &["404", "409", "422"]),
        ("post", "/v1/tax-rates", &["409", "422"]),
        ("post", "/v1/days/{date}/close", &["409", "422"]),
        ("post", "/v1/gift-cards", &["409", "422"]),
        ("post", "/v1/store/devices/{device}/remove", &["404", "409"]),
        (
            "post",
            "/v1/store/certificates/{serial}/revoke",
            &["409", "422"],
        ),
        ("put", "/v1/payments/exposure-budget", &["409", "422"]),
        (
            "put",
            "/v1/payments/exposure-allotments/{device}",
            &["409", "422"],
        ),
    ];

    /// Every guarded operation documents the operator headers and every status its
    /// handler can answer through the shared checks: 400 `invalid_header`, 401
    /// `operator_required` / `pin_mismatch`, 403 `role_forbidden`, 429 `pin_locked`, 503
    /// without consensus or quorum — and those it answers beyond them.
    #[test]
    fn guarded_operations_document_every_answer_of_the_operator_check() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("json");
        for (method, path, beyond) in GUARDED {
            let operation = &document["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} is documented");
            for header in ["X-Operator-Id", "X-Operator-Pin"] {
                assert!(
                    operation["parameters"].as_array().is_some_and(|p| p
                        .iter()
                        .any(|p| p["name"] == header && p["in"] == "header")),
                    "{method} {path} documents {header}"
                );
            }
            let shared = ["400", "401", "403", "429", "503"];
            for status in shared.iter().chain(beyond.iter()) {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} documents {status}: {}",
                    operation["responses"]
                );
            }
            let barred = operation["responses"]["403"]["description"]
                .as_str()
                .unwrap_or_default();
            let codes: &[&str] = if *method == "get" {
                &["role_forbidden"]
            } else {
                &["role_forbidden", "device_retired", "certificate_revoked"]
            };
            for code in codes {
                assert!(barred.contains(code), "{method} {path} 403: {barred}");
            }
            let locked = operation["responses"]["429"]["description"]
                .as_str()
                .unwrap_or_default();
            assert!(locked.contains("pin_locked"), "{method} {path}: {locked}");
        }
    }

    /// The guarded writes that take an `Idempotency-Key` optionally document the header,
    /// the replay's 200 and the 409 of a key used for another request.
    #[test]
    fn optional_key_writes_document_the_key_and_its_replay() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("json");
        for (method, path) in [
            ("post", "/v1/operators"),
            ("post", "/v1/operators/{id}/disable"),
            ("put", "/v1/payments/exposure-budget"),
            ("put", "/v1/payments/exposure-allotments/{device}"),
            ("post", "/v1/store/certificates/{serial}/revoke"),
            ("post", "/v1/store/devices/{device}/remove"),
        ] {
            let operation = &document["paths"][path][method];
            assert!(
                operation["parameters"].as_array().is_some_and(|p| p
                    .iter()
                    .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")),
                "{method} {path} documents Idempotency-Key"
            );
            let described = |status: &str| {
                operation["responses"][status]["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            assert!(
                described("200").contains("Idempotent-Replayed"),
                "{method} {path} 200: {}",
                described("200")
            );
            assert!(
                described("409").contains("idempotency_key_reused"),
                "{method} {path} 409: {}",
                described("409")
            );
        }
    }

    /// Every write (every method but GET and HEAD) documents the write bar's answers
    /// ([`super::super::write_bar`]): 403 `device_retired` / `certificate_revoked` and 409
    /// `device_identity_conflict`, each with the error body; reads do not.
    #[test]
    fn every_write_documents_the_write_bar() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let paths = document["paths"].as_object().expect("paths");
        let mut writes = 0;
        for (path, item) in paths {
            for (method, operation) in item.as_object().expect("path item") {
                let barred = |status: &str| {
                    operation["responses"][status]["description"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                };
                if matches!(method.as_str(), "get" | "head") {
                    assert!(!barred("403").contains("device_retired"), "{method} {path}");
                    continue;
                }
                if !matches!(method.as_str(), "post" | "put" | "patch" | "delete") {
                    continue;
                }
                writes += 1;
                for code in ["device_retired", "certificate_revoked"] {
                    assert!(
                        barred("403").contains(code),
                        "{method} {path} 403 names {code}"
                    );
                }
                assert!(
                    barred("409").contains("device_identity_conflict"),
                    "{method} {path}"
                );
                assert_eq!(
                    operation["responses"]["403"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}"
                );
            }
        }
        assert!(writes >= 20, "{writes} writes");
    }
}
