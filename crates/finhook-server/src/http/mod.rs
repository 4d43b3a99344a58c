//! What every HTTP area (`api`, `dashboard`, `sandbox`) shares: errors rendered as
//! problem+json, the bearer-key [`Caller`] extractor, the JSON body extractor whose
//! errors carry the JSON path, and the per-instance ingest rate limit. The areas depend on this module, never on each other.

mod auth;
pub(crate) mod json;
pub mod limit;
mod problem;

pub use auth::Caller;
pub(crate) use json::ApiJson;
pub(crate) use problem::ErrorChain;
pub use problem::{ApiError, Problem};
