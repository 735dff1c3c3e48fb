//! The decoded tree of the selected exchange, foldable, its lines indented
//! by depth with ▾ (open) and ▸ (folded) marks.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::tui::detail::Tone;
use crate::tui::layout;
use crate::tui::state::{App, Focus};
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::new(app.color);
    let focused = app.focus == Focus::Detail;
    let mut lines = Vec::new();
    let mut title = " detail ".to_owned();
    if let Some(detail) = &app.detail {
        if let Some(row) = app.store.row(detail.row) {
            title = format!(" exchange {} ", row.id);
        }
        let visible = app.visible_nodes();
        let shown = layout::inner_lines(area);
        for (position, index) in visible.iter().enumerate().skip(app.tree_offset).take(shown) {
            let node = &detail.nodes[*index];
            let mark = if node.has_children(*index) {
                if app.is_folded(*index) {
                    "▸ "
                } else {
                    "▾ "
                }
            } else {
                "  "
            };
            let style = match node.tone {
                Tone::Plain => theme.plain(),
                Tone::Heading => theme.heading(),
                Tone::Error => theme.error(),
                Tone::Muted => theme.muted(),
            };
            let style = if position == app.tree_cursor && focused {
                theme.selected()
            } else if position == app.tree_cursor {
                style.patch(theme.selected())
            } else {
                style
            };
            let indent = "  ".repeat(usize::from(node.depth));
            lines.push(Line::from(vec![
                Span::raw(indent),
                Span::styled(format!("{mark}{}", node.text), style),
            ]));
        }
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(title);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
