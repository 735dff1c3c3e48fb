//! The bar: the prompt being typed (filter, search, time, file name), with
//! the filter's parse error under its position; else the filter in force.

use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::tui::state::{App, PromptKind};
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::new(app.color);
    let Some(prompt) = &app.prompt else {
        let line = if app.filter_text.is_empty() {
            Line::from(Span::styled(
                " no filter (f to filter, / to search)",
                theme.muted(),
            ))
        } else {
            Line::from(vec![
                Span::styled(" filter: ", theme.heading()),
                Span::raw(app.filter_text.clone()),
                Span::styled(
                    format!("  ({} match)", app.listing.rows.len()),
                    theme.muted(),
                ),
            ])
        };
        frame.render_widget(Paragraph::new(line), area);
        return;
    };
    let label = format!(" {}: ", prompt.kind.label());
    let text = &prompt.edit.text;
    let mut spans = vec![Span::styled(label.clone(), theme.heading())];
    let error = (prompt.kind == PromptKind::Filter)
        .then_some(app.filter_error.as_ref())
        .flatten();
    match error {
        Some(error) => {
            // The text up to the error, then the rest marked.
            let at = error.position.min(text.len());
            let at = (0..=at)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            spans.push(Span::raw(text[..at].to_owned()));
            let rest = if at < text.len() {
                text[at..].to_owned()
            } else {
                " ".to_owned()
            };
            spans.push(Span::styled(rest, theme.error()));
            spans.push(Span::styled(format!("  ✗ {error}"), theme.error()));
        }
        None => {
            spans.push(Span::raw(text.clone()));
            if prompt.kind == PromptKind::Filter {
                spans.push(Span::styled(
                    format!("  ✓ {} match", app.listing.rows.len()),
                    theme.ok(),
                ));
            }
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
    let before = text[..prompt.edit.cursor.min(text.len())].chars().count();
    let x = area.x + u16::try_from(label.chars().count() + before).unwrap_or(u16::MAX);
    if x < area.x + area.width {
        frame.set_cursor_position(Position::new(x, area.y));
    }
}
