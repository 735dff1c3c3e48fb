//! Guards the committed protocol tables: regenerating them from Kafka's
//! definitions must change nothing, and a few facts that the codec depends on
//! are checked against the definitions by hand.

use std::path::Path;

use kwire::schema::{self, DefaultValue, FieldSpec, FieldType, StructSpec, Versions};

#[test]
fn committed_tables_match_the_generator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared");
    let messages = shared.join("kafka-messages");
    if !messages.is_dir() {
        // The definitions are reference material that does not ship with
        // kwire, so a plain clone cannot run this check.
        eprintln!(
            "skipped: {} not found, so the committed src/schema/generated.rs could not be compared with a fresh generation",
            messages.display()
        );
        return;
    }
    let fresh =
        kwire_gen::generate(&messages, &shared.join("kafka-errors.tsv")).expect("kwire-gen failed");
    let committed =
        std::fs::read_to_string(root.join("src/schema/generated.rs")).expect("read generated.rs");
    if fresh == committed {
        return;
    }
    let mut fresh_lines = fresh.lines();
    let mut committed_lines = committed.lines();
    for number in 1.. {
        let (new, old) = (fresh_lines.next(), committed_lines.next());
        if new != old {
            panic!(
                "src/schema/generated.rs is stale at line {number}:\n  committed: {}\n  generated: {}\nrun `cargo run -p kwire-gen` to regenerate",
                old.unwrap_or("<end of file>"),
                new.unwrap_or("<end of file>"),
            );
        }
        if new.is_none() {
            break;
        }
    }
    // Same lines, different bytes: line endings or the final newline.
    panic!("src/schema/generated.rs differs in line endings; run `cargo run -p kwire-gen` to regenerate");
}

fn field(spec: &'static StructSpec, name: &str) -> &'static FieldSpec {
    spec.fields
        .iter()
        .find(|field| field.name == name)
        .unwrap_or_else(|| panic!("{} has no field {name}", spec.name))
}

/// The struct a field holds, directly or as array elements.
fn struct_of(field: &FieldSpec) -> &'static StructSpec {
    match field.ty {
        FieldType::Struct(spec) | FieldType::Array(&FieldType::Struct(spec)) => spec,
        other => panic!("{} is a {other:?}, not a struct", field.name),
    }
}

#[test]
fn tables_hold_known_facts() {
    // ProduceRequest.json: "flexibleVersions": "9+", "validVersions": "0-11".
    let produce = schema::api(schema::PRODUCE_KEY).expect("Produce");
    assert_eq!(produce.name, "Produce");
    assert!(!produce.request.flexible.contains(8));
    assert!(produce.request.flexible.contains(9));
    assert_eq!(produce.request.valid, Versions::new(0, 11));

    // FetchResponse.json: CurrentLeader is tag 1 of a partition from v12 on.
    let fetch = schema::api(schema::FETCH_KEY).expect("Fetch");
    let partition = struct_of(field(
        struct_of(field(fetch.response.body, "responses")),
        "partitions",
    ));
    let current_leader = field(partition, "current_leader");
    assert_eq!(current_leader.tag, Some(1));
    assert_eq!(current_leader.tagged, Versions::from(12));
    assert_eq!(current_leader.versions, Versions::from(12));
    assert_eq!(struct_of(current_leader).name, "LeaderIdAndEpoch");
    assert_eq!(field(partition, "diverging_epoch").tag, Some(0));
    assert_eq!(field(partition, "snapshot_id").tag, Some(2));

    // ApiVersionsResponse.json: three plain fields, then four tagged ones (v3+).
    let api_versions = schema::api(schema::API_VERSIONS_KEY).expect("ApiVersions");
    let body = api_versions.response.body;
    let names: Vec<&str> = body.fields.iter().map(|field| field.name).collect();
    assert_eq!(
        names,
        [
            "error_code",
            "api_keys",
            "throttle_time_ms",
            "supported_features",
            "finalized_features_epoch",
            "finalized_features",
            "zk_migration_ready",
        ]
    );
    let tags: Vec<Option<u32>> = body.fields.iter().map(|field| field.tag).collect();
    assert_eq!(tags, [None, None, None, Some(0), Some(1), Some(2), Some(3)]);
    assert_eq!(field(body, "throttle_time_ms").versions, Versions::from(1));
    assert_eq!(
        field(body, "finalized_features_epoch").default,
        DefaultValue::Int(-1)
    );
    assert_eq!(
        field(body, "zk_migration_ready").default,
        DefaultValue::Bool(false)
    );
    let api_key = struct_of(field(body, "api_keys"));
    assert_eq!(api_key.name, "ApiVersion");
    let key_names: Vec<&str> = api_key.fields.iter().map(|field| field.name).collect();
    assert_eq!(key_names, ["api_key", "min_version", "max_version"]);

    // RequestHeader.json: the client id keeps its two-byte length even in
    // flexible header versions, so that any broker can read it.
    let client_id = field(schema::REQUEST_HEADER.body, "client_id");
    assert_eq!(client_id.flexible, Some(Versions::NONE));
    assert_eq!(client_id.nullable, Versions::from(1));
    assert_eq!(client_id.versions, Versions::from(1));
    assert!(matches!(client_id.ty, FieldType::String));
    assert_eq!(schema::REQUEST_HEADER.flexible, Versions::from(2));

    assert!(schema::data_struct("ConsumerProtocolAssignment").is_some());
    assert_eq!(schema::DATA_STRUCTS.len(), 8);
}
