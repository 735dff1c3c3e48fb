//! The connections view: each TCP connection with its client, broker,
//! state, exchanges, bytes and losses. Enter lists only its exchanges.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Row, Table};
use ratatui::Frame;

use crate::stats::{kind_name, state_name};
use crate::tui::layout;
use crate::tui::state::App;
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::new(app.color);
    let connections = app.connections();
    let shown = layout::table_rows(area);
    let rows: Vec<Row> = connections
        .iter()
        .enumerate()
        .skip(app.conn_offset)
        .take(shown)
        .map(|(position, c)| {
            let losses = if c.gap_bytes + c.frames_lost > 0 {
                format!("{} B, {} frames", c.gap_bytes, c.frames_lost)
            } else {
                "-".to_owned()
            };
            let mut row = Row::new(vec![
                c.index.to_string(),
                c.client.to_string(),
                c.broker.to_string(),
                format!("{} {}", state_name(c.state), kind_name(c.kind)),
                c.exchanges.to_string(),
                format!("{}/{}", c.bytes_to_broker, c.bytes_to_client),
                c.client_ids.join(","),
                losses,
            ]);
            if c.gap_bytes + c.frames_lost > 0 {
                row = row.style(theme.error());
            }
            if position == app.conn_selected {
                row = row.style(theme.selected());
            }
            row
        })
        .collect();
    let widths = [
        Constraint::Length(4),
        Constraint::Length(21),
        Constraint::Length(21),
        Constraint::Length(13),
        Constraint::Length(9),
        Constraint::Length(15),
        Constraint::Min(10),
        Constraint::Length(16),
    ];
    let title = if connections.is_empty() {
        " connections (none yet) ".to_owned()
    } else {
        format!(
            " connections {}/{} (Enter: its exchanges, w: write pcap) ",
            app.conn_selected + 1,
            connections.len()
        )
    };
    let table = Table::new(rows, widths)
        .header(
            Row::new([
                "#",
                "client",
                "broker",
                "state",
                "exchanges",
                "bytes →/←",
                "client ids",
                "losses",
            ])
            .style(theme.heading()),
        )
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border(true))
                .title(title),
        );
    frame.render_widget(table, area);
}
