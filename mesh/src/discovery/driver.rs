//! [`MdnsDiscovery`]: runs mdns-sd 0.21.7 for one device — registers its announcement on
//! the configured interfaces only, browses for its peers and reports them as
//! [`DiscoveryEvent`]s.
//!
//! # Network namespace
//! mdns-sd opens its sockets from a thread it spawns in [`MdnsDiscovery::start`]; that
//! thread inherits the network namespace of the caller, i.e. of the process when it was
//! started with `ip netns exec`. So the lab runs the node (or a test binary) inside a
//! namespace and this code sees only that namespace's interfaces.
//!
//! # Interfaces
//! The daemon first disables every interface (`IfKind::All`, loopback included), then
//! enables each configured name; the registered service is also restricted to those
//! names (`ServiceInfo::set_interfaces`) and takes its addresses from them
//! (`enable_addr_auto`, refreshed by mdns-sd's periodic IP check). Caveat: when the daemon
//! starts, before the first command is processed, mdns-sd joins the mDNS multicast group
//! on every interface of the namespace (IGMP/MLD membership reports go out from the
//! kernel); it sends no mDNS packet before our interface selection is applied, because
//! commands are processed in order and registration and browsing come after it.
//!
//! An empty interface list means no mDNS at all (static peers only):
//! [`MdnsDiscovery::start`] refuses with [`MeshError::DiscoveryDisabled`] before creating
//! any daemon.
//!
//! # Draining
//! mdns-sd drops a browse subscription whose channel (1000 events) is full. A dedicated
//! tokio task therefore drains it at once, and only then waits on our own bounded
//! channel ([`EVENTS_QUEUE_MAX`]); if the subscription is dropped anyway, the task
//! browses again after [`REBROWSE_DELAY`], at most [`REBROWSE_ATTEMPTS_MAX`] times in a
//! row without a service event in between. When the task ends — shutdown, the daemon
//! died, retries exhausted, or the receiver of the events was dropped — the events
//! channel closes: the node then relies on static peers (and may start discovery again).
//! Our own announcement keeps being served by the daemon until
//! [`MdnsDiscovery::shutdown`] (or drop).

use std::collections::BTreeSet;
use std::time::Duration;

use mdns_sd::{
    DaemonEvent, IfKind, Receiver, ServiceDaemon, ServiceEvent, ServiceInfo, UnregisterStatus,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::announcement::ServiceAnnouncement;
use super::filter::{DiscoveryFilter, Ignored};
use super::tracker::DiscoveryTracker;
use super::{DiscoveryEvent, SERVICE_TYPE};
use crate::error::{MeshError, Result};
use crate::identity::{validate_id, ID_BYTES_MAX};

/// Capacity of the channel of [`DiscoveryEvent`]s.
pub const EVENTS_QUEUE_MAX: usize = 256;

/// Delay before browsing again after mdns-sd dropped the subscription.
pub const REBROWSE_DELAY: Duration = Duration::from_secs(1);

/// Browses again at most this many times in a row without a service event in between.
pub const REBROWSE_ATTEMPTS_MAX: u32 = 5;

/// Most interfaces discovery may use (a device has one or two).
pub const INTERFACES_MAX: usize = 8;

/// Longest interface name on Linux (`IFNAMSIZ` − 1).
pub const INTERFACE_NAME_BYTES_MAX: usize = 15;

/// How long [`MdnsDiscovery::shutdown`] waits for the daemon's answers.
const DAEMON_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long [`MdnsDiscovery::shutdown`] lets the daemon run after unregistering: mdns-sd
/// repeats the goodbye packet (RFC 6762 §10.1) 120 ms after the first one.
const GOODBYE_GRACE: Duration = Duration::from_millis(300);

/// What [`MdnsDiscovery::start`] needs.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Names of the network interfaces to use (e.g. `eth0`). Only these are used, both to
    /// announce and to browse. Empty: discovery does not start.
    pub interfaces: Vec<String>,
    /// What we announce.
    pub announcement: ServiceAnnouncement,
    /// Which announcements we accept; must describe the same device as `announcement`.
    pub filter: DiscoveryFilter,
    /// Our mDNS host name, one label under `.local.` (e.g. `till-1.local.`), the owner of
    /// our A/AAAA records. mdns-sd renames it on a conflict (RFC 6762 §9).
    pub hostname: String,
}

impl DiscoveryConfig {
    /// Checks the configuration without touching the network.
    ///
    /// # Errors
    /// [`MeshError::DiscoveryDisabled`] when no interface is configured;
    /// [`MeshError::InvalidDiscoveryConfig`] naming the offending field otherwise.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, value: &str, why| MeshError::InvalidDiscoveryConfig {
            field,
            value: value.chars().take(64).collect(),
            why,
        };
        if self.interfaces.is_empty() {
            return Err(MeshError::DiscoveryDisabled);
        }
        if self.interfaces.len() > INTERFACES_MAX {
            return Err(invalid(
                "interfaces",
                &self.interfaces.join(","),
                "more than 8 interfaces",
            ));
        }
        let mut seen = BTreeSet::new();
        for name in &self.interfaces {
            validate_interface_name(name).map_err(|why| invalid("interfaces", name, why))?;
            if !seen.insert(name.as_str()) {
                return Err(invalid("interfaces", name, "listed twice"));
            }
        }
        validate_hostname(&self.hostname)
            .map_err(|why| invalid("hostname", &self.hostname, why))?;
        let a = &self.announcement;
        let f = &self.filter;
        if (a.chain_id(), a.store_id(), a.device_id())
            != (f.chain_id(), f.store_id(), f.own_device_id())
        {
            return Err(invalid(
                "filter",
                f.own_device_id(),
                "filter and announcement name different devices",
            ));
        }
        let packet_bytes = a.announce_packet_bytes_max(&self.hostname);
        if packet_bytes > mdns_sd::MAX_PKT_DEFAULT {
            return Err(invalid(
                "announcement",
                a.device_id(),
                "announcement packet may exceed 1452 bytes",
            ));
        }
        Ok(())
    }

    /// The mdns-sd service to register: instance = device id, type [`SERVICE_TYPE`], SRV
    /// port = QUIC port, our TXT record, addresses taken automatically from the configured
    /// interfaces only. Pure: builds a value, sends nothing.
    ///
    /// # Errors
    /// [`MeshError::Mdns`] when mdns-sd refuses the values (not expected after
    /// [`DiscoveryConfig::validate`]).
    pub fn service_info(&self) -> Result<ServiceInfo> {
        let a = &self.announcement;
        let mut info = ServiceInfo::new(
            SERVICE_TYPE,
            a.instance_name(),
            &self.hostname,
            (),
            a.quic_port(),
            a.to_txt_properties(),
        )?
        .enable_addr_auto();
        info.set_interfaces(self.if_kinds());
        Ok(info)
    }

    fn if_kinds(&self) -> Vec<IfKind> {
        self.interfaces
            .iter()
            .map(|name| IfKind::Name(name.clone()))
            .collect()
    }
}

/// An interface name as Linux accepts it: 1–15 bytes, no `/`, no whitespace or control
/// character, not `.` or `..`.
fn validate_interface_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty interface name");
    }
    if name.len() > INTERFACE_NAME_BYTES_MAX {
        return Err("interface name longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Err("not an interface name");
    }
    if name
        .chars()
        .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err("interface name holds '/', whitespace or a control character");
    }
    Ok(())
}

/// `<label>.local.` with one DNS label (RFC 1035 rules, either case) before `.local.`.
fn validate_hostname(hostname: &str) -> Result<(), &'static str> {
    let label = hostname
        .strip_suffix(".local.")
        .ok_or("host name must end with \".local.\"")?;
    if label.len() > ID_BYTES_MAX {
        return Err("host name label longer than 63 bytes");
    }
    validate_id(&label.to_ascii_lowercase())
        .map_err(|_| "host name must be one label of a-z, 0-9, '-' before \".local.\"")
}

/// The running discovery of one device. Dropping it stops the drain task and the daemon
/// without a goodbye; prefer [`MdnsDiscovery::shutdown`].
pub struct MdnsDiscovery {
    daemon: Option<ServiceDaemon>,
    instance_fullname: String,
    stop: watch::Sender<bool>,
    drain: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MdnsDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // mdns-sd's daemon handle has no `Debug`.
        f.debug_struct("MdnsDiscovery")
            .field("instance_fullname", &self.instance_fullname)
            .field("running", &self.daemon.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for MdnsDiscovery {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(drain) = self.drain.take() {
            drain.abort();
        }
        if let Some(daemon) = self.daemon.take() {
            if let Err(error) = daemon.shutdown() {
                tracing::debug!(%error, "mDNS daemon shutdown on drop");
            }
        }
    }
}

impl MdnsDiscovery {
    /// Starts discovery: validates `config`, starts an mdns-sd daemon in the caller's
    /// network namespace restricted to `config.interfaces`, registers our announcement,
    /// browses for [`SERVICE_TYPE`] and spawns the drain task on the current tokio
    /// runtime. Returns the handle and the channel of events (see the module docs for
    /// when it closes).
    ///
    /// # Errors
    /// [`MeshError::DiscoveryDisabled`] when no interface is configured (nothing is
    /// started), [`MeshError::InvalidDiscoveryConfig`], [`MeshError::Settings`] outside a
    /// tokio runtime, [`MeshError::Mdns`] when the daemon cannot start or refuses a
    /// command (the daemon is then shut down again).
    pub fn start(config: DiscoveryConfig) -> Result<(Self, mpsc::Receiver<DiscoveryEvent>)> {
        config.validate()?;
        let info = config.service_info()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| MeshError::Settings("MdnsDiscovery::start needs a tokio runtime"))?;
        let instance_fullname = info.get_fullname().to_owned();

        let daemon = ServiceDaemon::new()?;
        let (browse, monitor) = match configure(&daemon, &config, info) {
            Ok(receivers) => receivers,
            Err(error) => {
                let _ = daemon.shutdown();
                return Err(error);
            }
        };
        tracing::info!(
            instance = %instance_fullname,
            interfaces = ?config.interfaces,
            "mDNS discovery started"
        );

        let (events_tx, events_rx) = mpsc::channel(EVENTS_QUEUE_MAX);
        let (stop, stop_rx) = watch::channel(false);
        let drain = runtime.spawn(drain(
            Drain {
                daemon: daemon.clone(),
                filter: config.filter,
                tracker: DiscoveryTracker::new(),
                events: events_tx,
            },
            browse,
            monitor,
            stop_rx,
        ));
        Ok((
            Self {
                daemon: Some(daemon),
                instance_fullname,
                stop,
                drain: Some(drain),
            },
            events_rx,
        ))
    }

    /// The full name of our registered instance.
    pub fn instance_fullname(&self) -> &str {
        &self.instance_fullname
    }

    /// Stops discovery: ends the drain task (the events channel closes), unregisters our
    /// service (peers get an mDNS goodbye and drop us at once instead of after the TTL),
    /// and stops the daemon.
    ///
    /// # Errors
    /// [`MeshError::Mdns`] when the daemon refused a command, [`MeshError::Timeout`] when
    /// it did not answer in time. The daemon is asked to stop in every case.
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        if let Some(mut drain) = self.drain.take() {
            // The task may be waiting on a full events channel; it does not outlive us.
            if tokio::time::timeout(DAEMON_REPLY_TIMEOUT, &mut drain)
                .await
                .is_err()
            {
                tracing::warn!("mDNS drain task did not stop in time; aborted");
                drain.abort();
            }
        }
        let Some(daemon) = self.daemon.take() else {
            return Ok(());
        };
        let unregistered = unregister(&daemon, &self.instance_fullname).await;
        let stopped = stop_daemon(&daemon).await;
        unregistered.and(stopped)
    }
}

async fn unregister(daemon: &ServiceDaemon, fullname: &str) -> Result<()> {
    let reply = daemon.unregister(fullname)?;
    match tokio::time::timeout(DAEMON_REPLY_TIMEOUT, reply.recv_async()).await {
        Ok(Ok(UnregisterStatus::OK)) => {
            tokio::time::sleep(GOODBYE_GRACE).await;
            Ok(())
        }
        Ok(Ok(UnregisterStatus::NotFound)) => {
            tracing::warn!(fullname, "our mDNS service was not registered");
            Ok(())
        }
        Ok(Err(_)) => Err(MeshError::Mdns(mdns_sd::Error::DaemonShutdown)),
        Err(_) => Err(timeout("mDNS unregister")),
    }
}

async fn stop_daemon(daemon: &ServiceDaemon) -> Result<()> {
    let reply = daemon.shutdown()?;
    match tokio::time::timeout(DAEMON_REPLY_TIMEOUT, reply.recv_async()).await {
        // A closed reply channel also means the daemon thread is gone.
        Ok(_) => Ok(()),
        Err(_) => Err(timeout("mDNS daemon shutdown")),
    }
}

fn timeout(what: &'static str) -> MeshError {
    MeshError::Timeout {
        what,
        after_ms: u64::try_from(DAEMON_REPLY_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
    }
}

/// Interface selection, registration and browse, in this order (the daemon processes
/// commands in order, so nothing is sent before the selection applies).
fn configure(
    daemon: &ServiceDaemon,
    config: &DiscoveryConfig,
    info: ServiceInfo,
) -> Result<(Receiver<ServiceEvent>, Receiver<DaemonEvent>)> {
    let monitor = daemon.monitor()?;
    daemon.disable_interface(IfKind::All)?;
    daemon.enable_interface(config.if_kinds())?;
    daemon.register(info)?;
    let browse = daemon.browse(SERVICE_TYPE)?;
    Ok((browse, monitor))
}

/// The state of the drain task.
struct Drain {
    daemon: ServiceDaemon,
    filter: DiscoveryFilter,
    tracker: DiscoveryTracker,
    events: mpsc::Sender<DiscoveryEvent>,
}

/// Whether the drain loop goes on.
enum Flow {
    Continue,
    Stop,
}

impl Drain {
    /// Handles one browse event; `Stop` when nobody listens any more.
    async fn on_service_event(&mut self, event: ServiceEvent) -> Flow {
        let events = match event {
            ServiceEvent::ServiceResolved(resolved) => {
                let verdict = self.filter.check(&resolved);
                match &verdict {
                    Ok(peer) => tracing::debug!(
                        instance = %resolved.fullname,
                        device = %peer.device_id,
                        addrs = ?peer.addrs,
                        "mDNS peer resolved"
                    ),
                    Err(Ignored::OwnDevice) => {
                        tracing::trace!(instance = %resolved.fullname, "own announcement")
                    }
                    Err(reason) => tracing::debug!(
                        instance = %resolved.fullname,
                        %reason,
                        "mDNS announcement ignored"
                    ),
                }
                self.tracker.resolved(&resolved.fullname, verdict)
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                tracing::debug!(instance = %fullname, "mDNS instance removed");
                self.tracker.removed(&fullname)
            }
            other => {
                tracing::trace!(event = ?other, "mDNS browse event");
                Vec::new()
            }
        };
        for event in events {
            if self.events.send(event).await.is_err() {
                tracing::debug!("discovery events receiver dropped; stopping");
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

fn on_daemon_event(event: DaemonEvent) {
    match event {
        DaemonEvent::Error(error) => tracing::warn!(%error, "mDNS daemon error"),
        DaemonEvent::NameChange(change) => tracing::warn!(
            original = %change.original,
            new_name = %change.new_name,
            "mDNS name conflict: another host announces our name; renamed"
        ),
        other => tracing::trace!(event = ?other, "mDNS daemon event"),
    }
}

async fn drain(
    mut state: Drain,
    mut browse: Receiver<ServiceEvent>,
    monitor: Receiver<DaemonEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rebrowse_attempts: u32 = 0;
    let mut monitor = Some(monitor);
    loop {
        let monitor_next = async {
            match &monitor {
                Some(m) => m.recv_async().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            event = browse.recv_async() => match event {
                Ok(event) => {
                    if matches!(
                        event,
                        ServiceEvent::ServiceResolved(_)
                            | ServiceEvent::ServiceRemoved(..)
                            | ServiceEvent::ServiceFound(..)
                    ) {
                        rebrowse_attempts = 0;
                    }
                    if let Flow::Stop = state.on_service_event(event).await {
                        break;
                    }
                }
                Err(_) => {
                    if rebrowse_attempts >= REBROWSE_ATTEMPTS_MAX {
                        tracing::error!(
                            attempts = rebrowse_attempts,
                            "mDNS browse keeps disconnecting; discovery stops"
                        );
                        break;
                    }
                    rebrowse_attempts += 1;
                    tracing::warn!(
                        attempt = rebrowse_attempts,
                        "mDNS browse subscription dropped (receiver too slow?); browsing again"
                    );
                    tokio::select! {
                        _ = stop.changed() => break,
                        () = tokio::time::sleep(REBROWSE_DELAY) => {}
                    }
                    match state.daemon.browse(SERVICE_TYPE) {
                        Ok(receiver) => browse = receiver,
                        Err(mdns_sd::Error::DaemonShutdown) => {
                            tracing::error!("mDNS daemon has stopped; discovery stops");
                            break;
                        }
                        // The old, disconnected receiver makes the next turn retry.
                        Err(error) => tracing::warn!(%error, "mDNS browse failed"),
                    }
                }
            },
            event = monitor_next => match event {
                Some(event) => on_daemon_event(event),
                None => monitor = None,
            },
        }
    }
    tracing::info!("mDNS discovery drain stopped");
}

#[cfg(test)]
mod tests {
    //! Pure parts only: nothing here constructs a `ServiceDaemon` (the network safety
    //! rule: no multicast on the host's interfaces). The end-to-end behaviour is tested in
    //! the lab, inside network namespaces.

    use super::super::fingerprint::CertFingerprint;
    use super::*;
    use crate::identity::PeerIdentity;

    fn config(interfaces: &[&str]) -> DiscoveryConfig {
        let me = PeerIdentity::new_device("acme", "store-42", "till-1").expect("identity");
        DiscoveryConfig {
            interfaces: interfaces.iter().map(|s| (*s).to_owned()).collect(),
            announcement: ServiceAnnouncement::new(&me, CertFingerprint::of_der(b"c"), 7400)
                .expect("announcement"),
            filter: DiscoveryFilter::new(&me).expect("filter"),
            hostname: "till-1.local.".to_owned(),
        }
    }

    fn why(result: Result<()>) -> (&'static str, &'static str) {
        match result {
            Err(MeshError::InvalidDiscoveryConfig { field, why, .. }) => (field, why),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn no_interface_means_disabled() {
        assert!(matches!(
            config(&[]).validate(),
            Err(MeshError::DiscoveryDisabled)
        ));
    }

    #[test]
    fn valid_config() -> Result<()> {
        config(&["eth0"]).validate()?;
        config(&["veth-a1", "br0", "eth0:1"]).validate()?;
        let mut c = config(&["eth0"]);
        c.hostname = "Till-1.local.".to_owned();
        c.validate()
    }

    #[test]
    fn bad_interfaces_refused() {
        for (names, want) in [
            (vec![""], "empty interface name"),
            (
                vec!["averyveryverylongname"],
                "interface name longer than 15 bytes",
            ),
            (
                vec!["eth/0"],
                "interface name holds '/', whitespace or a control character",
            ),
            (
                vec!["eth 0"],
                "interface name holds '/', whitespace or a control character",
            ),
            (vec![".."], "not an interface name"),
            (vec!["eth0", "eth0"], "listed twice"),
            (vec!["e"; 9], "more than 8 interfaces"),
        ] {
            assert_eq!(
                why(config(&names).validate()),
                ("interfaces", want),
                "{names:?}"
            );
        }
    }

    #[test]
    fn bad_hostnames_refused() {
        for hostname in [
            "till-1",
            "till-1.local",
            ".local.",
            "a.b.local.",
            "till_1.local.",
            "-t.local.",
        ] {
            let mut c = config(&["eth0"]);
            c.hostname = hostname.to_owned();
            assert_eq!(why(c.validate()).0, "hostname", "{hostname}");
        }
        let mut c = config(&["eth0"]);
        c.hostname = format!("{}.local.", "a".repeat(64));
        assert_eq!(
            why(c.validate()),
            ("hostname", "host name label longer than 63 bytes")
        );
    }

    #[test]
    fn filter_must_match_announcement() -> Result<()> {
        let mut c = config(&["eth0"]);
        c.filter = DiscoveryFilter::new(&PeerIdentity::new_device("acme", "store-42", "till-2")?)?;
        assert_eq!(why(c.validate()).0, "filter");
        Ok(())
    }

    #[test]
    fn service_info_restricted_and_announcing() -> Result<()> {
        let c = config(&["eth0"]);
        let info = c.service_info()?;
        assert_eq!(info.get_fullname(), "till-1._posmesh._udp.local.");
        assert_eq!(info.get_type(), SERVICE_TYPE);
        assert_eq!(info.get_hostname(), "till-1.local.");
        assert_eq!(info.get_port(), 7400);
        assert!(info.is_addr_auto());
        assert!(info.get_addresses().is_empty());
        let resolved = info.as_resolved_service();
        assert_eq!(
            ServiceAnnouncement::from_txt(&resolved.txt_properties).ok(),
            Some(c.announcement.clone())
        );
        Ok(())
    }
}
