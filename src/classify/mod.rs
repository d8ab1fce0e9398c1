//! Classification without a firewall: the policy's `match` entries, their u32 encoding and
//! decoding, and the layout of a tree's match filters (priorities, handles, hash tables).
//!
//! Why u32 and not flower: see docs/match.md. In short, u32 exists on every kernel (this
//! machine lacks flower), its keys read back exactly as they were written, and one codec
//! serves both directions.

pub mod action;
pub mod layout;
pub mod matcher;
pub mod read;
pub mod u32;

pub use matcher::{Family, Match, MatchError};
