//! Per-epoch curves side by side (e.g. training loss and R@1): per variant the mean over
//! seeds as a line with a ±1 std band, one legend for all panels below them.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{anchored, color, Chart, DrawResult, Layout, FONT};

pub struct Line {
    /// Index into the legend (and the palette).
    pub color: usize,
    /// `(epoch, mean, std)`.
    pub points: Vec<(f64, f64, Option<f64>)>,
}

pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub lines: Vec<Line>,
}

pub struct Curves {
    pub title: String,
    pub panels: Vec<Panel>,
    /// `(colour index, name)` of every line drawn.
    pub legend: Vec<(usize, String)>,
}

const TITLE_PX: u32 = 40;
/// A panel's height beside the others, per pixel of the chart's width.
const PANEL_ASPECT: f64 = 0.39;
/// Below this width the panels stack, each this high.
const STACK_BELOW_PX: u32 = 600;
const STACKED_PANEL_PX: u32 = 240;
const LEGEND_COLUMN_PX: u32 = 300;
const LEGEND_ROW_PX: u32 = 24;

impl Curves {
    /// Panels side by side, or stacked on a narrow chart.
    fn stacked(layout: Layout) -> bool {
        layout.width < STACK_BELOW_PX
    }

    fn panels_height(&self, layout: Layout) -> u32 {
        if Self::stacked(layout) {
            STACKED_PANEL_PX * self.panels.len() as u32
        } else {
            (f64::from(layout.width) * PANEL_ASPECT).round() as u32
        }
    }

    fn legend_columns(layout: Layout) -> usize {
        (layout.width / LEGEND_COLUMN_PX).clamp(1, 3) as usize
    }

    fn legend_height(&self, layout: Layout) -> u32 {
        self.legend.len().div_ceil(Self::legend_columns(layout)) as u32 * LEGEND_ROW_PX + 16
    }
}

impl Chart for Curves {
    fn size(&self, layout: Layout) -> (u32, u32) {
        let title = if layout.titled { TITLE_PX } else { 0 };
        (
            layout.width,
            title + self.panels_height(layout) + self.legend_height(layout),
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, layout: Layout) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let body = if layout.titled {
            root.titled(&self.title, (FONT, 20))?
        } else {
            root.clone()
        };
        let (panels, legend) = body.split_vertically(self.panels_height(layout));
        let grid = if Self::stacked(layout) {
            (self.panels.len(), 1)
        } else {
            (1, self.panels.len())
        };
        let areas = panels.split_evenly(grid);
        for (panel, area) in self.panels.iter().zip(&areas) {
            draw_panel(panel, area)?;
        }
        let font = anchored(14, HPos::Left, VPos::Center);
        let columns = Self::legend_columns(layout);
        let column = layout.width as i32 / columns as i32;
        for (i, (c, name)) in self.legend.iter().enumerate() {
            let x = 40 + (i % columns) as i32 * column;
            let y = 12 + (i / columns) as i32 * LEGEND_ROW_PX as i32;
            legend.draw(&PathElement::new(
                [(x, y), (x + 26, y)],
                color(*c).stroke_width(3),
            ))?;
            legend.draw_text(name, &font, (x + 34, y))?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(panel: &Panel, area: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let points = || panel.lines.iter().flat_map(|l| l.points.iter());
    let (x_lo, x_hi) = points().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (y_lo, y_hi) = points().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        let sd = p.2.unwrap_or(0.0);
        (lo.min(p.1 - sd), hi.max(p.1 + sd))
    });
    let pad = ((y_hi - y_lo) * 0.06).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 17))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x_lo..x_hi.max(x_lo + 1.0), (y_lo - pad)..(y_hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        // Epochs are whole numbers; plotters would label fractions on short runs.
        .x_labels(((x_hi - x_lo) as usize + 1).min(12))
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_desc(&panel.y_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    // Many overlapping bands turn to mud; fainter bands keep the lines readable.
    let band_alpha = if panel.lines.len() > 4 { 0.07 } else { 0.15 };
    for line in &panel.lines {
        let c = color(line.color);
        if line.points.iter().any(|p| p.2.is_some()) {
            let upper = line.points.iter().map(|p| (p.0, p.1 + p.2.unwrap_or(0.0)));
            let lower = line.points.iter().rev().map(|p| (p.0, p.1 - p.2.unwrap_or(0.0)));
            chart.draw_series(std::iter::once(Polygon::new(
                upper.chain(lower).collect::<Vec<_>>(),
                c.mix(band_alpha).filled(),
            )))?;
        }
        chart.draw_series(LineSeries::new(
            line.points.iter().map(|p| (p.0, p.1)),
            c.stroke_width(2),
        ))?;
    }
    Ok(())
}
