//! kafka-protocol's messages as a table the differential test can iterate.
//!
//! kafka-protocol types each message separately (`ProduceRequest`,
//! `FetchResponse`, ...), and its `RequestKind`/`ResponseKind` enums sit
//! behind a feature kwire does not enable, so this module erases the types
//! into function pointers once, from one list of request types. The response
//! type of each comes from the `Request` trait, so it cannot be paired wrong.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Message, Request, VersionRange,
};

/// One request or response type of kafka-protocol, type-erased.
pub struct KpMessage {
    /// The Rust type name, for example `ProduceRequest`.
    pub name: &'static str,
    /// The versions kafka-protocol encodes and decodes.
    pub versions: VersionRange,
    /// The header version kafka-protocol frames this message version with
    /// (None for the headers themselves).
    pub header_version: Option<fn(i16) -> i16>,
    /// Encodes `Default::default()` at a version.
    pub encode_default: fn(i16) -> anyhow::Result<Vec<u8>>,
    /// Decodes a body at a version (every byte must be used) and encodes
    /// the result again at the same version.
    pub round_trip: fn(&[u8], i16) -> anyhow::Result<Vec<u8>>,
    /// kafka-protocol's `Debug` view of a body, for failure messages.
    pub describe: fn(&[u8], i16) -> String,
    /// How many tagged fields kafka-protocol did not recognise when it
    /// decoded a body (it keeps them as opaque bytes).
    pub unrecognised_tags: fn(&[u8], i16) -> anyhow::Result<usize>,
}

/// One API key with both of its messages.
pub struct KpApi {
    pub key: i16,
    pub request: KpMessage,
    pub response: KpMessage,
}

/// A request or response body type.
pub fn message<M>() -> KpMessage
where
    M: Message + Encodable + Decodable + HeaderVersion + Default + std::fmt::Debug,
{
    erase::<M>(Some(M::header_version))
}

/// `RequestHeader` or `ResponseHeader`.
pub fn header<M>() -> KpMessage
where
    M: Message + Encodable + Decodable + Default + std::fmt::Debug,
{
    erase::<M>(None)
}

fn erase<M>(header_version: Option<fn(i16) -> i16>) -> KpMessage
where
    M: Message + Encodable + Decodable + Default + std::fmt::Debug,
{
    let full = std::any::type_name::<M>();
    KpMessage {
        name: full.rsplit("::").next().unwrap_or(full),
        versions: M::VERSIONS,
        header_version,
        encode_default: encode_default::<M>,
        round_trip: round_trip::<M>,
        describe: describe::<M>,
        unrecognised_tags: unrecognised_tags::<M>,
    }
}

fn encode<M: Encodable>(message: &M, version: i16) -> anyhow::Result<Vec<u8>> {
    let mut out = BytesMut::new();
    message.encode(&mut out, version)?;
    // kafka-protocol sizes buffers with compute_size; a disagreement with
    // encode would be its bug, and would make its bytes suspect.
    let size = message.compute_size(version)?;
    anyhow::ensure!(
        size == out.len(),
        "kafka-protocol's compute_size says {size} bytes but encode wrote {}",
        out.len()
    );
    Ok(out.to_vec())
}

fn encode_default<M: Encodable + Default>(version: i16) -> anyhow::Result<Vec<u8>> {
    encode(&M::default(), version)
}

fn decode<M: Decodable>(bytes: &[u8], version: i16) -> anyhow::Result<M> {
    let mut buf = Bytes::copy_from_slice(bytes);
    let message = M::decode(&mut buf, version)?;
    anyhow::ensure!(
        buf.is_empty(),
        "kafka-protocol left {} of {} bytes undecoded",
        buf.len(),
        bytes.len()
    );
    Ok(message)
}

fn round_trip<M: Decodable + Encodable>(bytes: &[u8], version: i16) -> anyhow::Result<Vec<u8>> {
    encode(&decode::<M>(bytes, version)?, version)
}

fn describe<M: Decodable + std::fmt::Debug>(bytes: &[u8], version: i16) -> String {
    match decode::<M>(bytes, version) {
        Ok(message) => format!("{message:#?}"),
        Err(error) => format!("kafka-protocol cannot decode it: {error:#}"),
    }
}

/// kafka-protocol re-encodes tagged fields it does not know verbatim, so a
/// tag number kwire got wrong would still round-trip byte for byte. Every
/// struct keeps them in a public `unknown_tagged_fields` map; without
/// reflection, its `Debug` form is the generic way to see them all.
fn unrecognised_tags<M: Decodable + std::fmt::Debug>(
    bytes: &[u8],
    version: i16,
) -> anyhow::Result<usize> {
    const KEY: &str = "unknown_tagged_fields: {";
    let text = format!("{:?}", decode::<M>(bytes, version)?);
    Ok(text
        .match_indices(KEY)
        .filter(|(at, _)| !text[at + KEY.len()..].starts_with('}'))
        .count())
}

macro_rules! apis {
    ($($request:ident),* $(,)?) => {
        vec![$(KpApi {
            key: <$request as Request>::KEY,
            request: message::<$request>(),
            response: message::<<$request as Request>::Response>(),
        }),*]
    };
}

/// Every API kafka-protocol implements. The test checks this list against
/// `ApiKey::iter()`, so an API added in a kafka-protocol upgrade cannot be
/// left out silently.
pub fn apis() -> Vec<KpApi> {
    apis![
        ProduceRequest,
        FetchRequest,
        ListOffsetsRequest,
        MetadataRequest,
        OffsetCommitRequest,
        OffsetFetchRequest,
        FindCoordinatorRequest,
        JoinGroupRequest,
        HeartbeatRequest,
        LeaveGroupRequest,
        SyncGroupRequest,
        DescribeGroupsRequest,
        ListGroupsRequest,
        SaslHandshakeRequest,
        ApiVersionsRequest,
        CreateTopicsRequest,
        DeleteTopicsRequest,
        DeleteRecordsRequest,
        InitProducerIdRequest,
        OffsetForLeaderEpochRequest,
        AddPartitionsToTxnRequest,
        AddOffsetsToTxnRequest,
        EndTxnRequest,
        WriteTxnMarkersRequest,
        TxnOffsetCommitRequest,
        DescribeAclsRequest,
        CreateAclsRequest,
        DeleteAclsRequest,
        DescribeConfigsRequest,
        AlterConfigsRequest,
        AlterReplicaLogDirsRequest,
        DescribeLogDirsRequest,
        SaslAuthenticateRequest,
        CreatePartitionsRequest,
        CreateDelegationTokenRequest,
        RenewDelegationTokenRequest,
        ExpireDelegationTokenRequest,
        DescribeDelegationTokenRequest,
        DeleteGroupsRequest,
        ElectLeadersRequest,
        IncrementalAlterConfigsRequest,
        AlterPartitionReassignmentsRequest,
        ListPartitionReassignmentsRequest,
        OffsetDeleteRequest,
        DescribeClientQuotasRequest,
        AlterClientQuotasRequest,
        DescribeUserScramCredentialsRequest,
        AlterUserScramCredentialsRequest,
        VoteRequest,
        BeginQuorumEpochRequest,
        EndQuorumEpochRequest,
        DescribeQuorumRequest,
        AlterPartitionRequest,
        UpdateFeaturesRequest,
        EnvelopeRequest,
        FetchSnapshotRequest,
        DescribeClusterRequest,
        DescribeProducersRequest,
        BrokerRegistrationRequest,
        BrokerHeartbeatRequest,
        UnregisterBrokerRequest,
        DescribeTransactionsRequest,
        ListTransactionsRequest,
        AllocateProducerIdsRequest,
        ConsumerGroupHeartbeatRequest,
        ConsumerGroupDescribeRequest,
        ControllerRegistrationRequest,
        GetTelemetrySubscriptionsRequest,
        PushTelemetryRequest,
        AssignReplicasToDirsRequest,
        ListConfigResourcesRequest,
        DescribeTopicPartitionsRequest,
        ShareGroupHeartbeatRequest,
        ShareGroupDescribeRequest,
        ShareFetchRequest,
        ShareAcknowledgeRequest,
        AddRaftVoterRequest,
        RemoveRaftVoterRequest,
        UpdateRaftVoterRequest,
        InitializeShareGroupStateRequest,
        ReadShareGroupStateRequest,
        WriteShareGroupStateRequest,
        DeleteShareGroupStateRequest,
        ReadShareGroupStateSummaryRequest,
        DescribeShareGroupOffsetsRequest,
        AlterShareGroupOffsetsRequest,
        DeleteShareGroupOffsetsRequest,
    ]
}
