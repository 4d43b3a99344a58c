//! What every HTTP area (`api`, `dashboard`, `sandbox`) shares: errors rendered as
//! problem+json, the bearer-key [`Caller`] extractor, and the JSON body extractor whose
//! errors carry the JSON path. The areas depend on this module, never on each other.

mod auth;
pub(crate) mod json;
mod problem;

pub use auth::Caller;
pub(crate) use json::ApiJson;
pub(crate) use problem::ErrorChain;
pub use problem::{ApiError, Problem};
