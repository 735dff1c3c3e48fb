//! The TUI's screens, rendered with ratatui's TestBackend from the corpus
//! captures and driven by scripted keys: open, filter, select, expand,
//! fold, switch views, search, jump, resize, export. Invariants are checked
//! before each snapshot (the selected row exists, the filter keeps what
//! `kwire::filter` keeps over the engine's own exchanges, the highlighted
//! bytes are the field's), so a snapshot cannot bless a broken screen.
//!
//! `cargo insta review` (or INSTA_UPDATE=always) accepts changed screens.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use kwire::codec::DecodeOptions;
use kwire::exchange::Exchange;
use kwire::filter;
use kwire::session::{read_capture, AnalyzerOptions};
use kwire::tui::source::{spawn_file, SourceOptions, Update};
use kwire::tui::state::{App, Effect, Focus, View};
use kwire::tui::{carry_out, render, RunOptions};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn capture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/captures")
        .join(name)
}

/// Reads a capture through the real reader thread into an App.
fn open(path: &Path, color: bool) -> App {
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = spawn_file(path, SourceOptions::default(), tx, stop).expect("open capture");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut app = App::new(&name, false, color, DecodeOptions::default());
    let mut first_batch_seen = false;
    for update in rx {
        if let Update::Batch(batch) = &update {
            first_batch_seen |= !batch.rows.is_empty();
        }
        app.apply(update);
    }
    reader.join().expect("reader thread");
    assert!(app.progress.done, "the reader finished");
    let _ = first_batch_seen;
    app.settle();
    app
}

/// The engine's own exchanges for the same capture.
fn engine_exchanges(path: &Path) -> Vec<Exchange> {
    let mut out = Vec::new();
    read_capture(path, AnalyzerOptions::default(), |e| out.push(e)).expect("capture");
    out
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(app: &mut App, keys: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\t' => KeyCode::Tab,
            '\u{1b}' => KeyCode::Esc,
            c => KeyCode::Char(c),
        };
        effects.extend(app.key(key(code)));
        app.settle();
    }
    effects
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        assert!(app.key(key(KeyCode::Char(c))).is_none());
        app.settle();
    }
}

/// Renders the screen as text, one line per row.
fn screen(app: &mut App, width: u16, height: u16) -> String {
    app.resize(width, height);
    app.settle();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal
        .draw(|frame| render::draw(frame, app))
        .expect("draw");
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..height {
        let mut line = String::new();
        for x in 0..width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Invariants every screen of the exchange list must keep.
fn check_list(app: &App) {
    if app.listing.rows.is_empty() {
        return;
    }
    assert!(
        app.selected < app.listing.rows.len(),
        "the selected row exists"
    );
    assert!(app.offset <= app.selected, "the selected row is on screen");
    let rows = app.listing.rows.windows(2).all(|w| w[0] < w[1]);
    assert!(rows, "rows are listed in capture order, once each");
}

fn matching(exchanges: &[Exchange], text: &str) -> usize {
    let parsed = filter::parse(text).expect("filter");
    exchanges.iter().filter(|e| parsed.matches(e)).count()
}

#[test]
fn exchange_list_of_every_capture() {
    insta::glob!("../corpus/captures", "*.pcap", |path| {
        let mut app = open(path, true);
        let exchanges = engine_exchanges(path);
        assert_eq!(app.store.len(), exchanges.len(), "every exchange is listed");
        for text in [
            "",
            "api=Produce",
            "error!=NONE",
            "topic~a and partition>=0",
            "latency>1ms or state=missing",
        ] {
            app.set_filter(text);
            app.settle();
            assert_eq!(app.listing.rows.len(), matching(&exchanges, text), "{text}");
            check_list(&app);
        }
        app.set_filter("");
        app.settle();
        let text = screen(&mut app, 80, 24);
        assert!(text.contains(" 1 List "), "{text}");
        insta::assert_snapshot!(text);
    });
}

#[test]
fn open_filter_select_expand_and_fold() {
    let path = capture_path("kcat-mock.pcap");
    let exchanges = engine_exchanges(&path);
    let mut app = open(&path, true);
    check_list(&app);
    insta::assert_snapshot!("kcat_open_120x30", screen(&mut app, 120, 30));

    // Filter, typed key by key: matching is live.
    press(&mut app, "f");
    type_text(&mut app, "api=Produce and latncy");
    let error = app.filter_error.clone().expect("the typo is an error");
    assert_eq!(error.position, 16);
    // What was typed before the typo still applies.
    assert_eq!(app.listing.rows.len(), matching(&exchanges, "api=Produce"));
    insta::assert_snapshot!("kcat_filter_error_120x30", screen(&mut app, 120, 30));
    for _ in 0.."latncy".len() {
        app.key(key(KeyCode::Backspace));
    }
    type_text(&mut app, "latency>100us");
    press(&mut app, "\n");
    assert!(app.prompt.is_none() && app.filter_error.is_none());
    let want = matching(&exchanges, "api=Produce and latency>100us");
    assert_eq!(app.listing.rows.len(), want);
    assert!(want > 0);
    check_list(&app);
    insta::assert_snapshot!("kcat_filtered_120x30", screen(&mut app, 120, 30));

    // Select the second Produce and open it.
    press(&mut app, "j\n");
    assert!(app.detail_open && app.focus == Focus::Detail);
    let row = app.selected_row().expect("selected");
    assert_eq!(app.store.row(row).unwrap().api_key, 0);
    // Down to the correlation id: its four bytes are highlighted.
    press(&mut app, "jjjj");
    let detail = app.detail.clone().expect("detail");
    let node = &detail.nodes[app.tree_node().expect("node")];
    assert!(node.text.starts_with("correlation_id: "), "{node:?}");
    let (side, start, end) = node.bytes.expect("bytes");
    let frame = detail.frame(side).expect("frame");
    let id = i32::from_be_bytes(frame[start..end].try_into().unwrap());
    assert_eq!(node.text, format!("correlation_id: {id}"));
    insta::assert_snapshot!("kcat_detail_hex_120x40", screen(&mut app, 120, 40));

    // Fold the header: its fields disappear, the body stays.
    press(&mut app, "h");
    let header = app.tree_node().expect("node");
    assert_eq!(detail.nodes[header].text, "header");
    let before = app.visible_nodes().len();
    press(&mut app, "h");
    assert!(app.is_folded(header));
    assert_eq!(app.visible_nodes().len(), before - 4);
    insta::assert_snapshot!("kcat_detail_folded_120x40", screen(&mut app, 120, 40));

    // Wide: the hex pane goes beside the tree.
    let wide = screen(&mut app, 200, 50);
    assert!(wide.contains("hex: request"));
    insta::assert_snapshot!("kcat_detail_200x50", wide);
    // Small: everything still fits at 80x24.
    let small = screen(&mut app, 80, 24);
    check_list(&app);
    assert!(small.lines().count() == 24);
    insta::assert_snapshot!("kcat_detail_80x24", small);

    // Esc closes the detail, x hides the hex pane.
    press(&mut app, "\u{1b}");
    assert!(!app.detail_open && app.focus == Focus::List);
}

#[test]
fn records_show_key_value_and_headers() {
    let path = capture_path("kcat-mock.pcap");
    let mut app = open(&path, true);
    app.set_filter("api=Produce and topic=kcat-none");
    app.settle();
    press(&mut app, "\n");
    let detail = app.detail.clone().expect("detail");
    let texts: Vec<&str> = detail.nodes.iter().map(|n| n.text.as_str()).collect();
    assert!(
        texts.iter().any(|t| t.starts_with("key: \"key-1\"")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("value: \"value 1")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("headers (3)")),
        "{texts:?}"
    );
    assert!(texts.contains(&"\"codec\" = \"none\""), "{texts:?}");
}

#[test]
fn secrets_stay_redacted() {
    let path = capture_path("python-sasl-tansu.pcap");
    let mut app = open(&path, true);
    app.set_filter("api=SaslAuthenticate or api=SaslHandshake");
    app.settle();
    assert!(!app.listing.rows.is_empty());
    let mut seen_redacted = false;
    for at in 0..app.listing.rows.len() {
        app.selected = at;
        press(&mut app, "\n");
        let detail = app.detail.clone().expect("detail");
        for node in &detail.nodes {
            assert!(
                !node.text.contains("password=") || node.text.contains("redacted"),
                "{node:?}"
            );
            seen_redacted |= node.text.contains("redacted");
        }
        press(&mut app, "\u{1b}");
    }
    assert!(seen_redacted, "a redacted field is shown as such");
}

#[test]
fn views_connections_stats_groups_and_help() {
    let path = capture_path("kcat-mock.pcap");
    let mut app = open(&path, true);

    press(&mut app, "2");
    assert_eq!(app.view, View::Connections);
    let connections = app.connections().to_vec();
    assert!(!connections.is_empty());
    insta::assert_snapshot!("kcat_connections_120x30", screen(&mut app, 120, 30));
    // The third connection's exchanges only.
    press(&mut app, "jj\n");
    assert_eq!(app.view, View::Exchanges);
    let chosen = connections[2].index;
    assert_eq!(app.connection, Some(chosen));
    assert!(!app.listing.rows.is_empty());
    for row in &app.listing.rows {
        assert_eq!(app.store.row(*row as usize).unwrap().connection, chosen);
    }
    assert_eq!(app.listing.rows.len() as u64, connections[2].exchanges);
    insta::assert_snapshot!("kcat_one_connection_120x30", screen(&mut app, 120, 30));
    press(&mut app, "\u{1b}");
    assert_eq!(app.connection, None);
    assert_eq!(app.listing.rows.len(), app.store.len());

    press(&mut app, "3");
    let stats = screen(&mut app, 120, 40);
    assert!(stats.contains("Requests by API"), "{stats}");
    insta::assert_snapshot!("kcat_stats_120x40", stats);

    press(&mut app, "4");
    let groups = screen(&mut app, 120, 30);
    assert!(groups.contains("kwire-kcat-group"), "{groups}");
    assert!(groups.contains("joined generation"), "{groups}");
    assert!(groups.contains("committed offsets"), "{groups}");
    insta::assert_snapshot!("kcat_groups_120x30", groups);

    press(&mut app, "?");
    let help = screen(&mut app, 80, 30);
    for (key, _) in kwire::tui::state::KEYS.iter().take(20) {
        assert!(help.contains(key), "help lists {key}");
    }
    insta::assert_snapshot!("kcat_help_80x30", help);
    press(&mut app, "x");
    assert!(!app.help, "any key closes the help");
    assert_eq!(press(&mut app, "q"), vec![Effect::Quit]);
}

#[test]
fn search_jump_follow_and_pause() {
    let path = capture_path("kcat-mock.pcap");
    let mut app = open(&path, true);
    press(&mut app, "/");
    type_text(&mut app, "kcat-zstd");
    press(&mut app, "\n");
    let row = app.selected_row().expect("selected");
    assert!(app.store.summary_line(row).contains("kcat-zstd"));
    let first = row;
    press(&mut app, "n");
    let next = app.selected_row().expect("selected");
    assert!(next > first && app.store.summary_line(next).contains("kcat-zstd"));
    press(&mut app, "N");
    assert_eq!(app.selected_row(), Some(first));

    press(&mut app, "t");
    type_text(&mut app, "6.3");
    press(&mut app, "\n");
    let first_ns = app.progress.first_ns.unwrap();
    let row = app.store.row(app.selected_row().unwrap()).unwrap();
    assert!(row.ts_ns >= first_ns + 6_300_000_000);
    let previous = app
        .store
        .row(app.listing.rows[app.selected - 1] as usize)
        .unwrap();
    assert!(previous.ts_ns < first_ns + 6_300_000_000);

    press(&mut app, "G");
    assert_eq!(app.selected, app.listing.rows.len() - 1);
    press(&mut app, "g");
    assert_eq!(app.selected, 0);
    press(&mut app, "F");
    assert!(app.follow);
    assert_eq!(app.selected, app.listing.rows.len() - 1);
    press(&mut app, "p");
    assert!(app.frozen.is_some());
    insta::assert_snapshot!("kcat_paused_80x24", screen(&mut app, 80, 24));
}

#[test]
fn mouse_scrolls_and_selects() {
    let path = capture_path("kcat-mock.pcap");
    let mut app = open(&path, true);
    app.resize(120, 30);
    let event = |kind, column, row| MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    app.mouse(event(MouseEventKind::ScrollDown, 10, 5));
    assert_eq!(app.selected, 3);
    // Title line, border, header: the fourth table line is row offset+2.
    app.mouse(event(MouseEventKind::Down(MouseButton::Left), 10, 5));
    assert_eq!(app.selected, app.offset + 2);
}

#[test]
fn export_pcap_and_json() {
    let path = capture_path("kcat-mock.pcap");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = open(&path, true);
    app.set_filter("api=Produce");
    app.settle();
    let out = dir.path().join("produce.pcap");
    press(&mut app, "w");
    for _ in 0..40 {
        app.key(key(KeyCode::Backspace));
    }
    type_text(&mut app, &out.display().to_string());
    let effects = press(&mut app, "\n");
    let [effect] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let options = RunOptions {
        export_source: Some(path.clone()),
    };
    carry_out(&mut app, effect.clone(), &options);
    assert!(
        app.message.as_deref().unwrap_or("").starts_with("wrote"),
        "{:?}",
        app.message
    );
    // The exported file holds the same Produce requests and responses
    // (sides counted apart: pairing them again is the engine's business).
    let sides = |exchanges: &[Exchange]| {
        let mut requests: Vec<_> = exchanges
            .iter()
            .filter(|e| e.api_key == 0)
            .filter_map(|e| e.request_size().map(|size| (e.correlation_id, size)))
            .collect();
        let mut responses: Vec<_> = exchanges
            .iter()
            .filter(|e| e.api_key == 0)
            .filter_map(|e| e.response_size().map(|size| (e.correlation_id, size)))
            .collect();
        requests.sort_unstable();
        responses.sort_unstable();
        (requests, responses)
    };
    let (requests, responses) = sides(&engine_exchanges(&path));
    assert_eq!(
        sides(&engine_exchanges(&out)),
        (requests.clone(), responses)
    );
    assert_eq!(requests.len(), 7);

    let json_path = dir.path().join("one.json");
    press(&mut app, "y");
    for _ in 0..40 {
        app.key(key(KeyCode::Backspace));
    }
    type_text(&mut app, &json_path.display().to_string());
    let effects = press(&mut app, "\n");
    carry_out(&mut app, effects[0].clone(), &options);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("json")).expect("parse");
    assert_eq!(json["api_name"], "Produce");
    assert!(json["request"]["topic_data"].is_array());
}

#[test]
fn no_color_leaves_every_cell_uncoloured() {
    let path = capture_path("kcat-mock.pcap");
    let mut app = open(&path, false);
    press(&mut app, "j\n");
    app.resize(120, 40);
    app.settle();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    terminal.draw(|frame| render::draw(frame, &app)).unwrap();
    let buffer = terminal.backend().buffer();
    for cell in buffer.content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset, "{cell:?}");
        assert_eq!(cell.bg, ratatui::style::Color::Reset, "{cell:?}");
    }
    assert!(kwire::tui::color_wanted(None));
    assert!(kwire::tui::color_wanted(Some("".into())));
    assert!(!kwire::tui::color_wanted(Some("1".into())));
}

#[test]
fn every_key_in_the_help_does_something() {
    // Each listed key changes the state or yields an effect, from a state
    // where it applies.
    let path = capture_path("kcat-mock.pcap");
    let mut app = open(&path, true);
    app.resize(120, 40);
    for c in [
        'j', 'k', 'G', 'g', 'f', '/', 't', 'F', 'p', 'x', 'w', 'y', '?', '1', '2', '3', '4',
    ] {
        let mut fresh = open(&path, true);
        fresh.resize(120, 40);
        press(&mut fresh, if c == '1' { "j2" } else { "j" });
        let before = format!("{:?}", state_of(&fresh));
        let effects = press(&mut fresh, &c.to_string());
        let after = format!("{:?}", state_of(&fresh));
        assert!(
            before != after || !effects.is_empty(),
            "key {c} did nothing"
        );
    }
    assert_eq!(press(&mut app, "q"), vec![Effect::Quit]);
}

fn state_of(app: &App) -> impl std::fmt::Debug {
    (
        app.selected,
        app.view,
        app.focus,
        app.prompt.clone(),
        app.follow,
        app.frozen,
        app.hex_shown,
        app.help,
        app.detail_open,
    )
}
