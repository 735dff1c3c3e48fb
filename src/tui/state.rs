//! The TUI's state and what keys and the mouse do to it. Nothing here draws
//! or touches a terminal, a file or a clock: updates from the source, keys,
//! mouse events and the screen size come in; [`Effect`]s that need I/O
//! (export, quit) go out to the runner. Tests drive it with scripted keys.
//!
//! The exchange list is the store's rows that pass the filter (and, when
//! one is chosen, the connection), scanned incrementally: each call of
//! [`App::advance`] looks at a bounded number of rows, so typing a filter
//! over a million exchanges never blocks the screen.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use crate::codec::DecodeOptions;
use crate::filter::{self, Filter, FilterError};

use super::detail::{Cache, Detail};
use super::index::Store;
use super::layout;
use super::source::{Progress, Snapshot, Update};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Exchanges,
    Connections,
    Stats,
    Groups,
}

impl View {
    pub const ALL: [View; 4] = [
        View::Exchanges,
        View::Connections,
        View::Stats,
        View::Groups,
    ];

    pub fn name(self) -> &'static str {
        match self {
            View::Exchanges => "Exchanges",
            View::Connections => "Connections",
            View::Stats => "Stats",
            View::Groups => "Groups",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    List,
    Detail,
    Hex,
}

/// What is being typed in the bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKind {
    Filter,
    Search,
    JumpTime,
    ExportPcap,
    ExportJson,
}

impl PromptKind {
    pub fn label(self) -> &'static str {
        match self {
            PromptKind::Filter => "filter",
            PromptKind::Search => "search",
            PromptKind::JumpTime => "jump to time (seconds from start, or HH:MM:SS UTC)",
            PromptKind::ExportPcap => "write pcap to",
            PromptKind::ExportJson => "write exchange JSON to",
        }
    }
}

/// A line of text being edited, with a cursor (a byte offset at a char
/// boundary).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineEdit {
    pub text: String,
    pub cursor: usize,
}

impl LineEdit {
    pub fn new(text: &str) -> LineEdit {
        LineEdit {
            text: text.to_owned(),
            cursor: text.len(),
        }
    }

    /// Applies an editing key; false if the key is not an editing key.
    fn key(&mut self, key: &KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('u') if ctrl => {
                self.text.clear();
                self.cursor = 0;
            }
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.text.len(),
            KeyCode::Char(c) if !ctrl => {
                self.text.insert(self.cursor, c);
                self.cursor += c.len_utf8();
            }
            KeyCode::Backspace => {
                if let Some((at, _)) = self.text[..self.cursor].char_indices().next_back() {
                    self.text.remove(at);
                    self.cursor = at;
                }
            }
            KeyCode::Delete => {
                if self.cursor < self.text.len() {
                    self.text.remove(self.cursor);
                }
            }
            KeyCode::Left => {
                if let Some((at, _)) = self.text[..self.cursor].char_indices().next_back() {
                    self.cursor = at;
                }
            }
            KeyCode::Right => {
                if let Some(c) = self.text[self.cursor..].chars().next() {
                    self.cursor += c.len_utf8();
                }
            }
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.text.len(),
            _ => return false,
        }
        true
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub edit: LineEdit,
    /// For the filter: the text applied before editing began (Esc restores).
    pub before: String,
}

/// I/O the runner carries out for the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Quit,
    /// Write the packets of these rows (store indexes) to a pcap file.
    ExportPcap {
        path: PathBuf,
        rows: Vec<u32>,
        what: String,
    },
    /// Write this row's exchange as JSON.
    WriteJson {
        path: PathBuf,
        row: usize,
    },
}

/// Every key, for the help overlay (and the test that each one works).
pub const KEYS: &[(&str, &str)] = &[
    ("j k ↓ ↑", "next / previous row (tree line, hex line)"),
    ("Ctrl-d Ctrl-u", "half a page down / up"),
    ("PgDn PgUp", "a page down / up"),
    ("g G Home End", "first / last row"),
    ("Enter", "open the exchange; in the tree: fold / unfold"),
    ("Tab", "focus: list → tree → hex"),
    (
        "h l ← → Space",
        "in the tree: fold / unfold (h on a leaf: parent)",
    ),
    ("x", "show or hide the hex pane"),
    ("f", "filter (live; Enter keeps it, Esc restores)"),
    ("/ n N", "search the rows; next / previous match"),
    ("t", "jump to a time"),
    ("F", "follow new exchanges"),
    ("p", "pause: freeze the list while capture goes on"),
    (
        "1 2 3 4",
        "exchanges, connections (Enter: only its), stats, groups",
    ),
    (
        "w",
        "write the listed exchanges (or the connection) to pcap",
    ),
    ("y", "write the selected exchange as JSON"),
    ("Esc", "close the detail, a prompt, the connection filter"),
    ("? / q Ctrl-c", "this help / quit"),
    ("mouse", "wheel scrolls; click selects"),
];

/// Rows looked at per call of [`App::advance`] when not told otherwise.
pub const SCAN_STEP: usize = 250_000;
/// Decoded exchanges kept.
const DETAIL_CACHE: usize = 16;

/// The filtered list of rows.
#[derive(Debug, Default)]
pub struct Listing {
    /// Store indexes of the rows that pass, ascending.
    pub rows: Vec<u32>,
    /// Store rows looked at so far.
    pub scanned: usize,
    /// The store row to select again once the scan reaches it (the
    /// selection before the filter changed).
    pub reselect: Option<usize>,
}

pub struct App {
    pub store: Store,
    /// What is being shown: the file name or `live: IFACE`.
    pub source: String,
    pub progress: Progress,
    pub snapshot: Option<Box<Snapshot>>,
    pub decode: DecodeOptions,
    pub color: bool,

    pub view: View,
    pub focus: Focus,
    pub size: Rect,

    pub filter: Filter,
    pub filter_text: String,
    /// The filter being typed does not parse: where and why.
    pub filter_error: Option<FilterError>,
    /// Only this connection's exchanges (from the connections view).
    pub connection: Option<u32>,
    pub listing: Listing,
    /// Position in `listing.rows`.
    pub selected: usize,
    pub offset: usize,
    pub follow: bool,
    /// The list is frozen at this many store rows.
    pub frozen: Option<usize>,

    pub prompt: Option<Prompt>,
    pub search: String,
    pub help: bool,
    pub message: Option<String>,

    pub detail_open: bool,
    pub hex_shown: bool,
    pub detail: Option<Arc<Detail>>,
    cache: Cache,
    /// Fold overrides for the shown detail, by node index.
    pub folds: HashMap<usize, bool>,
    /// Position in the visible tree lines.
    pub tree_cursor: usize,
    pub tree_offset: usize,
    /// First hex line shown; None follows the highlighted field.
    pub hex_offset: Option<usize>,

    pub conn_selected: usize,
    pub conn_offset: usize,
    pub stats_offset: usize,
    pub stats_lines: Vec<String>,
    pub group_selected: usize,
    pub group_offset: usize,
}

impl App {
    pub fn new(source: &str, live: bool, color: bool, decode: DecodeOptions) -> App {
        App {
            store: Store::new(),
            source: source.to_owned(),
            progress: Progress {
                live,
                ..Progress::default()
            },
            snapshot: None,
            decode,
            color,
            view: View::Exchanges,
            focus: Focus::List,
            size: Rect::new(0, 0, 80, 24),
            filter: Filter::all(),
            filter_text: String::new(),
            filter_error: None,
            connection: None,
            listing: Listing::default(),
            selected: 0,
            offset: 0,
            follow: live,
            frozen: None,
            prompt: None,
            search: String::new(),
            help: false,
            message: None,
            detail_open: false,
            hex_shown: true,
            detail: None,
            cache: Cache::new(DETAIL_CACHE),
            folds: HashMap::new(),
            tree_cursor: 0,
            tree_offset: 0,
            hex_offset: None,
            conn_selected: 0,
            conn_offset: 0,
            stats_offset: 0,
            stats_lines: Vec::new(),
            group_selected: 0,
            group_offset: 0,
        }
    }

    pub fn areas(&self) -> layout::Areas {
        let detail = self.view == View::Exchanges && self.detail_open;
        layout::areas(self.size, detail, self.hex_shown)
    }

    // -----------------------------------------------------------------
    // Updates from the source

    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Batch(batch) => self.store.append(batch),
            Update::Progress(progress) => self.progress = progress,
            Update::Snapshot(snapshot) => {
                self.stats_lines = snapshot
                    .stats
                    .render_text(&snapshot.report)
                    .lines()
                    .map(str::to_owned)
                    .collect();
                self.snapshot = Some(snapshot);
            }
        }
    }

    /// Scans up to `budget` more rows through the filter; true if rows
    /// remain to scan.
    pub fn advance(&mut self, budget: usize) -> bool {
        let limit = self
            .frozen
            .unwrap_or(self.store.len())
            .min(self.store.len());
        let end = self.listing.scanned.saturating_add(budget).min(limit);
        let selected_row = self.selected_row();
        for index in self.listing.scanned..end {
            if self.passes(index) {
                self.listing
                    .rows
                    .push(u32::try_from(index).unwrap_or(u32::MAX));
            }
            if self.listing.reselect == Some(index) {
                // The row selected before, or the nearest one before it.
                self.listing.reselect = None;
                self.selected = self.listing.rows.len().saturating_sub(1);
            }
        }
        self.listing.scanned = end.max(self.listing.scanned);
        if self.follow {
            self.selected = self.listing.rows.len().saturating_sub(1);
        } else if self.listing.reselect.is_some() {
            // Still scanning towards it: stay with the last row found.
            self.selected = self.listing.rows.len().saturating_sub(1);
        } else if selected_row.is_none() && !self.listing.rows.is_empty() {
            self.selected = self.selected.min(self.listing.rows.len() - 1);
        }
        self.scroll_to_selection();
        self.listing.scanned < limit
    }

    /// Scans every row: what tests and exports want.
    pub fn settle(&mut self) {
        while self.advance(usize::MAX) {}
        self.prepare();
    }

    fn passes(&self, index: usize) -> bool {
        let Some(row) = self.store.row(index) else {
            return false;
        };
        if self.connection.is_some_and(|c| c != row.connection) {
            return false;
        }
        if self.filter.is_all() {
            return true;
        }
        self.store
            .subject(index)
            .is_some_and(|subject| self.filter.matches_subject(&subject))
    }

    /// Starts the listing again (the filter or the connection changed),
    /// keeping the selected exchange selected when it still passes.
    fn relist(&mut self) {
        let keep = self.selected_row();
        self.listing = Listing {
            reselect: keep,
            ..Listing::default()
        };
        self.offset = 0;
        self.selected = 0;
        // A first step at once, so that the screen is not empty; the rest
        // as the runner calls `advance`.
        self.advance(SCAN_STEP / 4);
    }

    /// The store index of the selected row.
    pub fn selected_row(&self) -> Option<usize> {
        self.listing.rows.get(self.selected).map(|r| *r as usize)
    }

    /// Decodes the selected exchange when the detail shows it.
    pub fn prepare(&mut self) {
        let wanted = if self.detail_open && self.view == View::Exchanges {
            self.selected_row()
        } else {
            None
        };
        match wanted {
            None => self.detail = None,
            Some(row) => {
                if self.detail.as_ref().is_none_or(|d| d.row != row) {
                    self.detail = Some(self.cache.get(&self.store, row, &self.decode));
                    self.folds.clear();
                    self.tree_cursor = 0;
                    self.tree_offset = 0;
                    self.hex_offset = None;
                }
            }
        }
        self.scroll_tree();
    }

    // -----------------------------------------------------------------
    // Tree folding

    pub fn is_folded(&self, index: usize) -> bool {
        let default = self
            .detail
            .as_ref()
            .and_then(|d| d.nodes.get(index))
            .is_some_and(|n| n.folded);
        self.folds.get(&index).copied().unwrap_or(default)
    }

    /// Indexes of the tree's lines that are not inside a folded node.
    pub fn visible_nodes(&self) -> Vec<usize> {
        let Some(detail) = &self.detail else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut index = 0;
        while index < detail.nodes.len() {
            out.push(index);
            let node = &detail.nodes[index];
            index = if self.is_folded(index) && node.has_children(index) {
                node.end.max(index + 1)
            } else {
                index + 1
            };
        }
        out
    }

    /// The tree line under the cursor.
    pub fn tree_node(&self) -> Option<usize> {
        self.visible_nodes().get(self.tree_cursor).copied()
    }

    fn set_fold(&mut self, folded: bool) {
        let Some(index) = self.tree_node() else {
            return;
        };
        let has_children = self
            .detail
            .as_ref()
            .and_then(|d| d.nodes.get(index))
            .is_some_and(|n| n.has_children(index));
        if has_children {
            self.folds.insert(index, folded);
        } else if folded {
            // h on a leaf goes to its parent.
            self.tree_parent();
        }
    }

    fn tree_parent(&mut self) {
        let (Some(detail), Some(index)) = (self.detail.clone(), self.tree_node()) else {
            return;
        };
        let depth = detail.nodes.get(index).map_or(0, |n| n.depth);
        let parent = (0..index).rev().find(|i| {
            detail
                .nodes
                .get(*i)
                .is_some_and(|n| n.depth < depth && n.end > index)
        });
        if let Some(parent) = parent {
            if let Some(at) = self.visible_nodes().iter().position(|i| *i == parent) {
                self.tree_cursor = at;
            }
        }
    }

    fn toggle_fold(&mut self) {
        if let Some(index) = self.tree_node() {
            let folded = self.is_folded(index);
            self.folds.insert(index, !folded);
        }
    }

    // -----------------------------------------------------------------
    // Scrolling

    fn list_rows(&self) -> usize {
        layout::table_rows(self.areas().main).max(1)
    }

    fn scroll_to_selection(&mut self) {
        let rows = self.list_rows();
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + rows {
            self.offset = self.selected + 1 - rows;
        }
        let len = self.listing.rows.len();
        if self.offset + rows > len {
            self.offset = len.saturating_sub(rows);
        }
    }

    fn tree_lines(&self) -> usize {
        self.areas().detail.map_or(1, layout::inner_lines).max(1)
    }

    fn scroll_tree(&mut self) {
        let count = self.visible_nodes().len();
        if count == 0 {
            self.tree_cursor = 0;
            self.tree_offset = 0;
            return;
        }
        self.tree_cursor = self.tree_cursor.min(count - 1);
        let lines = self.tree_lines();
        if self.tree_cursor < self.tree_offset {
            self.tree_offset = self.tree_cursor;
        } else if self.tree_cursor >= self.tree_offset + lines {
            self.tree_offset = self.tree_cursor + 1 - lines;
        }
    }

    /// Moves the selection of the focused thing by `delta`.
    fn move_by(&mut self, delta: isize) {
        let step = |at: usize, len: usize| -> usize {
            if len == 0 {
                return 0;
            }
            at.saturating_add_signed(delta).min(len - 1)
        };
        match self.view {
            View::Exchanges => match self.focus {
                Focus::List => {
                    self.selected = step(self.selected, self.listing.rows.len());
                    self.follow = false;
                    self.scroll_to_selection();
                }
                Focus::Detail => {
                    self.tree_cursor = step(self.tree_cursor, self.visible_nodes().len());
                    self.hex_offset = None;
                    self.scroll_tree();
                }
                Focus::Hex => {
                    let at = self.hex_offset.unwrap_or(0);
                    self.hex_offset = Some(at.saturating_add_signed(delta));
                }
            },
            View::Connections => {
                let len = self.connections().len();
                self.conn_selected = step(self.conn_selected, len);
                let rows = layout::table_rows(self.areas().main).max(1);
                if self.conn_selected < self.conn_offset {
                    self.conn_offset = self.conn_selected;
                } else if self.conn_selected >= self.conn_offset + rows {
                    self.conn_offset = self.conn_selected + 1 - rows;
                }
            }
            View::Stats => {
                self.stats_offset = step(self.stats_offset, self.stats_lines.len());
            }
            View::Groups if delta.unsigned_abs() > 1 && delta.unsigned_abs() < usize::MAX / 4 => {
                // Page keys scroll the group's detail.
                self.group_offset = self.group_offset.saturating_add_signed(delta);
            }
            View::Groups => {
                let len = self.snapshot.as_ref().map_or(0, |s| s.groups.groups.len());
                self.group_selected = step(self.group_selected, len);
                self.group_offset = 0;
            }
        }
    }

    fn page(&self) -> isize {
        let lines = match (self.view, self.focus) {
            (View::Exchanges, Focus::Detail) => self.tree_lines(),
            (View::Exchanges, Focus::Hex) => self.areas().hex.map_or(1, layout::inner_lines),
            _ => layout::table_rows(self.areas().main),
        };
        isize::try_from(lines.max(1)).unwrap_or(1)
    }

    /// Connections of the latest snapshot.
    pub fn connections(&self) -> &[crate::session::ConnectionSummary] {
        self.snapshot
            .as_ref()
            .map_or(&[], |s| s.report.connections.as_slice())
    }

    // -----------------------------------------------------------------
    // Keys

    pub fn resize(&mut self, width: u16, height: u16) {
        self.size = Rect::new(0, 0, width, height);
        self.scroll_to_selection();
        self.scroll_tree();
    }

    /// Handles one key; returns what the runner must do, if anything.
    pub fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        if key.kind == crossterm::event::KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return Some(Effect::Quit);
        }
        if self.prompt.is_some() {
            return self.prompt_key(key);
        }
        if self.help {
            self.help = false;
            return None;
        }
        self.message = None;
        match key.code {
            KeyCode::Char('q') => return Some(Effect::Quit),
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char('j') | KeyCode::Down => self.move_by(1),
            KeyCode::Char('k') | KeyCode::Up => self.move_by(-1),
            KeyCode::Char('d') if ctrl => self.move_by(self.page() / 2),
            KeyCode::Char('u') if ctrl => self.move_by(-(self.page() / 2)),
            KeyCode::PageDown => self.move_by(self.page()),
            KeyCode::PageUp => self.move_by(-self.page()),
            KeyCode::Char('g') | KeyCode::Home => self.move_by(isize::MIN / 2),
            KeyCode::Char('G') | KeyCode::End => self.move_by(isize::MAX / 2),
            KeyCode::Char('1') => self.view = View::Exchanges,
            KeyCode::Char('2') => self.view = View::Connections,
            KeyCode::Char('3') => self.view = View::Stats,
            KeyCode::Char('4') => self.view = View::Groups,
            KeyCode::Char('f') => self.open_prompt(PromptKind::Filter),
            KeyCode::Char('/') => self.open_prompt(PromptKind::Search),
            KeyCode::Char('t') => self.open_prompt(PromptKind::JumpTime),
            KeyCode::Char('n') => self.search_next(true),
            KeyCode::Char('N') => self.search_next(false),
            KeyCode::Char('F') => {
                self.follow = !self.follow;
                if self.follow {
                    self.frozen = None;
                    self.selected = self.listing.rows.len().saturating_sub(1);
                    self.scroll_to_selection();
                }
                self.message = Some(format!("follow {}", if self.follow { "on" } else { "off" }));
            }
            KeyCode::Char('p') => {
                self.frozen = match self.frozen {
                    Some(_) => None,
                    None => Some(self.listing.scanned),
                };
                self.message = Some(if self.frozen.is_some() {
                    "paused: the list is frozen while capture goes on (p resumes)".to_owned()
                } else {
                    "resumed".to_owned()
                });
            }
            KeyCode::Char('x') => self.hex_shown = !self.hex_shown,
            KeyCode::Char('w') => self.open_prompt(PromptKind::ExportPcap),
            KeyCode::Char('y') if self.selected_row().is_some() => {
                self.open_prompt(PromptKind::ExportJson)
            }
            KeyCode::Tab => self.cycle_focus(),
            KeyCode::Enter => self.enter(),
            KeyCode::Char(' ') if self.focus == Focus::Detail => self.toggle_fold(),
            KeyCode::Char('l') | KeyCode::Right if self.focus == Focus::Detail => {
                self.set_fold(false)
            }
            KeyCode::Char('h') | KeyCode::Left if self.focus == Focus::Detail => {
                self.set_fold(true)
            }
            KeyCode::Esc => self.escape(),
            _ => {}
        }
        self.prepare();
        None
    }

    fn cycle_focus(&mut self) {
        if self.view != View::Exchanges {
            return;
        }
        self.focus = match self.focus {
            Focus::List if self.detail_open => Focus::Detail,
            Focus::Detail if self.hex_shown => Focus::Hex,
            _ => Focus::List,
        };
    }

    fn enter(&mut self) {
        match self.view {
            View::Exchanges => match self.focus {
                Focus::List => {
                    if self.selected_row().is_some() {
                        self.detail_open = true;
                        self.focus = Focus::Detail;
                        self.follow = false;
                    }
                }
                Focus::Detail => self.toggle_fold(),
                Focus::Hex => {}
            },
            View::Connections => {
                if let Some(conn) = self.connections().get(self.conn_selected).cloned() {
                    self.connection = Some(conn.index);
                    self.view = View::Exchanges;
                    self.focus = Focus::List;
                    self.follow = false;
                    self.relist();
                    self.message = Some(format!(
                        "only connection {} ({} -> {}); Esc shows all",
                        conn.index, conn.client, conn.broker
                    ));
                }
            }
            View::Stats | View::Groups => {}
        }
    }

    fn escape(&mut self) {
        if self.view != View::Exchanges {
            self.view = View::Exchanges;
        } else if self.detail_open {
            self.detail_open = false;
            self.focus = Focus::List;
        } else if self.connection.is_some() {
            self.connection = None;
            self.relist();
        }
    }

    fn open_prompt(&mut self, kind: PromptKind) {
        let text = match kind {
            PromptKind::Filter => self.filter_text.clone(),
            PromptKind::Search => self.search.clone(),
            PromptKind::JumpTime => String::new(),
            PromptKind::ExportPcap => {
                if self.view == View::Connections {
                    match self.connections().get(self.conn_selected) {
                        Some(c) => format!("kwire-connection-{}.pcap", c.index),
                        None => return,
                    }
                } else {
                    "kwire-export.pcap".to_owned()
                }
            }
            PromptKind::ExportJson => match self.selected_row().and_then(|r| self.store.row(r)) {
                Some(row) => format!("kwire-exchange-{}.json", row.id),
                None => return,
            },
        };
        self.prompt = Some(Prompt {
            kind,
            edit: LineEdit::new(&text),
            before: self.filter_text.clone(),
        });
    }

    fn prompt_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let mut prompt = self.prompt.take()?;
        match key.code {
            KeyCode::Esc => {
                if prompt.kind == PromptKind::Filter {
                    self.set_filter(&prompt.before);
                    self.filter_error = None;
                }
                return None;
            }
            KeyCode::Enter => return self.submit(prompt),
            _ => {
                if prompt.edit.key(&key) && prompt.kind == PromptKind::Filter {
                    // Matching is live: each keystroke that parses applies.
                    let text = prompt.edit.text.clone();
                    self.set_filter(&text);
                }
            }
        }
        self.prompt = Some(prompt);
        self.prepare();
        None
    }

    /// Applies `text` as the filter if it parses; otherwise keeps the
    /// current filter and records the error.
    pub fn set_filter(&mut self, text: &str) {
        match filter::parse(text) {
            Ok(parsed) => {
                self.filter_error = None;
                if text != self.filter_text || parsed != self.filter {
                    self.filter = parsed;
                    self.filter_text = text.to_owned();
                    self.relist();
                }
            }
            Err(error) => self.filter_error = Some(error),
        }
    }

    fn submit(&mut self, prompt: Prompt) -> Option<Effect> {
        let text = prompt.edit.text.trim().to_owned();
        match prompt.kind {
            PromptKind::Filter => {
                self.set_filter(&prompt.edit.text);
                if let Some(error) = &self.filter_error {
                    // Keep editing: the text does not parse.
                    self.message = Some(format!("filter not applied: {error}"));
                    self.prompt = Some(prompt);
                }
            }
            PromptKind::Search => {
                self.search = text;
                self.search_next(true);
            }
            PromptKind::JumpTime => self.jump_to(&text),
            PromptKind::ExportPcap => {
                if text.is_empty() {
                    return None;
                }
                let (rows, what) = if self.view == View::Connections {
                    let index = self
                        .connections()
                        .get(self.conn_selected)
                        .map(|c| c.index)?;
                    let rows: Vec<u32> = (0..self.store.len())
                        .filter(|r| {
                            self.store
                                .row(*r)
                                .is_some_and(|row| row.connection == index)
                        })
                        .filter_map(|r| u32::try_from(r).ok())
                        .collect();
                    (rows, format!("connection {index}"))
                } else {
                    self.settle();
                    (self.listing.rows.clone(), "listed exchanges".to_owned())
                };
                return Some(Effect::ExportPcap {
                    path: PathBuf::from(text),
                    rows,
                    what,
                });
            }
            PromptKind::ExportJson => {
                let row = self.selected_row()?;
                if text.is_empty() {
                    return None;
                }
                return Some(Effect::WriteJson {
                    path: PathBuf::from(text),
                    row,
                });
            }
        }
        self.prepare();
        None
    }

    /// The text a search looks in: what the row shows.
    pub fn row_text(&self, index: usize) -> String {
        let Some(row) = self.store.row(index) else {
            return String::new();
        };
        let (client, broker) = self.store.endpoints(row);
        format!(
            "{} v{} {} {} #{} {} {}",
            crate::frame::api_name(row.api_key),
            row.api_version,
            client,
            broker,
            row.correlation_id,
            self.store.client_id(row).unwrap_or(""),
            self.store.summary_line(index)
        )
    }

    fn search_next(&mut self, forward: bool) {
        if self.search.is_empty() {
            return;
        }
        self.settle_scan();
        let needle = self.search.to_lowercase();
        let len = self.listing.rows.len();
        if len == 0 {
            return;
        }
        for step in 1..=len {
            let at = if forward {
                (self.selected + step) % len
            } else {
                (self.selected + len - step % len) % len
            };
            let row = self.listing.rows[at] as usize;
            if self.row_text(row).to_lowercase().contains(&needle) {
                self.selected = at;
                self.follow = false;
                self.scroll_to_selection();
                self.message = Some(format!("search: {}", self.search));
                return;
            }
        }
        self.message = Some(format!("search: no row holds {:?}", self.search));
    }

    fn settle_scan(&mut self) {
        while self.advance(usize::MAX) {}
    }

    /// Parses a time: seconds from the first packet (`12.5`), or a UTC
    /// time of day (`14:03:07.25`) on the first packet's day.
    pub fn parse_time(&self, text: &str) -> Option<i64> {
        let first = self.progress.first_ns.unwrap_or(0);
        if text.contains(':') {
            let mut parts = text.split(':');
            let hours: i64 = parts.next()?.trim().parse().ok()?;
            let minutes: i64 = parts.next()?.trim().parse().ok()?;
            let seconds: f64 = parts.next().map_or(Some(0.0), |s| s.trim().parse().ok())?;
            if parts.next().is_some() || !(0.0..60.0).contains(&seconds) {
                return None;
            }
            let day = first.div_euclid(86_400_000_000_000) * 86_400_000_000_000;
            let of_day = (hours * 3600 + minutes * 60) * 1_000_000_000 + (seconds * 1e9) as i64;
            Some(day + of_day)
        } else {
            let seconds: f64 = text.trim().parse().ok()?;
            seconds.is_finite().then(|| first + (seconds * 1e9) as i64)
        }
    }

    fn jump_to(&mut self, text: &str) {
        let Some(target) = self.parse_time(text) else {
            self.message = Some(format!(
                "cannot read {text:?} as a time: give seconds from the start (12.5) or HH:MM:SS"
            ));
            return;
        };
        self.settle_scan();
        let found = self.listing.rows.iter().position(|r| {
            self.store
                .row(*r as usize)
                .is_some_and(|row| row.ts_ns >= target)
        });
        match found {
            Some(at) => {
                self.selected = at;
                self.follow = false;
                self.scroll_to_selection();
            }
            None => self.message = Some("no exchange at or after that time".to_owned()),
        }
    }

    // -----------------------------------------------------------------
    // Mouse

    pub fn mouse(&mut self, event: MouseEvent) {
        if self.prompt.is_some() || self.help {
            return;
        }
        let areas = self.areas();
        let inside = |area: Rect| {
            event.column >= area.x
                && event.column < area.x + area.width
                && event.row >= area.y
                && event.row < area.y + area.height
        };
        let over_detail = areas.detail.is_some_and(inside);
        let over_hex = areas.hex.is_some_and(inside);
        let previous = self.focus;
        match event.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let delta = if event.kind == MouseEventKind::ScrollDown {
                    3
                } else {
                    -3
                };
                if self.view == View::Exchanges {
                    self.focus = if over_detail {
                        Focus::Detail
                    } else if over_hex {
                        Focus::Hex
                    } else {
                        Focus::List
                    };
                }
                self.move_by(delta);
                if self.view == View::Exchanges && !(over_detail || over_hex) {
                    self.focus = previous;
                }
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if inside(areas.main) {
                    // Border and header lines come first.
                    let line = usize::from(event.row.saturating_sub(areas.main.y));
                    if line >= 2 {
                        let at = match self.view {
                            View::Connections => self.conn_offset,
                            _ => self.offset,
                        } + line
                            - 2;
                        match self.view {
                            View::Exchanges if at < self.listing.rows.len() => {
                                self.selected = at;
                                self.follow = false;
                                self.focus = Focus::List;
                            }
                            View::Connections if at < self.connections().len() => {
                                self.conn_selected = at;
                            }
                            _ => {}
                        }
                    }
                } else if let Some(detail) = areas.detail.filter(|a| inside(*a)) {
                    let line = usize::from(event.row.saturating_sub(detail.y));
                    if line >= 1 {
                        let at = self.tree_offset + line - 1;
                        if at < self.visible_nodes().len() {
                            self.tree_cursor = at;
                            self.focus = Focus::Detail;
                            self.hex_offset = None;
                        }
                    }
                }
            }
            _ => {}
        }
        self.prepare();
    }
}

/// Relative time of a row from the first packet: `12.345678`.
pub fn relative_time(ts_ns: i64, first_ns: i64) -> String {
    let relative = ts_ns - first_ns;
    format!(
        "{}.{:06}",
        relative.div_euclid(1_000_000_000),
        relative.rem_euclid(1_000_000_000) / 1_000
    )
}

/// `127.0.0.1:5000 -> 127.0.0.1:9092`.
pub fn connection_text(client: SocketAddr, broker: SocketAddr) -> String {
    format!("{client} -> {broker}")
}
