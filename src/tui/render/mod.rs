//! Drawing: one module per screen region, each a `render(frame, area, app)`
//! that only reads the state (no I/O, no decoding: [`App::prepare`] did
//! that). Where the regions go is [`super::layout`]'s.

pub mod bar;
pub mod connections;
pub mod detail;
pub mod groups;
pub mod help;
pub mod hex;
pub mod list;
pub mod stats;
pub mod status;
pub mod title;

use ratatui::Frame;

use super::state::{App, View};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let areas = app.areas();
    title::render(frame, areas.title, app);
    match app.view {
        View::Exchanges => {
            list::render(frame, areas.main, app);
            if let Some(area) = areas.detail {
                detail::render(frame, area, app);
            }
            if let Some(area) = areas.hex {
                hex::render(frame, area, app);
            }
        }
        View::Connections => connections::render(frame, areas.main, app),
        View::Stats => stats::render(frame, areas.main, app),
        View::Groups => groups::render(frame, areas.main, app),
    }
    bar::render(frame, areas.bar, app);
    status::render(frame, areas.status, app);
    if app.help {
        help::render(frame, frame.area(), app);
    }
}

/// Cuts `text` to `width` characters, marking the cut with `…`.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}
