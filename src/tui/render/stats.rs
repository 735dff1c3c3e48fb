//! The stats view: the `kwire read --stats` report of everything read so
//! far (per-API counts and latency percentiles, errors by code, throughput
//! per topic-partition, connections, loss counters), scrollable.

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::tui::layout;
use crate::tui::state::App;
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::new(app.color);
    let shown = layout::inner_lines(area);
    let lines: Vec<Line> = if app.stats_lines.is_empty() {
        vec![Line::styled("no statistics yet", theme.muted())]
    } else {
        app.stats_lines
            .iter()
            .skip(app.stats_offset)
            .take(shown)
            .map(|line| {
                if !line.starts_with(' ') && !line.is_empty() {
                    Line::styled(line.clone(), theme.heading())
                } else {
                    Line::raw(line.clone())
                }
            })
            .collect()
    };
    let title = format!(
        " stats of all {} exchanges read (line {}/{}) ",
        app.store.len(),
        app.stats_offset + 1,
        app.stats_lines.len().max(1)
    );
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border(true))
                .title(title),
        ),
        area,
    );
}
