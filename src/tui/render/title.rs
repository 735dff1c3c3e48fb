//! The title line: program, source, counts, progress and the view tabs.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::tui::state::{App, View};
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::new(app.color);
    let mut spans = vec![Span::styled(" kwire ", theme.title())];
    // The tabs come first: on a narrow screen the source name is cut, not
    // the way to the other views.
    let short = area.width < 120;
    for (number, view) in View::ALL.iter().enumerate() {
        let name = match (short, view) {
            (true, View::Exchanges) => "List",
            (true, View::Connections) => "Conns",
            _ => view.name(),
        };
        let text = format!(" {} {name} ", number + 1);
        if *view == app.view {
            spans.push(Span::styled(text, theme.selected()));
        } else {
            spans.push(Span::raw(text));
        }
    }
    let total = app.store.len();
    let shown = app.listing.rows.len();
    let counts = if app.filter.is_all() && app.connection.is_none() {
        format!(" │ {total} exchanges ")
    } else {
        format!(" │ {shown} of {total} exchanges ")
    };
    spans.push(Span::raw(counts));
    spans.push(Span::styled(progress_text(app), theme.muted()));
    spans.push(Span::raw(format!("│ {}", app.source)));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// `│ reading 45% `, `│ done `, `│ live `.
pub fn progress_text(app: &App) -> String {
    let progress = &app.progress;
    if let Some(error) = &progress.error {
        if progress.done || !progress.live {
            return format!("│ ended early: {} ", super::fit(error, 30));
        }
    }
    if progress.done {
        return "│ done ".to_owned();
    }
    if let (true, Some(total)) = (progress.live, progress.total.filter(|t| *t > 0)) {
        let percent = progress.bytes.min(total) * 100 / total;
        let paused = if app.frozen.is_some() { ", paused" } else { "" };
        return format!("│ replaying {percent}%{paused} ");
    }
    if progress.live {
        return if app.frozen.is_some() {
            "│ live, paused ".to_owned()
        } else if app.follow {
            "│ live, following ".to_owned()
        } else {
            "│ live ".to_owned()
        };
    }
    match progress.total {
        Some(total) if total > 0 => {
            let percent = progress.bytes.min(total) * 100 / total;
            format!("│ reading {percent}% ")
        }
        _ => "│ reading ".to_owned(),
    }
}
