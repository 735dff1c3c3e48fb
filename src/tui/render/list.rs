//! The exchange list: one row per exchange, the selected one reversed.
//! Columns give way to the summary as the screen narrows: the connection's
//! addresses and the client id only show on wide screens.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;

use crate::exchange::{error_name, ExchangeState};
use crate::stats::format_duration;
use crate::tui::index::{self, Store};
use crate::tui::layout;
use crate::tui::state::{connection_text, relative_time, App, Focus};
use crate::tui::theme::Theme;

/// What the status column says, and how it looks.
pub fn status(store: &Store, index: usize, theme: Theme) -> (String, Style) {
    let Some(row) = store.row(index) else {
        return (String::new(), theme.plain());
    };
    let errors: Vec<String> = store.facts(row).errors().map(error_name).collect();
    if !errors.is_empty() {
        return (errors.join(","), theme.error());
    }
    if row.has(index::UNDECODABLE) {
        return ("undecodable".to_owned(), theme.error());
    }
    if row.has(index::BAD_CRC) {
        return ("bad CRC".to_owned(), theme.error());
    }
    if row.has(index::LOST) {
        return ("lost bytes".to_owned(), theme.accent());
    }
    match row.state() {
        ExchangeState::Complete if row.has(index::INFERRED) => {
            ("ok (inferred)".to_owned(), theme.ok())
        }
        ExchangeState::Complete => ("ok".to_owned(), theme.ok()),
        ExchangeState::NoResponseExpected => ("acks=0".to_owned(), theme.muted()),
        ExchangeState::ResponseMissing => ("no response".to_owned(), theme.warn()),
        ExchangeState::RequestMissing => ("no request".to_owned(), theme.warn()),
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::new(app.color);
    let wide = area.width >= 150;
    let medium = area.width >= 110;
    let first = app.progress.first_ns.unwrap_or(0);
    let rows_shown = layout::table_rows(area);
    let end = (app.offset + rows_shown).min(app.listing.rows.len());
    // Cells first, so that columns can be as wide as what they show.
    let mut lines: Vec<(usize, Vec<(String, Style)>)> = Vec::new();
    for position in app.offset..end {
        let index = app.listing.rows[position] as usize;
        let Some(row) = app.store.row(index) else {
            continue;
        };
        let (client, broker) = app.store.endpoints(row);
        let plain = |text: String| (text, theme.plain());
        let mut cells = vec![
            plain(relative_time(row.ts_ns, first)),
            plain(if wide {
                connection_text(client, broker)
            } else {
                row.connection.to_string()
            }),
        ];
        if medium {
            cells.push(plain(app.store.client_id(row).unwrap_or("-").to_owned()));
        }
        let size = |s: Option<u32>| s.map_or_else(|| "-".to_owned(), |n| n.to_string());
        cells.extend([
            plain(format!(
                "{}@{}",
                crate::frame::api_name(row.api_key),
                row.api_version
            )),
            plain(row.correlation_id.to_string()),
            plain(
                row.latency()
                    .map_or_else(|| "-".to_owned(), format_duration),
            ),
            plain(format!(
                "{}/{}",
                size(row.request_size()),
                size(row.response_size())
            )),
            status(&app.store, index, theme),
            plain(app.store.summary_line(index)),
        ]);
        lines.push((position, cells));
    }
    let mut header = vec!["time", if wide { "connection" } else { "conn" }];
    // Most a column may take, and its least (the header's width).
    let mut limits: Vec<u16> = vec![11, if wide { 47 } else { 5 }];
    if medium {
        header.push("client id");
        limits.push(24);
    }
    header.extend(["api", "corr", "latency", "req/resp", "status", "summary"]);
    limits.extend([22, 7, 8, 13, if medium { 30 } else { 16 }]);
    let mut widths: Vec<Constraint> = limits
        .iter()
        .enumerate()
        .map(|(column, limit)| {
            let content = lines
                .iter()
                .filter_map(|(_, cells)| cells.get(column))
                .map(|(text, _)| text.chars().count())
                .max()
                .unwrap_or(0)
                .max(header[column].len());
            Constraint::Length(u16::try_from(content).unwrap_or(*limit).min(*limit))
        })
        .collect();
    widths.push(Constraint::Min(10));
    let rows: Vec<Row> = lines
        .into_iter()
        .map(|(position, cells)| {
            let cells: Vec<Cell> = cells
                .into_iter()
                .map(|(text, style)| Cell::from(Line::from(Span::styled(text, style))))
                .collect();
            let line = Row::new(cells);
            if position == app.selected {
                line.style(theme.selected())
            } else {
                line
            }
        })
        .collect();
    let focused = app.focus == Focus::List;
    let title = if app.listing.rows.is_empty() && !app.store.is_empty() {
        " no exchange passes the filter ".to_owned()
    } else if app.store.is_empty() {
        if app.progress.done {
            " no Kafka exchange in this capture ".to_owned()
        } else {
            " waiting for exchanges… ".to_owned()
        }
    } else {
        format!(" {}/{} ", app.selected + 1, app.listing.rows.len())
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.heading()))
        .column_spacing(1)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border(focused))
                .title(title),
        );
    frame.render_widget(table, area);
}
