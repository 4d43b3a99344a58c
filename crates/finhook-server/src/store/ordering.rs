//! Whether an endpoint takes a LoginId's callbacks one at a time, in ingest order.

/// Whether an endpoint gets the callbacks of one LoginId one at a time, in ingest order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOrder {
    /// As soon as each is due, several at once (the default: the fastest).
    #[default]
    None,
    /// A LoginId's next callback waits until the one before it is delivered (or has failed
    /// for good); other LoginIds never wait for it.
    LoginId,
}

impl DeliveryOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::LoginId => "login_id",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::None, Self::LoginId].into_iter().find(|o| o.as_str() == text)
    }
}
