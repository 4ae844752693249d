//! Operators, PINs, shifts and tax rates through the store's Raft group, on a one-device
//! store founded with `posmesh init` (the founder leads alone): the good paths, and a table
//! of bad requests, each answered with a precise code and changing nothing (the Raft
//! state's lists and the applied index are compared before and after).

use super::consensus_loopback::{post, raft, wait_leader};
use super::support;
use serde_json::{json, Value};
use std::process::Command;

async fn get(client: &reqwest::Client, api: &str, path: &str) -> Value {
    support::get_json(client, &format!("http://{api}{path}")).await
}

/// `POST /v1/operators/{operator}/verify-pin` with `pin` on `node`.
async fn verify_pin(
    client: &reqwest::Client,
    node: &posmesh_node::node_process::NodeProcess,
    operator: &str,
    pin: &str,
) -> (u16, Value) {
    let path = format!("/v1/operators/{operator}/verify-pin");
    post(client, node, &path, "", json!({"pin": pin})).await
}

/// `POST /v1/operators` of `body` on `node`, authorised by `by` (operator id, PIN) in the
/// `X-Operator-Id` / `X-Operator-Pin` headers if given.
pub(super) async fn set_operator(
    client: &reqwest::Client,
    node: &posmesh_node::node_process::NodeProcess,
    by: Option<(&str, &str)>,
    body: Value,
) -> (u16, Value) {
    let request = client
        .post(format!("http://{}/v1/operators", node.api))
        .json(&body);
    send_as(request, by).await
}

/// Sends `request` with `by` (operator id, PIN) in the `X-Operator-Id` / `X-Operator-Pin`
/// headers if given; the status and the JSON answer (null if none).
async fn send_as(mut request: reqwest::RequestBuilder, by: Option<(&str, &str)>) -> (u16, Value) {
    if let Some((id, pin)) = by {
        request = request
            .header("X-Operator-Id", id)
            .header("X-Operator-Pin", pin);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The store's first operator, admin `ada` (PIN 8642), set without authorisation.
const ADA: (&str, &str) = ("ada", "8642");

async fn bootstrap_ada(client: &reqwest::Client, node: &posmesh_node::node_process::NodeProcess) {
    let (code, set) = set_operator(
        client,
        node,
        None,
        json!({"operator_id": "ada", "name": "Ada", "role": "admin", "pin": "8642"}),
    )
    .await;
    assert_eq!(code, 201, "{set}");
}

/// A store `s1` of one device `till-1` founded with `posmesh init` in `d`, led by it.
pub(super) async fn one_device_store(
    client: &reqwest::Client,
    d: &std::path::Path,
) -> posmesh_node::node_process::NodeProcess {
    support::issue_identities_in(d, &[("s1", "till-1")]);
    let status = Command::new(support::binary())
        .args([
            "init",
            "--store-id",
            "s1",
            "--device-id",
            "till-1",
            "--data-dir",
        ])
        .arg(d.join("till-1"))
        .status()
        .expect("init runs");
    assert!(status.success());
    let a = support::start_mesh_node_with(d, "s1", "till-1", "127.0.0.1:0", &[], &[]);
    wait_leader(client, &[&a], 1, None).await;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_shifts_and_tax_rates_are_store_wide_decisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    let a = one_device_store(&client, d).await;
    bootstrap_ada(&client, &a).await;
    // The store has operators: guarded operations are asked by ada, the admin.
    let client = support::http_client_as(ADA);

    let (code, set) = set_operator(
        &client,
        &a,
        Some(ADA),
        json!({"operator_id": "bob", "name": "Bob", "role": "cashier", "pin": "1357"}),
    )
    .await;
    assert_eq!(code, 201, "{set}");
    assert_eq!(set["outcome"]["role"], "cashier");
    let (code, ok) = verify_pin(&client, &a, "bob", "1357").await;
    assert_eq!((code, ok["role"].as_str()), (200, Some("cashier")), "{ok}");
    let (code, _) = post(
        &client,
        &a,
        "/v1/shifts",
        "open-sh-1",
        json!({"shift_id": "sh-1", "operator_id": "bob", "opening_float_minor": 10000, "currency": "GBP"}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = post(
        &client,
        &a,
        "/v1/tax-rates",
        "tax-1",
        json!({"version": 1, "effective_at": "2026-01-01T00:00:00Z", "rates_bps": {"standard": 2000}}),
    )
    .await;
    assert_eq!(code, 201);
    let shifts = get(&client, &a.api, "/v1/shifts").await;
    assert_eq!(shifts["sh-1"]["device_id"], "till-1", "{shifts}");
    assert_eq!(shifts["sh-1"]["opening_float_minor"], 10000);
    let operators = get(&client, &a.api, "/v1/operators").await;
    assert!(
        !operators.to_string().contains("argon2"),
        "no hash listed: {operators}"
    );

    let snapshot = |client: reqwest::Client, api: String| async move {
        (
            get(&client, &api, "/v1/operators").await,
            get(&client, &api, "/v1/shifts").await,
            get(&client, &api, "/v1/tax-rates").await,
        )
    };
    let before = snapshot(client.clone(), a.api.clone()).await;
    let bob =
        |pin: &str| json!({"operator_id": "bob", "name": "Bob", "role": "manager", "pin": pin});
    let shift = |id: &str, operator: &str, float: i64, currency: &str| json!({"shift_id": id, "operator_id": operator, "opening_float_minor": float, "currency": currency});
    let tax = |version: u64, at: &str, rate: u32| json!({"version": version, "effective_at": at, "rates_bps": {"standard": rate}});
    let cases: Vec<(&str, Value, u16, &str, Option<&str>)> = vec![
        ("/v1/operators", bob("12"), 422, "invalid_pin", Some("pin")),
        (
            "/v1/operators",
            bob("12ab"),
            422,
            "invalid_pin",
            Some("pin"),
        ),
        (
            "/v1/operators",
            json!({"operator_id": "bob", "name": "Bob", "role": "boss", "pin": "1234"}),
            400,
            "invalid_field",
            Some("role"),
        ),
        (
            "/v1/operators",
            json!({"operator_id": "", "name": "Bob", "role": "cashier", "pin": "1234"}),
            422,
            "invalid_operator_id",
            Some("operator_id"),
        ),
        (
            "/v1/operators",
            json!({"operator_id": "bob smith", "name": "Bob", "role": "cashier", "pin": "1234"}),
            422,
            "invalid_operator_id",
            Some("operator_id"),
        ),
        (
            "/v1/operators/bob/verify-pin",
            json!({"pin": "9999"}),
            401,
            "pin_mismatch",
            Some("pin"),
        ),
        // An id naming no operator is answered as a wrong PIN: ids cannot be enumerated.
        (
            "/v1/operators/nobody/verify-pin",
            json!({"pin": "1357"}),
            401,
            "pin_mismatch",
            Some("pin"),
        ),
        (
            "/v1/shifts",
            shift("sh-2", "bob", 0, "GBP"),
            409,
            "shift_already_open",
            None,
        ),
        (
            "/v1/shifts",
            shift("sh-1", "bob", 0, "GBP"),
            409,
            "shift_exists",
            Some("shift_id"),
        ),
        (
            "/v1/shifts",
            shift("sh-3", "nobody", 0, "GBP"),
            404,
            "operator_not_found",
            Some("operator_id"),
        ),
        (
            "/v1/shifts",
            shift("sh-3", "bob", -1, "GBP"),
            422,
            "invalid_amount",
            Some("opening_float_minor"),
        ),
        (
            "/v1/shifts",
            shift("sh-3", "bob", 0, "EUR"),
            422,
            "currency_mismatch",
            Some("currency"),
        ),
        (
            "/v1/shifts/nope/close",
            Value::Null,
            404,
            "shift_not_found",
            None,
        ),
        (
            "/v1/tax-rates",
            tax(1, "2026-02-01T00:00:00Z", 2000),
            409,
            "tax_version_not_newer",
            Some("version"),
        ),
        (
            "/v1/tax-rates",
            tax(2, "2025-01-01T00:00:00Z", 2000),
            409,
            "tax_version_not_newer",
            Some("version"),
        ),
        (
            "/v1/tax-rates",
            tax(2, "2026-02-01T00:00:00Z", 10_001),
            422,
            "invalid_tax_rate",
            Some("rates_bps"),
        ),
        (
            "/v1/tax-rates",
            tax(2, "next week", 2000),
            422,
            "invalid_time",
            Some("effective_at"),
        ),
        (
            "/v1/tax-rates",
            json!({"version": 2, "effective_at": "2026-02-01T00:00:00Z", "rates_bps": {}}),
            422,
            "invalid_tax_classes",
            Some("rates_bps"),
        ),
    ];
    for (case, (path, body, status, code, field)) in cases.into_iter().enumerate() {
        let key = format!("bad-{case}");
        let (got, answer) = if path == "/v1/operators" {
            set_operator(&client, &a, Some(ADA), body.clone()).await
        } else {
            post(&client, &a, path, &key, body.clone()).await
        };
        assert_eq!(
            (
                got,
                answer["error"]["code"].as_str(),
                answer["error"]["field"].as_str()
            ),
            (status, Some(code), field),
            "{path} {body}: {answer}"
        );
    }
    let after = snapshot(client.clone(), a.api.clone()).await;
    assert_eq!(before, after, "refused requests changed nothing");
    let (code, closed) = post(&client, &a, "/v1/shifts/sh-1/close", "close-1", Value::Null).await;
    assert_eq!(code, 201, "{closed}");
    let (code, again) = post(&client, &a, "/v1/shifts/sh-1/close", "close-2", Value::Null).await;
    assert_eq!(
        (code, again["error"]["code"].as_str()),
        (409, Some("shift_already_closed"))
    );
    assert!(raft(&client, &a).await["applied_index"].as_u64() > Some(3));
    // One wrong PIN above, four more: bob is locked out, even with his right PIN.
    let mut wrong = Value::Null;
    for _ in 0..4 {
        let (code, answer) = verify_pin(&client, &a, "bob", "0000").await;
        assert_eq!(code, 401);
        wrong = answer;
    }
    let (code, locked) = verify_pin(&client, &a, "bob", "1357").await;
    assert_eq!(
        (code, locked["error"]["code"].as_str()),
        (429, Some("pin_locked")),
        "{locked}"
    );
    // A made-up id gets the very same answers: 401 with the same body for five guesses,
    // then the same 429 (its id and the seconds left aside).
    for _ in 0..5 {
        assert_eq!(
            verify_pin(&client, &a, "ghost", "0000").await,
            (401, wrong.clone())
        );
    }
    let (code, ghost_locked) = verify_pin(&client, &a, "ghost", "1357").await;
    let shape = |answer: &Value, id: &str| -> String {
        answer
            .to_string()
            .replace(id, "ID")
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect()
    };
    assert_eq!(
        (code, shape(&ghost_locked, "ghost")),
        (429, shape(&locked, "bob")),
        "{ghost_locked} vs {locked}"
    );
}

/// `POST /v1/operators/{operator}/unlock` on `node`, authorised by `by` (operator id, PIN)
/// in the `X-Operator-Id` / `X-Operator-Pin` headers if given.
async fn unlock(
    client: &reqwest::Client,
    node: &posmesh_node::node_process::NodeProcess,
    operator: &str,
    by: Option<(&str, &str)>,
) -> (u16, Value) {
    let request = client.post(format!(
        "http://{}/v1/operators/{operator}/unlock",
        node.api
    ));
    send_as(request, by).await
}

/// `posmesh operator unlock --operator <operator> <flag> ada` on `node` (`flag`: `--as`,
/// or the deprecated `--manager`), ada's PIN on stdin: its stdout.
fn cli_unlock_by_ada(
    node: &posmesh_node::node_process::NodeProcess,
    operator: &str,
    flag: &str,
) -> String {
    let mut cli = std::process::Command::new(support::binary());
    cli.args([
        "operator",
        "unlock",
        "--operator",
        operator,
        flag,
        "ada",
        "--api",
    ])
    .arg(&node.api)
    .env_remove("POSMESH_OPERATOR_ID")
    .env_remove("POSMESH_OPERATOR_PIN")
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cli.spawn().expect("cli runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"8642\n").expect("pin written");
    }
    let out = child.wait_with_output().expect("cli ends");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_lockout_survives_a_crash_and_a_manager_lifts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    let a = one_device_store(&client, d).await;
    bootstrap_ada(&client, &a).await;
    for (id, role, pin) in [
        ("bob", "cashier", "1357"),
        ("cal", "cashier", "1111"),
        ("mia", "manager", "2468"),
    ] {
        let (code, set) = set_operator(
            &client,
            &a,
            Some(ADA),
            json!({"operator_id": id, "name": id, "role": role, "pin": pin}),
        )
        .await;
        assert_eq!(code, 201, "{set}");
    }
    for _ in 0..5 {
        assert_eq!(verify_pin(&client, &a, "bob", "0000").await.0, 401);
    }
    assert_eq!(verify_pin(&client, &a, "bob", "1357").await.0, 429);
    // Two wrong PINs of mia are counted too (not locked: the count must survive as well).
    for _ in 0..2 {
        assert_eq!(verify_pin(&client, &a, "mia", "0000").await.0, 401);
    }

    // kill -9 and restart: bob is still locked out, even with his right PIN.
    a.kill().expect("killed");
    let a = support::start_mesh_node_with(d, "s1", "till-1", "127.0.0.1:0", &[], &[]);
    wait_leader(&client, &[&a], 1, None).await;
    let (code, locked) = verify_pin(&client, &a, "bob", "1357").await;
    assert_eq!(
        (code, locked["error"]["code"].as_str()),
        (429, Some("pin_locked")),
        "{locked}"
    );
    assert!(
        locked["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("posmesh operator unlock")),
        "{locked}"
    );
    // mia's 2 wrong PINs survived too: 3 more lock her out, and a locked-out manager
    // cannot unlock.
    for _ in 0..3 {
        assert_eq!(verify_pin(&client, &a, "mia", "0000").await.0, 401);
    }
    let (code, mia_locked) = unlock(&client, &a, "bob", Some(("mia", "2468"))).await;
    assert_eq!(
        (
            code,
            mia_locked["error"]["code"].as_str(),
            mia_locked["error"]["field"].as_str()
        ),
        (429, Some("pin_locked"), Some("X-Operator-Pin")),
        "a locked-out manager cannot unlock: {mia_locked}"
    );

    // An admin unlocks mia through the CLI (PIN on stdin); the CLI says she was locked.
    let stdout = cli_unlock_by_ada(&a, "mia", "--as");
    assert_eq!(
        stdout.trim_end(),
        "unlocked mia on this device (by ada): was locked out: yes; wrong PINs cleared: 5"
    );
    assert_eq!(verify_pin(&client, &a, "mia", "2468").await.0, 200);
    // A manager cannot unlock an admin (nor a peer): unlocking between guesses would let
    // her guess the admin's PIN without limit.
    let (code, refused) = unlock(&client, &a, "ada", Some(("mia", "2468"))).await;
    assert_eq!(
        (
            code,
            refused["error"]["code"].as_str(),
            refused["error"]["field"].as_str()
        ),
        (403, Some("role_forbidden"), Some("X-Operator-Id")),
        "{refused}"
    );
    // An operator not locked out: the same shape, saying so (through the deprecated
    // `--manager`, the old name of `--as`).
    let stdout = cli_unlock_by_ada(&a, "cal", "--manager");
    assert_eq!(
        stdout.trim_end(),
        "unlocked cal on this device (by ada): was locked out: no; wrong PINs cleared: 0"
    );

    // Bad unlocks: each refused precisely, and bob stays locked out. The authorising
    // operator's PIN is checked before anything else is told: an unknown operator is
    // answered as a wrong PIN, a cashier with a wrong PIN as a wrong PIN (not "may not"),
    // an unknown operator to unlock only to a verified manager. Like every guarded
    // command: no headers (or only one), `operator_required`; a cashier, `role_forbidden`.
    let pin = Some("X-Operator-Pin");
    let cases = [
        ("bob", Some(("zed", "2468")), 401, "pin_mismatch", pin),
        ("bob", Some(("cal", "0000")), 401, "pin_mismatch", pin),
        ("nobody", Some(("zed", "2468")), 401, "pin_mismatch", pin),
        (
            "bob",
            Some(("cal", "1111")),
            403,
            "role_forbidden",
            Some("X-Operator-Id"),
        ),
        (
            "nobody",
            Some(("mia", "2468")),
            404,
            "operator_not_found",
            None,
        ),
        ("bob", None, 401, "operator_required", Some("X-Operator-Id")),
        ("bob", Some(("mia", "")), 401, "operator_required", pin),
        ("bob", Some(("mia", "9999")), 401, "pin_mismatch", pin),
    ];
    let mut mismatches = Vec::new();
    for (operator, by, status, code, field) in cases {
        let (got, answer) = unlock(&client, &a, operator, by).await;
        assert_eq!(
            (
                got,
                answer["error"]["code"].as_str(),
                answer["error"]["field"].as_str()
            ),
            (status, Some(code), field),
            "unlock {operator} by {by:?}: {answer}"
        );
        if code == "pin_mismatch" {
            mismatches.push(answer);
        } else if code == "last_admin" {
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("appoint another admin first"), "{answer}");
        }
    }
    assert!(
        mismatches.windows(2).all(|w| w[0] == w[1]),
        "unknown manager and wrong PIN answer the same: {mismatches:?}"
    );
    // The old credentials in a body are no longer read: as without headers.
    let old = client
        .post(format!("http://{}/v1/operators/bob/unlock", a.api))
        .json(&json!({"manager_id": "mia", "manager_pin": "2468"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(old.status().as_u16(), 401);
    let old: Value = old.json().await.expect("JSON");
    assert_eq!(old["error"]["code"], "operator_required", "{old}");
    assert_eq!(verify_pin(&client, &a, "bob", "1357").await.0, 429);
    let (code, done) = unlock(&client, &a, "bob", Some(("mia", "2468"))).await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(
        (
            &done["was_locked"],
            &done["failures_cleared"],
            &done["unlocked_by"]
        ),
        (&json!(true), &json!(5), &json!("mia"))
    );
    assert_eq!(verify_pin(&client, &a, "bob", "1357").await.0, 200);

    let openapi = get(&client, &a.api, "/openapi.json").await;
    assert!(
        openapi["paths"]["/v1/operators/{id}/unlock"]["post"].is_object(),
        "OpenAPI documents the unlock"
    );

    // The unlock is durable too: after another kill -9, bob is still unlocked.
    a.kill().expect("killed");
    let a = support::start_mesh_node_with(d, "s1", "till-1", "127.0.0.1:0", &[], &[]);
    wait_leader(&client, &[&a], 1, None).await;
    assert_eq!(verify_pin(&client, &a, "bob", "1357").await.0, 200);
    a.stop().expect("stopped");
}

/// Absurd day-close dates are refused precisely and commit nothing: before 2000-01-01 (no
/// sale can carry such a date), after today, not a date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_day_close_dates_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let a = one_device_store(&client, dir.path()).await;
    let before = raft(&client, &a).await["applied_index"].clone();
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    for (date, status, code) in [
        ("1970-01-01", 422, "date_too_old"),
        ("1999-12-30", 422, "date_too_old"),
        (tomorrow.as_str(), 422, "day_not_over"),
        ("9999-12-31", 422, "day_not_over"),
        ("2026-02-30", 400, "invalid_date"),
    ] {
        let (got, answer) = post(
            &client,
            &a,
            &format!("/v1/days/{date}/close"),
            &format!("close-{date}"),
            Value::Null,
        )
        .await;
        assert_eq!(
            (
                got,
                answer["error"]["code"].as_str(),
                answer["error"]["field"].as_str()
            ),
            (status, Some(code), Some("date")),
            "{date}: {answer}"
        );
    }
    assert_eq!(
        raft(&client, &a).await["applied_index"],
        before,
        "nothing committed"
    );
    let (got, closed) = post(
        &client,
        &a,
        "/v1/days/2000-01-02/close",
        "close-2000-01-02",
        Value::Null,
    )
    .await;
    assert_eq!(got, 201, "an old but possible date closes: {closed}");
    a.stop().expect("stopped");
}

/// 40 wrong PINs sent at once: exactly 5 are checked (401), the rest find the operator
/// locked out (429) — a burst does not get more guesses than a sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_pins_gets_five_guesses_not_forty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let a = one_device_store(&client, dir.path()).await;
    bootstrap_ada(&client, &a).await;
    let (code, set) = set_operator(
        &client,
        &a,
        Some(ADA),
        json!({"operator_id": "carl", "name": "Carl", "role": "cashier", "pin": "5555"}),
    )
    .await;
    assert_eq!(code, 201, "{set}");
    let guesses = (0..40).map(|n| {
        let (client, a) = (&client, &a);
        async move {
            verify_pin(client, a, "carl", &format!("{}", 6000 + n))
                .await
                .0
        }
    });
    let mut codes = futures_util::future::join_all(guesses).await;
    codes.sort_unstable();
    let checked = codes.iter().filter(|c| **c == 401).count();
    let locked = codes.iter().filter(|c| **c == 429).count();
    assert_eq!((checked, locked), (5, 35), "{codes:?}");
    let (code, answer) = verify_pin(&client, &a, "carl", "5555").await;
    assert_eq!(
        code, 429,
        "the right PIN is refused while locked out: {answer}"
    );
    a.stop().expect("stopped");
}

/// A refused `POST /v1/operators`: authorising operator, body, status, code, field.
type SetCase = (
    Option<(&'static str, &'static str)>,
    Value,
    u16,
    &'static str,
    &'static str,
);

/// Changes to the operators need an authorising operator (id and PIN in headers) whose
/// role allows them; the store's first operator, an admin, is set without, once. Every
/// refusal has a precise code and changes nothing (the list and the applied index are
/// compared), and wrong authorising PINs count towards that operator's lockout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_operators_needs_an_authorising_operator_whose_role_allows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let a = one_device_store(&client, dir.path()).await;
    let op = |id: &str, role: &str, pin: &str| json!({"operator_id": id, "name": id, "role": role, "pin": pin});

    // Bootstrap: the first operator must be an admin, and is set without authorisation once.
    let (code, answer) = set_operator(&client, &a, None, op("mia", "manager", "2468")).await;
    assert_eq!(
        (
            code,
            answer["error"]["code"].as_str(),
            answer["error"]["field"].as_str()
        ),
        (403, Some("role_forbidden"), Some("role")),
        "{answer}"
    );
    assert_eq!(get(&client, &a.api, "/v1/operators").await, json!([]));
    bootstrap_ada(&client, &a).await;
    // Only a manager or admin lists the operators.
    let admin = support::http_client_as(ADA);
    // An admin adds a manager; a manager adds a cashier.
    let (code, set) = set_operator(&client, &a, Some(ADA), op("mia", "manager", "2468")).await;
    assert_eq!(code, 201, "{set}");
    let (code, set) = set_operator(
        &client,
        &a,
        Some(("mia", "2468")),
        op("bob", "cashier", "1357"),
    )
    .await;
    assert_eq!(code, 201, "{set}");
    assert_eq!(set["outcome"]["role"], "cashier");

    // The operators (ids, names, roles; PINs are checked below) are what a refusal must not
    // change. The applied index is not compared: a refusal may be decided by the state
    // machine's own re-check of the rules, which commits an entry that changes nothing.
    let before = get(&admin, &a.api, "/v1/operators").await;
    let cases: Vec<SetCase> = vec![
        // Unauthenticated: a second first operator, a PIN reset, a role change.
        (
            None,
            op("eve", "admin", "4444"),
            401,
            "operator_required",
            "X-Operator-Id",
        ),
        (
            None,
            op("bob", "cashier", "0000"),
            401,
            "operator_required",
            "X-Operator-Id",
        ),
        (
            None,
            op("bob", "manager", "1357"),
            401,
            "operator_required",
            "X-Operator-Id",
        ),
        (
            None,
            op("ada", "admin", "0000"),
            401,
            "operator_required",
            "X-Operator-Id",
        ),
        // Without authorisation, nothing about the body is told.
        (
            None,
            json!({"operator_id": "Not An Id", "role": "boss"}),
            401,
            "operator_required",
            "X-Operator-Id",
        ),
        // Unknown authoriser and wrong PIN: the same answer.
        (
            Some(("zed", "2468")),
            op("eve", "cashier", "4444"),
            401,
            "pin_mismatch",
            "X-Operator-Pin",
        ),
        (
            Some(("mia", "9999")),
            op("eve", "cashier", "4444"),
            401,
            "pin_mismatch",
            "X-Operator-Pin",
        ),
        // A cashier cannot make themselves manager, nor add anyone.
        (
            Some(("bob", "1357")),
            op("bob", "manager", "1357"),
            403,
            "role_forbidden",
            "X-Operator-Id",
        ),
        (
            Some(("bob", "1357")),
            op("eve", "cashier", "4444"),
            403,
            "role_forbidden",
            "X-Operator-Id",
        ),
        // A manager manages neither managers nor admins, nor rises above their role.
        (
            Some(("mia", "2468")),
            op("eve", "manager", "4444"),
            403,
            "role_forbidden",
            "X-Operator-Id",
        ),
        (
            Some(("mia", "2468")),
            op("ada", "cashier", "0000"),
            403,
            "role_forbidden",
            "X-Operator-Id",
        ),
        (
            Some(("mia", "2468")),
            op("mia", "admin", "2468"),
            403,
            "role_forbidden",
            "X-Operator-Id",
        ),
        // A bad body after a right PIN.
        (
            Some(("mia", "2468")),
            op("eve", "boss", "4444"),
            400,
            "invalid_field",
            "role",
        ),
        // The store's only admin keeps the role, whoever asks (appoint another first).
        (
            Some(ADA),
            op("ada", "manager", "8642"),
            409,
            "last_admin",
            "role",
        ),
    ];
    let mut mismatches = Vec::new();
    for (by, body, status, code, field) in cases {
        let (got, answer) = set_operator(&client, &a, by, body.clone()).await;
        assert_eq!(
            (
                got,
                answer["error"]["code"].as_str(),
                answer["error"]["field"].as_str()
            ),
            (status, Some(code), Some(field)),
            "{by:?} {body}: {answer}"
        );
        if code == "pin_mismatch" {
            mismatches.push(answer);
        } else if code == "last_admin" {
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("appoint another admin first"), "{answer}");
        }
    }
    assert_eq!(mismatches.len(), 2);
    assert_eq!(
        mismatches[0], mismatches[1],
        "no enumeration of operator ids"
    );
    // One header without the other.
    let response = client
        .post(format!("http://{}/v1/operators", a.api))
        .header("X-Operator-Id", "mia")
        .json(&op("eve", "cashier", "4444"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 401);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(
        (
            answer["error"]["code"].as_str(),
            answer["error"]["field"].as_str()
        ),
        (Some("operator_required"), Some("X-Operator-Pin")),
        "{answer}"
    );
    let after = get(&admin, &a.api, "/v1/operators").await;
    assert_eq!(before, after, "refused changes changed nothing");
    assert_eq!(
        verify_pin(&client, &a, "bob", "1357").await.0,
        200,
        "PIN not reset"
    );

    // Anyone changes their own PIN, keeping their role.
    let (code, set) = set_operator(
        &client,
        &a,
        Some(("bob", "1357")),
        op("bob", "cashier", "7531"),
    )
    .await;
    assert_eq!(code, 201, "{set}");
    assert_eq!(verify_pin(&client, &a, "bob", "7531").await.0, 200);

    // Wrong authorising PINs count towards the authoriser's lockout (the right PINs above
    // reset the count): after five, even the right PIN is refused.
    for _ in 0..5 {
        let (code, _) = set_operator(
            &client,
            &a,
            Some(("mia", "0000")),
            op("eve", "cashier", "4444"),
        )
        .await;
        assert_eq!(code, 401);
    }
    let (code, answer) = set_operator(
        &client,
        &a,
        Some(("mia", "2468")),
        op("eve", "cashier", "4444"),
    )
    .await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (429, Some("pin_locked")),
        "{answer}"
    );
    assert!(
        !get(&admin, &a.api, "/v1/operators")
            .await
            .to_string()
            .contains("eve"),
        "eve was never added"
    );
    // The CLI: ada's PIN and eve's new PIN on stdin, one per line; a wrong PIN from the
    // environment is refused with the node's code.
    let cli_set = |by_pin_env: Option<&str>, stdin: &str| {
        let mut cli = std::process::Command::new(support::binary());
        cli.args([
            "operator",
            "set",
            "--operator",
            "eve",
            "--name",
            "Eve",
            "--role",
            "cashier",
            "--as",
            "ada",
            "--api",
        ])
        .arg(&a.api)
        .env_remove("POSMESH_NEW_PIN")
        .env_remove("POSMESH_OPERATOR_ID")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        match by_pin_env {
            Some(pin) => cli.env("POSMESH_OPERATOR_PIN", pin),
            None => cli.env_remove("POSMESH_OPERATOR_PIN"),
        };
        let mut child = cli.spawn().expect("cli runs");
        {
            use std::io::Write;
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(stdin.as_bytes()).expect("stdin written");
        }
        let out = child.wait_with_output().expect("cli ends");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, stderr) = cli_set(Some("0000"), "4444\n");
    assert!(!ok && stderr.contains("pin_mismatch"), "{stderr}");
    let (ok, stdout, stderr) = cli_set(None, "8642\n4444\n");
    assert!(ok, "{stdout} {stderr}");
    assert!(
        stdout.starts_with("set eve as cashier (authorised by ada, log index "),
        "{stdout}"
    );
    assert_eq!(verify_pin(&client, &a, "eve", "4444").await.0, 200);

    let openapi = get(&client, &a.api, "/openapi.json").await;
    let documented = &openapi["paths"]["/v1/operators"]["post"];
    for header in ["X-Operator-Id", "X-Operator-Pin"] {
        assert!(
            documented["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["name"] == header && p["in"] == "header")),
            "OpenAPI documents {header}: {documented}"
        );
    }
    for status in ["401", "403", "429"] {
        assert!(
            documented["responses"][status].is_object(),
            "{status}: {documented}"
        );
    }
    a.stop().expect("stopped");
}

/// The role matrix over HTTP: without operator headers a guarded operation is 401
/// `operator_required`; a cashier closing the day, setting tax rates, issuing a gift card,
/// setting the exposure budget, removing a device or listing the operators or shifts is 403
/// `role_forbidden` naming the role needed, and nothing changes; a cashier opens and
/// closes their own shift; a manager closes the day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_wide_operations_need_an_operator_whose_role_allows_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let a = one_device_store(&client, dir.path()).await;
    bootstrap_ada(&client, &a).await;
    let mut last_index = Value::Null;
    for (id, role, pin) in [("mia", "manager", "2468"), ("cat", "cashier", "1111")] {
        let (code, set) = set_operator(
            &client,
            &a,
            Some(ADA),
            json!({"operator_id": id, "name": id, "role": role, "pin": pin}),
        )
        .await;
        assert_eq!(code, 201, "{set}");
        last_index = set["log_index"].clone();
    }
    let cat = support::http_client_as(("cat", "1111"));
    let mia = support::http_client_as(("mia", "2468"));
    let close = "/v1/days/2000-01-02/close";

    let (code, answer) = post(&client, &a, close, "close-0", Value::Null).await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (401, Some("operator_required")),
        "{answer}"
    );
    let listed = client
        .get(format!("http://{}/v1/operators", a.api))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        listed.status().as_u16(),
        401,
        "the operators are not public"
    );
    let listed = client
        .get(format!("http://{}/v1/shifts", a.api))
        .send()
        .await
        .expect("answers");
    assert_eq!(listed.status().as_u16(), 401, "nor are the shifts");
    let wrong = support::http_client_as(("cat", "9999"));
    let (code, answer) = post(&wrong, &a, close, "close-0", Value::Null).await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (401, Some("pin_mismatch")),
        "{answer}"
    );
    for (path, body) in [
        (close, Value::Null),
        (
            "/v1/tax-rates",
            json!({"version": 1, "effective_at": "2026-01-01T00:00:00Z", "rates_bps": {"standard": 2000}}),
        ),
        (
            "/v1/gift-cards",
            json!({"card_id": "gc-1", "amount_minor": 500, "currency": "GBP"}),
        ),
        ("/v1/store/devices/till-9/remove", Value::Null),
    ] {
        let (code, answer) = post(&cat, &a, path, "by-cat", body).await;
        assert_eq!(
            (code, answer["error"]["code"].as_str()),
            (403, Some("role_forbidden")),
            "{path}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("manager")),
            "names the role needed: {answer}"
        );
    }
    let budget = cat
        .put(format!("http://{}/v1/payments/exposure-budget", a.api))
        .json(&json!({"amount_minor": 1000, "currency": "GBP"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(budget.status().as_u16(), 403);
    for list in ["/v1/operators", "/v1/shifts"] {
        let listed = cat
            .get(format!("http://{}{list}", a.api))
            .send()
            .await
            .expect("answers");
        assert_eq!(listed.status().as_u16(), 403, "{list} by a cashier");
    }
    // The last entry is still cat's appointment (the metrics may show it a moment late).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        raft(&client, &a).await["applied_index"],
        last_index,
        "nothing proposed"
    );
    let z = get(&client, &a.api, "/v1/reports/z/2000-01-02").await;
    assert_eq!(z["error"]["code"], "day_not_closed", "{z}");

    // A cashier's own shift; not another's.
    let shift = |id: &str, operator: &str| json!({"shift_id": id, "operator_id": operator, "opening_float_minor": 0, "currency": "GBP"});
    let (code, answer) = post(&cat, &a, "/v1/shifts", "open-mia", shift("sh-m", "mia")).await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (403, Some("role_forbidden")),
        "{answer}"
    );
    let (code, answer) = post(&cat, &a, "/v1/shifts", "open-cat", shift("sh-c", "cat")).await;
    assert_eq!(code, 201, "{answer}");
    let (code, answer) = post(&cat, &a, "/v1/shifts/sh-c/close", "close-cat", Value::Null).await;
    assert_eq!(code, 201, "{answer}");
    // A manager lists them.
    let shifts = get(&mia, &a.api, "/v1/shifts").await;
    assert_eq!(shifts["sh-c"]["operator_id"], "cat", "{shifts}");

    // The CLI sends the operator (PIN on stdin): a cashier is refused; a manager gets past
    // the role check to the device check (till-9 is unknown to the store).
    let remove_as = |operator: &str, pin: &str| {
        let mut cli = std::process::Command::new(support::binary());
        cli.args([
            "store",
            "remove-device",
            "till-9",
            "--as",
            operator,
            "--api",
        ])
        .arg(&a.api)
        .env_remove("POSMESH_OPERATOR_PIN")
        .env_remove("POSMESH_OPERATOR_ID")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = cli.spawn().expect("cli runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin
                .write_all(format!("{pin}\n").as_bytes())
                .expect("pin written");
        }
        let out = child.wait_with_output().expect("cli ends");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = remove_as("cat", "1111");
    assert!(said.contains("role_forbidden"), "{said}");
    let said = remove_as("mia", "2468");
    assert!(said.contains("unknown_device"), "{said}");

    // The manager closes the day.
    let (code, answer) = post(&mia, &a, close, "close-1", Value::Null).await;
    assert_eq!(code, 201, "{answer}");
    let listed = get(&mia, &a.api, "/v1/operators").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    a.stop().expect("stopped");
}

/// `posmesh <args>` against nothing but what `args` name, `stdin` written to it (PINs):
/// (success, stdout, stderr). The operator variables of the environment are cleared.
fn cli(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut command = Command::new(support::binary());
    command
        .args(args)
        .env_remove("POSMESH_OPERATOR_PIN")
        .env_remove("POSMESH_OPERATOR_ID")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("cli runs");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("stdin written");
    }
    let out = child.wait_with_output().expect("cli ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The applied index of `node`, once it has settled (the metrics may show an entry a
/// moment late).
async fn settled_applied_index(
    client: &reqwest::Client,
    node: &posmesh_node::node_process::NodeProcess,
) -> Value {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    raft(client, node).await["applied_index"].clone()
}

/// `POST /v1/operators/{id}/disable`: a cashier may not (403), a manager disables a
/// cashier (201, here through `posmesh operator disable`) whose PIN then opens nothing
/// (401), whose open shift closes in the same entry (marked why), and whose id is never
/// set again (409 `operator_disabled`); the only admin cannot be disabled. Refusals the
/// state alone decides (the only admin, an unknown or disabled operator, a day closed
/// already) take no Raft entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_disables_a_cashier_not_the_only_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let a = one_device_store(&client, dir.path()).await;
    bootstrap_ada(&client, &a).await;
    for (id, role, pin) in [("mia", "manager", "2468"), ("cat", "cashier", "1111")] {
        let (code, set) = set_operator(
            &client,
            &a,
            Some(ADA),
            json!({"operator_id": id, "name": id, "role": role, "pin": pin}),
        )
        .await;
        assert_eq!(code, 201, "{set}");
    }
    let disable = |id: &str| format!("/v1/operators/{id}/disable");
    let cat = support::http_client_as(("cat", "1111"));
    let mia = support::http_client_as(("mia", "2468"));
    let ada = support::http_client_as(ADA);
    let shift = json!({"shift_id": "sh-c", "operator_id": "cat", "opening_float_minor": 500, "currency": "GBP"});
    let (code, answer) = post(&cat, &a, "/v1/shifts", "open-cat", shift).await;
    assert_eq!(code, 201, "{answer}");
    let (code, answer) = post(
        &mia,
        &a,
        "/v1/days/2000-01-02/close",
        "close-1",
        Value::Null,
    )
    .await;
    assert_eq!(code, 201, "{answer}");
    let (code, answer) = post(&cat, &a, &disable("mia"), "", Value::Null).await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (403, Some("role_forbidden")),
        "{answer}"
    );
    let (code, answer) = post(&mia, &a, &disable("ada"), "", Value::Null).await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (403, Some("role_forbidden")),
        "{answer}"
    );
    let applied = settled_applied_index(&client, &a).await;
    let (code, answer) = post(&ada, &a, &disable("ada"), "", Value::Null).await;
    assert_eq!(
        (
            code,
            answer["error"]["code"].as_str(),
            answer["error"]["field"].as_str()
        ),
        (409, Some("last_admin"), Some("operator_id")),
        "the request has no role: {answer}"
    );
    let (code, answer) = post(&mia, &a, &disable("nobody"), "", Value::Null).await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (404, Some("operator_not_found")),
        "{answer}"
    );
    let (code, answer) = post(
        &mia,
        &a,
        "/v1/days/2000-01-02/close",
        "close-2",
        Value::Null,
    )
    .await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (409, Some("day_already_closed")),
        "{answer}"
    );
    assert_eq!(
        settled_applied_index(&client, &a).await,
        applied,
        "refusals decided by the state take no Raft entry"
    );
    // The retry of the recorded close still replays (through the log).
    let (code, answer) = post(
        &mia,
        &a,
        "/v1/days/2000-01-02/close",
        "close-1",
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{answer}");

    // The manager disables cat from the command line (PIN on stdin): cat's open shift
    // closes in the same entry.
    let (ok, stdout, stderr) = cli(
        &[
            "operator",
            "disable",
            "--operator",
            "cat",
            "--as",
            "mia",
            "--api",
            &a.api,
        ],
        "2468\n",
    );
    assert!(ok, "{stdout} {stderr}");
    assert!(
        stdout.starts_with("operator cat disabled for good by mia (log index ")
            && stdout.contains("closed open shift(s) sh-c"),
        "{stdout}"
    );
    let shifts = get(&mia, &a.api, "/v1/shifts").await;
    let closed = &shifts["sh-c"];
    assert!(closed["closed"].is_array(), "{shifts}");
    assert_eq!(closed["closed_because"], "operator_disabled", "{shifts}");
    assert_eq!(
        verify_pin(&client, &a, "cat", "1111").await.0,
        401,
        "cat's PIN opens nothing"
    );
    // Disabled for good: cat's id is never set again, nor disabled twice; no entry taken.
    let applied = settled_applied_index(&client, &a).await;
    let (code, answer) = set_operator(
        &client,
        &a,
        Some(ADA),
        json!({"operator_id": "cat", "name": "Cat", "role": "cashier", "pin": "1111"}),
    )
    .await;
    assert_eq!(
        (
            code,
            answer["error"]["code"].as_str(),
            answer["error"]["field"].as_str()
        ),
        (409, Some("operator_disabled"), Some("operator_id")),
        "{answer}"
    );
    let (code, answer) = post(&mia, &a, &disable("cat"), "", Value::Null).await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (409, Some("operator_disabled")),
        "{answer}"
    );
    assert_eq!(settled_applied_index(&client, &a).await, applied);
    // Without --as the command says what it needs.
    let (ok, _, stderr) = cli(
        &["operator", "disable", "--operator", "mia", "--api", &a.api],
        "",
    );
    assert!(!ok && stderr.contains("--as"), "{stderr}");
    let listed = get(&mia, &a.api, "/v1/operators").await;
    assert!(!listed.to_string().contains("\"cat\""), "{listed}");
    a.stop().expect("stopped");
}

/// `posmesh store revoke-certificate SERIAL --as ada`: an admin's (a manager is refused
/// with the node's `role_forbidden`), PIN on stdin; the revocation is committed and
/// printed with its log index; a second one is `already_revoked` without a Raft entry; a
/// serial not written as the CA prints it is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_revokes_a_certificate_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let a = one_device_store(&client, dir.path()).await;
    bootstrap_ada(&client, &a).await;
    let (code, set) = set_operator(
        &client,
        &a,
        Some(ADA),
        json!({"operator_id": "mia", "name": "Mia", "role": "manager", "pin": "2468"}),
    )
    .await;
    assert_eq!(code, 201, "{set}");
    let revoke = |serial: &str, by: &str, pin: &str| {
        cli(
            &[
                "store",
                "revoke-certificate",
                serial,
                "--as",
                by,
                "--api",
                &a.api,
            ],
            &format!("{pin}\n"),
        )
    };
    let (ok, _, stderr) = revoke("0c", "mia", "2468");
    assert!(!ok && stderr.contains("role_forbidden"), "{stderr}");
    let (ok, _, stderr) = revoke("0c", "ada", "0000");
    assert!(!ok && stderr.contains("pin_mismatch"), "{stderr}");
    let (ok, _, stderr) = revoke("00", "ada", "8642");
    assert!(!ok && stderr.contains("serial \"00\": zero"), "{stderr}");
    let (ok, _, stderr) = cli(&["store", "revoke-certificate", "0c", "--api", &a.api], "");
    assert!(!ok && stderr.contains("operator_required"), "{stderr}");
    // Upper case, as `openssl x509 -serial` prints it: recorded in lower case.
    let (ok, stdout, stderr) = revoke("0C", "ada", "8642");
    assert!(ok, "{stdout} {stderr}");
    assert!(
        stdout.starts_with("revoked certificate 0c store-wide from log index ")
            && stdout.contains("(by ada)"),
        "{stdout}"
    );
    let index = stdout
        .trim_start_matches("revoked certificate 0c store-wide from log index ")
        .split(' ')
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .expect("an index");
    // The status's applied index (openraft's metrics) may trail the answer a moment.
    let applied = settled_applied_index(&client, &a).await;
    assert!(
        applied.as_u64().is_some_and(|i| i >= index),
        "applied {applied}, revoked at {index}"
    );
    let (ok, _, stderr) = revoke("0c", "ada", "8642");
    assert!(!ok && stderr.contains("already_revoked"), "{stderr}");
    assert_eq!(
        settled_applied_index(&client, &a).await,
        applied,
        "no entry taken"
    );
    a.stop().expect("stopped");
}
