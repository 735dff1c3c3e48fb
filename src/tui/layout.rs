//! Where each region of the screen goes, for drawing and for mouse clicks.
//!
//! ```text
//! ┌ title: kwire · source · counts · progress · tabs ───────────────────┐
//! │ main: exchange list (or connections / stats / groups view)          │
//! │                                                                     │
//! ├─ detail: decoded tree ───────────────┬─ hex: frame bytes ───────────┤
//! │  (when open; below the list)         │  (beside the tree when wide, │
//! │                                      │   under it when narrow)      │
//! ├──────────────────────────────────────┴──────────────────────────────┤
//! │ bar: filter expression, or the prompt being typed                   │
//! │ status: selection, drops, messages, key hints                       │
//! └─────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The same pure function serves the renderer and the key and mouse
//! handling (page sizes, which row a click hits), so both always agree.
//! Everything fits from 80x24 up: narrow screens stack the hex pane under
//! the tree, and small heights give the list at least a few rows.

use ratatui::layout::Rect;

/// The screen's regions. Absent regions are None.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Areas {
    pub title: Rect,
    pub main: Rect,
    pub detail: Option<Rect>,
    pub hex: Option<Rect>,
    pub bar: Rect,
    pub status: Rect,
}

/// Width from which the hex pane sits beside the tree.
pub const SIDE_BY_SIDE: u16 = 150;

/// Lays the screen out. `detail` says whether the tree is open, `hex`
/// whether the hex pane is shown with it.
pub fn areas(screen: Rect, detail: bool, hex: bool) -> Areas {
    let height = screen.height;
    let title = Rect {
        height: height.min(1),
        ..screen
    };
    let footer = height.saturating_sub(1).min(2);
    let body_y = screen.y + title.height;
    let body_height = height.saturating_sub(title.height + footer);
    let bar = Rect {
        y: body_y + body_height,
        height: footer.min(1),
        ..screen
    };
    let status = Rect {
        y: bar.y + bar.height,
        height: footer.saturating_sub(1),
        ..screen
    };
    let body = Rect {
        y: body_y,
        height: body_height,
        ..screen
    };
    if !detail || body.height < 8 {
        return Areas {
            title,
            main: body,
            detail: None,
            hex: None,
            bar,
            status,
        };
    }
    // The list keeps about a third, and never less than 5 lines (3 rows).
    let list_height = (body.height / 3).max(5).min(body.height - 3);
    let main = Rect {
        height: list_height,
        ..body
    };
    let lower = Rect {
        y: body.y + list_height,
        height: body.height - list_height,
        ..body
    };
    let (tree, hex_area) = if !hex {
        (lower, None)
    } else if lower.width >= SIDE_BY_SIDE {
        let hex_width = 78.min(lower.width / 2);
        (
            Rect {
                width: lower.width - hex_width,
                ..lower
            },
            Some(Rect {
                x: lower.x + lower.width - hex_width,
                width: hex_width,
                ..lower
            }),
        )
    } else {
        let hex_height = (lower.height * 2 / 5)
            .max(3)
            .min(lower.height.saturating_sub(3));
        (
            Rect {
                height: lower.height - hex_height,
                ..lower
            },
            Some(Rect {
                y: lower.y + lower.height - hex_height,
                height: hex_height,
                ..lower
            }),
        )
    };
    Areas {
        title,
        main,
        detail: Some(tree),
        hex: hex_area.filter(|a| a.height >= 3),
        bar,
        status,
    }
}

/// Bytes per hex line for a pane this wide (borders included).
pub fn hex_width(area: Rect) -> usize {
    // "0000  " + 3 per byte + " " + 1 per byte, plus borders.
    let inner = usize::from(area.width.saturating_sub(2));
    if inner > 6 + 16 * 4 {
        16
    } else {
        8
    }
}

/// Rows of a bordered table with a header line.
pub fn table_rows(area: Rect) -> usize {
    usize::from(area.height.saturating_sub(3))
}

/// Lines inside a bordered block.
pub fn inner_lines(area: Rect) -> usize {
    usize::from(area.height.saturating_sub(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_fits_down_to_80x24() {
        for (width, height) in [(80, 24), (100, 30), (200, 60), (80, 10), (20, 5)] {
            let screen = Rect::new(0, 0, width, height);
            for (detail, hex) in [(false, false), (true, false), (true, true)] {
                let areas = areas(screen, detail, hex);
                let regions = [
                    Some(areas.title),
                    Some(areas.main),
                    areas.detail,
                    areas.hex,
                    Some(areas.bar),
                    Some(areas.status),
                ];
                let total: u32 = regions
                    .iter()
                    .flatten()
                    .map(|r| u32::from(r.height) * u32::from(r.width))
                    .sum();
                assert!(total <= u32::from(width) * u32::from(height));
                for region in regions.iter().flatten() {
                    assert!(
                        region.right() <= width && region.bottom() <= height,
                        "{region:?}"
                    );
                }
                if height >= 24 && detail {
                    assert!(table_rows(areas.main) >= 3);
                }
            }
        }
    }
}
