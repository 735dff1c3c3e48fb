//! kwire: a Kafka wire-protocol analyzer and conformance tester.
//!
//! The crate is layered like the protocol: `schema` describes every message,
//! `wire` reads and writes the primitive types, `value` is the generic tree a
//! decoded message becomes, `codec` walks a schema over bytes in both
//! directions, `records` owns record batches and their compression, and
//! `frame` cuts length-prefixed Kafka frames and decodes them whole.

pub mod capture;
pub mod codec;
pub mod display;
pub mod frame;
pub mod frames_file;
pub mod reassembly;
pub mod records;
pub mod schema;
pub mod value;
pub mod wire;
pub mod exchange;
pub mod sasl;
pub mod session;
pub mod filter;
pub mod stats;
pub mod client;
pub mod conform;
pub mod tui;
