//! The help overlay: every key, from the same table the key handling is
//! tested against.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::state::{App, KEYS};
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, screen: Rect, app: &App) {
    let theme = Theme::new(app.color);
    let width = screen.width.min(78);
    let height = screen
        .height
        .min(u16::try_from(KEYS.len() + 2).unwrap_or(u16::MAX));
    let area = Rect {
        x: screen.x + (screen.width - width) / 2,
        y: screen.y + (screen.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<20}"), theme.heading()),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border(true))
                .title(" keys (any key closes) "),
        ),
        area,
    );
}
