//! Hosts reach each other by unicast and by multicast, and the machine's own namespace is
//! left alone.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::{
    bounded, echo, echo_server, multicast_receiver, multicast_send, namespaces_now, new_lab, shared,
};

#[test]
fn three_hosts_reach_each_other() {
    bounded("three_hosts_reach_each_other", || {
        let _guard = shared();
        let lab = new_lab(3);
        let port = 7000;
        let servers: Vec<_> = lab.hosts().iter().map(|h| echo_server(h, port)).collect();
        for from in lab.hosts() {
            for to in lab.hosts() {
                if from.index == to.index {
                    continue;
                }
                let rtt = echo(from, to.addr(port), 10, 0.5);
                assert!(
                    rtt.is_some(),
                    "{} cannot reach {} at {}",
                    from.name,
                    to.name,
                    to.ip
                );
            }
        }
        for server in &servers {
            server.kill().expect("kill echo server");
        }
        lab.close().expect("teardown");
    });
}

#[test]
fn hosts_are_named_and_addressed_as_documented() {
    bounded("hosts_are_named_and_addressed_as_documented", || {
        let _guard = shared();
        let lab = new_lab(2);
        let all = namespaces_now();
        assert_eq!(lab.namespaces().len(), 3);
        for namespace in lab.namespaces() {
            assert!(namespace.starts_with(lab.prefix()), "{namespace}");
            assert!(
                all.contains(&namespace),
                "{namespace} missing from ip netns list"
            );
        }
        let octet = lab.number() % 256;
        for host in lab.hosts() {
            assert_eq!(
                host.ip.to_string(),
                format!("10.213.{octet}.{}", host.index)
            );
            assert_eq!(host.name, format!("h{}", host.index));
            assert!(host.interface.len() <= 15);
            // Inside the host: its address on its interface, multicast on, the multicast route.
            let out = host
                .run(
                    {
                        let mut c = host.command("ip");
                        c.args(["-o", "addr", "show", "dev", &host.interface]);
                        c
                    },
                    std::time::Duration::from_secs(5),
                )
                .expect("ip addr");
            assert!(
                out.stdout.contains(&format!("{}/24", host.ip)),
                "{}",
                out.stdout
            );
            let route = host
                .run(
                    {
                        let mut c = host.command("ip");
                        c.args(["route", "show"]);
                        c
                    },
                    std::time::Duration::from_secs(5),
                )
                .expect("ip route");
            assert!(
                route.stdout.contains("224.0.0.0/4 dev lab0"),
                "{}",
                route.stdout
            );
            assert!(
                !route.stdout.contains("default"),
                "no default route: {}",
                route.stdout
            );
        }
        // A command not built by LabHost::command is refused.
        assert!(lab.host(1).spawn(Command::new("true")).is_err());
        lab.close().expect("teardown");
    });
}

#[test]
fn multicast_reaches_every_other_host() {
    bounded("multicast_reaches_every_other_host", || {
        let _guard = shared();
        let lab = new_lab(3);
        let (group, port) = ("224.0.0.251", 5353);
        let token = format!("pmlab-mdns-{}", lab.prefix());
        let receivers: Vec<_> = lab.hosts()[1..]
            .iter()
            .map(|h| multicast_receiver(h, group, port, &token))
            .collect();
        multicast_send(lab.host(1), group, port, &token, 5);
        for receiver in &receivers {
            let status = receiver
                .wait(std::time::Duration::from_secs(10))
                .expect("receiver finishes");
            let log = receiver.log().expect("receiver log");
            assert!(status.success(), "{} got nothing: {log}", receiver.host());
            assert!(
                log.contains(&format!("got {token} from {}", lab.host(1).ip)),
                "{}: {log}",
                receiver.host()
            );
        }
        lab.close().expect("teardown");
    });
}

/// Interface names and routes of the machine's own network namespace.
fn root_namespace_state() -> (BTreeSet<String>, String) {
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    let names = String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().to_string())
        .collect();
    let routes = Command::new("ip")
        .args(["route", "show"])
        .output()
        .expect("ip route");
    (names, String::from_utf8_lossy(&routes.stdout).into_owned())
}

#[test]
fn the_machines_own_namespace_is_untouched() {
    bounded("the_machines_own_namespace_is_untouched", || {
        let _guard = shared();
        let before = root_namespace_state();
        let lab = new_lab(3);
        lab.cut_link(2).expect("cut");
        lab.heal_link(2).expect("heal");
        let during = root_namespace_state();
        assert_eq!(
            before, during,
            "the lab changed the machine's own interfaces or routes"
        );
        lab.close().expect("teardown");
        assert_eq!(before, root_namespace_state());
    });
}
