//! The connector against the simulator binary on loopback: approve, decline by rule,
//! timeout → reversal, drop, unreachable, duplicate authorization → one charge, advice and
//! repeat advices → one unique arrival.

use crate::support::{connector_to, payment, Sim, MASTERCARD, VISA};
use posmesh_payments::connector::{
    AuthorizationOutcome, ForwardOutcome, PaymentConnector, ReversalStatus,
};

#[tokio::test]
async fn approves_by_default() {
    let sim = Sim::start(&[]);
    let outcome = sim
        .connector(2_000)
        .authorize(&payment("s1", 1_250, VISA), false)
        .await;
    let AuthorizationOutcome::Approved { auth_id, stan, rrn } = outcome else {
        panic!("expected approval, got {outcome:?}");
    };
    assert_eq!((auth_id.len(), stan.len(), rrn.len()), (6, 6, 12));
    assert_eq!(sim.arrivals("authorization"), (1, 1));
    assert_eq!(sim.counter("charges"), 1);
    assert_eq!(sim.stats()["charged_minor"], 1_250);
}

#[tokio::test]
async fn declines_by_rule_with_a_reason() {
    let sim = Sim::start(&[
        "--decline-amount-over",
        "5000:61",
        "--decline-pan-prefix",
        "5555",
    ]);
    let connector = sim.connector(2_000);
    let over = connector
        .authorize(&payment("s1", 6_000, VISA), false)
        .await;
    assert_eq!(
        over,
        AuthorizationOutcome::Declined {
            response_code: "61".into(),
            reason: "exceeds withdrawal amount limit"
        }
    );
    let card = connector
        .authorize(&payment("s2", 100, MASTERCARD), true)
        .await;
    assert_eq!(
        card,
        AuthorizationOutcome::Declined {
            response_code: "05".into(),
            reason: "do not honour"
        }
    );
    let fine = connector
        .authorize(&payment("s3", 5_000, VISA), false)
        .await;
    assert!(
        matches!(fine, AuthorizationOutcome::Approved { .. }),
        "{fine:?}"
    );
    assert_eq!(sim.counter("declined"), 2);
    assert_eq!(sim.counter("charges"), 1);
}

#[tokio::test]
async fn timeout_sends_a_reversal_and_nothing_is_charged() {
    let sim = Sim::start(&["--fault", "timeout"]);
    let outcome = sim
        .connector(300)
        .authorize(&payment("s1", 999, VISA), false)
        .await;
    let AuthorizationOutcome::NotApproved { cause, reversal } = outcome else {
        panic!("expected not approved, got {outcome:?}");
    };
    assert!(cause.contains("no response within 300 ms"), "{cause}");
    assert_eq!(
        reversal,
        ReversalStatus::Acknowledged {
            response_code: "00".into()
        }
    );
    // The simulator processed (charged) the authorization, then the reversal undid it.
    assert_eq!(sim.arrivals("authorization"), (1, 1));
    assert_eq!(sim.arrivals("reversal"), (1, 1));
    assert_eq!(sim.counter("reversed"), 1);
    assert_eq!(sim.counter("charges"), 0);
    assert_eq!(sim.stats()["raw_by_mti"]["0400"], 1);
}

#[tokio::test]
async fn a_dropped_connection_is_not_approved_and_reversed() {
    let sim = Sim::start(&["--fault", "drop", "--fault-mtis", "0200"]);
    let outcome = sim
        .connector(2_000)
        .authorize(&payment("s1", 700, VISA), true)
        .await;
    assert!(
        matches!(
            &outcome,
            AuthorizationOutcome::NotApproved {
                reversal: ReversalStatus::Acknowledged { .. },
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(sim.counter("charges"), 0);
    assert_eq!(sim.counter("reversed"), 1);
}

#[tokio::test]
async fn an_unreachable_acquirer_is_not_approved() {
    // Nothing listens on the port: the request never left, no reversal needed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = free.local_addr().expect("addr");
    drop(free);
    let outcome = connector_to(addr, 1_000)
        .authorize(&payment("s1", 100, VISA), false)
        .await;
    assert!(
        matches!(
            &outcome,
            AuthorizationOutcome::NotApproved {
                reversal: ReversalStatus::NotNeeded,
                ..
            }
        ),
        "{outcome:?}"
    );
    let advice = connector_to(addr, 1_000)
        .forward(&payment("s1", 100, VISA), false)
        .await;
    assert!(
        matches!(advice, ForwardOutcome::NotSent { .. }),
        "nothing left: the next send is still a 0220: {advice:?}"
    );
    // The simulator closes every connection at once: the request may have been written,
    // so a reversal is attempted, fails the same way, and is left pending for a resend.
    let sim = Sim::start(&["--fault", "unreachable"]);
    let outcome = sim
        .connector(1_000)
        .authorize(&payment("s1", 100, VISA), false)
        .await;
    match outcome {
        AuthorizationOutcome::NotApproved {
            reversal: ReversalStatus::Pending { reversal, .. },
            ..
        } => {
            assert_eq!(reversal.mti().code(), "0400");
        }
        other => panic!("expected a pending reversal, got {other:?}"),
    }
    assert_eq!(sim.counter("raw_arrivals"), 0);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_the_pending_reversal_is_resent_as_0401() {
    let sim = Sim::start(&["--delay-ms", "400"]);
    let outcome = sim
        .connector(150)
        .authorize(&payment("s1", 300, VISA), false)
        .await;
    let AuthorizationOutcome::NotApproved {
        reversal: ReversalStatus::Pending { reversal, .. },
        ..
    } = outcome
    else {
        panic!("expected a pending reversal, got {outcome:?}");
    };
    let resent = sim.connector(2_000).resend_reversal(&reversal).await;
    assert_eq!(
        resent,
        ReversalStatus::Acknowledged {
            response_code: "00".into()
        }
    );
    assert_eq!(
        sim.arrivals("reversal"),
        (2, 1),
        "0400 and its 0401 repeat: one reversal"
    );
    assert_eq!(sim.stats()["raw_by_mti"]["0401"], 1);
    assert_eq!(sim.counter("charges"), 0);
}

#[tokio::test]
async fn a_retried_authorization_charges_once() {
    let sim = Sim::start(&[]);
    let connector = sim.connector(2_000);
    let p = payment("till-1/77", 2_500, VISA);
    let first = connector.authorize(&p, false).await;
    let again = connector.authorize(&p, false).await;
    assert!(
        matches!(first, AuthorizationOutcome::Approved { .. }),
        "{first:?}"
    );
    assert_eq!(first, again, "the duplicate gets the original answer");
    assert_eq!(sim.arrivals("authorization"), (2, 1));
    assert_eq!(sim.counter("charges"), 1);
    assert_eq!(sim.stats()["charged_minor"], 2_500);
    // Another tender of the same sale is another transaction.
    let mut second_tender = p.clone();
    second_tender.reference.tender_index = 1;
    connector.authorize(&second_tender, false).await;
    assert_eq!(sim.arrivals("authorization"), (3, 2));
}

#[tokio::test]
async fn an_advice_and_its_repeats_are_accepted_exactly_once() {
    let sim = Sim::start(&[]);
    let connector = sim.connector(2_000);
    let p = payment("till-2/5", 1_800, VISA);
    assert_eq!(connector.forward(&p, false).await, ForwardOutcome::Accepted);
    assert_eq!(connector.forward(&p, true).await, ForwardOutcome::Accepted);
    assert_eq!(connector.forward(&p, true).await, ForwardOutcome::Accepted);
    assert_eq!(sim.arrivals("advice"), (3, 1));
    assert_eq!(sim.stats()["raw_by_mti"]["0221"], 2);
    assert_eq!(sim.counter("charges"), 1);
}

#[tokio::test]
async fn an_advice_lost_to_a_timeout_is_repeated_as_0221_with_the_same_stan() {
    let sim = Sim::start(&[
        "--fault",
        "timeout",
        "--fault-mtis",
        "0220,0221",
        "--fault-count",
        "1",
    ]);
    let connector = sim.connector(300);
    let p = payment("till-2/6", 900, VISA);
    let first = connector.forward(&p, false).await;
    assert!(matches!(first, ForwardOutcome::Failed { .. }), "{first:?}");
    assert_eq!(connector.forward(&p, true).await, ForwardOutcome::Accepted);
    assert_eq!(sim.arrivals("advice"), (2, 1));
    let stats = sim.stats();
    let txns = stats["transactions"].as_array().expect("transactions");
    assert_eq!(txns.len(), 1);
    assert_eq!(txns[0]["raw"], 2);
    assert_eq!(sim.counter("charges"), 1);
}

#[tokio::test]
async fn an_advice_declined_after_forwarding_is_reported() {
    let sim = Sim::start(&["--decline-pan-range", "555555-555599:54"]);
    let outcome = sim
        .connector(2_000)
        .forward(&payment("till-3/1", 400, MASTERCARD), false)
        .await;
    assert_eq!(
        outcome,
        ForwardOutcome::Declined {
            response_code: "54".into(),
            reason: "expired card"
        }
    );
}
