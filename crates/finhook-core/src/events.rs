//! finhook's own operational events (an endpoint failing, disabled or recovered, a message
//! out of attempts, a certificate about to expire): their names, the JSON body they are
//! delivered with, and [`MessageType`], which says whether a message is a Flinks callback
//! or one of these events.
//!
//! Events are delivered and signed like callbacks, to the endpoints that name them in their
//! `event_types`. An endpoint without `event_types` takes every callback type and no event:
//! a receiver that only conciliates Flinks callbacks never gets a body it cannot parse.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::flinks::ResponseType;

/// The kinds of operational event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// An endpoint's attempts failed N times in a row (N: `failing_after_attempts`).
    EndpointFailing,
    /// Every attempt to an endpoint failed for the configured period: it was disabled.
    EndpointDisabled,
    /// An attempt succeeded after an `endpoint.failing`.
    EndpointRecovered,
    /// A callback's delivery to an endpoint failed its last attempt.
    MessageAttemptsExhausted,
    /// An endpoint's server (or client) certificate expires within 14 days.
    CertificateExpiring,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        Self::EndpointFailing,
        Self::EndpointDisabled,
        Self::EndpointRecovered,
        Self::MessageAttemptsExhausted,
        Self::CertificateExpiring,
    ];

    /// The name in `event_types` and in the body's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndpointFailing => "endpoint.failing",
            Self::EndpointDisabled => "endpoint.disabled",
            Self::EndpointRecovered => "endpoint.recovered",
            Self::MessageAttemptsExhausted => "message.attempts_exhausted",
            Self::CertificateExpiring => "certificate.expiring",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a stored message is: a Flinks callback of one `ResponseType`, or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    Callback(ResponseType),
    Event(EventType),
}

impl MessageType {
    /// Every name an endpoint's `event_types` may hold: the callbacks', then the events'.
    pub fn all() -> impl Iterator<Item = MessageType> {
        ResponseType::ALL.into_iter().map(Self::Callback).chain(EventType::ALL.into_iter().map(Self::Event))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Callback(response_type) => response_type.as_str(),
            Self::Event(event_type) => event_type.as_str(),
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        ResponseType::parse(value).map(Self::Callback).or_else(|| EventType::parse(value).map(Self::Event))
    }

    /// Every name, for error messages: "KYC, GetAccountsDetail, ... or certificate.expiring".
    pub fn names() -> String {
        let names: Vec<&str> = Self::all().map(Self::as_str).collect();
        match names.split_last() {
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    pub fn is_event(self) -> bool {
        matches!(self, Self::Event(_))
    }

    /// Whether an endpoint with these `event_types` takes messages of this type: `None`
    /// takes every callback and no event; a list takes what it names.
    pub fn taken_by(self, event_types: Option<&[MessageType]>) -> bool {
        match event_types {
            None => !self.is_event(),
            Some(types) => types.contains(&self),
        }
    }
}

impl From<ResponseType> for MessageType {
    fn from(response_type: ResponseType) -> Self {
        Self::Callback(response_type)
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body an event is delivered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBody {
    /// The event's name, e.g. `endpoint.failing`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The name of the instance the event is about.
    pub instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// When it happened (not when it was delivered).
    pub at: DateTime<Utc>,
    /// What is particular to the type (see the contract).
    pub data: serde_json::Value,
}

impl EventBody {
    /// The event's type, if it is one finhook knows.
    pub fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.event_type)
    }

    /// Reads an event body; `None` when the bytes are not one (a Flinks callback, say).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(bytes).ok().filter(|body| body.event_type().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_callbacks_and_events_do_not_collide() {
        let all: Vec<MessageType> = MessageType::all().collect();
        assert_eq!(all.len(), 8);
        for t in &all {
            assert_eq!(MessageType::parse(t.as_str()), Some(*t), "{t}");
        }
        assert_eq!(MessageType::parse("KYC"), Some(MessageType::Callback(ResponseType::Kyc)));
        assert_eq!(MessageType::parse("endpoint.failing"), Some(MessageType::Event(EventType::EndpointFailing)));
        assert_eq!(MessageType::parse("kyc"), None, "names are exact");
        assert_eq!(MessageType::parse("endpoint.deleted"), None);
        assert!(MessageType::names().starts_with("KYC, GetAccountsDetail, Investments, endpoint.failing, "));
        assert!(MessageType::names().ends_with(" or certificate.expiring"));
    }

    #[test]
    fn endpoints_without_a_list_take_every_callback_and_no_event() {
        let kyc = MessageType::Callback(ResponseType::Kyc);
        let failing = MessageType::Event(EventType::EndpointFailing);
        assert!(kyc.taken_by(None));
        assert!(!failing.taken_by(None), "events only when named");
        assert!(failing.taken_by(Some(&[failing])));
        assert!(!kyc.taken_by(Some(&[failing])), "a list of events takes no callback");
        assert!(!MessageType::Event(EventType::EndpointRecovered).taken_by(Some(&[failing, kyc])));
    }

    #[test]
    fn an_event_body_reads_back_and_a_callback_is_not_one() {
        let body = EventBody {
            event_type: "endpoint.failing".into(),
            instance: "acme".into(),
            endpoint_id: Some("ep_1".into()),
            message_id: None,
            at: DateTime::from_timestamp(1_773_511_200, 0).expect("time"),
            data: serde_json::json!({ "failed_attempts_in_row": 5 }),
        };
        let bytes = serde_json::to_vec(&body).expect("json");
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(text.contains(r#""type":"endpoint.failing""#) && !text.contains("message_id"), "{text}");
        assert_eq!(EventBody::parse(&bytes), Some(body));
        assert_eq!(EventBody::parse(br#"{"ResponseType":"KYC","HttpStatusCode":200}"#), None);
        assert_eq!(
            EventBody::parse(br#"{"type":"other","instance":"a","at":"2026-01-01T00:00:00Z","data":{}}"#),
            None,
            "an unknown type is not an event of ours"
        );
    }
}
