//! The frame's bytes in hex and ASCII, with the bytes of the tree line
//! under the cursor highlighted (and scrolled into view unless the user
//! scrolls the pane).

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::tui::detail::Side;
use crate::tui::layout;
use crate::tui::state::{App, Focus};
use crate::tui::theme::Theme;

/// Which frame to show and what to highlight: the cursor line's bytes, or
/// the request when the line has none.
pub fn selection(app: &App) -> (Side, Option<(usize, usize)>) {
    let bytes = app
        .tree_node()
        .and_then(|i| app.detail.as_ref().and_then(|d| d.nodes.get(i)))
        .and_then(|n| n.bytes);
    match bytes {
        Some((side, start, end)) => (side, Some((start, end))),
        None => {
            let side = match &app.detail {
                Some(d) if d.request.is_none() => Side::Response,
                _ => Side::Request,
            };
            (side, None)
        }
    }
}

/// The first line shown: the user's, or the one that shows the highlight.
pub fn first_line(app: &App, area: Rect, len: usize) -> usize {
    let per_line = layout::hex_width(area);
    let lines = len.div_ceil(per_line);
    let shown = layout::inner_lines(area).max(1);
    let (_, range) = selection(app);
    let wanted = match app.hex_offset {
        Some(offset) => offset,
        None => range.map_or(0, |(start, _)| (start / per_line).saturating_sub(1)),
    };
    wanted.min(lines.saturating_sub(shown))
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::new(app.color);
    let focused = app.focus == Focus::Hex;
    let (side, range) = selection(app);
    let bytes = app.detail.as_ref().and_then(|d| d.frame(side));
    let name = match side {
        Side::Request => "request",
        Side::Response => "response",
    };
    let mut title = format!(" hex: {name} ");
    if let Some((start, end)) = range {
        title = format!(
            " hex: {name}, bytes {start}..{end} ({} bytes) ",
            end - start
        );
    }
    let mut lines = Vec::new();
    if let Some(bytes) = bytes {
        let per_line = layout::hex_width(area);
        let first = first_line(app, area, bytes.len());
        let shown = layout::inner_lines(area);
        let lit = |at: usize| range.is_some_and(|(s, e)| at >= s && at < e);
        for line in first..first + shown {
            let start = line * per_line;
            if start >= bytes.len() {
                break;
            }
            let chunk = &bytes[start..(start + per_line).min(bytes.len())];
            let mut spans = vec![Span::styled(format!("{start:04x}  "), theme.muted())];
            for (i, byte) in chunk.iter().enumerate() {
                let style = if lit(start + i) {
                    theme.highlight()
                } else {
                    theme.plain()
                };
                spans.push(Span::styled(format!("{byte:02x}"), style));
                spans.push(Span::raw(" "));
            }
            for _ in chunk.len()..per_line {
                spans.push(Span::raw("   "));
            }
            spans.push(Span::raw(" "));
            for (i, byte) in chunk.iter().enumerate() {
                let c = if byte.is_ascii_graphic() || *byte == b' ' {
                    char::from(*byte)
                } else {
                    '.'
                };
                let style = if lit(start + i) {
                    theme.highlight()
                } else {
                    theme.muted()
                };
                spans.push(Span::styled(c.to_string(), style));
            }
            lines.push(Line::from(spans));
        }
    } else if app.detail.is_some() {
        lines.push(Line::from(Span::styled(
            "no bytes kept for this frame",
            theme.muted(),
        )));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(title);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
