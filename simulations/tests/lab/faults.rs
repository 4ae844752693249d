//! Link cuts, packet loss, bandwidth limits and the delay relay.

use std::time::Duration;

use posmesh_simulations::lab::{LabError, PacketFilter};

use crate::support::{bounded, echo, echo_server, new_lab, shared, tcp_transfer_ms};

#[test]
fn cut_link_stops_traffic_and_heal_link_restores_it() {
    bounded("cut_link_stops_traffic_and_heal_link_restores_it", || {
        let _guard = shared();
        let lab = new_lab(3);
        let port = 7001;
        let _servers: Vec<_> = lab.hosts().iter().map(|h| echo_server(h, port)).collect();
        assert!(echo(lab.host(1), lab.host(2).addr(port), 10, 0.5).is_some());

        lab.cut_link(2).expect("cut");
        assert_eq!(
            echo(lab.host(1), lab.host(2).addr(port), 3, 0.3),
            None,
            "h1 -> cut h2"
        );
        assert_eq!(
            echo(lab.host(2), lab.host(3).addr(port), 3, 0.3),
            None,
            "cut h2 -> h3"
        );
        assert!(
            echo(lab.host(1), lab.host(3).addr(port), 10, 0.5).is_some(),
            "h1 and h3 are unaffected"
        );

        lab.heal_link(2).expect("heal");
        assert!(
            echo(lab.host(1), lab.host(2).addr(port), 20, 0.5).is_some(),
            "healed h2"
        );
        assert!(
            echo(lab.host(2), lab.host(3).addr(port), 20, 0.5).is_some(),
            "healed h2 out"
        );
        lab.close().expect("teardown");
    });
}

#[test]
fn drop_packets_everything_then_clear() {
    bounded("drop_packets_everything_then_clear", || {
        let _guard = shared();
        let lab = new_lab(2);
        let port = 7002;
        let _server = echo_server(lab.host(1), port);
        assert!(echo(lab.host(2), lab.host(1).addr(port), 10, 0.5).is_some());

        lab.drop_packets(1, 1.0).expect("drop all");
        let filter = lab.packet_filter().expect("a packet filter was chosen");
        eprintln!("drop_packets uses {filter}");
        assert_eq!(echo(lab.host(2), lab.host(1).addr(port), 5, 0.3), None);
        // Traffic inside the host (over loopback, even to its own lab address) is not affected.
        assert!(echo(lab.host(1), lab.host(1).addr(port), 5, 0.5).is_some());

        lab.clear_drops(1).expect("clear");
        assert!(echo(lab.host(2), lab.host(1).addr(port), 10, 0.5).is_some());
        // Loss on the sending host: its datagrams vanish, its sendto() still succeeds.
        lab.drop_packets(2, 1.0).expect("drop all of h2");
        assert_eq!(echo(lab.host(2), lab.host(1).addr(port), 5, 0.3), None);
        lab.clear_drops(2).expect("clear h2");
        assert!(echo(lab.host(2), lab.host(1).addr(port), 10, 0.5).is_some());
        // Clearing twice is harmless; bad probabilities are refused.
        lab.clear_drops(1).expect("clear again");
        assert!(matches!(
            lab.drop_packets(1, 1.5),
            Err(LabError::InvalidArgument(_))
        ));
        assert!(matches!(
            lab.drop_packets(9, 0.5),
            Err(LabError::NoSuchHost { .. })
        ));
        lab.close().expect("teardown");
    });
}

#[test]
fn partial_loss_loses_some_but_not_all() {
    bounded("partial_loss_loses_some_but_not_all", || {
        let _guard = shared();
        let lab = new_lab(2);
        let port = 7005;
        let _server = echo_server(lab.host(1), port);
        lab.drop_packets(1, 0.5).expect("drop half");
        // A round trip crosses host 1's loss twice (there and back): ~25% get through. With 40
        // tries of 0.1 s the chance of no answer at all is 0.75^40 ~ 1e-5.
        assert!(echo(lab.host(2), lab.host(1).addr(port), 40, 0.1).is_some());
        lab.close().expect("teardown");
    });
}

#[test]
fn every_available_packet_filter_drops_and_clears() {
    bounded("every_available_packet_filter_drops_and_clears", || {
        let _guard = shared();
        let lab = new_lab(2);
        let port = 7003;
        let _server = echo_server(lab.host(1), port);
        let mut working = Vec::new();
        for filter in PacketFilter::PREFERENCE {
            match lab.drop_packets_with(1, 1.0, filter) {
                Ok(()) => {}
                Err(e @ LabError::MissingTool { .. }) => {
                    eprintln!("{filter}: not installed ({e})");
                    continue;
                }
                Err(e) => panic!("{filter} is installed but cannot add a loss rule: {e}"),
            }
            assert_eq!(
                echo(lab.host(2), lab.host(1).addr(port), 3, 0.3),
                None,
                "{filter} did not drop"
            );
            lab.clear_drops(1).expect("clear");
            assert!(
                echo(lab.host(2), lab.host(1).addr(port), 10, 0.5).is_some(),
                "{filter} did not clear"
            );
            working.push(filter);
        }
        eprintln!("packet filters that work here: {working:?}");
        assert!(!working.is_empty(), "no packet filter works");
        lab.close().expect("teardown");
    });
}

#[test]
fn limit_bandwidth_slows_a_transfer_and_clear_restores_it() {
    bounded(
        "limit_bandwidth_slows_a_transfer_and_clear_restores_it",
        || {
            let _guard = shared();
            let lab = new_lab(2);
            let bytes = 64 * 1024;
            let fast = tcp_transfer_ms(lab.host(1), lab.host(2), 7100, bytes);
            lab.limit_bandwidth(2, 256).expect("limit");
            assert!(lab.qdiscs(2).expect("qdiscs").contains("htb"));
            // 64 KiB at 256 kbit/s (32 kB/s) takes about 2 s.
            let slow = tcp_transfer_ms(lab.host(1), lab.host(2), 7101, bytes);
            lab.clear_bandwidth(2).expect("clear");
            assert!(!lab.qdiscs(2).expect("qdiscs").contains("htb"));
            let fast_again = tcp_transfer_ms(lab.host(1), lab.host(2), 7102, bytes);
            eprintln!("64 KiB: {fast:.0} ms free, {slow:.0} ms at 256 kbit/s, {fast_again:.0} ms after clear");
            assert!(slow >= 1200.0, "limited transfer took only {slow} ms");
            assert!(
                fast < 1000.0 && fast_again < 1000.0,
                "{fast} / {fast_again} ms unlimited"
            );
            assert!(matches!(
                lab.limit_bandwidth(2, 0),
                Err(LabError::InvalidArgument(_))
            ));
            lab.close().expect("teardown");
        },
    );
}

#[test]
fn the_delay_relay_delays_both_directions() {
    bounded("the_delay_relay_delays_both_directions", || {
        let _guard = shared();
        let lab = new_lab(3);
        let (server, relay_host, client) = (lab.host(2), lab.host(3), lab.host(1));
        let _echo = echo_server(server, 7004);
        let direct = echo(client, server.addr(7004), 10, 0.5).expect("direct echo");
        let delay = Duration::from_millis(250);
        let relay = relay_host
            .spawn_relay(
                std::path::Path::new(env!("CARGO_BIN_EXE_posmesh-lab")),
                relay_host.addr(7104),
                server.addr(7004),
                delay,
            )
            .expect("spawn relay");
        let relayed = echo(client, relay_host.addr(7104), 1, 5.0).expect("echo through relay");
        eprintln!("round trip: {direct:.1} ms direct, {relayed:.1} ms through a {delay:?} relay");
        assert!(
            relayed >= 500.0,
            "relayed round trip {relayed} ms < 2 x 250 ms"
        );
        assert!(relayed < 2000.0, "relayed round trip {relayed} ms");
        assert!(direct < 250.0, "direct round trip {direct} ms");
        relay.kill().expect("kill relay");
        assert!(relay.log().expect("relay log").contains("listening on"));
        lab.close().expect("teardown");
    });
}
