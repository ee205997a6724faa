//! Where provider data enters: HTTP listings (with pagination and follow-up requests) and
//! files. Sources hand out raw records; `transform` turns them into entity fields.

pub mod auth;
pub mod file;
pub mod filter;
pub mod http;
pub mod incremental;
pub mod json;
pub mod kafka;
pub mod listing;
pub mod outbound;
