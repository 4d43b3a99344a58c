//! Prefixed ULID identifiers, one type per kind so a `MessageId` cannot stand in for an
//! `EndpointId`. ULIDs sort by creation time, which keeps "newest first" listings cheap.

use std::fmt;

/// Why a string is not an identifier of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind} id (expected {prefix}<ULID>)")]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

/// ULIDs from one process-wide monotonic generator, so ids made in the same millisecond
/// still sort in creation order (listings page by id).
fn next_ulid() -> ulid::Ulid {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut guard = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // The generator only fails when 2^80 ids are made in one millisecond.
    guard.get_or_insert_with(ulid::Generator::new).generate().unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh identifier, ordered after every earlier one from this process.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, next_ulid()))
            }

            pub fn parse(value: &str) -> Result<Self, IdError> {
                value
                    .strip_prefix($prefix)
                    .and_then(|rest| ulid::Ulid::from_string(rest).ok())
                    .map(|_| Self(value.to_string()))
                    .ok_or_else(|| IdError { kind: $kind, prefix: $prefix, value: value.to_string() })
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

prefixed_id!(
    /// A stored callback; also the `webhook-id` every attempt carries.
    MessageId, "msg_", "message"
);
prefixed_id!(
    /// A webhook endpoint of an instance.
    EndpointId, "ep_", "endpoint"
);
prefixed_id!(
    /// One message bound for one endpoint.
    DeliveryId, "dlv_", "delivery"
);
prefixed_id!(
    /// One HTTP POST of a delivery.
    AttemptId, "att_", "attempt"
);
prefixed_id!(
    /// A bulk recovery: the re-sending of failed deliveries, run as a job.
    RecoveryId, "rcv_", "recovery"
);
prefixed_id!(
    /// A self-service portal link: opens the dashboard scoped to one instance, without its key.
    PortalLinkId, "ptl_", "portal link"
);
prefixed_id!(
    /// One running `finhook serve` on a shared store, for as long as it runs: the owner of
    /// its leases, alive while it keeps saying so.
    NodeId, "node_", "node"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_kinds() {
        let id = MessageId::generate();
        assert!(id.as_str().starts_with("msg_"));
        assert_eq!(MessageId::parse(id.as_str()), Ok(id.clone()));
        assert!(EndpointId::parse(id.as_str()).is_err());
        assert!(MessageId::parse("msg_not-a-ulid").is_err());
        let later = MessageId::generate();
        assert!(later > id, "ULIDs order by creation");
    }
}
