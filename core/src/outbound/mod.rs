//! Outbound adapters: the concrete stores, senders and key holders behind the ports.

pub mod cursor;
pub mod dynamodb;
pub mod dynamodb_item;
pub mod dynamodb_ledger;
pub mod embedded;
pub mod embedded_ledger;
pub mod journal;
pub mod private_file;
pub mod rate_limit;
pub mod ses;
pub mod sns;
pub mod staff_tokens;
pub mod whatsapp;
