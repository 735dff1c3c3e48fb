//! kwire: a Kafka wire-protocol analyzer and conformance tester.
//!
//! The crate is layered like the protocol: `schema` describes every message,
//! `wire` reads and writes the primitive types, `value` is the generic tree a
//! decoded message becomes, `codec` walks a schema over bytes in both
//! directions, `records` owns record batches and their compression, and
//! `frame` cuts length-prefixed Kafka frames and decodes them whole.

pub mod capture;
pub mod client;
pub mod codec;
pub mod conform;
pub mod display;
pub mod exchange;
pub mod filter;
pub mod frame;
pub mod frames_file;
pub mod hashing;
pub mod json;
pub mod reassembly;
pub mod records;
pub mod sasl;
pub mod schema;
pub mod session;
pub mod stats;
pub mod summary;
pub mod tui;
pub mod value;
pub mod wire;
