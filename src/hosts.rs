//! Hosts reported by several security tools: which values of an observation identify the
//! machine, how a batch of observations is matched to hosts ([`match_observations`]), and how
//! one host's observations merge into the host's fields ([`merge`]). Pure functions: the
//! resolver in `store::hosts` loads what they need, calls them and writes what they decide.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

pub use crate::entities::host::Observation;
use chrono::{DateTime, Utc};

/// Kinds of identifier, strongest first. The first three join an observation to a host; an
/// IP address is shared too often (NAT, reused private ranges) to do more than confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdKind {
    CloudInstanceId,
    Mac,
    Name,
    Ip,
}

impl IdKind {
    pub const STRONG: [IdKind; 3] = [IdKind::CloudInstanceId, IdKind::Mac, IdKind::Name];

    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::CloudInstanceId => "cloud_instance_id",
            IdKind::Mac => "mac",
            IdKind::Name => "name",
            IdKind::Ip => "ip",
        }
    }

    pub fn parse(text: &str) -> Option<IdKind> {
        Some(match text {
            "cloud_instance_id" => IdKind::CloudInstanceId,
            "mac" => IdKind::Mac,
            "name" => IdKind::Name,
            "ip" => IdKind::Ip,
            _ => return None,
        })
    }
}

/// Host fields that hold one value, chosen among the observations by priority then recency.
pub const SCALAR_FIELDS: &[&str] = &[
    "hostname",
    "fqdn",
    "os",
    "platform",
    "cloud_provider",
    "cloud_instance_id",
];

/// Host fields that hold every value any observation reported.
pub const LIST_FIELDS: &[&str] = &["private_ips", "public_ips", "macs"];

/// MAC addresses (or prefixes) that many machines share, so never identify one: unset and
/// broadcast addresses, Docker's default bridge, VRRP/HSRP virtual routers, VirtualBox's
/// host-only adapter. Multicast addresses are always ignored as well.
pub fn default_ignored_macs() -> Vec<String> {
    [
        "00:00:00:00:00:00",
        "ff:ff:ff:ff:ff:ff",
        "02:42",
        "00:00:5e:00:01",
        "00:00:0c:07:ac",
        "0a:00:27:00:00",
    ]
    .map(String::from)
    .to_vec()
}

/// Host names too generic to identify a machine.
const GENERIC_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "localhost6",
    "unknown",
];

/// How observations become hosts: from the `hosts` settings.
#[derive(Debug, Clone)]
pub struct HostRules {
    /// Field name (or `default`) → providers, most trusted first.
    pub field_priority: BTreeMap<String, Vec<String>>,
    /// Lower-case colon-separated MACs or prefixes that never identify a host.
    pub ignored_macs: Vec<String>,
    /// A host no provider has reported for this long is stale.
    pub stale_after: chrono::Duration,
}

impl Default for HostRules {
    fn default() -> Self {
        HostRules {
            field_priority: BTreeMap::new(),
            ignored_macs: default_ignored_macs(),
            stale_after: chrono::Duration::hours(24),
        }
    }
}

impl HostRules {
    /// Whether `mac` (normalized) may identify a host.
    pub fn mac_identifies(&self, mac: &str) -> bool {
        let multicast = u8::from_str_radix(mac.get(0..2).unwrap_or("01"), 16)
            .map(|first| first & 1 == 1)
            .unwrap_or(true);
        !multicast
            && !self
                .ignored_macs
                .iter()
                .any(|p| mac.starts_with(p.as_str()))
    }

    /// A provider's rank for `field`: its place in the field's own list; else its place in
    /// `default`, after everyone the field's list names; else after every listed provider.
    fn rank(&self, field: &str, provider: &str) -> usize {
        let place = |key: &str| {
            let list = self.field_priority.get(key)?;
            Some((list.len(), list.iter().position(|p| p == provider)))
        };
        let own = place(field);
        if let Some((_, Some(i))) = own {
            return i;
        }
        let before = own.map_or(0, |(len, _)| len);
        match place("default") {
            Some((_, Some(i))) => before + i,
            _ => usize::MAX,
        }
    }

    /// The identifiers of an observation, strongest kind first, without duplicates. Every MAC
    /// is indexed (so hosts can be found by it), but a shared one never joins hosts.
    pub fn identifiers(&self, o: &Observation) -> Vec<Identifier> {
        let mut out = Vec::new();
        if let Some(id) = o.cloud_instance_id.as_deref().map(str::trim)
            && !id.is_empty()
        {
            out.push(Identifier::new(
                IdKind::CloudInstanceId,
                id.to_ascii_lowercase(),
                true,
            ));
        }
        for mac in &o.macs {
            out.push(Identifier::new(
                IdKind::Mac,
                mac.clone(),
                self.mac_identifies(mac),
            ));
        }
        let mut names = BTreeSet::new();
        for name in [&o.fqdn, &o.hostname].into_iter().flatten() {
            let name = normal_name(name);
            if !name.is_empty() && !GENERIC_NAMES.contains(&name.as_str()) {
                names.insert(name);
            }
        }
        out.extend(
            names
                .into_iter()
                .map(|n| Identifier::new(IdKind::Name, n, true)),
        );
        let ips: BTreeSet<&String> = o.private_ips.iter().chain(&o.public_ips).collect();
        out.extend(
            ips.into_iter()
                .map(|ip| Identifier::new(IdKind::Ip, ip.clone(), false)),
        );
        out
    }
}

/// A host name as identifiers hold it: trimmed, case-folded, without a trailing dot.
pub fn normal_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_lowercase()
}

/// One normalized identifier of an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub kind: IdKind,
    pub value: String,
    /// Joins an observation to the host that has it. IPs and shared MACs only help find hosts.
    pub strong: bool,
}

impl Identifier {
    fn new(kind: IdKind, value: String, strong: bool) -> Self {
        Identifier {
            kind,
            value,
            strong,
        }
    }
}

/// Whether an address is private to a network (RFC 1918, shared CGNAT space, loopback,
/// link-local, IPv6 unique-local) rather than reachable on the internet.
pub fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Which hosts hold each identifier: `(kind, value)` → host ids.
pub type IdentifierIndex = HashMap<(IdKind, String), BTreeSet<i64>>;

/// Where an observation already stored is: it stays with its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub host_id: i64,
    pub matched_by: Option<IdKind>,
}

/// Where one observation of a batch goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub host_id: i64,
    /// The kind of identifier it joined its host by; `None` for the one that made the host.
    pub matched_by: Option<IdKind>,
    /// The host was numbered for this observation.
    pub new_host: bool,
}

/// Two hosts claim one strong identifier: the observation's host, and `other_host_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The observation's place in the batch.
    pub observation: usize,
    pub kind: IdKind,
    pub value: String,
    pub host_id: i64,
    pub other_host_id: i64,
}

/// What [`match_observations`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matching {
    /// One per observation, in order.
    pub placements: Vec<Placement>,
    /// Identifiers the index did not yet have for their host: `(kind, value, host id)`.
    pub new_identifiers: Vec<(IdKind, String, i64)>,
    pub conflicts: Vec<Conflict>,
}

/// Matches a batch of observations to hosts, in input order, so an identifier first seen early
/// in the batch already counts for later ones. Each observation (its identifiers, and where it
/// is when it was stored before) joins:
///
/// - its stored host, when it has one: a host id never moves under a client;
/// - else the host holding its strongest strong identifier (cloud instance id, then MAC, then
///   name; the lowest id when several hosts hold it);
/// - else a new host, numbered from `next_id` up.
///
/// A strong identifier another host holds too is a conflict: reported, nothing merged, and
/// both hosts are found by it from then on. IPs and shared MACs never join hosts. `index` is
/// updated with every identifier as it is claimed.
pub fn match_observations(
    observations: &[(Option<Known>, &[Identifier])],
    index: &mut IdentifierIndex,
    next_id: i64,
) -> Matching {
    let mut matching = Matching::default();
    let mut next_id = next_id;
    for (position, (known, identifiers)) in observations.iter().enumerate() {
        let matched = IdKind::STRONG.iter().find_map(|&kind| {
            identifiers
                .iter()
                .filter(|id| id.strong && id.kind == kind)
                .filter_map(|id| index.get(&(id.kind, id.value.clone())))
                .flatten()
                .min()
                .map(|&host| (host, kind))
        });
        let placement = match (known, matched) {
            (Some(known), _) => Placement {
                host_id: known.host_id,
                matched_by: known.matched_by,
                new_host: false,
            },
            (None, Some((host, kind))) => Placement {
                host_id: host,
                matched_by: Some(kind),
                new_host: false,
            },
            (None, None) => {
                next_id += 1;
                Placement {
                    host_id: next_id - 1,
                    matched_by: None,
                    new_host: true,
                }
            }
        };
        for id in identifiers.iter() {
            let owners = index.entry((id.kind, id.value.clone())).or_default();
            if id.strong {
                for &other in owners.iter().filter(|&&h| h != placement.host_id) {
                    matching.conflicts.push(Conflict {
                        observation: position,
                        kind: id.kind,
                        value: id.value.clone(),
                        host_id: placement.host_id,
                        other_host_id: other,
                    });
                }
            }
            if owners.insert(placement.host_id) {
                matching
                    .new_identifiers
                    .push((id.kind, id.value.clone(), placement.host_id));
            }
        }
        matching.placements.push(placement);
    }
    matching
}

/// One stored observation, as the merge needs it.
#[derive(Debug, Clone)]
pub struct Reported<'a> {
    pub provider: &'a str,
    pub external_id: &'a str,
    pub observation: &'a Observation,
    pub reported_at: DateTime<Utc>,
}

/// A host's merged fields and where each came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Merged {
    pub fields: Observation,
    /// Field → providers it came from (one for single-valued fields).
    pub sources: BTreeMap<String, Vec<String>>,
    pub last_reported_at: Option<DateTime<Utc>>,
}

/// Merges one host's observations. Single-valued fields come from the provider ranked first
/// for the field, then from the most recent observation (the tool's `last_seen`, else when it
/// was reported); lists are the union of every observation's values. The result depends only
/// on the set of observations, never on the order they arrived in.
pub fn merge(rules: &HostRules, observations: &[Reported<'_>]) -> Merged {
    let mut merged = Merged::default();
    let recency = |r: &Reported<'_>| r.observation.last_seen.unwrap_or(r.reported_at);
    for &field in SCALAR_FIELDS {
        let best = observations
            .iter()
            .filter_map(|r| scalar(r.observation, field).map(|value| (r, value)))
            .min_by(|(a, _), (b, _)| {
                rules
                    .rank(field, a.provider)
                    .cmp(&rules.rank(field, b.provider))
                    .then_with(|| recency(b).cmp(&recency(a)))
                    .then_with(|| a.provider.cmp(b.provider))
                    .then_with(|| a.external_id.cmp(b.external_id))
            });
        if let Some((r, value)) = best {
            *scalar_mut(&mut merged.fields, field) = Some(value.to_string());
            merged
                .sources
                .insert(field.to_string(), vec![r.provider.to_string()]);
        }
    }
    for &field in LIST_FIELDS {
        let mut values = BTreeSet::new();
        let mut providers = BTreeSet::new();
        for r in observations {
            let list = list(r.observation, field);
            if !list.is_empty() {
                values.extend(list.iter().cloned());
                providers.insert(r.provider.to_string());
            }
        }
        *list_mut(&mut merged.fields, field) = values.into_iter().collect();
        if !providers.is_empty() {
            merged
                .sources
                .insert(field.to_string(), providers.into_iter().collect());
        }
    }
    let o = observations.iter().map(|r| r.observation);
    merged.fields.first_seen = o.clone().filter_map(|o| o.first_seen).min();
    merged.fields.last_seen = o.filter_map(|o| o.last_seen).max();
    merged.last_reported_at = observations.iter().map(|r| r.reported_at).max();
    merged
}

fn scalar<'a>(o: &'a Observation, field: &str) -> Option<&'a str> {
    match field {
        "hostname" => o.hostname.as_deref(),
        "fqdn" => o.fqdn.as_deref(),
        "os" => o.os.as_deref(),
        "platform" => o.platform.as_deref(),
        "cloud_provider" => o.cloud_provider.as_deref(),
        "cloud_instance_id" => o.cloud_instance_id.as_deref(),
        _ => None,
    }
}

fn scalar_mut<'a>(o: &'a mut Observation, field: &str) -> &'a mut Option<String> {
    match field {
        "hostname" => &mut o.hostname,
        "fqdn" => &mut o.fqdn,
        "os" => &mut o.os,
        "platform" => &mut o.platform,
        "cloud_provider" => &mut o.cloud_provider,
        _ => &mut o.cloud_instance_id,
    }
}

fn list<'a>(o: &'a Observation, field: &str) -> &'a [String] {
    match field {
        "private_ips" => &o.private_ips,
        "public_ips" => &o.public_ips,
        _ => &o.macs,
    }
}

fn list_mut<'a>(o: &'a mut Observation, field: &str) -> &'a mut Vec<String> {
    match field {
        "private_ips" => &mut o.private_ips,
        "public_ips" => &mut o.public_ips,
        _ => &mut o.macs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("RFC 3339")
    }

    #[test]
    fn shared_and_multicast_macs_never_identify_a_host() {
        let rules = HostRules::default();
        assert!(rules.mac_identifies("12:5e:2e:db:58:99"));
        assert!(rules.mac_identifies("0a:9a:0e:ba:3f:d9"));
        assert!(!rules.mac_identifies("00:00:00:00:00:00"));
        assert!(!rules.mac_identifies("ff:ff:ff:ff:ff:ff"));
        assert!(!rules.mac_identifies("02:42:ac:11:00:02"));
        assert!(!rules.mac_identifies("01:00:5e:00:00:fb"));
    }

    #[test]
    fn identifiers_are_case_folded_and_strongest_first() {
        let rules = HostRules::default();
        let o = Observation {
            hostname: Some("EC2AMAZ-E8FAE79".into()),
            fqdn: Some("EC2AMAZ-E8FAE79.WORKGROUP.".into()),
            cloud_instance_id: Some("i-04A7635EE51C50EA0".into()),
            macs: vec!["02:42:ac:11:00:02".into(), "0a:1d:96:2e:f5:17".into()],
            private_ips: vec!["172.31.18.214".into()],
            public_ips: vec!["34.236.143.31".into()],
            ..Default::default()
        };
        let ids = rules.identifiers(&o);
        let found: Vec<(IdKind, &str, bool)> = ids
            .iter()
            .map(|i| (i.kind, i.value.as_str(), i.strong))
            .collect();
        assert_eq!(
            found,
            vec![
                (IdKind::CloudInstanceId, "i-04a7635ee51c50ea0", true),
                (IdKind::Mac, "02:42:ac:11:00:02", false),
                (IdKind::Mac, "0a:1d:96:2e:f5:17", true),
                (IdKind::Name, "ec2amaz-e8fae79", true),
                (IdKind::Name, "ec2amaz-e8fae79.workgroup", true),
                (IdKind::Ip, "172.31.18.214", false),
                (IdKind::Ip, "34.236.143.31", false),
            ]
        );
    }

    #[test]
    fn private_addresses_are_told_from_public_ones() {
        for private in [
            "10.1.2.3",
            "172.31.19.223",
            "192.168.86.151",
            "100.64.0.1",
            "fe80::89a:eff:feba:3fd9",
            "fd00::1",
        ] {
            assert!(is_private(&private.parse().expect("ip")), "{private}");
        }
        for public in ["18.212.216.193", "98.109.97.138", "2600:1f18::1"] {
            assert!(!is_private(&public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn merge_follows_priority_then_recency_whatever_the_order() {
        let qualys = Observation {
            hostname: Some("ip-172-31-93-76.ec2.internal".into()),
            os: Some("Amazon Linux 2".into()),
            cloud_provider: Some("AWS".into()),
            macs: vec!["12:5e:2e:db:58:99".into()],
            private_ips: vec!["172.31.93.76".into(), "fe80::105e:2eff:fedb:5899".into()],
            first_seen: Some(at("2022-08-18T22:23:03Z")),
            last_seen: Some(at("2022-08-31T10:26:24Z")),
            ..Default::default()
        };
        let crowdstrike = Observation {
            hostname: Some("ip-172-31-93-76.ec2.internal".into()),
            os: Some("Amazon Linux 2 (kernel 5.10)".into()),
            platform: Some("Linux".into()),
            macs: vec!["12:5e:2e:db:58:99".into()],
            private_ips: vec!["172.31.93.76".into()],
            first_seen: Some(at("2022-09-22T22:35:56Z")),
            last_seen: Some(at("2023-03-16T13:34:47Z")),
            ..Default::default()
        };
        let reported = at("2026-11-21T00:00:00Z");
        let q = Reported {
            provider: "qualys",
            external_id: "305004025",
            observation: &qualys,
            reported_at: reported,
        };
        let c = Reported {
            provider: "crowdstrike",
            external_id: "e64d",
            observation: &crowdstrike,
            reported_at: reported,
        };

        // No priority: the more recent report (CrowdStrike's) wins.
        let rules = HostRules::default();
        let merged = merge(&rules, &[q.clone(), c.clone()]);
        assert_eq!(merged, merge(&rules, &[c.clone(), q.clone()]));
        assert_eq!(
            merged.fields.os.as_deref(),
            Some("Amazon Linux 2 (kernel 5.10)")
        );
        assert_eq!(merged.sources["os"], vec!["crowdstrike"]);
        assert_eq!(merged.fields.cloud_provider.as_deref(), Some("AWS"));
        assert_eq!(merged.sources["cloud_provider"], vec!["qualys"]);
        assert_eq!(
            merged.fields.private_ips,
            vec!["172.31.93.76", "fe80::105e:2eff:fedb:5899"]
        );
        assert_eq!(merged.sources["private_ips"], vec!["crowdstrike", "qualys"]);
        assert_eq!(merged.fields.first_seen, Some(at("2022-08-18T22:23:03Z")));
        assert_eq!(merged.fields.last_seen, Some(at("2023-03-16T13:34:47Z")));

        // Qualys first for `os`: its older value wins that field only.
        let mut rules = HostRules::default();
        rules
            .field_priority
            .insert("os".into(), vec!["qualys".into(), "crowdstrike".into()]);
        let merged = merge(&rules, &[c.clone(), q.clone()]);
        assert_eq!(merged.fields.os.as_deref(), Some("Amazon Linux 2"));
        assert_eq!(merged.sources["os"], vec!["qualys"]);
        assert_eq!(merged.sources["platform"], vec!["crowdstrike"]);

        // A field's own list comes before `default`: a provider only `default` names ranks
        // after every provider the field's list names, never level with them.
        let mut rules = HostRules::default();
        rules
            .field_priority
            .insert("os".into(), vec!["qualys".into()]);
        rules
            .field_priority
            .insert("default".into(), vec!["crowdstrike".into()]);
        let merged = merge(&rules, &[c, q]);
        assert_eq!(merged.fields.os.as_deref(), Some("Amazon Linux 2"));
        assert_eq!(merged.sources["os"], vec!["qualys"]);
        assert_eq!(merged.sources["cloud_provider"], vec!["qualys"]);
        assert_eq!(merged.sources["hostname"], vec!["crowdstrike"]);
    }

    fn ids(rules: &HostRules, o: Observation) -> Vec<Identifier> {
        rules.identifiers(&o)
    }

    fn placed(m: &Matching) -> Vec<(i64, Option<IdKind>, bool)> {
        m.placements
            .iter()
            .map(|p| (p.host_id, p.matched_by, p.new_host))
            .collect()
    }

    #[test]
    fn a_batch_makes_hosts_and_joins_later_reports_to_them() {
        let rules = HostRules::default();
        let a = ids(
            &rules,
            Observation {
                cloud_instance_id: Some("i-1".into()),
                macs: vec!["12:5e:2e:db:58:99".into()],
                ..Default::default()
            },
        );
        // The same machine by its MAC; another one by a name only; the name again.
        let b = ids(
            &rules,
            Observation {
                macs: vec!["12:5e:2e:db:58:99".into()],
                hostname: Some("web-1".into()),
                ..Default::default()
            },
        );
        let c = ids(
            &rules,
            Observation {
                hostname: Some("db-1".into()),
                ..Default::default()
            },
        );
        let d = ids(
            &rules,
            Observation {
                fqdn: Some("DB-1.".into()),
                ..Default::default()
            },
        );
        let mut index = IdentifierIndex::new();
        let m = match_observations(
            &[(None, &a), (None, &b), (None, &c), (None, &d)],
            &mut index,
            10,
        );
        assert_eq!(
            placed(&m),
            [
                (10, None, true),
                (10, Some(IdKind::Mac), false),
                (11, None, true),
                (11, Some(IdKind::Name), false),
            ]
        );
        assert!(m.conflicts.is_empty());
        // Every identifier is claimed once for its host.
        assert_eq!(
            m.new_identifiers,
            [
                (IdKind::CloudInstanceId, "i-1".to_string(), 10),
                (IdKind::Mac, "12:5e:2e:db:58:99".to_string(), 10),
                (IdKind::Name, "web-1".to_string(), 10),
                (IdKind::Name, "db-1".to_string(), 11),
            ]
        );
    }

    #[test]
    fn ips_and_shared_macs_never_join_hosts() {
        let rules = HostRules::default();
        let one = ids(
            &rules,
            Observation {
                private_ips: vec!["10.0.0.5".into()],
                macs: vec!["02:42:ac:11:00:02".into()],
                ..Default::default()
            },
        );
        let mut index = IdentifierIndex::new();
        let m = match_observations(&[(None, &one), (None, &one)], &mut index, 1);
        assert_eq!(placed(&m), [(1, None, true), (2, None, true)]);
        // Both hosts are found by them, and no conflict is claimed over a weak identifier.
        assert_eq!(
            index.get(&(IdKind::Ip, "10.0.0.5".to_string())),
            Some(&BTreeSet::from([1, 2]))
        );
        assert!(m.conflicts.is_empty());
    }

    #[test]
    fn the_strongest_identifier_wins_and_the_other_holder_is_a_conflict() {
        let rules = HostRules::default();
        let mut index = IdentifierIndex::from([
            (
                (IdKind::Mac, "12:5e:2e:db:58:99".to_string()),
                BTreeSet::from([7]),
            ),
            (
                (IdKind::CloudInstanceId, "i-9".to_string()),
                BTreeSet::from([3]),
            ),
        ]);
        let both = ids(
            &rules,
            Observation {
                cloud_instance_id: Some("I-9".into()),
                macs: vec!["12:5e:2e:db:58:99".into()],
                ..Default::default()
            },
        );
        let m = match_observations(&[(None, &both)], &mut index, 20);
        assert_eq!(placed(&m), [(3, Some(IdKind::CloudInstanceId), false)]);
        assert_eq!(
            m.conflicts,
            [Conflict {
                observation: 0,
                kind: IdKind::Mac,
                value: "12:5e:2e:db:58:99".into(),
                host_id: 3,
                other_host_id: 7,
            }]
        );
        // From now on both hosts are found by the MAC.
        assert_eq!(
            index.get(&(IdKind::Mac, "12:5e:2e:db:58:99".to_string())),
            Some(&BTreeSet::from([3, 7]))
        );
    }

    #[test]
    fn a_stored_observation_stays_with_its_host() {
        let rules = HostRules::default();
        let mut index =
            IdentifierIndex::from([((IdKind::Name, "web-1".to_string()), BTreeSet::from([4]))]);
        let report = ids(
            &rules,
            Observation {
                hostname: Some("web-1".into()),
                ..Default::default()
            },
        );
        let known = Known {
            host_id: 8,
            matched_by: Some(IdKind::Mac),
        };
        let m = match_observations(&[(Some(known), &report)], &mut index, 20);
        assert_eq!(placed(&m), [(8, Some(IdKind::Mac), false)]);
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(
            (m.conflicts[0].host_id, m.conflicts[0].other_host_id),
            (8, 4)
        );
    }
}
