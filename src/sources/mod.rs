//! Where provider data enters: HTTP listings (with pagination and follow-up requests) and
//! files. Sources hand out raw records; `transform` turns them into entity fields.

pub mod file;
pub mod http;
pub mod json;
pub mod kafka;
pub mod listing;
pub mod outbound;
