//! What every HTTP area (`api`, `dashboard`, `sandbox`) shares: errors rendered as
//! problem+json, the bearer-key [`Caller`] extractor, callback bodies' memory budget and
//! timeout, the JSON body extractor whose
//! errors carry the JSON path, the per-instance ingest rate limit, and the server's accept
//! loop with its timeouts and connection limit. The areas depend on this module, never on
//! each other.

pub mod admin_key;
pub mod audit;
mod auth;
pub mod bodies;
pub(crate) mod json;
pub mod limit;
mod problem;
pub mod request_id;
pub mod serve;
pub mod tls;

pub use auth::{instance_endpoint, Caller};
pub(crate) use json::ApiJson;
pub(crate) use problem::ErrorChain;
pub use problem::{ApiError, Problem};
