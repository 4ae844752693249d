//! Guarantee 9: every bad input gets a precise 4xx JSON error (code, message, field) and
//! changes nothing. A table of refused requests against the real binary; before and after
//! it, the journal head is compared.

use super::support;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    key: Option<String>,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(
    name: &'static str,
    body: Value,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    raw(name, body.to_string().into_bytes(), status, code, field)
}

fn raw(
    name: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        method: Method::POST,
        path: "/v1/sales".into(),
        key: Some(format!("bad-{name}")),
        content_type: "application/json",
        body,
        status,
        code,
        field,
    }
}

fn on(mut c: Case, path: &str) -> Case {
    c.path = path.into();
    c
}

/// The valid sale with one JSON pointer replaced.
fn with(pointer: &str, value: Value) -> Value {
    let mut sale = support::valid_sale();
    let (parent, last) = pointer.rsplit_once('/').expect("a JSON pointer");
    let parent = sale
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("{parent} exists"));
    match parent {
        Value::Array(items) => items[last.parse::<usize>().expect("index")] = value,
        other => other[last] = value,
    }
    sale
}

fn without(field: &str) -> Value {
    let mut sale = support::valid_sale();
    sale.as_object_mut().expect("object").remove(field);
    sale
}

fn cases() -> Vec<Case> {
    let mut extra_top = support::valid_sale();
    extra_top["foo"] = json!(1);
    let mut extra_line = support::valid_sale();
    extra_line["lines"][0]["colour"] = json!("red");
    let many_lines: Vec<Value> = (0..501)
        .map(|_| json!({"sku": "BREAD", "quantity": 1}))
        .collect();
    let mut oversized = support::valid_sale();
    oversized["operator_id"] = json!("x".repeat(300 * 1024));
    let refund = |lines: Value| json!({"lines": lines});
    vec![
        raw(
            "truncated_json",
            br#"{"currency": "GBP","#.to_vec(),
            400,
            "malformed_json",
            None,
        ),
        raw("not_json", b"hello".to_vec(), 400, "malformed_json", None),
        raw("empty_body", Vec::new(), 400, "empty_body", None),
        raw(
            "trailing_garbage",
            [support::valid_sale().to_string().as_bytes(), b" x"].concat(),
            400,
            "malformed_json",
            None,
        ),
        case("array_not_object", json!([]), 400, "invalid_field", None),
        case(
            "missing_lines",
            without("lines"),
            400,
            "invalid_field",
            Some("lines"),
        ),
        case(
            "missing_tenders",
            without("tenders"),
            400,
            "invalid_field",
            Some("tenders"),
        ),
        case(
            "missing_currency",
            without("currency"),
            400,
            "invalid_field",
            Some("currency"),
        ),
        case(
            "null_lines",
            with("/lines", Value::Null),
            400,
            "invalid_field",
            Some("lines"),
        ),
        case(
            "extra_top_field",
            extra_top,
            400,
            "invalid_field",
            Some("foo"),
        ),
        case(
            "extra_line_field",
            extra_line,
            400,
            "invalid_field",
            Some("lines[0].colour"),
        ),
        case(
            "quantity_zero",
            with("/lines/0/quantity", json!(0)),
            422,
            "quantity_out_of_range",
            Some("lines[0].quantity"),
        ),
        case(
            "quantity_negative",
            with("/lines/0/quantity", json!(-3)),
            422,
            "quantity_out_of_range",
            Some("lines[0].quantity"),
        ),
        case(
            "quantity_too_large",
            with("/lines/1/quantity", json!(100_001)),
            422,
            "quantity_out_of_range",
            Some("lines[1].quantity"),
        ),
        case(
            "quantity_string",
            with("/lines/0/quantity", json!("2")),
            400,
            "invalid_field",
            Some("lines[0].quantity"),
        ),
        case(
            "quantity_fraction",
            with("/lines/0/quantity", json!(1.5)),
            400,
            "invalid_field",
            Some("lines[0].quantity"),
        ),
        raw(
            "quantity_beyond_i64",
            support::valid_sale()
                .to_string()
                .replace("\"quantity\":2", "\"quantity\":9223372036854775808")
                .into_bytes(),
            400,
            "invalid_field",
            Some("lines[0].quantity"),
        ),
        case(
            "quantity_times_price_overflows",
            with("/lines/0/unit_price_override_minor", json!(i64::MAX)),
            422,
            "amount_overflow",
            Some("lines[0].unit_price_override_minor"),
        ),
        case(
            "negative_override_price",
            with("/lines/0/unit_price_override_minor", json!(-1)),
            422,
            "negative_amount",
            Some("lines[0].unit_price_override_minor"),
        ),
        case(
            "unknown_sku",
            with("/lines/1/sku", json!("CAVIAR")),
            422,
            "unknown_sku",
            Some("lines[1].sku"),
        ),
        case(
            "wrong_currency",
            with("/currency", json!("EUR")),
            422,
            "currency_mismatch",
            Some("currency"),
        ),
        case(
            "unknown_currency",
            with("/currency", json!("XYZ")),
            422,
            "unknown_currency",
            Some("currency"),
        ),
        case(
            "no_lines",
            with("/lines", json!([])),
            422,
            "no_lines",
            Some("lines"),
        ),
        case(
            "too_many_lines",
            with("/lines", Value::Array(many_lines)),
            422,
            "too_many_lines",
            Some("lines"),
        ),
        case(
            "tenders_short",
            with("/tenders/0/amount_minor", json!(100)),
            422,
            "tenders_short",
            Some("tenders"),
        ),
        case(
            "no_tenders",
            with("/tenders", json!([])),
            422,
            "tenders_short",
            Some("tenders"),
        ),
        case(
            "card_overpayment",
            with("/tenders/0", json!({"kind": "card", "amount_minor": 5000})),
            422,
            "non_cash_overpayment",
            Some("tenders"),
        ),
        case(
            "tender_zero",
            with("/tenders/0/amount_minor", json!(0)),
            422,
            "invalid_tender_amount",
            Some("tenders[0].amount_minor"),
        ),
        case(
            "tender_negative",
            with("/tenders/0/amount_minor", json!(-850)),
            422,
            "invalid_tender_amount",
            Some("tenders[0].amount_minor"),
        ),
        case(
            "unknown_tender_kind",
            with("/tenders/0/kind", json!("cheque")),
            400,
            "invalid_field",
            Some("tenders[0].kind"),
        ),
        case(
            "discount_above_total",
            with("/tenders", json!([{"kind": "cash", "amount_minor": 1000}]))
                .tap_discount(json!({"amount_minor": 100_000})),
            422,
            "discount_exceeds_amount",
            Some("discount"),
        ),
        case(
            "percent_above_100",
            support::valid_sale().tap_discount(json!({"percent_bp": 10_001})),
            422,
            "percent_out_of_range",
            Some("discount"),
        ),
        case(
            "line_discount_above_line",
            with("/lines/0/quantity", json!(1)).tap_line_discount(json!({"amount_minor": 301})),
            422,
            "discount_exceeds_amount",
            Some("lines[0].discount"),
        ),
        case(
            "bad_timestamp",
            support::valid_sale().tap("occurred_at", json!("yesterday")),
            400,
            "invalid_timestamp",
            Some("occurred_at"),
        ),
        case(
            "future_timestamp",
            support::valid_sale().tap("occurred_at", json!("2999-01-01T00:00:00Z")),
            422,
            "occurred_at_in_future",
            Some("occurred_at"),
        ),
        case(
            "ancient_timestamp",
            support::valid_sale().tap("occurred_at", json!("1900-01-01T00:00:00Z")),
            422,
            "occurred_at_too_old",
            Some("occurred_at"),
        ),
        case(
            "absurd_cash_tender",
            with("/tenders/0/amount_minor", json!(i64::MAX)),
            422,
            "invalid_tender_amount",
            Some("tenders[0].amount_minor"),
        ),
        Case {
            method: Method::PUT,
            ..case(
                "wrong_method",
                support::valid_sale(),
                405,
                "method_not_allowed",
                None,
            )
        },
        Case {
            method: Method::GET,
            ..on(
                case(
                    "list_bad_business_date",
                    json!({}),
                    400,
                    "invalid_query",
                    Some("business_date"),
                ),
                "/v1/sales?business_date=yesterday",
            )
        },
        Case {
            method: Method::GET,
            ..on(
                case(
                    "list_bad_device",
                    json!({}),
                    400,
                    "invalid_query",
                    Some("device"),
                ),
                "/v1/sales?device=Till_1",
            )
        },
        // A sale's operator id has the shape of one set through `POST /v1/operators`.
        case(
            "operator_too_long",
            support::valid_sale().tap("operator_id", json!("o".repeat(64))),
            422,
            "invalid_operator_id",
            Some("operator_id"),
        ),
        case(
            "operator_with_space",
            support::valid_sale().tap("operator_id", json!("Bob Smith")),
            422,
            "invalid_operator_id",
            Some("operator_id"),
        ),
        case(
            "operator_empty",
            support::valid_sale().tap("operator_id", json!("")),
            422,
            "invalid_operator_id",
            Some("operator_id"),
        ),
        case(
            "card_sale_bad_operator",
            json!({
                "currency": "GBP",
                "lines": [{"sku": "BREAD", "quantity": 1}],
                "tenders": [{"kind": "card", "amount_minor": 300,
                             "card": {"pan": "4111111111111111", "expiry": "3012"}}],
                "operator_id": "CSH_1",
            }),
            422,
            "invalid_operator_id",
            Some("operator_id"),
        ),
        on(
            case(
                "order_close_bad_operator",
                json!({"currency": "GBP", "tenders": [{"kind": "cash", "amount_minor": 300}],
                       "operator_id": "csh/1"}),
                422,
                "invalid_operator_id",
                Some("operator_id"),
            ),
            "/v1/orders/no-such-order/close",
        ),
        raw(
            "non_utf8",
            b"{\"currency\": \"GB\xff\"}".to_vec(),
            400,
            "invalid_utf8",
            None,
        ),
        case("oversized_body", oversized, 413, "body_too_large", None),
        Case {
            key: None,
            ..case(
                "missing_idempotency_key",
                support::valid_sale(),
                400,
                "missing_idempotency_key",
                Some("Idempotency-Key"),
            )
        },
        Case {
            key: Some("k".repeat(129)),
            ..case(
                "long_idempotency_key",
                support::valid_sale(),
                400,
                "invalid_idempotency_key",
                Some("Idempotency-Key"),
            )
        },
        Case {
            key: Some("has space".into()),
            ..case(
                "idempotency_key_with_space",
                support::valid_sale(),
                400,
                "invalid_idempotency_key",
                Some("Idempotency-Key"),
            )
        },
        Case {
            content_type: "text/plain",
            ..case(
                "wrong_content_type",
                support::valid_sale(),
                415,
                "unsupported_media_type",
                Some("Content-Type"),
            )
        },
        Case {
            key: Some("base-sale".into()),
            ..case(
                "key_reused_other_body",
                with("/lines/0/quantity", json!(3)),
                409,
                "idempotency_key_reused",
                Some("Idempotency-Key"),
            )
        },
        on(
            case("void_unknown_sale", json!({}), 404, "sale_not_found", None),
            "/v1/sales/till-1/999/void",
        ),
        on(
            case(
                "void_unknown_device",
                json!({}),
                404,
                "sale_not_found",
                None,
            ),
            "/v1/sales/till-9/1/void",
        ),
        on(
            case("void_voided_sale", json!({}), 409, "sale_voided", None),
            "/v1/sales/till-1/2/void",
        ),
        on(
            case("void_a_void", json!({}), 422, "not_a_sale", None),
            "/v1/sales/till-1/3/void",
        ),
        on(
            case(
                "void_refunded_sale",
                json!({}),
                409,
                "sale_has_refunds",
                None,
            ),
            "/v1/sales/till-1/1/void",
        ),
        on(
            case(
                "void_unknown_field",
                json!({"why": "x"}),
                400,
                "invalid_field",
                Some("why"),
            ),
            "/v1/sales/till-1/1/void",
        ),
        on(
            case(
                "refund_above_original",
                refund(json!([{"line_index": 0, "quantity": 2}])),
                422,
                "refund_exceeds_original",
                Some("lines[0].quantity"),
            ),
            "/v1/sales/till-1/1/refunds",
        ),
        on(
            case(
                "refund_line_out_of_range",
                refund(json!([{"line_index": 7, "quantity": 1}])),
                422,
                "line_index_out_of_range",
                Some("lines[0].line_index"),
            ),
            "/v1/sales/till-1/1/refunds",
        ),
        on(
            case(
                "refund_zero_quantity",
                refund(json!([{"line_index": 1, "quantity": 0}])),
                422,
                "quantity_out_of_range",
                Some("lines[0].quantity"),
            ),
            "/v1/sales/till-1/1/refunds",
        ),
        on(
            case(
                "refund_duplicate_line",
                refund(json!([{"line_index": 1, "quantity": 1}, {"line_index": 1, "quantity": 1}])),
                422,
                "duplicate_refund_line",
                Some("lines[1].line_index"),
            ),
            "/v1/sales/till-1/1/refunds",
        ),
        on(
            case(
                "refund_voided_sale",
                refund(json!([{"line_index": 0, "quantity": 1}])),
                409,
                "sale_voided",
                None,
            ),
            "/v1/sales/till-1/2/refunds",
        ),
        on(
            case(
                "refund_of_unknown_sale",
                refund(json!([{"line_index": 0, "quantity": 1}])),
                404,
                "sale_not_found",
                None,
            ),
            "/v1/sales/till-1/77/refunds",
        ),
        on(
            case(
                "refund_bad_seq",
                refund(json!([{"line_index": 0, "quantity": 1}])),
                400,
                "invalid_sale_id",
                Some("seq"),
            ),
            "/v1/sales/till-1/abc/refunds",
        ),
        on(
            case(
                "refund_seq_zero",
                refund(json!([{"line_index": 0, "quantity": 1}])),
                400,
                "invalid_sale_id",
                Some("seq"),
            ),
            "/v1/sales/till-1/0/refunds",
        ),
        on(
            case(
                "refund_bad_device",
                refund(json!([{"line_index": 0, "quantity": 1}])),
                400,
                "invalid_sale_id",
                Some("device"),
            ),
            "/v1/sales/till%201/1/refunds",
        ),
        Case {
            method: Method::GET,
            ..on(
                case(
                    "list_limit_zero",
                    json!({}),
                    400,
                    "invalid_query",
                    Some("limit"),
                ),
                "/v1/sales?limit=0",
            )
        },
        Case {
            method: Method::GET,
            ..on(
                case(
                    "list_bad_after_seq",
                    json!({}),
                    400,
                    "invalid_query",
                    Some("after_seq"),
                ),
                "/v1/sales?after_seq=-1",
            )
        },
        Case {
            method: Method::GET,
            ..on(
                case(
                    "list_limit_twice",
                    json!({}),
                    400,
                    "invalid_query",
                    Some("limit"),
                ),
                "/v1/sales?limit=1&limit=2",
            )
        },
        Case {
            method: Method::GET,
            ..on(
                case(
                    "list_unknown_parameter",
                    json!({}),
                    400,
                    "unknown_query_parameter",
                    Some("colour"),
                ),
                "/v1/sales?limit=5&colour=red",
            )
        },
        // An operation without parameters refuses any, as the listings refuse theirs
        // unknown ones: a read and a write.
        Case {
            method: Method::GET,
            ..on(
                case(
                    "report_unknown_parameter",
                    json!({}),
                    400,
                    "unknown_query_parameter",
                    Some("business_date"),
                ),
                "/v1/reports/days?business_date=2026-01-01",
            )
        },
        on(
            case(
                "write_unknown_parameter",
                support::valid_sale(),
                400,
                "unknown_query_parameter",
                Some("dry_run"),
            ),
            "/v1/sales?dry_run=true",
        ),
        Case {
            method: Method::GET,
            ..on(
                case(
                    "orders_bad_status",
                    json!({}),
                    400,
                    "invalid_query",
                    Some("status"),
                ),
                "/v1/orders?status=pending",
            )
        },
        Case {
            method: Method::GET,
            ..on(
                case(
                    "unknown_catalog_sku",
                    json!({}),
                    404,
                    "unknown_sku",
                    Some("sku"),
                ),
                "/v1/catalog/CAVIAR",
            )
        },
        on(
            case("unknown_endpoint", json!({}), 404, "no_such_endpoint", None),
            "/v1/salez",
        ),
    ]
}

trait Tap {
    fn tap(self, key: &str, value: Value) -> Value;
    fn tap_discount(self, value: Value) -> Value;
    fn tap_line_discount(self, value: Value) -> Value;
}

impl Tap for Value {
    fn tap(mut self, key: &str, value: Value) -> Value {
        self[key] = value;
        self
    }
    fn tap_discount(self, value: Value) -> Value {
        self.tap("discount", value)
    }
    fn tap_line_discount(mut self, value: Value) -> Value {
        self["lines"][0]["discount"] = value;
        self
    }
}

async fn post(client: &reqwest::Client, api: &str, path: &str, key: &str, body: Value) -> Value {
    support::post_created(client, api, path, key, &body).await
}

#[tokio::test]
async fn bad_input_is_refused_precisely_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = support::spec(dir.path());
    let node = support::start(&spec);
    let client = reqwest::Client::new();
    let api = node.api.clone();
    // Set-up: sale 1 (partly refunded), sale 2 (voided by entry 3), refund entry 4.
    post(
        &client,
        &api,
        "/v1/sales",
        "base-sale",
        support::valid_sale(),
    )
    .await;
    post(
        &client,
        &api,
        "/v1/sales",
        "second-sale",
        support::valid_sale(),
    )
    .await;
    post(
        &client,
        &api,
        "/v1/sales/till-1/2/void",
        "void-2",
        json!({"reason": "rung twice"}),
    )
    .await;
    let refund = json!({"lines": [{"line_index": 0, "quantity": 1}], "reason": "stale"});
    post(
        &client,
        &api,
        "/v1/sales/till-1/1/refunds",
        "refund-1",
        refund,
    )
    .await;

    let before = support::head(&client, &node.mgmt).await;
    let sale_before: Value = client
        .get(format!("http://{api}/v1/sales/till-1/1"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("JSON");
    let table = cases();
    assert!(table.len() >= 40, "the table has {} cases", table.len());
    let mut failures = Vec::new();
    for c in table {
        let mut request = client
            .request(c.method.clone(), format!("http://{api}{}", c.path))
            .header(CONTENT_TYPE, c.content_type);
        if let Some(key) = &c.key {
            request = request.header("Idempotency-Key", key);
        }
        if c.method == Method::POST {
            request = request.body(c.body.clone());
        }
        let response = request.send().await.expect("answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let error = &body["error"];
        let ok = status == c.status
            && error["code"] == c.code
            && error["message"].as_str().is_some_and(|m| !m.is_empty())
            && error["field"].as_str() == c.field;
        if !ok {
            failures.push(format!(
                "{}: expected {} {} {:?}, got {status} {}",
                c.name, c.status, c.code, c.field, body
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        support::head(&client, &node.mgmt).await,
        before,
        "a refused request changed the journal"
    );
    let sale_after: Value = client
        .get(format!("http://{api}/v1/sales/till-1/1"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("JSON");
    assert_eq!(sale_before, sale_after, "a refused request changed sale 1");
    // The management API answers an unknown route as the sales API does: a JSON 404.
    let unknown = client
        .get(format!("http://{}/v1/statuz", node.mgmt))
        .send()
        .await
        .expect("mgmt answers");
    assert_eq!(unknown.status(), 404);
    let unknown: Value = unknown.json().await.expect("a JSON 404 body");
    assert_eq!(unknown["error"]["code"], "no_such_endpoint", "{unknown}");
    // The API describes itself, and counts what it refused.
    let openapi: Value = client
        .get(format!("http://{api}/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("JSON");
    for path in [
        "/v1/sales",
        "/v1/sales/{device}/{seq}/refunds",
        "/v1/catalog",
        "/v1/payments/exposure-budget",
        "/v1/payments/exposure-allotments/{device}",
        "/v1/payments/queue",
        "/v1/payments/qr",
        "/v1/payments/qr/{id}/confirm",
    ] {
        assert!(openapi["paths"][path].is_object(), "OpenAPI lacks {path}");
    }
    let metrics = client
        .get(format!("http://{api}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("posmesh_api_errors_total{code=\"unknown_sku\"}"),
        "{metrics}"
    );
    // A refund without a tender goes back the way the sale was paid.
    let card_sale = json!({
        "currency": "GBP",
        "lines": [{"sku": "BREAD", "quantity": 1}],
        "tenders": [{"kind": "card", "amount_minor": 300}]
    });
    let paid = post(&client, &api, "/v1/sales", "card-sale", card_sale).await;
    let seq = paid["seq"].as_u64().expect("seq");
    let refund = json!({"lines": [{"line_index": 0, "quantity": 1}]});
    let refunded = post(
        &client,
        &api,
        &format!("/v1/sales/till-1/{seq}/refunds"),
        "card-refund",
        refund,
    )
    .await;
    assert_eq!(refunded["reference"]["tender"], "card", "{refunded}");
    let before = (before.0 + 2, before.1 + 2);
    // The node still takes a good sale, with the next numbers.
    let next = post(
        &client,
        &api,
        "/v1/sales",
        "after-table",
        support::valid_sale(),
    )
    .await;
    assert_eq!(next["seq"].as_u64(), Some(before.0 + 1));
    assert_eq!(next["receipt_no"].as_u64(), Some(before.1 + 1));
    assert!(next["operator_id"].is_null(), "none named: {next}");
    // A sale's operator is recorded and read back; the store need not know it (a till
    // sells cut off from the Raft group — this node has none).
    let by_operator = post(
        &client,
        &api,
        "/v1/sales",
        "by-operator",
        support::valid_sale().tap("operator_id", json!("csh-1")),
    )
    .await;
    assert_eq!(by_operator["operator_id"], "csh-1", "{by_operator}");
    let seq = by_operator["seq"].as_u64().expect("seq");
    let one = support::get_json(&client, &format!("http://{api}/v1/sales/till-1/{seq}")).await;
    assert_eq!(one["operator_id"], "csh-1", "{one}");
    let page = support::get_json(
        &client,
        &format!("http://{api}/v1/sales?after_seq={}", seq - 1),
    )
    .await;
    assert_eq!(page["entries"][0]["operator_id"], "csh-1", "{page}");
    let documented = &openapi["components"]["schemas"]["EntryView"]["properties"]["operator_id"];
    assert!(documented.is_object(), "OpenAPI documents operator_id");
    node.stop().expect("clean stop");
}
