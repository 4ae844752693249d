//! Guarded store-wide writes sent without an Idempotency-Key — operator changes and
//! disabling — reaching the followers right after the leader's SIGKILL: forwarded to the
//! dead leader (still heard lately), their answers lost with it, they are sent again to
//! the next leader under the key the device assigned them before the first send, and
//! answer success, each applied once (a second, unkeyed application of the disable would
//! be refused: `operator_disabled`).

use super::consensus_loopback::{raft, start_store, wait_leader};
use super::staff_loopback::set_operator;
use super::support;
use posmesh_node::node_process::NodeProcess;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The store's first operator, admin `ada`.
const ADA: (&str, &str) = ("ada", "8642");

/// Waits (bounded) until `node` knows operator `id` with `pin`: its PIN checks there.
pub(super) async fn wait_operator(
    client: &reqwest::Client,
    node: &NodeProcess,
    id: &str,
    pin: &str,
) {
    let started = Instant::now();
    loop {
        let status = client
            .post(format!("http://{}/v1/operators/{id}/verify-pin", node.api))
            .json(&json!({ "pin": pin }))
            .send()
            .await
            .expect("answers")
            .status()
            .as_u16();
        if status == 200 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{id} never reached {}",
            node.api
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST path` on `node` as `ada`, no Idempotency-Key: (status, answer).
async fn post_as_ada(node: &NodeProcess, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = support::http_client_as(ADA).post(format!("http://{}{path}", node.api));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkeyed_guarded_writes_sent_right_after_the_leaders_kill_commit_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let (a, b, c) = start_store(&client, dir.path()).await;
    let leader = wait_leader(&client, &[&a, &b, &c], 3, None).await;
    assert_eq!(leader, "till-1");
    let op = |id: &str, role: &str, pin: &str| json!({"operator_id": id, "name": id, "role": role, "pin": pin});
    let (code, set) = set_operator(&client, &a, None, op("ada", "admin", ADA.1)).await;
    assert_eq!(code, 201, "{set}");
    let (code, set) = set_operator(&client, &a, Some(ADA), op("cat", "cashier", "1111")).await;
    assert_eq!(code, 201, "{set}");
    for node in [&b, &c] {
        wait_operator(&client, node, "ada", ADA.1).await;
        wait_operator(&client, node, "cat", "1111").await;
    }

    a.kill().expect("SIGKILL the leader");
    let killed = Instant::now();
    let after = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    let (cal, dan, disabled, eve) = tokio::join!(
        async { post_as_ada(&b, "/v1/operators", Some(op("cal", "cashier", "2222"))).await },
        async {
            after(10).await;
            post_as_ada(&c, "/v1/operators", Some(op("dan", "supervisor", "3333"))).await
        },
        async { post_as_ada(&c, "/v1/operators/cat/disable", None).await },
        async {
            after(10).await;
            post_as_ada(&b, "/v1/operators", Some(op("eve", "cashier", "4444"))).await
        },
    );
    let answered = killed.elapsed();
    for (what, (code, answer)) in [
        ("set cal", &cal),
        ("set dan", &dan),
        ("disable cat", &disabled),
        ("set eve", &eve),
    ] {
        assert_eq!(
            *code, 201,
            "{what}, sent right after the leader's kill, commits through the next leader: {answer}"
        );
    }
    println!(
        "4 unkeyed guarded writes sent right after the leader's kill answered within {answered:?}"
    );

    // Applied once each, on the new leader's state.
    let leader = wait_leader(&client, &[&b, &c], 3, Some("till-1")).await;
    assert_ne!(leader, "till-1");
    let listed = support::http_client_as(ADA)
        .get(format!("http://{}/v1/operators", b.api))
        .send()
        .await
        .expect("answers");
    assert_eq!(listed.status().as_u16(), 200);
    let listed: Value = listed.json().await.expect("JSON");
    let mut roles: Vec<(String, String)> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| {
            (
                o["operator_id"].as_str().unwrap_or_default().to_owned(),
                o["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    roles.sort();
    let expected: Vec<(String, String)> = [
        ("ada", "admin"),
        ("cal", "cashier"),
        ("dan", "supervisor"),
        ("eve", "cashier"),
    ]
    .iter()
    .map(|(id, role)| ((*id).to_owned(), (*role).to_owned()))
    .collect();
    assert_eq!(roles, expected, "{listed}");
    // The disable committed: a new one is refused, nothing changes.
    let (code, again) = post_as_ada(&c, "/v1/operators/cat/disable", None).await;
    assert_eq!(
        (code, again["error"]["code"].as_str()),
        (409, Some("operator_disabled")),
        "{again}"
    );
    b.stop().expect("stopped");
    c.stop().expect("stopped");
}

/// A device removal (the dead leader's own) and a gift-card balance read sent to the
/// followers right after the leader's SIGKILL: forwarded to the dead leader (still heard
/// lately), their answers lost with it, the removal is sent again under its key and the
/// read asked again, both of the next leader — neither answers `no_quorum` while the two
/// survivors are a majority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_and_a_balance_read_sent_right_after_the_leaders_kill_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let (a, b, c) = start_store(&client, dir.path()).await;
    let leader = wait_leader(&client, &[&a, &b, &c], 3, None).await;
    assert_eq!(leader, "till-1");
    let op = json!({"operator_id": "ada", "name": "ada", "role": "admin", "pin": ADA.1});
    let (code, set) = set_operator(&client, &a, None, op).await;
    assert_eq!(code, 201, "{set}");
    let issued = support::http_client_as(ADA)
        .post(format!("http://{}/v1/gift-cards", a.api))
        .header("Idempotency-Key", "issue-gc1")
        .json(&json!({"card_id": "GC1", "amount_minor": 1500, "currency": "GBP"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(issued.status().as_u16(), 201);
    for node in [&b, &c] {
        wait_operator(&client, node, "ada", ADA.1).await;
    }

    a.kill().expect("SIGKILL the leader");
    let (removed, balance) = tokio::join!(
        post_as_ada(&b, "/v1/store/devices/till-1/remove", None),
        async {
            let response = client
                .get(format!("http://{}/v1/gift-cards/GC1", c.api))
                .send()
                .await
                .expect("answers");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        },
    );
    assert_eq!(
        removed.0, 200,
        "the removal commits through the next leader: {}",
        removed.1
    );
    assert_eq!(
        balance.0, 200,
        "the read is asked again of the next leader: {}",
        balance.1
    );
    assert_eq!(balance.1["balance_minor"], 1500, "{}", balance.1);
    // till-1 is out of the group: the two survivors agree on a leader among themselves and
    // neither lists till-1 (as voter or learner; two devices keep one voter and a learner,
    // so the voter count is not asserted).
    let started = Instant::now();
    loop {
        let views = [raft(&client, &b).await, raft(&client, &c).await];
        let members = |v: &Value| {
            ["voters", "learners"]
                .iter()
                .flat_map(|k| v[*k].as_array().cloned().unwrap_or_default())
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        let leader = views[0]["leader"].as_str();
        let agreed = leader.is_some()
            && leader != Some("till-1")
            && views.iter().all(|v| v["leader"].as_str() == leader)
            && views
                .iter()
                .all(|v| !members(v).iter().any(|m| m == "till-1"));
        if agreed {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "till-1 still in the group or no agreed leader: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.stop().expect("stopped");
    c.stop().expect("stopped");
}
