//! The status line: a message if there is one, live drop counters (each
//! cause apart), and key hints.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::tui::state::App;
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::new(app.color);
    let mut spans = Vec::new();
    if app.progress.live {
        let drops = app.progress.drops;
        let style = if drops.kernel + drops.interface + drops.queue > 0 {
            theme.error()
        } else {
            theme.muted()
        };
        spans.push(Span::styled(
            format!(
                " drops: kernel {} · interface {} · queue {} ",
                drops.kernel, drops.interface, drops.queue
            ),
            style,
        ));
    }
    if app.store.dropped > 0 {
        spans.push(Span::styled(
            format!(" {} exchanges not kept (limit) ", app.store.dropped),
            theme.error(),
        ));
    }
    if let Some(frozen) = app.frozen {
        let new = app.store.len().saturating_sub(frozen);
        spans.push(Span::styled(format!(" PAUSED +{new} "), theme.warn()));
    }
    match &app.message {
        Some(message) => spans.push(Span::styled(format!(" {message}"), theme.accent())),
        None => spans.push(Span::styled(
            " ? help  q quit  Enter detail  f filter  / search  1-4 views  w pcap  y json",
            theme.muted(),
        )),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
