//! The consumer-group view: the groups (left or top) and the selected
//! group's generation, leader, members with their client ids and assigned
//! partitions, committed offsets and rebalance timeline.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::exchange::error_name;
use crate::tui::groups::Group;
use crate::tui::layout;
use crate::tui::state::{relative_time, App};
use crate::tui::theme::Theme;

/// The lines describing one group.
pub fn group_lines(group: &Group, first_ns: i64, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_owned());
    lines.push(Line::from(vec![
        Span::styled(format!("group {}", group.id), theme.heading()),
        Span::raw(format!(
            "  generation {}  protocol {}/{}  coordinator {}  rebalances {}",
            group.generation.map_or("?".to_owned(), |g| g.to_string()),
            opt(&group.protocol_type),
            opt(&group.protocol),
            opt(&group.coordinator),
            group.rebalances
        )),
    ]));
    lines.push(Line::raw(format!("leader {}", opt(&group.leader))));
    lines.push(Line::styled(
        format!("members ({})", group.active().count()),
        theme.heading(),
    ));
    for member in group.members.values() {
        let assignment: Vec<String> = member
            .assignment
            .iter()
            .map(|(topic, parts)| {
                let list: Vec<String> = parts.iter().map(ToString::to_string).collect();
                format!("{topic}[{}]", list.join(","))
            })
            .collect();
        let leader = if group.leader.as_deref() == Some(member.member_id.as_str()) {
            " (leader)"
        } else {
            ""
        };
        let state = if member.left { " left" } else { "" };
        lines.push(Line::from(vec![
            Span::raw(format!("  {}{leader}{state}", member.member_id)),
            Span::styled(
                format!(
                    "  client {}  {}",
                    member.client_id.clone().unwrap_or_else(|| "?".to_owned()),
                    member.address.clone().unwrap_or_default()
                ),
                theme.muted(),
            ),
        ]));
        lines.push(Line::raw(format!(
            "    assigned: {}",
            if assignment.is_empty() {
                "-".to_owned()
            } else {
                assignment.join(" ")
            }
        )));
    }
    lines.push(Line::styled(
        format!("committed offsets ({})", group.offsets.len()),
        theme.heading(),
    ));
    for ((topic, partition), committed) in &group.offsets {
        let mut spans = vec![Span::raw(format!(
            "  {topic}[{partition}] = {}  generation {}  at {}",
            committed.offset,
            committed.generation,
            relative_time(committed.ts_ns, first_ns)
        ))];
        if let Some(code) = committed.error {
            spans.push(Span::styled(
                format!("  {}", error_name(code)),
                theme.error(),
            ));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::styled(
        format!("timeline ({} events)", group.timeline.len()),
        theme.heading(),
    ));
    for event in &group.timeline {
        lines.push(Line::raw(format!(
            "  {:>12}  {}",
            relative_time(event.ts_ns, first_ns),
            event.text
        )));
    }
    lines
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = Theme::new(app.color);
    let groups: Vec<&Group> = app
        .snapshot
        .as_ref()
        .map(|s| s.groups.groups.values().collect())
        .unwrap_or_default();
    let list_height = u16::try_from(groups.len().clamp(1, 6) + 2)
        .unwrap_or(8)
        .min(area.height / 2);
    let list_area = Rect {
        height: list_height,
        ..area
    };
    let detail_area = Rect {
        y: area.y + list_height,
        height: area.height - list_height,
        ..area
    };
    let shown = layout::inner_lines(list_area);
    let start = app.group_selected.saturating_sub(shown.saturating_sub(1));
    let list: Vec<Line> = if groups.is_empty() {
        vec![Line::styled(
            "no consumer group traffic yet (JoinGroup, SyncGroup, OffsetCommit…)",
            theme.muted(),
        )]
    } else {
        groups
            .iter()
            .enumerate()
            .skip(start)
            .take(shown)
            .map(|(i, g)| {
                let text = format!(
                    "{:<30} generation {:>4}  members {:>3}  offsets {:>5}  rebalances {}",
                    g.id,
                    g.generation.map_or("?".to_owned(), |g| g.to_string()),
                    g.active().count(),
                    g.offsets.len(),
                    g.rebalances
                );
                if i == app.group_selected {
                    Line::styled(text, theme.selected())
                } else {
                    Line::raw(text)
                }
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(list).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border(true))
                .title(format!(" consumer groups ({}) ", groups.len())),
        ),
        list_area,
    );
    let first = app.progress.first_ns.unwrap_or(0);
    let lines = groups
        .get(app.group_selected)
        .map(|g| group_lines(g, first, theme))
        .unwrap_or_default();
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((u16::try_from(app.group_offset).unwrap_or(u16::MAX), 0))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(theme.muted()),
            ),
        detail_area,
    );
}
