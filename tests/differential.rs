//! Differential test of kwire's codec against an independent implementation
//! of the Kafka protocol, the `kafka-protocol` crate.
//!
//! For every API and version both implementations know, in both directions:
//!
//! 1. kafka-protocol encodes its default message; kwire must decode it
//!    completely, re-encode the same bytes, and produce the same bytes from
//!    an empty tree (so both agree on every top-level default).
//! 2. kwire builds a populated tree from its schema (see `populate`), in
//!    several variants, and encodes it. kafka-protocol must decode those
//!    bytes completely, recognise every tagged field, and re-encode exactly
//!    them; kwire must decode kafka-protocol's bytes into the same tree.
//!
//! The request and response headers get the same treatment; whole frames
//! with kafka-protocol's headers must decode and re-encode through kwire's
//! frame layer with the header version kafka-protocol chose; and a few
//! messages are built natively with kafka-protocol's builders. Versions only
//! one side knows are skipped, and the skips are spelled out in
//! `EXPECTED_SKIPS`, so a change on either side shows up here. A last test
//! feeds deliberately wrong schemas through the same checks, to prove they
//! can fail. `cargo test --test differential -- --nocapture` prints what was
//! checked and skipped.

#[path = "differential/kp.rs"]
mod kp;
#[path = "differential/populate.rs"]
mod populate;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::{
    api_versions_response, fetch_response, metadata_response, produce_request, ApiKey,
    ApiVersionsResponse, BrokerId, FetchResponse, MetadataResponse, ProduceRequest, RequestHeader,
    ResponseHeader, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes, VersionRange};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kwire::codec::{decode_message, encode_message, DecodeOptions};
use kwire::frame::{self, DecodedFrame, Direction};
use kwire::schema::{
    self, ApiSpec, DefaultValue, FieldSpec, FieldType, MessageSpec, StructSpec, Versions,
};
use kwire::value::{RawTag, Struct, Value};
use kwire::wire::Reader;

use kp::{KpApi, KpMessage};
use populate::{first_difference, Populator, Variant, VARIANTS};

/// The least number of (API, version, direction) combinations the main
/// test must check, measured when it was written (kwire's definitions of
/// 2024-10-25 against kafka-protocol 0.18.0: 535 API combinations and 4
/// header versions). Fewer means something stopped being compared.
const CHECKED_FLOOR: usize = 539;

/// The same floor for whole frames: every API combination above.
const FRAMES_FLOOR: usize = 535;

/// Combinations known to differ because of a bug or a definition change on
/// the kafka-protocol side, each skipped exactly: (API key, direction,
/// versions, why). Add an entry only when the reason is understood.
const KNOWN_DIVERGENCES: &[(i16, Direction, Versions, &str)] = &[(
    87,
    Direction::Response,
    Versions::new(0, 0),
    "definition change: Kafka added LeaderEpoch to PartitionResult after \
     kwire's definitions (2024-10-25), while v0 was still unreleased \
     (KIP-932); kafka-protocol 0.18 follows the newer definition, so the \
     same version has another layout",
)];

/// What the comparison of version ranges skips, as `Skip::describe` prints
/// it. A kafka-protocol upgrade or a regeneration of kwire's tables that
/// changes this list must update it on purpose. The causes: kafka-protocol
/// 0.18 follows Kafka 4, which removed the oldest versions (KIP-896) and the
/// ZooKeeper-era inter-broker APIs (LeaderAndIsr, StopReplica,
/// UpdateMetadata, ControlledShutdown, hence RequestHeader v0), and later
/// definitions than kwire's 2024-10-25 ones add versions and APIs; the
/// share-group APIs of KIP-932 dropped their early-access v0 for v1.
const EXPECTED_SKIPS: &[&str] = &[
    "Produce request v0-2: not in kafka-protocol 0.18",
    "Produce request v12-13: not in kwire's definitions",
    "Produce response v0-2: not in kafka-protocol 0.18",
    "Produce response v12-13: not in kwire's definitions",
    "Fetch request v0-3: not in kafka-protocol 0.18",
    "Fetch request v18: not in kwire's definitions",
    "Fetch response v0-3: not in kafka-protocol 0.18",
    "Fetch response v18: not in kwire's definitions",
    "ListOffsets request v0: not in kafka-protocol 0.18",
    "ListOffsets response v0: not in kafka-protocol 0.18",
    "Metadata request v13: not in kwire's definitions",
    "Metadata response v13: not in kwire's definitions",
    "LeaderAndIsr request+response v0-7: API not in kafka-protocol 0.18",
    "StopReplica request+response v0-4: API not in kafka-protocol 0.18",
    "UpdateMetadata request+response v0-8: API not in kafka-protocol 0.18",
    "ControlledShutdown request+response v0-3: API not in kafka-protocol 0.18",
    "OffsetCommit request v0-1: not in kafka-protocol 0.18",
    "OffsetCommit response v0-1: not in kafka-protocol 0.18",
    "OffsetCommit response v10: not in kwire's definitions",
    "OffsetFetch request v0: not in kafka-protocol 0.18",
    "OffsetFetch response v0: not in kafka-protocol 0.18",
    "OffsetFetch response v10: not in kwire's definitions",
    "DescribeGroups request v6: not in kwire's definitions",
    "DescribeGroups response v6: not in kwire's definitions",
    "CreateTopics request v0-1: not in kafka-protocol 0.18",
    "CreateTopics response v0-1: not in kafka-protocol 0.18",
    "DeleteTopics request v0: not in kafka-protocol 0.18",
    "DeleteTopics response v0: not in kafka-protocol 0.18",
    "InitProducerId response v6: not in kwire's definitions",
    "OffsetForLeaderEpoch request v0-1: not in kafka-protocol 0.18",
    "OffsetForLeaderEpoch response v0-1: not in kafka-protocol 0.18",
    "WriteTxnMarkers request v0: not in kafka-protocol 0.18",
    "WriteTxnMarkers response v0: not in kafka-protocol 0.18",
    "TxnOffsetCommit request v5: not in kwire's definitions",
    "TxnOffsetCommit response v5: not in kwire's definitions",
    "DescribeAcls request v0: not in kafka-protocol 0.18",
    "DescribeAcls response v0: not in kafka-protocol 0.18",
    "CreateAcls request v0: not in kafka-protocol 0.18",
    "CreateAcls response v0: not in kafka-protocol 0.18",
    "DeleteAcls request v0: not in kafka-protocol 0.18",
    "DeleteAcls response v0: not in kafka-protocol 0.18",
    "DescribeConfigs request v0: not in kafka-protocol 0.18",
    "DescribeConfigs response v0: not in kafka-protocol 0.18",
    "AlterReplicaLogDirs request v0: not in kafka-protocol 0.18",
    "AlterReplicaLogDirs response v0: not in kafka-protocol 0.18",
    "DescribeLogDirs request v0: not in kafka-protocol 0.18",
    "DescribeLogDirs response v0: not in kafka-protocol 0.18",
    "CreateDelegationToken request v0: not in kafka-protocol 0.18",
    "CreateDelegationToken response v0: not in kafka-protocol 0.18",
    "RenewDelegationToken request v0: not in kafka-protocol 0.18",
    "RenewDelegationToken response v0: not in kafka-protocol 0.18",
    "ExpireDelegationToken request v0: not in kafka-protocol 0.18",
    "ExpireDelegationToken response v0: not in kafka-protocol 0.18",
    "DescribeDelegationToken request v0: not in kafka-protocol 0.18",
    "DescribeDelegationToken response v0: not in kafka-protocol 0.18",
    "AlterPartitionReassignments request v1: not in kwire's definitions",
    "AlterPartitionReassignments response v1: not in kwire's definitions",
    "Vote request v2: not in kwire's definitions",
    "Vote response v2: not in kwire's definitions",
    "AlterPartition request v0-1: not in kafka-protocol 0.18",
    "AlterPartition response v0-1: not in kafka-protocol 0.18",
    "DescribeCluster request v2: not in kwire's definitions",
    "DescribeCluster response v2: not in kwire's definitions",
    "ListTransactions request v2: not in kwire's definitions",
    "ListTransactions response v2: not in kwire's definitions",
    "ConsumerGroupDescribe request v1: not in kwire's definitions",
    "ConsumerGroupDescribe response v1: not in kwire's definitions",
    "ListClientMetricsResources request v1: not in kwire's definitions",
    "ListClientMetricsResources response v1: not in kwire's definitions",
    "ShareGroupHeartbeat request v0: not in kafka-protocol 0.18",
    "ShareGroupHeartbeat request v1: not in kwire's definitions",
    "ShareGroupHeartbeat response v0: not in kafka-protocol 0.18",
    "ShareGroupHeartbeat response v1: not in kwire's definitions",
    "ShareGroupDescribe request v0: not in kafka-protocol 0.18",
    "ShareGroupDescribe request v1: not in kwire's definitions",
    "ShareGroupDescribe response v0: not in kafka-protocol 0.18",
    "ShareGroupDescribe response v1: not in kwire's definitions",
    "ShareFetch request v0: not in kafka-protocol 0.18",
    "ShareFetch request v1: not in kwire's definitions",
    "ShareFetch response v0: not in kafka-protocol 0.18",
    "ShareFetch response v1: not in kwire's definitions",
    "ShareAcknowledge request v0: not in kafka-protocol 0.18",
    "ShareAcknowledge request v1: not in kwire's definitions",
    "ShareAcknowledge response v0: not in kafka-protocol 0.18",
    "ShareAcknowledge response v1: not in kwire's definitions",
    "DescribeShareGroupOffsets (key 90) request+response v0: API not in kwire's definitions",
    "AlterShareGroupOffsets (key 91) request+response v0: API not in kwire's definitions",
    "DeleteShareGroupOffsets (key 92) request+response v0: API not in kwire's definitions",
    "RequestHeader request v0: not in kafka-protocol 0.18",
];

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Request => "request",
        Direction::Response => "response",
    }
}

/// Versions that one side knows and the other does not.
struct Skip {
    name: String,
    /// None: the whole API, both directions.
    direction: Option<Direction>,
    versions: Versions,
    why: &'static str,
}

impl Skip {
    fn describe(&self) -> String {
        let side = self.direction.map_or("request+response", direction_name);
        let versions = if self.versions.min == self.versions.max {
            format!("v{}", self.versions.min)
        } else {
            format!("v{}-{}", self.versions.min, self.versions.max)
        };
        format!("{} {side} {versions}: {}", self.name, self.why)
    }
}

/// The versions of `outer` outside `inner`, as at most two ranges.
fn outside(outer: Versions, inner: Versions) -> Vec<Versions> {
    if outer.is_empty() {
        return Vec::new();
    }
    if inner.is_empty() || inner.max < outer.min || inner.min > outer.max {
        return vec![outer];
    }
    let mut ranges = Vec::new();
    if outer.min < inner.min {
        ranges.push(Versions::new(outer.min, inner.min - 1));
    }
    if outer.max > inner.max {
        ranges.push(Versions::new(inner.max + 1, outer.max));
    }
    ranges
}

fn kp_versions(range: VersionRange) -> Versions {
    Versions::new(range.min, range.max)
}

fn known_divergence(key: i16, direction: Direction, version: i16) -> Option<&'static str> {
    KNOWN_DIVERGENCES
        .iter()
        .find(|(api, side, versions, _)| {
            *api == key && *side == direction && versions.contains(version)
        })
        .map(|(_, _, _, why)| *why)
}

/// Three records that share their batch properties, as kafka-protocol's
/// encoder requires: keys (one null), values, and headers (one null value).
fn kp_records() -> Vec<Record> {
    (0..3)
        .map(|index| {
            let mut headers = IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("trace"),
                Some(Bytes::from(format!("h{index}"))),
            );
            headers.insert(StrBytes::from_static_str("empty"), None);
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 7,
                producer_id: 4242,
                producer_epoch: 3,
                timestamp_type: TimestampType::Creation,
                offset: 100 + index,
                sequence: 10 + index as i32,
                timestamp: 1_700_000_000_000 + index,
                key: (index != 1).then(|| Bytes::from(format!("key-{index}"))),
                value: Some(Bytes::from(format!("value-{index}").repeat(3))),
                headers,
            }
        })
        .collect()
}

/// A real v2 record batch written by kafka-protocol.
fn kp_record_batch(records: &[Record], compression: Compression) -> Bytes {
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, records, &options)
        .expect("kafka-protocol encodes a record batch");
    out.freeze()
}

/// Decodes a whole body with kwire: the tree, or why it failed.
fn kwire_decode(spec: &MessageSpec, version: i16, bytes: &[u8]) -> Result<Struct, String> {
    let mut reader = Reader::new(Bytes::copy_from_slice(bytes));
    let decoded = decode_message(&mut reader, spec, version, &DecodeOptions::default());
    if let Some(error) = decoded.error {
        return Err(format!("kwire cannot decode it: {error}"));
    }
    // A message another implementation wrote must not break kwire's rules.
    if let Some(violation) = decoded.violations.first() {
        return Err(format!("kwire sees a protocol violation: {violation}"));
    }
    let tree = decoded.body;
    if !reader.is_empty() {
        return Err(format!(
            "kwire left {} of {} bytes undecoded",
            reader.remaining(),
            bytes.len()
        ));
    }
    Ok(tree)
}

fn kwire_encode(spec: &MessageSpec, version: i16, tree: &Struct) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    encode_message(&mut out, spec, version, tree)
        .map_err(|error| format!("kwire cannot encode it: {error}"))?;
    Ok(out)
}

/// Runs kafka-protocol code, which may panic on input it does not expect.
/// It cannot catch everything: kafka-protocol allocates an array for the
/// count it reads before reading the elements, so bytes it misreads can
/// abort the whole process for want of memory instead of failing one check.
fn guarded<T>(run: impl FnOnce() -> anyhow::Result<T>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("{error:#}")),
        Err(panic) => Err(format!(
            "kafka-protocol panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
    }
}

/// Where two byte strings first differ, with a little hex either side.
fn byte_difference(ours: &[u8], theirs: &[u8]) -> String {
    let at = ours
        .iter()
        .zip(theirs)
        .position(|(l, r)| l != r)
        .unwrap_or(ours.len().min(theirs.len()));
    let window = |bytes: &[u8]| {
        let start = at.saturating_sub(8);
        let end = (at + 16).min(bytes.len());
        kwire::value::hex(bytes.get(start..end).unwrap_or_default())
    };
    format!(
        "lengths {} and {}, first difference at byte {at}: kwire ..{}.. kafka-protocol ..{}..",
        ours.len(),
        theirs.len(),
        window(ours),
        window(theirs)
    )
}

/// Prefixes a frame with its length.
fn framed(parts: &[&[u8]]) -> Vec<u8> {
    let size: usize = parts.iter().map(|part| part.len()).sum();
    let mut out = i32::try_from(size)
        .expect("test frames are small")
        .to_be_bytes()
        .to_vec();
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

fn kp_encode<M: Encodable>(message: &M, version: i16) -> Vec<u8> {
    let mut out = BytesMut::new();
    message
        .encode(&mut out, version)
        .expect("kafka-protocol encodes the message");
    out.to_vec()
}

/// One message type at one version that both sides know.
struct Case<'a> {
    /// None for the headers, which are messages of their own.
    api: Option<&'static ApiSpec>,
    name: &'static str,
    direction: Direction,
    spec: &'static MessageSpec,
    kp: &'a KpMessage,
    version: i16,
}

impl Case<'_> {
    fn label(&self) -> String {
        format!(
            "{} v{} {} ({})",
            self.name,
            self.version,
            direction_name(self.direction),
            self.kp.name
        )
    }

    /// kwire's Full tree of this message, and its bytes.
    fn full_body(&self, records: &Bytes) -> Result<(Struct, Vec<u8>), String> {
        let tree = Populator::new(self.spec, self.version, Variant::Full, records.clone())
            .message(self.spec);
        let bytes = kwire_encode(self.spec, self.version, &tree)?;
        Ok((tree, bytes))
    }

    /// kafka-protocol's default message through kwire.
    fn check_default(&self) -> Result<(), String> {
        let version = self.version;
        let theirs = guarded(|| (self.kp.encode_default)(version))
            .map_err(|error| format!("kafka-protocol cannot encode its default: {error}"))?;
        let tree = kwire_decode(self.spec, version, &theirs)
            .map_err(|error| format!("default message from kafka-protocol: {error}"))?;
        let again = kwire_encode(self.spec, version, &tree)?;
        if again != theirs {
            return Err(format!(
                "default message: kwire re-encodes kafka-protocol's bytes differently: {}",
                byte_difference(&again, &theirs)
            ));
        }
        let ours = kwire_encode(self.spec, version, &Struct::default())?;
        if ours != theirs {
            let difference = kwire_decode(self.spec, version, &ours)
                .map(|mine| first_difference(&mine, &tree).unwrap_or_default())
                .unwrap_or_else(|error| error);
            return Err(format!(
                "the defaults differ (left kwire, right kafka-protocol): {difference}; {}",
                byte_difference(&ours, &theirs)
            ));
        }
        Ok(())
    }

    /// A populated kwire tree through kafka-protocol and back.
    fn check_populated(&self, variant: Variant, records: &Bytes) -> Result<(), String> {
        let version = self.version;
        let tree = Populator::new(self.spec, version, variant, records.clone()).message(self.spec);
        let ours = kwire_encode(self.spec, version, &tree)?;
        let theirs = guarded(|| (self.kp.round_trip)(&ours, version)).map_err(|error| {
            format!("{variant:?}: kafka-protocol cannot round-trip kwire's bytes: {error}")
        })?;
        if theirs != ours {
            let fields = match kwire_decode(self.spec, version, &theirs) {
                Ok(back) => first_difference(&tree, &back)
                    .map(|found| {
                        format!("first differing field (left kwire, right kafka-protocol): {found}")
                    })
                    .unwrap_or_else(|| "the trees are equal".to_owned()),
                Err(error) => format!("kafka-protocol's bytes: {error}"),
            };
            let mut view = (self.kp.describe)(&ours, version);
            if view.len() > 4000 {
                view = view.chars().take(4000).collect::<String>() + "\n...";
            }
            return Err(format!(
                "{variant:?}: kafka-protocol re-encodes kwire's bytes differently: {fields}; {}\n\
                 kafka-protocol read kwire's bytes as:\n{view}",
                byte_difference(&ours, &theirs)
            ));
        }
        // The Edge variant carries unknown tags on purpose; in the others
        // every tag kwire writes must be one kafka-protocol knows too.
        if variant != Variant::Edge {
            let unrecognised = guarded(|| (self.kp.unrecognised_tags)(&ours, version))?;
            if unrecognised > 0 {
                return Err(format!(
                    "{variant:?}: kafka-protocol did not recognise {unrecognised} tagged field(s) kwire wrote \
                     (a tag number or a version range differs):\n{}",
                    (self.kp.describe)(&ours, version)
                ));
            }
        }
        let back = kwire_decode(self.spec, version, &theirs)
            .map_err(|error| format!("{variant:?}: {error}"))?;
        if let Some(found) = first_difference(&tree, &back) {
            return Err(format!(
                "{variant:?}: kafka-protocol's bytes decode into another tree (left built, right decoded): {found}"
            ));
        }
        Ok(())
    }

    /// Every check of the message at this version; the failures.
    fn check(&self, records: &Bytes) -> Vec<String> {
        let mut failures = Vec::new();
        failures.extend(self.check_default().err());
        for variant in VARIANTS {
            failures.extend(self.check_populated(variant, records).err());
        }
        failures
            .into_iter()
            .map(|failure| format!("{}: {failure}", self.label()))
            .collect()
    }

    /// A whole frame with kafka-protocol's header around kafka-protocol's
    /// body, through kwire's frame layer. Returns the header version.
    fn check_frame(&self, api: &'static ApiSpec, records: &Bytes) -> Result<i16, String> {
        let version = self.version;
        let (tree, ours) = self.full_body(records)?;
        let body = guarded(|| (self.kp.round_trip)(&ours, version))?;
        let header_version = (self
            .kp
            .header_version
            .expect("body types know their header version"))(version);
        let kwire_header_version = match self.direction {
            Direction::Request => schema::request_header_version(api, version),
            Direction::Response => schema::response_header_version(api, version),
        };
        if kwire_header_version != header_version {
            return Err(format!(
                "header version: kwire uses v{kwire_header_version}, kafka-protocol v{header_version}"
            ));
        }
        let correlation_id = 0x4b57_0000 | i32::from(api.key) << 8 | i32::from(version);
        // Vary what the header carries from version to version: a null
        // client id, an empty one, and an unknown tagged field.
        let client_id = match version % 3 {
            0 => None,
            1 => Some(format!("kwire-differential-{}", api.name)),
            _ => Some(String::new()),
        };
        let unknown_tag = (header_version == 2
            || (self.direction == Direction::Response && header_version == 1))
            && version % 2 == 1;
        let tag = RawTag {
            tag: 9,
            data: Bytes::from_static(b"\x01\x02"),
        };
        let mut expected_header = Struct::default();
        expected_header.push("correlation_id", Value::Int(correlation_id.into()));
        if unknown_tag {
            expected_header.unknown_tags.push(tag.clone());
        }
        let (frame, decoded) = match self.direction {
            Direction::Request => {
                let mut header = RequestHeader::default()
                    .with_request_api_key(api.key)
                    .with_request_api_version(version)
                    .with_correlation_id(correlation_id)
                    .with_client_id(client_id.clone().map(StrBytes::from_string));
                if unknown_tag {
                    header = header.with_unknown_tagged_field(tag.tag as i32, tag.data.clone());
                }
                let frame = framed(&[&kp_encode(&header, header_version), &body]);
                let decoded =
                    frame::decode_request(Bytes::from(frame.clone()), &DecodeOptions::default());
                let client_value = client_id.clone().map_or(Value::Null, Value::String);
                expected_header.push("client_id", client_value.clone());
                if decoded.header.get("client_id") != Some(&client_value) {
                    return Err(format!(
                        "kwire reads the client id as {:?}, not {client_value:?}",
                        decoded.header.get("client_id")
                    ));
                }
                (frame, decoded)
            }
            Direction::Response => {
                let mut header = ResponseHeader::default().with_correlation_id(correlation_id);
                if unknown_tag {
                    header = header.with_unknown_tagged_field(tag.tag as i32, tag.data.clone());
                }
                let frame = framed(&[&kp_encode(&header, header_version), &body]);
                let decoded = frame::decode_response(
                    Bytes::from(frame.clone()),
                    api.key,
                    version,
                    &DecodeOptions::default(),
                );
                (frame, decoded)
            }
        };
        check_decoded_frame(&decoded, &frame, &tree, correlation_id, header_version)?;
        if unknown_tag && decoded.header.unknown_tags != [tag] {
            return Err(format!(
                "kwire kept the header's unknown tags as {:?}",
                decoded.header.unknown_tags
            ));
        }
        // The same frame built from scratch by kwire.
        let built = match self.direction {
            Direction::Request => frame::encode_request(api.key, version, &expected_header, &tree),
            Direction::Response => {
                frame::encode_response(api.key, version, &expected_header, &tree)
            }
        }
        .map_err(|error| format!("kwire cannot encode the frame: {error}"))?;
        if built != frame {
            return Err(format!(
                "kwire encodes the frame from scratch differently: {}",
                byte_difference(&built, &frame)
            ));
        }
        Ok(header_version)
    }
}

/// What kwire made of a frame kafka-protocol wrote: no error, the header and
/// body expected, and the same bytes again on re-encoding.
fn check_decoded_frame(
    decoded: &DecodedFrame,
    frame: &[u8],
    body: &Struct,
    correlation_id: i32,
    header_version: i16,
) -> Result<(), String> {
    if let Some(error) = &decoded.error {
        return Err(format!("kwire cannot decode the frame: {error}"));
    }
    if decoded.header_version != header_version || decoded.correlation_id != Some(correlation_id) {
        return Err(format!(
            "kwire reads header v{} with correlation id {:?}, not v{header_version} with {correlation_id}",
            decoded.header_version, decoded.correlation_id
        ));
    }
    let decoded_body = decoded
        .body
        .as_ref()
        .ok_or("kwire did not decode the body")?;
    if let Some(found) = first_difference(body, decoded_body) {
        return Err(format!(
            "the framed body decodes differently (left built, right decoded): {found}"
        ));
    }
    let again = frame::reencode(decoded)
        .map_err(|error| format!("kwire cannot re-encode the frame: {error}"))?;
    if again != frame {
        return Err(format!(
            "kwire re-encodes the frame differently: {}",
            byte_difference(&again, frame)
        ));
    }
    Ok(())
}

/// Which combinations to check, and which to skip and why.
#[derive(Default)]
struct Plan<'a> {
    cases: Vec<Case<'a>>,
    skips: Vec<Skip>,
    divergences: Vec<String>,
}

impl<'a> Plan<'a> {
    /// Every API both sides know, request and response.
    fn for_apis(kp_apis: &'a [KpApi]) -> Plan<'a> {
        let listed: Vec<i16> = kp_apis.iter().map(|api| api.key).collect();
        let missing: Vec<ApiKey> = ApiKey::iter()
            .filter(|key| !listed.contains(&(*key as i16)))
            .collect();
        assert!(
            missing.is_empty(),
            "kafka-protocol has APIs missing from tests/differential/kp.rs: {missing:?}"
        );
        let mut plan = Plan::default();
        for api in schema::APIS {
            let Some(theirs) = kp_apis.iter().find(|kp| kp.key == api.key) else {
                plan.skips.push(Skip {
                    name: api.name.to_owned(),
                    direction: None,
                    versions: api.request.valid,
                    why: "API not in kafka-protocol 0.18",
                });
                continue;
            };
            plan.add(
                Some(api),
                api.name,
                Direction::Request,
                api.request,
                &theirs.request,
            );
            plan.add(
                Some(api),
                api.name,
                Direction::Response,
                api.response,
                &theirs.response,
            );
        }
        for theirs in kp_apis {
            if schema::api(theirs.key).is_none() {
                plan.skips.push(Skip {
                    name: format!(
                        "{} (key {})",
                        theirs.request.name.trim_end_matches("Request"),
                        theirs.key
                    ),
                    direction: None,
                    versions: kp_versions(theirs.request.versions),
                    why: "API not in kwire's definitions",
                });
            }
        }
        plan
    }

    /// One message type at every version both sides know.
    fn add(
        &mut self,
        api: Option<&'static ApiSpec>,
        name: &'static str,
        direction: Direction,
        spec: &'static MessageSpec,
        kp: &'a KpMessage,
    ) {
        let theirs = kp_versions(kp.versions);
        for (versions, why) in outside(spec.valid, theirs)
            .into_iter()
            .map(|versions| (versions, "not in kafka-protocol 0.18"))
            .chain(
                outside(theirs, spec.valid)
                    .into_iter()
                    .map(|versions| (versions, "not in kwire's definitions")),
            )
        {
            self.skips.push(Skip {
                name: name.to_owned(),
                direction: Some(direction),
                versions,
                why,
            });
        }
        let key = api.map_or(-1, |api| api.key);
        for version in spec.valid.min.max(theirs.min)..=spec.valid.max.min(theirs.max) {
            let case = Case {
                api,
                name,
                direction,
                spec,
                kp,
                version,
            };
            match known_divergence(key, direction, version) {
                Some(why) => self.divergences.push(format!("{}: {why}", case.label())),
                None => self.cases.push(case),
            }
        }
    }
}

#[test]
fn every_api_version_round_trips_between_kwire_and_kafka_protocol() {
    let kp_apis = kp::apis();
    let kp_headers = [
        kp::header::<RequestHeader>(),
        kp::header::<ResponseHeader>(),
    ];
    let mut plan = Plan::for_apis(&kp_apis);
    plan.add(
        None,
        "RequestHeader",
        Direction::Request,
        schema::REQUEST_HEADER,
        &kp_headers[0],
    );
    plan.add(
        None,
        "ResponseHeader",
        Direction::Response,
        schema::RESPONSE_HEADER,
        &kp_headers[1],
    );

    let records = kp_record_batch(&kp_records(), Compression::None);
    let mut failures = Vec::new();
    let mut checked_by_direction: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &plan.cases {
        failures.extend(case.check(&records));
        *checked_by_direction
            .entry(direction_name(case.direction))
            .or_default() += 1;
    }
    let checked = plan.cases.len();

    let skips: Vec<String> = plan.skips.iter().map(Skip::describe).collect();
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "checked {checked} (api, version, direction) combinations {checked_by_direction:?}, each with \
         kafka-protocol's default message and {} populated variants {VARIANTS:?}",
        VARIANTS.len()
    );
    let _ = writeln!(
        summary,
        "skipped {} version ranges only one side knows:",
        skips.len()
    );
    for skip in &skips {
        let _ = writeln!(summary, "  {skip}");
    }
    let _ = writeln!(
        summary,
        "skipped {} known divergences:",
        plan.divergences.len()
    );
    for divergence in &plan.divergences {
        let _ = writeln!(summary, "  {divergence}");
    }
    println!("{summary}");

    assert!(
        failures.is_empty(),
        "{} checks failed:\n\n{}\n\n{summary}",
        failures.len(),
        failures.join("\n\n")
    );
    assert_eq!(
        skips, EXPECTED_SKIPS,
        "the versions only one side knows have changed; review them and update EXPECTED_SKIPS"
    );
    assert!(
        checked >= CHECKED_FLOOR,
        "only {checked} combinations were checked, fewer than the floor of {CHECKED_FLOOR}"
    );
}

#[test]
fn frames_with_kafka_protocol_headers_decode_and_reencode_through_kwire() {
    let kp_apis = kp::apis();
    let plan = Plan::for_apis(&kp_apis);
    let records = kp_record_batch(&kp_records(), Compression::None);
    let mut failures = Vec::new();
    let mut by_header: BTreeMap<String, usize> = BTreeMap::new();
    for case in &plan.cases {
        let api = case.api.expect("API cases have an API");
        match case.check_frame(api, &records) {
            Ok(header_version) => {
                let kind = match case.direction {
                    Direction::Request => "RequestHeader",
                    Direction::Response => "ResponseHeader",
                };
                *by_header
                    .entry(format!("{kind} v{header_version}"))
                    .or_default() += 1;
            }
            Err(failure) => failures.push(format!("{} frame: {failure}", case.label())),
        }
    }
    let checked: usize = by_header.values().sum();
    println!("checked {checked} frames by header version: {by_header:?}");
    assert!(
        failures.is_empty(),
        "{} frames failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    for header in [
        "RequestHeader v1",
        "RequestHeader v2",
        "ResponseHeader v0",
        "ResponseHeader v1",
    ] {
        assert!(by_header.contains_key(header), "no frame used {header}");
    }
    assert!(
        checked >= FRAMES_FLOOR,
        "only {checked} frames checked, fewer than {FRAMES_FLOOR}"
    );
}

/// Decodes a frame kafka-protocol built natively, requires kwire to re-encode
/// it byte for byte, and returns the body.
fn native_round_trip(frame: Vec<u8>, direction: Direction, key: i16, version: i16) -> Struct {
    let decoded = match direction {
        Direction::Request => {
            frame::decode_request(Bytes::from(frame.clone()), &DecodeOptions::default())
        }
        Direction::Response => frame::decode_response(
            Bytes::from(frame.clone()),
            key,
            version,
            &DecodeOptions::default(),
        ),
    };
    assert_eq!(decoded.error, None, "{}", decoded.context());
    let again = frame::reencode(&decoded).expect("kwire re-encodes the frame");
    assert!(
        again == frame,
        "{}: {}",
        decoded.context(),
        byte_difference(&again, &frame)
    );
    decoded.body.expect("the body was decoded")
}

fn response_frame<M: Encodable + HeaderVersion>(
    message: &M,
    version: i16,
    correlation_id: i32,
) -> Vec<u8> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    framed(&[
        &kp_encode(&header, M::header_version(version)),
        &kp_encode(message, version),
    ])
}

fn lookup<'a>(body: &'a Struct, path: &str) -> &'a Value {
    body.lookup(path)
        .unwrap_or_else(|| panic!("kwire's tree has no {path}"))
}

fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

/// Compares what kwire's record decoder made of a batch with the records
/// kafka-protocol encoded into it.
fn assert_same_records(records: &Value, expected: &[Record], context: &str) {
    let Value::Records(set) = records else {
        panic!("{context}: records decode as {records:?}");
    };
    assert!(set.decoded, "{context}: the records were not decoded");
    let problems: Vec<&str> = set.problems().collect();
    assert!(problems.is_empty(), "{context}: {problems:?}");
    let [batch] = set.batches.as_slice() else {
        panic!("{context}: {} batches, not 1", set.batches.len());
    };
    assert!(batch.crc_ok, "{context}: crc");
    let first = &expected[0];
    assert_eq!(
        (
            batch.producer_id,
            batch.producer_epoch,
            batch.base_sequence,
            batch.partition_leader_epoch
        ),
        (
            first.producer_id,
            first.producer_epoch,
            first.sequence,
            first.partition_leader_epoch
        ),
        "{context}: batch header"
    );
    assert_eq!(
        batch.iter().len(),
        expected.len(),
        "{context}: record count"
    );
    for (index, (ours, theirs)) in batch.iter().zip(expected).enumerate() {
        let headers: Vec<(&[u8], Option<&[u8]>)> = ours.headers().collect();
        let expected_headers: Vec<(&[u8], Option<&[u8]>)> = theirs
            .headers
            .iter()
            .map(|(key, value)| (key.as_bytes(), value.as_deref()))
            .collect();
        assert_eq!(
            (
                ours.offset(),
                ours.timestamp(),
                ours.key(),
                ours.value(),
                headers
            ),
            (
                theirs.offset,
                theirs.timestamp,
                theirs.key.as_deref(),
                theirs.value.as_deref(),
                expected_headers
            ),
            "{context}: record {index}"
        );
    }
}

#[test]
fn produce_request_v9_built_by_kafka_protocol_round_trips() {
    const VERSION: i16 = 9;
    let records = kp_records();
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch = kp_record_batch(&records, compression);
        let request = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("txn-1"))))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(3)
                        .with_records(Some(batch.clone())),
                    // kafka-protocol's default here is empty records, not null.
                    produce_request::PartitionProduceData::default()
                        .with_index(4)
                        .with_records(None),
                ])]);
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(VERSION)
            .with_correlation_id(77)
            .with_client_id(Some(StrBytes::from_static_str("producer-1")));
        let frame = framed(&[
            &kp_encode(&header, ProduceRequest::header_version(VERSION)),
            &kp_encode(&request, VERSION),
        ]);
        let body = native_round_trip(frame, Direction::Request, 0, VERSION);
        let context = format!("Produce v{VERSION} with {compression:?} records");
        assert_eq!(
            lookup(&body, "transactional_id"),
            &string("txn-1"),
            "{context}"
        );
        assert_eq!(lookup(&body, "acks"), &Value::Int(-1), "{context}");
        assert_eq!(
            lookup(&body, "topic_data.0.name"),
            &string("orders"),
            "{context}"
        );
        assert_eq!(
            lookup(&body, "topic_data.0.partition_data.1.index"),
            &Value::Int(4),
            "{context}"
        );
        assert_eq!(
            lookup(&body, "topic_data.0.partition_data.1.records"),
            &Value::Null,
            "{context}"
        );
        assert_same_records(
            lookup(&body, "topic_data.0.partition_data.0.records"),
            &records,
            &context,
        );
    }
}

#[test]
fn fetch_response_v12_with_tagged_current_leader_round_trips() {
    const VERSION: i16 = 12;
    let records = kp_records();
    let batch = kp_record_batch(&records, Compression::Zstd);
    let response = FetchResponse::default()
        .with_throttle_time_ms(5)
        .with_session_id(99)
        .with_responses(vec![fetch_response::FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![
                fetch_response::PartitionData::default()
                    .with_partition_index(0)
                    .with_high_watermark(103)
                    .with_last_stable_offset(103)
                    .with_log_start_offset(100)
                    .with_current_leader(
                        fetch_response::LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(2))
                            .with_leader_epoch(17),
                    )
                    .with_aborted_transactions(Some(vec![
                        fetch_response::AbortedTransaction::default()
                            .with_producer_id(4242.into())
                            .with_first_offset(101),
                    ]))
                    .with_preferred_read_replica(BrokerId(-1))
                    .with_records(Some(batch)),
                fetch_response::PartitionData::default()
                    .with_partition_index(1)
                    .with_error_code(6)
                    .with_records(None)
                    .with_diverging_epoch(
                        fetch_response::EpochEndOffset::default()
                            .with_epoch(3)
                            .with_end_offset(50),
                    ),
            ])]);
    let body = native_round_trip(
        response_frame(&response, VERSION, 8),
        Direction::Response,
        1,
        VERSION,
    );
    let partitions = "responses.0.partitions";
    assert_eq!(lookup(&body, "session_id"), &Value::Int(99));
    assert_eq!(
        lookup(&body, &format!("{partitions}.0.current_leader.leader_id")),
        &Value::Int(2)
    );
    assert_eq!(
        lookup(
            &body,
            &format!("{partitions}.0.current_leader.leader_epoch")
        ),
        &Value::Int(17)
    );
    assert_eq!(
        lookup(
            &body,
            &format!("{partitions}.0.aborted_transactions.0.producer_id")
        ),
        &Value::Int(4242)
    );
    // Tagged fields at their defaults are not on the wire, so not in the tree.
    assert_eq!(
        body.lookup(&format!("{partitions}.0.diverging_epoch")),
        None
    );
    assert_eq!(body.lookup(&format!("{partitions}.1.current_leader")), None);
    assert_eq!(
        lookup(&body, &format!("{partitions}.1.diverging_epoch.epoch")),
        &Value::Int(3)
    );
    assert_eq!(
        lookup(&body, &format!("{partitions}.1.records")),
        &Value::Null
    );
    assert_same_records(
        lookup(&body, &format!("{partitions}.0.records")),
        &records,
        "Fetch v12",
    );
}

#[test]
fn metadata_response_v12_round_trips() {
    const VERSION: i16 = 12;
    let topic_id = *b"kwire-topic-id-1";
    let response = MetadataResponse::default()
        .with_throttle_time_ms(1)
        .with_brokers(vec![
            metadata_response::MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("broker-1.example"))
                .with_port(9092)
                .with_rack(Some(StrBytes::from_static_str("rack-a"))),
            metadata_response::MetadataResponseBroker::default()
                .with_node_id(BrokerId(2))
                .with_host(StrBytes::from_static_str("broker-2.example"))
                .with_port(9093),
        ])
        .with_cluster_id(Some(StrBytes::from_static_str("cluster-Xy")))
        .with_controller_id(BrokerId(2))
        .with_topics(vec![metadata_response::MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))
            // kafka-protocol does not re-export its uuid type, which
            // converts from a Vec of 16 bytes.
            .with_topic_id(topic_id.to_vec().try_into().expect("16 bytes are a uuid"))
            .with_is_internal(true)
            .with_partitions(vec![metadata_response::MetadataResponsePartition::default(
            )
            .with_partition_index(0)
            .with_leader_id(BrokerId(1))
            .with_leader_epoch(4)
            .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
            .with_isr_nodes(vec![BrokerId(1)])
            .with_offline_replicas(vec![BrokerId(2)])])
            .with_topic_authorized_operations(0x0ff8)]);
    let body = native_round_trip(
        response_frame(&response, VERSION, 12),
        Direction::Response,
        3,
        VERSION,
    );
    assert_eq!(lookup(&body, "brokers.0.rack"), &string("rack-a"));
    assert_eq!(lookup(&body, "brokers.1.rack"), &Value::Null);
    assert_eq!(lookup(&body, "cluster_id"), &string("cluster-Xy"));
    assert_eq!(lookup(&body, "topics.0.topic_id"), &Value::Uuid(topic_id));
    assert_eq!(lookup(&body, "topics.0.is_internal"), &Value::Bool(true));
    assert_eq!(
        lookup(&body, "topics.0.partitions.0.replica_nodes.1"),
        &Value::Int(2)
    );
    assert_eq!(
        lookup(&body, "topics.0.topic_authorized_operations"),
        &Value::Int(0x0ff8)
    );
}

#[test]
fn api_versions_response_v3_with_tagged_features_round_trips() {
    const VERSION: i16 = 3;
    let response = ApiVersionsResponse::default()
        .with_api_keys(vec![
            api_versions_response::ApiVersion::default()
                .with_api_key(0)
                .with_min_version(3)
                .with_max_version(11),
            api_versions_response::ApiVersion::default()
                .with_api_key(18)
                .with_min_version(0)
                .with_max_version(4),
        ])
        .with_throttle_time_ms(0)
        .with_supported_features(vec![api_versions_response::SupportedFeatureKey::default()
            .with_name(StrBytes::from_static_str("metadata.version"))
            .with_min_version(1)
            .with_max_version(21)])
        .with_finalized_features_epoch(42)
        .with_finalized_features(vec![api_versions_response::FinalizedFeatureKey::default()
            .with_name(StrBytes::from_static_str("metadata.version"))
            .with_max_version_level(21)
            .with_min_version_level(21)])
        .with_zk_migration_ready(true);
    // ApiVersions responses use header v0 even in flexible versions (KIP-511).
    assert_eq!(ApiVersionsResponse::header_version(VERSION), 0);
    let body = native_round_trip(
        response_frame(&response, VERSION, 1),
        Direction::Response,
        18,
        VERSION,
    );
    assert_eq!(lookup(&body, "api_keys.0.max_version"), &Value::Int(11));
    assert_eq!(
        lookup(&body, "supported_features.0.name"),
        &string("metadata.version")
    );
    assert_eq!(
        lookup(&body, "supported_features.0.max_version"),
        &Value::Int(21)
    );
    assert_eq!(lookup(&body, "finalized_features_epoch"), &Value::Int(42));
    assert_eq!(
        lookup(&body, "finalized_features.0.min_version_level"),
        &Value::Int(21)
    );
    assert_eq!(lookup(&body, "zk_migration_ready"), &Value::Bool(true));
}

/// A copy of a message spec with one field changed, for checking that the
/// harness notices a wrong schema. `path` names the field through structs
/// and arrays of structs.
fn mutated(
    spec: &'static MessageSpec,
    path: &[&str],
    change: impl Fn(&FieldSpec) -> FieldSpec,
) -> &'static MessageSpec {
    fn copy(field: &FieldSpec, ty: FieldType) -> FieldSpec {
        FieldSpec {
            ty,
            ..copy_field(field)
        }
    }
    fn rebuild(
        spec: &'static StructSpec,
        path: &[&str],
        change: &dyn Fn(&FieldSpec) -> FieldSpec,
    ) -> &'static StructSpec {
        let fields: Vec<FieldSpec> = spec
            .fields
            .iter()
            .map(|field| match path {
                [name] if *name == field.name => change(field),
                [name, rest @ ..] if *name == field.name => match field.ty {
                    FieldType::Struct(inner) => {
                        copy(field, FieldType::Struct(rebuild(inner, rest, change)))
                    }
                    FieldType::Array(FieldType::Struct(inner)) => {
                        let element =
                            Box::leak(Box::new(FieldType::Struct(rebuild(inner, rest, change))));
                        copy(field, FieldType::Array(element))
                    }
                    other => panic!("{} is a {other:?}, not a struct", field.name),
                },
                _ => copy(field, field.ty),
            })
            .collect();
        Box::leak(Box::new(StructSpec {
            name: spec.name,
            fields: Box::leak(fields.into_boxed_slice()),
        }))
    }
    Box::leak(Box::new(MessageSpec {
        name: spec.name,
        kind: spec.kind,
        valid: spec.valid,
        flexible: spec.flexible,
        deprecated: spec.deprecated,
        body: rebuild(spec.body, path, &change),
    }))
}

/// A response schema that is wrong in one way, and the check that must say so.
struct Mistake {
    what: &'static str,
    api: &'static ApiSpec,
    version: i16,
    response: &'static MessageSpec,
    /// The populated variant whose round trip notices, or None when only
    /// kafka-protocol's default message can (a null kwire never writes).
    noticed_by: Option<Variant>,
}

#[test]
fn the_harness_notices_a_wrong_schema() {
    // A differential that passes must be able to fail. The mistakes sit
    // where kafka-protocol's misreading stays in bounds: it sizes arrays by
    // the count it reads before reading them, so a shifted read can claim
    // gigabytes and abort the whole test process.
    let fetch = schema::api(1).expect("Fetch");
    let metadata = schema::api(3).expect("Metadata");
    let heartbeat = schema::api(12).expect("Heartbeat");
    let api_versions = schema::api(18).expect("ApiVersions");
    let mistakes = [
        Mistake {
            what: "a tagged field with the wrong tag",
            api: fetch,
            version: 12,
            response: mutated(
                fetch.response,
                &["responses", "partitions", "current_leader"],
                |field| FieldSpec {
                    tag: Some(7),
                    ..copy_field(field)
                },
            ),
            noticed_by: Some(Variant::Full),
        },
        Mistake {
            what: "an int16 taken for an int32",
            api: heartbeat,
            version: 4,
            response: mutated(heartbeat.response, &["error_code"], |field| FieldSpec {
                ty: FieldType::Int32,
                ..copy_field(field)
            }),
            noticed_by: Some(Variant::Full),
        },
        Mistake {
            what: "a field that exists one version too early",
            api: api_versions,
            version: 0,
            response: mutated(api_versions.response, &["throttle_time_ms"], |field| {
                FieldSpec {
                    versions: Versions::from(0),
                    ..copy_field(field)
                }
            }),
            noticed_by: Some(Variant::Full),
        },
        Mistake {
            what: "a nullable field kwire thinks cannot be null",
            api: metadata,
            version: 12,
            response: mutated(metadata.response, &["cluster_id"], |field| FieldSpec {
                nullable: Versions::NONE,
                ..copy_field(field)
            }),
            noticed_by: None,
        },
        Mistake {
            what: "a tagged field whose default differs",
            api: api_versions,
            version: 3,
            response: mutated(
                api_versions.response,
                &["finalized_features_epoch"],
                |field| FieldSpec {
                    default: DefaultValue::Int(0),
                    ..copy_field(field)
                },
            ),
            // kwire writes -1 as a non-default; kafka-protocol drops it.
            noticed_by: Some(Variant::Nulls),
        },
    ];
    let kp_apis = kp::apis();
    let records = kp_record_batch(&kp_records(), Compression::None);
    for mistake in mistakes {
        let theirs = kp_apis
            .iter()
            .find(|kp| kp.key == mistake.api.key)
            .expect("kafka-protocol has the API");
        let case = Case {
            api: Some(mistake.api),
            name: mistake.api.name,
            direction: Direction::Response,
            spec: mistake.response,
            kp: &theirs.response,
            version: mistake.version,
        };
        let noticed = match mistake.noticed_by {
            Some(variant) => case.check_populated(variant, &records),
            None => case.check_default(),
        };
        let failure = noticed.expect_err(mistake.what);
        println!(
            "{}: {}",
            mistake.what,
            failure.lines().next().unwrap_or_default()
        );
    }
}

/// `FieldSpec` is not `Clone`: the generated tables never need copies.
fn copy_field(field: &FieldSpec) -> FieldSpec {
    FieldSpec {
        name: field.name,
        ty: field.ty,
        versions: field.versions,
        nullable: field.nullable,
        tagged: field.tagged,
        tag: field.tag,
        flexible: field.flexible,
        default: field.default,
    }
}
