//! Consumer groups reconstructed from the classic group protocol's traffic
//! (protocol guide, "The Consumer Group Protocol"; KIP-62, KIP-345, KIP-429):
//! FindCoordinator names each group's coordinator, JoinGroup opens a
//! generation and elects a leader, SyncGroup carries the leader's
//! assignment (the `ConsumerProtocolAssignment` data schema inside its
//! bytes), Heartbeat and LeaveGroup follow the members, and OffsetCommit
//! records where each member got to.
//!
//! Fed on the reader thread one exchange at a time; the UI gets clones.
//! Memory is bounded: groups, members, timeline events and committed
//! offsets are capped, and what does not fit is counted.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::codec::{self, DecodeOptions};
use crate::exchange::{error_name, Exchange};
use crate::schema;
use crate::value::{Struct, Value};
use crate::wire::Reader;

const FIND_COORDINATOR: i16 = 10;
const JOIN_GROUP: i16 = 11;
const HEARTBEAT: i16 = 12;
const LEAVE_GROUP: i16 = 13;
const SYNC_GROUP: i16 = 14;
const OFFSET_COMMIT: i16 = 8;

const MAX_GROUPS: usize = 1_000;
const MAX_MEMBERS: usize = 1_000;
const MAX_EVENTS: usize = 200;
const MAX_OFFSETS: usize = 10_000;

#[derive(Clone, Debug, Default)]
pub struct Groups {
    pub groups: BTreeMap<String, Group>,
    /// Groups not tracked because `MAX_GROUPS` were.
    pub overflow: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Group {
    pub id: String,
    /// `node 1 127.0.0.1:9092`, from FindCoordinator.
    pub coordinator: Option<String>,
    pub generation: Option<i32>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Oldest first; the oldest are dropped past `MAX_EVENTS`.
    pub timeline: VecDeque<Event>,
    pub offsets: BTreeMap<(String, i32), Committed>,
    /// Rebalances seen: JoinGroup responses that opened a generation.
    pub rebalances: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Member {
    pub member_id: String,
    pub client_id: Option<String>,
    pub instance_id: Option<String>,
    /// The client's address, from its own requests.
    pub address: Option<String>,
    /// Topic to partitions, from the SyncGroup that assigned them.
    pub assignment: BTreeMap<String, Vec<i32>>,
    pub last_heartbeat_ns: Option<i64>,
    pub left: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub ts_ns: i64,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub generation: i32,
    pub member_id: String,
    pub ts_ns: i64,
    /// The partition's error in the response, if not NONE.
    pub error: Option<i16>,
}

fn body(exchange: &Exchange, response: bool) -> Option<&Struct> {
    let message = if response {
        exchange.response.as_ref()
    } else {
        exchange.request.as_ref()
    };
    message.and_then(|m| m.frame.body.as_ref())
}

fn text(tree: &Struct, name: &str) -> Option<String> {
    tree.str(name).map(str::to_owned)
}

fn int(tree: &Struct, name: &str) -> Option<i64> {
    tree.int(name)
}

fn code_of(tree: Option<&Struct>) -> i16 {
    tree.and_then(|t| t.int("error_code"))
        .and_then(|c| i16::try_from(c).ok())
        .unwrap_or(0)
}

fn items<'a>(tree: &'a Struct, name: &str) -> impl Iterator<Item = &'a Struct> + 'a {
    tree.get(name)
        .map(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_struct)
}

/// Decodes a SyncGroup assignment: an int16 version, then the
/// `ConsumerProtocolAssignment` struct at that version (newer versions
/// are read as the newest known, whose fields are a prefix of theirs).
pub fn decode_assignment(bytes: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
    let spec = schema::data_struct("ConsumerProtocolAssignment")?;
    let mut reader = Reader::new(Bytes::copy_from_slice(bytes));
    let version = reader.i16().ok()?;
    if version < spec.valid.min {
        return None;
    }
    let version = version.min(spec.valid.max);
    let decoded = codec::decode_message(&mut reader, spec, version, &DecodeOptions::default());
    decoded.error.is_none().then_some(())?;
    let mut out = BTreeMap::new();
    for topic in items(&decoded.body, "assigned_partitions") {
        let name = text(topic, "topic").unwrap_or_default();
        let partitions: Vec<i32> = topic
            .get("partitions")
            .map(Value::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.as_int().and_then(|p| i32::try_from(p).ok()))
            .collect();
        out.insert(name, partitions);
    }
    Some(out)
}

impl Groups {
    pub fn new() -> Groups {
        Groups::default()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    fn group(&mut self, id: &str) -> Option<&mut Group> {
        if !self.groups.contains_key(id) {
            if self.groups.len() >= MAX_GROUPS {
                self.overflow += 1;
                return None;
            }
            self.groups.insert(
                id.to_owned(),
                Group {
                    id: id.to_owned(),
                    ..Group::default()
                },
            );
        }
        self.groups.get_mut(id)
    }

    /// Follows one exchange; exchanges of other APIs are ignored.
    pub fn add(&mut self, exchange: &Exchange) {
        match exchange.api_key {
            FIND_COORDINATOR => self.find_coordinator(exchange),
            JOIN_GROUP => self.join(exchange),
            SYNC_GROUP => self.sync(exchange),
            HEARTBEAT => self.heartbeat(exchange),
            LEAVE_GROUP => self.leave(exchange),
            OFFSET_COMMIT => self.commit(exchange),
            _ => {}
        }
    }

    fn find_coordinator(&mut self, exchange: &Exchange) {
        let (Some(request), Some(response)) = (body(exchange, false), body(exchange, true)) else {
            return;
        };
        // key_type 0 is a group (1 a transactional id; KIP-98).
        if int(request, "key_type").unwrap_or(0) != 0 {
            return;
        }
        let describe = |tree: &Struct| {
            format!(
                "node {} {}:{}",
                int(tree, "node_id").unwrap_or(-1),
                tree.str("host").unwrap_or("?"),
                int(tree, "port").unwrap_or(-1)
            )
        };
        let mut found = Vec::new();
        if let Some(key) = text(request, "key") {
            if code_of(Some(response)) == 0 {
                found.push((key, describe(response)));
            }
        }
        for coordinator in items(response, "coordinators") {
            if let (Some(key), 0) = (text(coordinator, "key"), code_of(Some(coordinator))) {
                found.push((key, describe(coordinator)));
            }
        }
        for (key, node) in found {
            if let Some(group) = self.group(&key) {
                if group.coordinator.as_deref() != Some(node.as_str()) {
                    group.event(exchange.ts_ns(), format!("coordinator is {node}"));
                    group.coordinator = Some(node);
                }
            }
        }
    }

    fn join(&mut self, exchange: &Exchange) {
        let Some(request) = body(exchange, false) else {
            return;
        };
        let Some(id) = text(request, "group_id") else {
            return;
        };
        let client_id = exchange.client_id().map(str::to_owned);
        let address = exchange.client.to_string();
        let response = body(exchange, true);
        let Some(group) = self.group(&id) else {
            return;
        };
        group.protocol_type = text(request, "protocol_type").or(group.protocol_type.take());
        let Some(response) = response else {
            group.event(
                exchange.ts_ns(),
                format!("join by {} (no response)", who(&client_id)),
            );
            return;
        };
        let code = code_of(Some(response));
        let member_id = text(response, "member_id").unwrap_or_default();
        if code != 0 {
            // MEMBER_ID_REQUIRED (KIP-394) is the first step of a normal join.
            group.event(
                exchange.ts_ns(),
                format!("join by {}: {}", who(&client_id), error_name(code)),
            );
            return;
        }
        let generation = int(response, "generation_id").and_then(|g| i32::try_from(g).ok());
        if generation.is_some() && generation != group.generation {
            group.rebalances += 1;
            // A new generation: assignments of the old one no longer hold.
            for member in group.members.values_mut() {
                member.assignment.clear();
            }
        }
        group.generation = generation.or(group.generation);
        group.protocol = text(response, "protocol_name").or(group.protocol.take());
        group.leader = text(response, "leader").or(group.leader.take());
        for listed in items(response, "members") {
            if let Some(listed_id) = text(listed, "member_id") {
                if let Some(member) = group.member(&listed_id) {
                    member.instance_id =
                        text(listed, "group_instance_id").or(member.instance_id.take());
                    member.left = false;
                }
            }
        }
        let leader = group.leader.as_deref() == Some(member_id.as_str());
        if let Some(member) = group.member(&member_id) {
            member.client_id = client_id.clone().or(member.client_id.take());
            member.address = Some(address);
            member.instance_id = text(request, "group_instance_id").or(member.instance_id.take());
            member.left = false;
        }
        group.event(
            exchange.ts_ns(),
            format!(
                "{} joined generation {}{}",
                who_member(&client_id, &member_id),
                generation.map_or("?".to_owned(), |g| g.to_string()),
                if leader { " as leader" } else { "" }
            ),
        );
    }

    fn sync(&mut self, exchange: &Exchange) {
        let Some(request) = body(exchange, false) else {
            return;
        };
        let Some(id) = text(request, "group_id") else {
            return;
        };
        let client_id = exchange.client_id().map(str::to_owned);
        let member_id = text(request, "member_id").unwrap_or_default();
        let response = body(exchange, true);
        let Some(group) = self.group(&id) else {
            return;
        };
        // The leader sends every member's assignment.
        for assignment in items(request, "assignments") {
            let (Some(target), Some(Value::Bytes(bytes))) =
                (text(assignment, "member_id"), assignment.get("assignment"))
            else {
                continue;
            };
            if let (Some(decoded), Some(member)) = (decode_assignment(bytes), group.member(&target))
            {
                member.assignment = decoded;
            }
        }
        let code = code_of(response);
        if let Some(member) = group.member(&member_id) {
            member.client_id = client_id.clone().or(member.client_id.take());
            member.address = Some(exchange.client.to_string());
            if let Some(Value::Bytes(bytes)) = response.and_then(|r| r.get("assignment")) {
                if let Some(decoded) = decode_assignment(bytes) {
                    member.assignment = decoded;
                }
            }
        }
        let text = if code == 0 {
            let count: usize = group
                .members
                .get(&member_id)
                .map_or(0, |m| m.assignment.values().map(Vec::len).sum());
            format!(
                "{} synced: {count} partitions",
                who_member(&client_id, &member_id)
            )
        } else {
            format!(
                "{} sync: {}",
                who_member(&client_id, &member_id),
                error_name(code)
            )
        };
        group.event(exchange.ts_ns(), text);
    }

    fn heartbeat(&mut self, exchange: &Exchange) {
        let Some(request) = body(exchange, false) else {
            return;
        };
        let Some(id) = text(request, "group_id") else {
            return;
        };
        let member_id = text(request, "member_id").unwrap_or_default();
        let client_id = exchange.client_id().map(str::to_owned);
        let code = code_of(body(exchange, true));
        let Some(group) = self.group(&id) else {
            return;
        };
        if let Some(member) = group.member(&member_id) {
            member.last_heartbeat_ns = Some(exchange.ts_ns());
            member.client_id = client_id.clone().or(member.client_id.take());
        }
        // REBALANCE_IN_PROGRESS and friends tell the member to rejoin.
        if code != 0 {
            group.event(
                exchange.ts_ns(),
                format!(
                    "heartbeat of {}: {}",
                    who_member(&client_id, &member_id),
                    error_name(code)
                ),
            );
        }
    }

    fn leave(&mut self, exchange: &Exchange) {
        let Some(request) = body(exchange, false) else {
            return;
        };
        let Some(id) = text(request, "group_id") else {
            return;
        };
        let client_id = exchange.client_id().map(str::to_owned);
        let mut leaving: Vec<String> = text(request, "member_id").into_iter().collect();
        leaving.extend(items(request, "members").filter_map(|m| text(m, "member_id")));
        let Some(group) = self.group(&id) else {
            return;
        };
        for member_id in leaving {
            // The assignment stays, to show what the member had.
            if let Some(member) = group.member(&member_id) {
                member.left = true;
            }
            group.event(
                exchange.ts_ns(),
                format!("{} left", who_member(&client_id, &member_id)),
            );
        }
    }

    fn commit(&mut self, exchange: &Exchange) {
        let Some(request) = body(exchange, false) else {
            return;
        };
        let Some(id) = text(request, "group_id") else {
            return;
        };
        let generation = int(request, "generation_id_or_member_epoch")
            .or_else(|| int(request, "generation_id"))
            .and_then(|g| i32::try_from(g).ok())
            .unwrap_or(-1);
        let member_id = text(request, "member_id").unwrap_or_default();
        let mut errors = BTreeMap::new();
        if let Some(response) = body(exchange, true) {
            for topic in items(response, "topics") {
                let name = text(topic, "name").unwrap_or_default();
                for partition in items(topic, "partitions") {
                    let index =
                        int(partition, "partition_index").and_then(|p| i32::try_from(p).ok());
                    let code = code_of(Some(partition));
                    if let (Some(index), true) = (index, code != 0) {
                        errors.insert((name.clone(), index), code);
                    }
                }
            }
        }
        let Some(group) = self.group(&id) else {
            return;
        };
        let mut count = 0usize;
        for topic in items(request, "topics") {
            let name = text(topic, "name").unwrap_or_default();
            for partition in items(topic, "partitions") {
                let (Some(index), Some(offset)) = (
                    int(partition, "partition_index").and_then(|p| i32::try_from(p).ok()),
                    int(partition, "committed_offset"),
                ) else {
                    continue;
                };
                let key = (name.clone(), index);
                if !group.offsets.contains_key(&key) && group.offsets.len() >= MAX_OFFSETS {
                    continue;
                }
                count += 1;
                let error = errors.get(&key).copied();
                group.offsets.insert(
                    key,
                    Committed {
                        offset,
                        generation,
                        member_id: member_id.clone(),
                        ts_ns: exchange.ts_ns(),
                        error,
                    },
                );
            }
        }
        if !errors.is_empty() {
            let names: Vec<String> = errors.values().map(|c| error_name(*c)).collect();
            group.event(
                exchange.ts_ns(),
                format!("commit of {count} offsets failed: {}", names.join(",")),
            );
        }
    }
}

impl Group {
    fn event(&mut self, ts_ns: i64, text: String) {
        if self.timeline.len() >= MAX_EVENTS {
            self.timeline.pop_front();
        }
        self.timeline.push_back(Event { ts_ns, text });
    }

    fn member(&mut self, member_id: &str) -> Option<&mut Member> {
        if member_id.is_empty() {
            return None;
        }
        if !self.members.contains_key(member_id) && self.members.len() >= MAX_MEMBERS {
            return None;
        }
        Some(
            self.members
                .entry(member_id.to_owned())
                .or_insert_with(|| Member {
                    member_id: member_id.to_owned(),
                    ..Member::default()
                }),
        )
    }

    /// Members still in the group.
    pub fn active(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| !m.left)
    }
}

fn who(client_id: &Option<String>) -> String {
    client_id.clone().unwrap_or_else(|| "a client".to_owned())
}

fn who_member(client_id: &Option<String>, member_id: &str) -> String {
    let short: String = member_id.chars().take(24).collect();
    match client_id {
        Some(client) => format!("{client} ({short})"),
        None => short,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_decode_with_the_data_schema() {
        // Version 1: one topic with partitions 0 and 2, null user data.
        let mut bytes = vec![0, 1, 0, 0, 0, 1, 0, 6];
        bytes.extend_from_slice(b"orders");
        bytes.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff]);
        let decoded = decode_assignment(&bytes).expect("assignment");
        assert_eq!(decoded.get("orders"), Some(&vec![0, 2]));
        assert!(decode_assignment(&[0, 1, 0]).is_none());
    }

    #[test]
    fn the_kcat_capture_has_a_group_with_its_member() {
        let path = format!(
            "{}/corpus/captures/kcat-mock.pcap",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut groups = Groups::new();
        crate::session::read_capture(
            std::path::Path::new(&path),
            crate::session::AnalyzerOptions::default(),
            |e| groups.add(&e),
        )
        .expect("capture");
        assert!(!groups.is_empty());
        let group = groups.groups.values().next().expect("group");
        assert!(group.generation.is_some(), "{group:?}");
        assert!(group.leader.is_some(), "{group:?}");
        let member = group.members.values().next().expect("member");
        assert!(member.client_id.is_some(), "{member:?}");
        assert!(!group.timeline.is_empty());
    }
}
