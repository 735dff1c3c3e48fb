//! What to encode: [`BatchSpec`] and [`RecordSpec`] describe batches with
//! every derived field optional, so a conformance suite can leave lengths,
//! CRCs and deltas to be computed, or override any of them to send a broken
//! batch on purpose. The JSON form parses into these; `batch` and `legacy`
//! turn them into bytes.

use bytes::Bytes;

use super::compression::{Compression, SnappyFraming};
use super::{batch, legacy, ControlType, TimestampType};

/// One batch (magic 2) or, for magic 0/1, one message set: uncompressed,
/// one message per record; compressed, one wrapper holding them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchSpec {
    pub magic: i8,
    /// Magic 2: the base offset (default: the first record's offset, else
    /// 0). Legacy: the message offset; for a wrapper, the offset of its last
    /// inner message (default: that offset).
    pub base_offset: Option<i64>,
    pub partition_leader_epoch: i32,
    pub compression: Compression,
    pub timestamp_type: TimestampType,
    pub transactional: bool,
    pub control: bool,
    pub delete_horizon: bool,
    /// Raw attributes, replacing the ones the flags above would give.
    pub attributes: Option<i16>,
    pub last_offset_delta: Option<i32>,
    /// Default: the first record's timestamp, else 0.
    pub base_timestamp: Option<i64>,
    /// Default: the largest record timestamp. Legacy: the wrapper timestamp.
    pub max_timestamp: Option<i64>,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// Overrides the records count in the header.
    pub record_count: Option<i32>,
    /// Overrides batch_length (legacy: message_size).
    pub batch_length: Option<i32>,
    /// Overrides the CRC (legacy: of the wrapper, or of every message).
    pub crc: Option<u32>,
    pub snappy_framing: SnappyFraming,
    /// Default: the broken checksum for magic 0, the correct one otherwise.
    pub lz4_broken_checksum: Option<bool>,
    /// The key of a legacy compressed wrapper.
    pub wrapper_key: Option<Bytes>,
    pub records: Vec<RecordSpec>,
}

impl Default for BatchSpec {
    fn default() -> BatchSpec {
        BatchSpec {
            magic: 2,
            base_offset: None,
            partition_leader_epoch: -1,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            delete_horizon: false,
            attributes: None,
            last_offset_delta: None,
            base_timestamp: None,
            max_timestamp: None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: None,
            batch_length: None,
            crc: None,
            snappy_framing: SnappyFraming::Xerial,
            lz4_broken_checksum: None,
            wrapper_key: None,
            records: Vec::new(),
        }
    }
}

impl BatchSpec {
    /// The attributes the flags give (magic 2: int16; legacy: the int8).
    pub fn attribute_bits(&self) -> i16 {
        let mut a = i16::from(self.compression.code());
        if self.magic >= 1 && self.timestamp_type == TimestampType::LogAppendTime {
            a |= 0x08;
        }
        if self.magic >= 2 {
            a |= i16::from(self.transactional) << 4;
            a |= i16::from(self.control) << 5;
            a |= i16::from(self.delete_horizon) << 6;
        }
        a
    }

    /// Appends the encoded batch (or message set) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), String> {
        match self.magic {
            2 => batch::encode(self, out),
            0 | 1 => legacy::encode(self, out),
            m => Err(format!("magic {m} cannot be encoded (0, 1 and 2 can)")),
        }
    }
}

/// One record (or legacy message). Unset fields follow the batch.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RecordSpec {
    /// Absolute offset (default: consecutive from the base offset).
    pub offset: Option<i64>,
    /// Absolute timestamp (default: the base timestamp).
    pub timestamp: Option<i64>,
    pub attributes: Option<i8>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(Bytes, Option<Bytes>)>,
    /// Legacy only: overrides this message's CRC.
    pub crc: Option<u32>,
    /// Legacy only: this message's magic (default: the batch's).
    pub magic: Option<i8>,
}

/// A control record to build a key and value for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlSpec {
    pub kind: ControlType,
    pub version: i16,
    pub marker_version: i16,
    pub coordinator_epoch: i32,
}

impl ControlSpec {
    /// Key: version i16, type i16.
    pub fn key(&self) -> Bytes {
        let mut k = Vec::with_capacity(4);
        k.extend_from_slice(&self.version.to_be_bytes());
        k.extend_from_slice(&self.kind.code().to_be_bytes());
        Bytes::from(k)
    }

    /// Value: for abort/commit the EndTxnMarker (version i16,
    /// coordinator_epoch i32); other types have no value we can build.
    pub fn value(&self) -> Option<Bytes> {
        if !self.kind.is_txn_marker() {
            return None;
        }
        let mut v = Vec::with_capacity(6);
        v.extend_from_slice(&self.marker_version.to_be_bytes());
        v.extend_from_slice(&self.coordinator_epoch.to_be_bytes());
        Some(Bytes::from(v))
    }
}
