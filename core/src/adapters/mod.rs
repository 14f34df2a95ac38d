//! Adapters: the concrete implementations of the ports.

pub mod dynamodb_item;
pub mod embedded;
pub mod journal;
pub mod relay;
