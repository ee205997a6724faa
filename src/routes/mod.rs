//! HTTP handlers, one module per concern. `startup` wires them into the router.

pub mod body_limit;
pub mod cross_origin;
pub mod graphql;
pub mod health;
pub mod metrics;
pub mod push;
pub mod submit;
