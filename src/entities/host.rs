//! Hosts: one provider's report of one machine (an observation), keyed by the provider's own
//! id for it (`id`). Writing a batch resolves each observation to the host it shares a strong
//! identifier with (`store::hosts`, by the rules of `crate::hosts`).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde::{Deserialize, Serialize};

use super::fields::{self, Field, Fields, Scalar};
use super::{Entity, Target};
use crate::store::hosts as store;
use crate::store::upsert::UpsertCounts;
use crate::transform::transforms;

/// One provider's report of one machine, normalized.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Observation {
    pub hostname: Option<String>,
    pub fqdn: Option<String>,
    pub os: Option<String>,
    pub platform: Option<String>,
    pub cloud_provider: Option<String>,
    pub cloud_instance_id: Option<String>,
    /// Sorted, without duplicates, canonical text.
    pub private_ips: Vec<String>,
    pub public_ips: Vec<String>,
    /// Lower-case colon pairs, sorted, without duplicates.
    pub macs: Vec<String>,
    pub first_seen: Option<DateTime<Utc>>,
    /// When the tool last saw the machine.
    pub last_seen: Option<DateTime<Utc>>,
}

/// An observation with the provider's id for the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct HostReport {
    pub external_id: String,
    pub observation: Observation,
}

pub const ID: Field = Field::required("id", 0, "the provider's own id for the machine");
pub const HOSTNAME: Field = Field::optional("hostname", 1, "host name");
pub const FQDN: Field = Field::optional("fqdn", 2, "fully qualified domain name");
pub const OS: Field = Field::optional("os", 3, "operating system");
pub const PLATFORM: Field = Field::optional("platform", 4, "platform (`Linux`, `Windows`, …)");
pub const CLOUD_PROVIDER: Field = Field::optional("cloud_provider", 5, "cloud provider (`AWS`, …)");
pub const CLOUD_INSTANCE_ID: Field = Field::optional(
    "cloud_instance_id",
    6,
    "cloud instance id, the strongest identifier",
);
pub const IPS: Field = Field::optional(
    "ips",
    7,
    "IP addresses, one or a list, sorted into private and public by range",
);
pub const PRIVATE_IPS: Field = Field::optional(
    "private_ips",
    8,
    "private IP addresses, as the provider says",
);
pub const PUBLIC_IPS: Field =
    Field::optional("public_ips", 9, "public IP addresses, as the provider says");
pub const MACS: Field = Field::optional(
    "macs",
    10,
    "MAC addresses, one or a list, in any common spelling",
);
pub const FIRST_SEEN: Field =
    Field::optional("first_seen", 11, "when the tool first saw the machine");
pub const LAST_SEEN: Field = Field::optional("last_seen", 12, "when the tool last saw the machine");

pub struct Host;

impl Entity for Host {
    const NAME: &'static str = "host";
    const FIELDS: &'static [Field] = &[
        ID,
        HOSTNAME,
        FQDN,
        OS,
        PLATFORM,
        CLOUD_PROVIDER,
        CLOUD_INSTANCE_ID,
        IPS,
        PRIVATE_IPS,
        PUBLIC_IPS,
        MACS,
        FIRST_SEEN,
        LAST_SEEN,
    ];
    const ID_FIELD: Option<Field> = Some(ID);

    type Record = HostReport;

    /// Single-valued fields accept a list whose values are all the same (nested lists often
    /// repeat one value); list fields accept one value or a list.
    fn from_fields(f: &impl Fields, _key: Option<String>) -> Result<HostReport, String> {
        let id = single(f, &ID)?.ok_or_else(|| "id: missing".to_string())?;
        let mut private_ips = ips(f, &PRIVATE_IPS)?;
        let mut public_ips = ips(f, &PUBLIC_IPS)?;
        for ip in ips(f, &IPS)? {
            if crate::hosts::is_private(&ip) {
                private_ips.insert(ip);
            } else {
                public_ips.insert(ip);
            }
        }
        let text_list = |set: BTreeSet<IpAddr>| set.into_iter().map(|ip| ip.to_string()).collect();
        let mut macs = BTreeSet::new();
        for value in many(f, &MACS)? {
            match transforms::mac(&serde_json::Value::String(value)) {
                Ok(serde_json::Value::String(mac)) => {
                    macs.insert(mac);
                }
                Ok(_) => {}
                Err(error) => return Err(format!("macs: {error}")),
            }
        }
        let time = |field: &Field| -> Result<Option<DateTime<Utc>>, String> {
            single(f, field)?
                .map(|text| {
                    fields::timestamp(Scalar::Text(text.into()))
                        .map_err(|error| format!("{}: {error}", field.name))
                })
                .transpose()
        };
        Ok(HostReport {
            external_id: id,
            observation: Observation {
                hostname: single(f, &HOSTNAME)?,
                fqdn: single(f, &FQDN)?,
                os: single(f, &OS)?,
                platform: single(f, &PLATFORM)?,
                cloud_provider: single(f, &CLOUD_PROVIDER)?,
                cloud_instance_id: single(f, &CLOUD_INSTANCE_ID)?,
                private_ips: text_list(private_ips),
                public_ips: text_list(public_ips),
                macs: macs.into_iter().collect(),
                first_seen: time(&FIRST_SEEN)?,
                last_seen: time(&LAST_SEEN)?,
            },
        })
    }

    fn key(record: &HostReport) -> Cow<'_, str> {
        Cow::Borrowed(&record.external_id)
    }

    async fn write<C: ConnectionTrait>(
        db: &C,
        target: &Target<'_>,
        records: Vec<HostReport>,
    ) -> Result<UpsertCounts, DbErr> {
        store::resolve(
            db,
            target.host_rules,
            target.provider,
            target.run_id,
            records,
        )
        .await
    }

    /// Unchanged, but reported: what keeps a host from going stale.
    async fn unchanged<C: ConnectionTrait>(
        db: &C,
        target: &Target<'_>,
        external_ids: &[String],
    ) -> Result<(), DbErr> {
        store::touch(db, target.provider, external_ids, Utc::now()).await
    }
}

/// The distinct non-blank texts of a field that may hold one value or a list, trimmed.
fn many(f: &impl Fields, field: &Field) -> Result<BTreeSet<String>, String> {
    Ok(f.list(field)?
        .iter()
        .map(|value| value.as_str().trim().to_string())
        .collect())
}

/// A field that holds one value: one text, or a list whose values are all that text.
fn single(f: &impl Fields, field: &Field) -> Result<Option<String>, String> {
    let values = many(f, field)?;
    if values.len() > 1 {
        return Err(format!(
            "{}: expected one value, got {} different ones ({})",
            field.name,
            values.len(),
            values.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(values.into_iter().next())
}

fn ips(f: &impl Fields, field: &Field) -> Result<BTreeSet<IpAddr>, String> {
    many(f, field)?
        .into_iter()
        .map(|text| {
            text.parse::<IpAddr>()
                .map_err(|_| format!("{}: {text:?} is not an IP address", field.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    fn report(value: Value) -> Result<HostReport, String> {
        match value {
            Value::Object(map) => Host::from_fields(&map, None),
            _ => Host::from_fields(&Map::new(), None),
        }
    }

    #[test]
    fn a_host_files_addresses_by_range_and_normalizes_macs() {
        let HostReport {
            external_id,
            observation: o,
        } = report(json!({
            "id": 305003660,
            "hostname": "ip-172-31-19-223.ec2.internal",
            "cloud_instance_id": ["i-0f74daf3d7225083a", "i-0f74daf3d7225083a"],
            "macs": ["0A:9A:0E:BA:3F:D9", "0a-9a-0e-ba-3f-d9", null],
            "ips": ["172.31.19.223", "18.212.216.193", "fe80:0:0:0:89a:eff:feba:3fd9"],
            "last_seen": "2023-07-26T04:27:35Z",
        }))
        .expect("maps");
        assert_eq!(external_id, "305003660");
        assert_eq!(o.cloud_instance_id.as_deref(), Some("i-0f74daf3d7225083a"));
        assert_eq!(o.macs, ["0a:9a:0e:ba:3f:d9"]);
        assert_eq!(o.private_ips, ["172.31.19.223", "fe80::89a:eff:feba:3fd9"]);
        assert_eq!(o.public_ips, ["18.212.216.193"]);
        assert_eq!(
            o.last_seen.map(|t| t.to_rfc3339()).as_deref(),
            Some("2023-07-26T04:27:35+00:00")
        );
    }

    #[test]
    fn bad_host_fields_are_named() {
        let error = |value: Value| report(value).expect_err("refused");
        assert_eq!(error(json!({ "hostname": "a" })), "id: missing");
        assert_eq!(
            error(json!({ "id": "1", "os": ["Linux", "Windows"] })),
            "os: expected one value, got 2 different ones (Linux, Windows)"
        );
        assert_eq!(
            error(json!({ "id": "1", "ips": ["10.0.0.1", "ten"] })),
            "ips: \"ten\" is not an IP address"
        );
        assert_eq!(
            error(json!({ "id": "1", "macs": "zz" })),
            "macs: \"zz\" is not a MAC address"
        );
    }
}
