//! Orders: edits, persistence, sync between books under partitions, refusals.

use super::*;
use crate::replication::PeerId;
use proptest::prelude::*;

fn book(device: &str, session: u64) -> OrderBook {
    OrderBook::new(
        device,
        order_actor(device, 1, session),
        OrderBookConfig::default(),
    )
}

fn peer(name: &str) -> PeerId {
    PeerId(name.to_owned())
}

/// Delivers messages between `books` (index = name order) until quiet; links in `cut` are
/// down. Returns the number of messages delivered.
fn pump(books: &mut [(&str, OrderBook)]) -> usize {
    let mut delivered = 0;
    for _round in 0..1_000 {
        let mut queue = Vec::new();
        for (from, book) in books.iter_mut() {
            while let Some((to, message)) = book.poll_transmit() {
                queue.push((peer(from), to, message));
            }
            while book.poll_event().is_some() {}
        }
        if queue.is_empty() {
            return delivered;
        }
        for (from, to, message) in queue {
            let (_, target) = books
                .iter_mut()
                .find(|(name, _)| *name == to.0)
                .expect("known peer");
            target
                .handle_message(&from, &message)
                .expect("valid message");
            delivered += 1;
        }
    }
    panic!("order sync did not quiesce");
}

fn connect(books: &mut [(&str, OrderBook)], a: usize, b: usize) {
    let (name_a, name_b) = (books[a].0, books[b].0);
    books[a].1.handle_connected(peer(name_b), 0);
    books[b].1.handle_connected(peer(name_a), 0);
}

fn disconnect(books: &mut [(&str, OrderBook)], a: usize, b: usize) {
    let (name_a, name_b) = (books[a].0, books[b].0);
    books[a].1.handle_disconnected(&peer(name_b));
    books[b].1.handle_disconnected(&peer(name_a));
}

fn add(book: &mut OrderBook, order: &str, line: &str, sku: &str, quantity: i64) -> OrderView {
    book.edit(
        order,
        &OrderEdit::AddLine {
            line_id: line.to_owned(),
            sku: sku.to_owned(),
            quantity,
        },
        1_000,
    )
    .expect("add line")
}

#[test]
fn concurrent_edits_in_a_partition_both_survive_the_merge() {
    let mut books = vec![("till-1", book("till-1", 1)), ("till-2", book("till-2", 1))];
    books[0]
        .1
        .create("till-1-tab", 1_000, Some("12"), None)
        .expect("create");
    connect(&mut books, 0, 1);
    pump(&mut books);
    assert!(books[1].1.view("till-1-tab").expect("view").is_some());
    disconnect(&mut books, 0, 1);

    add(&mut books[0].1, "till-1-tab", "till-1-a", "BREAD", 2);
    add(&mut books[1].1, "till-1-tab", "till-2-a", "COFFEE", 1);
    books[1]
        .1
        .edit(
            "till-1-tab",
            &OrderEdit::SetCustomer(Some("Ann".into())),
            1_001,
        )
        .expect("customer");

    connect(&mut books, 0, 1);
    pump(&mut books);
    let a = books[0].1.view("till-1-tab").expect("view").expect("held");
    let b = books[1].1.view("till-1-tab").expect("view").expect("held");
    assert_eq!(a, b);
    let skus: Vec<&str> = a.lines.iter().map(|l| l.sku.as_str()).collect();
    assert_eq!(skus.len(), 2);
    assert!(skus.contains(&"BREAD") && skus.contains(&"COFFEE"));
    assert_eq!(a.customer.as_deref(), Some("Ann"));
    assert_eq!(a.table.as_deref(), Some("12"));
    assert_eq!(books[0].1.digest(), books[1].1.digest());
}

#[test]
fn concurrent_quantity_sets_resolve_identically_and_removal_wins_over_a_change() {
    let mut books = vec![
        ("till-1", book("till-1", 1)),
        ("till-2", book("till-2", 1)),
        ("till-3", book("till-3", 1)),
    ];
    books[0].1.create("o-1", 0, None, None).expect("create");
    add(&mut books[0].1, "o-1", "l-1", "BREAD", 1);
    add(&mut books[0].1, "o-1", "l-2", "TEA", 1);
    connect(&mut books, 0, 1);
    connect(&mut books, 0, 2);
    connect(&mut books, 1, 2);
    pump(&mut books);
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        disconnect(&mut books, a, b);
    }
    let set = |q| OrderEdit::SetQuantity {
        line_id: "l-1".into(),
        quantity: q,
    };
    books[0].1.edit("o-1", &set(3), 5).expect("set");
    books[1].1.edit("o-1", &set(4), 5).expect("set");
    books[2]
        .1
        .edit(
            "o-1",
            &OrderEdit::RemoveLine {
                line_id: "l-2".into(),
            },
            5,
        )
        .expect("remove");
    books[1]
        .1
        .edit(
            "o-1",
            &OrderEdit::SetQuantity {
                line_id: "l-2".into(),
                quantity: 9,
            },
            5,
        )
        .expect("set removed elsewhere");
    connect(&mut books, 0, 1);
    connect(&mut books, 1, 2);
    pump(&mut books);
    let views: Vec<OrderView> = books
        .iter()
        .map(|(_, b)| b.view("o-1").expect("view").expect("held"))
        .collect();
    assert_eq!(views[0], views[1]);
    assert_eq!(views[1], views[2]);
    assert_eq!(views[0].lines.len(), 1, "the removed line stays removed");
    assert!([3, 4].contains(&views[0].lines[0].quantity));
}

#[test]
fn incremental_saves_reload_to_the_same_order_and_compaction_keeps_it() {
    let mut a = book("till-1", 1);
    a.create("o-9", 0, Some("4"), None).expect("create");
    let mut stored = a.save_incremental("o-9").expect("held");
    for i in 0..20 {
        add(&mut a, "o-9", &format!("l-{i}"), "BREAD", i + 1);
        stored.extend(a.save_incremental("o-9").expect("held"));
    }
    let view = a.view("o-9").expect("view");
    let mut restarted = book("till-1", 2);
    restarted.load("o-9", &stored).expect("load chunks");
    assert_eq!(restarted.view("o-9").expect("view"), view);
    let compacted = restarted.save("o-9").expect("held");
    let mut again = book("till-1", 3);
    again.load("o-9", &compacted).expect("load compacted");
    assert_eq!(again.view("o-9").expect("view"), view);
    assert_eq!(again.digest(), a.digest());
    // The new session edits as a new actor: no sequence clash with the lost one.
    add(&mut again, "o-9", "l-new", "TEA", 1);
}

#[test]
fn bad_edits_are_refused_and_change_nothing() {
    let mut a = book("till-1", 1);
    a.create("o-1", 0, None, None).expect("create");
    add(&mut a, "o-1", "l-1", "BREAD", 1);
    let before = a.digest();
    let cases = [
        OrderEdit::AddLine {
            line_id: "l-1".into(),
            sku: "TEA".into(),
            quantity: 1,
        },
        OrderEdit::AddLine {
            line_id: "l-2".into(),
            sku: "TEA".into(),
            quantity: 0,
        },
        OrderEdit::AddLine {
            line_id: "L 2".into(),
            sku: "TEA".into(),
            quantity: 1,
        },
        OrderEdit::SetQuantity {
            line_id: "l-1".into(),
            quantity: ORDER_QUANTITY_MAX + 1,
        },
        OrderEdit::SetQuantity {
            line_id: "nope".into(),
            quantity: 2,
        },
        OrderEdit::RemoveLine {
            line_id: "nope".into(),
        },
        OrderEdit::SetTable(Some("x".repeat(101))),
        OrderEdit::SetCustomer(Some("a\nb".into())),
    ];
    for edit in &cases {
        assert!(a.edit("o-1", edit, 1).is_err(), "{edit:?} accepted");
    }
    assert_eq!(
        a.edit("o-2", &OrderEdit::SetTable(None), 1),
        Err(OrderError::NotFound("o-2".into()))
    );
    assert_eq!(
        a.create("o-1", 0, None, None).err(),
        Some(OrderError::AlreadyExists("o-1".into()))
    );
    assert_eq!(a.digest(), before);
    assert_eq!(a.save_incremental("o-1").map(|b| b.is_empty()), Some(false));
}

#[test]
fn garbage_from_a_peer_is_refused_and_changes_nothing() {
    let mut a = book("till-1", 1);
    a.create("o-1", 0, None, None).expect("create");
    a.handle_connected(peer("till-2"), 0);
    while a.poll_transmit().is_some() {}
    let before = a.digest();
    let bad = [
        posmesh_proto::sync::v1::OrderSyncMessage {
            order_id: "o-1".into(),
            automerge_sync: vec![0x42, 1, 2, 3],
            reset: false,
        },
        posmesh_proto::sync::v1::OrderSyncMessage {
            order_id: "Bad/Id".into(),
            automerge_sync: Vec::new(),
            reset: false,
        },
    ];
    for message in &bad {
        assert!(a.handle_message(&peer("till-2"), message).is_err());
    }
    assert_eq!(a.digest(), before);
    assert_eq!(a.len(), 1);
    assert_eq!(a.stats().messages_refused, 2);
    let refusals = std::iter::from_fn(|| a.poll_event())
        .filter(|e| matches!(e, OrderEvent::Refused { .. }))
        .count();
    assert_eq!(refusals, 2);
}

#[test]
fn a_full_book_refuses_orders_from_peers() {
    let config = OrderBookConfig {
        orders_max: 1,
        ..OrderBookConfig::default()
    };
    let mut full = OrderBook::new("till-2", order_actor("till-2", 1, 1), config);
    full.create("o-mine", 0, None, None).expect("create");
    let mut books = [("till-1", book("till-1", 1)), ("till-2", full)];
    books[0]
        .1
        .create("o-theirs", 0, None, None)
        .expect("create");
    books[0].1.handle_connected(peer("till-2"), 0);
    let (_, message) = books[0].1.poll_transmit().expect("offer");
    assert_eq!(
        books[1].1.handle_message(&peer("till-1"), &message),
        Err(OrderError::TooManyOrders(1))
    );
    assert_eq!(books[1].1.len(), 1);
}

#[test]
fn a_resync_recovers_a_lost_message() {
    let mut books = vec![("till-1", book("till-1", 1)), ("till-2", book("till-2", 1))];
    books[0].1.create("o-1", 0, None, None).expect("create");
    connect(&mut books, 0, 1);
    // The first offer is lost on the wire: the session stalls waiting for an answer.
    while books[0].1.poll_transmit().is_some() {}
    pump(&mut books);
    assert!(books[1].1.view("o-1").expect("view").is_none());
    let resync = OrderBookConfig::default().resync_interval_ms;
    books[0].1.handle_timeout(resync);
    books[1].1.handle_timeout(resync);
    pump(&mut books);
    assert!(books[1].1.view("o-1").expect("view").is_some());
    assert_eq!(books[0].1.digest(), books[1].1.digest());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random edits on three devices under random partitions: after a full heal every device
    /// holds the same orders, the same lines, and every line added and never removed.
    #[test]
    fn random_edits_and_partitions_converge(
        steps in proptest::collection::vec((0usize..3, 0u8..6, 0u8..4, 1i64..5), 1..60),
    ) {
        let names = ["till-1", "till-2", "till-3"];
        let mut books: Vec<(&str, OrderBook)> =
            names.iter().map(|n| (*n, book(n, 1))).collect();
        books[0].1.create("o-1", 0, None, None).expect("create");
        books[1].1.create("o-2", 0, None, None).expect("create");
        connect(&mut books, 0, 1);
        connect(&mut books, 1, 2);
        connect(&mut books, 0, 2);
        pump(&mut books);
        let mut up = [true; 3]; // links 0-1, 1-2, 0-2
        let pairs = [(0, 1), (1, 2), (0, 2)];
        let mut added = std::collections::BTreeSet::new();
        let mut removed = std::collections::BTreeSet::new();
        for (i, (device, op, target, quantity)) in steps.iter().enumerate() {
            let order = if target % 2 == 0 { "o-1" } else { "o-2" };
            let line = format!("{}-l{}", names[*device], i);
            let book = &mut books[*device].1;
            match op {
                0 | 1 => {
                    if book.edit(order, &OrderEdit::AddLine {
                        line_id: line.clone(), sku: "BREAD".into(), quantity: *quantity,
                    }, i as i64).is_ok() {
                        added.insert(line);
                    }
                }
                2 => {
                    if let Some(first) = book.view(order).expect("view").and_then(|v| v.lines.first().cloned()) {
                        book.edit(order, &OrderEdit::SetQuantity {
                            line_id: first.line_id, quantity: *quantity,
                        }, i as i64).expect("set");
                    }
                }
                3 => {
                    if let Some(last) = book.view(order).expect("view").and_then(|v| v.lines.last().cloned()) {
                        book.edit(order, &OrderEdit::RemoveLine { line_id: last.line_id.clone() }, i as i64).expect("remove");
                        removed.insert(last.line_id);
                    }
                }
                _ => {
                    let link = usize::from(*target % 3);
                    let (a, b) = pairs[link];
                    if up[link] { disconnect(&mut books, a, b) } else { connect(&mut books, a, b) }
                    up[link] = !up[link];
                }
            }
            pump(&mut books);
        }
        for (link, (a, b)) in pairs.iter().enumerate() {
            if !up[link] { connect(&mut books, *a, *b); }
        }
        pump(&mut books);
        let digest = books[0].1.digest();
        for (_, book) in &mut books {
            prop_assert_eq!(book.digest(), digest);
        }
        for order in ["o-1", "o-2"] {
            let view = books[2].1.view(order).expect("view").expect("held");
            for line in &view.lines {
                prop_assert!(!removed.contains(&line.line_id));
            }
            let present: std::collections::BTreeSet<_> = view.lines.iter().map(|l| l.line_id.clone()).collect();
            for line in added.iter().filter(|l| !removed.contains(*l)) {
                // Lines of the other order are not expected here.
                let in_other = books[2].1.view(if order == "o-1" { "o-2" } else { "o-1" })
                    .expect("view").expect("held").lines.iter().any(|l| &l.line_id == line);
                prop_assert!(present.contains(line) || in_other, "line {} lost", line);
            }
        }
    }
}
