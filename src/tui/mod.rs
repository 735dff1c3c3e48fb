//! The terminal UI (`kwire tui FILE`, `kwire live`): browse Kafka exchanges
//! while a capture is read or sniffed.
//!
//! Threads: the source (`source`: a file reader, or a capture thread and an
//! analyzer thread) turns packets into compact rows (`index`) and sends them,
//! with progress and snapshots of statistics, connections and consumer
//! groups (`groups`), over a bounded channel. The UI thread owns all it
//! receives: it never shares state under a lock. `state` holds what is
//! shown and what keys do; `render` draws it, one module per region, laid
//! out by `layout`; `detail` decodes the selected exchange again from its
//! raw bytes; `export` writes pcap and JSON files.
//!
//! Everything outside is injected into [`run`]: the update channel, the
//! terminal backend and the [`Events`] source, so tests script keys and
//! render with ratatui's `TestBackend`. [`Terminal`] sets the real terminal
//! up and a panic hook puts it back.

pub mod detail;
pub mod export;
pub mod groups;
pub mod index;
pub mod layout;
pub mod render;
pub mod source;
pub mod state;
pub mod theme;

use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use crossterm::event::Event;
use ratatui::backend::Backend;

use source::Update;
use state::{App, Effect, SCAN_STEP};

/// Where key, mouse and resize events come from.
pub trait Events {
    /// The next event, waiting at most `timeout`; None if none came.
    fn next(&mut self, timeout: Duration) -> io::Result<Option<Event>>;
}

/// The real terminal's events.
pub struct TerminalEvents;

impl Events for TerminalEvents {
    fn next(&mut self, timeout: Duration) -> io::Result<Option<Event>> {
        if crossterm::event::poll(timeout)? {
            crossterm::event::read().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// What the runner needs besides the state.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The capture file exports read again (None: export is refused).
    pub export_source: Option<PathBuf>,
}

/// Time spent taking updates before drawing again.
const DRAIN_BUDGET: Duration = Duration::from_millis(15);
/// How long to wait for input when nothing else is going on.
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// Runs the UI until `q`: takes updates, scans the filter a step at a time,
/// draws when something changed, and handles input.
pub fn run<B: Backend>(
    app: &mut App,
    updates: &Receiver<Update>,
    terminal: &mut ratatui::Terminal<B>,
    events: &mut dyn Events,
    options: &RunOptions,
) -> io::Result<()> {
    if let Ok(size) = terminal.size() {
        app.resize(size.width, size.height);
    }
    let mut dirty = true;
    let mut source_open = true;
    loop {
        let started = Instant::now();
        while source_open && started.elapsed() < DRAIN_BUDGET {
            match updates.try_recv() {
                Ok(update) => {
                    app.apply(update);
                    dirty = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => source_open = false,
            }
        }
        let scanning = app.advance(SCAN_STEP);
        if dirty || scanning {
            app.prepare();
            terminal.draw(|frame| render::draw(frame, app))?;
            dirty = false;
        }
        let wait = if scanning { Duration::ZERO } else { IDLE_WAIT };
        if let Some(event) = events.next(wait)? {
            dirty = true;
            let effect = match event {
                Event::Key(key) => app.key(key),
                Event::Mouse(mouse) => {
                    app.mouse(mouse);
                    None
                }
                Event::Resize(width, height) => {
                    app.resize(width, height);
                    None
                }
                _ => None,
            };
            match effect {
                Some(Effect::Quit) => return Ok(()),
                Some(effect) => carry_out(app, effect, options),
                None => {}
            }
        }
    }
}

/// Carries out an export and says how it went in the status line.
pub fn carry_out(app: &mut App, effect: Effect, options: &RunOptions) {
    match effect {
        Effect::Quit => {}
        Effect::ExportPcap { path, rows, what } => {
            let Some(source) = &options.export_source else {
                app.message = Some(
                    "writing a pcap needs the capture in a file: start kwire live with -w FILE"
                        .to_owned(),
                );
                return;
            };
            app.message = Some(
                match export::export_pcap(source, &path, &app.store, &rows) {
                    Ok(written) => format!(
                        "wrote {} packets of {} exchanges ({what}) to {}",
                        written.packets,
                        written.exchanges,
                        path.display()
                    ),
                    Err(error) => format!("export failed: {error}"),
                },
            );
        }
        Effect::WriteJson { path, row } => {
            let first = app.progress.first_ns.unwrap_or(0);
            app.message = Some(
                match export::write_json(&path, &app.store, row, &app.decode, first) {
                    Ok(()) => format!("wrote the exchange as JSON to {}", path.display()),
                    Err(error) => format!("cannot write {}: {error}", path.display()),
                },
            );
        }
    }
}

/// The real terminal: raw mode, the alternate screen and mouse capture,
/// undone when dropped and by a panic hook, so that neither an error nor a
/// panic leaves the shell unusable.
pub struct Terminal {
    pub terminal: ratatui::Terminal<ratatui::backend::CrosstermBackend<io::Stdout>>,
}

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        io::stdout(),
        crossterm::event::DisableMouseCapture,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl Terminal {
    pub fn open() -> io::Result<Terminal> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        crossterm::terminal::enable_raw_mode()?;
        let mut stdout = io::stdout();
        if let Err(error) = crossterm::execute!(
            stdout,
            crossterm::terminal::EnterAlternateScreen,
            crossterm::event::EnableMouseCapture
        ) {
            restore_terminal();
            return Err(error);
        }
        let backend = ratatui::backend::CrosstermBackend::new(stdout);
        match ratatui::Terminal::new(backend) {
            Ok(terminal) => Ok(Terminal { terminal }),
            Err(error) => {
                restore_terminal();
                Err(error)
            }
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Whether colours are wanted: not when NO_COLOR is set to anything
/// non-empty (<https://no-color.org>).
pub fn color_wanted(no_color: Option<std::ffi::OsString>) -> bool {
    no_color.is_none_or(|value| value.is_empty())
}
