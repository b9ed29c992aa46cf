//! Horizontal grouped bars with error bars: one group per variant (variant names are long,
//! so they read best on the left), one bar per series.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::stats::Stat;
use super::{anchored, color, Chart, DrawResult, Layout, FONT};

pub struct BarSeries {
    pub name: String,
    /// Per category; `None` where the variant has no finished run.
    pub values: Vec<Option<Stat>>,
}

pub struct HBars {
    pub title: String,
    pub x_label: String,
    /// Top to bottom.
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
    /// The axis end; from the data when `None`.
    pub x_max: Option<f64>,
    /// A vertical dashed line with its label (e.g. chance level).
    pub reference: Option<(f64, String)>,
    /// Says what the bars and error bars are.
    pub note: String,
}

const BAR_PX: u32 = 22;
const GROUP_GAP_PX: u32 = 18;

impl HBars {
    fn x_max(&self) -> f64 {
        self.x_max.unwrap_or_else(|| {
            let top = self
                .series
                .iter()
                .flat_map(|s| s.values.iter().flatten())
                .map(|s| s.mean + s.std.unwrap_or(0.0))
                .fold(0.0f64, f64::max);
            // Room for the value labels right of the longest bar.
            (top * 1.18).max(1.0)
        })
    }

    fn label_width(&self) -> u32 {
        let font = (FONT, 15).into_font();
        self.categories
            .iter()
            .map(|c| font.box_size(c).map_or(8 * c.len() as u32, |b| b.0))
            .max()
            .unwrap_or(0)
            + 24
    }
}

/// The height of the title, of the legend row below the plot and of the note below that.
const TITLE_PX: u32 = 40;
const LEGEND_PX: u32 = 26;
const NOTE_PX: u32 = 28;
/// Horizontal room per x-axis label.
const X_LABEL_PX: u32 = 70;

const REFERENCE: RGBColor = RGBColor(90, 90, 90);

impl HBars {
    /// One row under the plot, from the axis on: a swatch and the name of each series, then
    /// the reference line's (outside the plot, where no bar can hide it).
    fn draw_legend<DB: DrawingBackend>(&self, row: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let font = anchored(14, HPos::Left, VPos::Center);
        let width = |text: &str| {
            (FONT, 14)
                .into_font()
                .box_size(text)
                .map_or(8 * text.len() as i32, |b| b.0 as i32)
        };
        let (mut x, y) = (self.label_width() as i32 + 12, LEGEND_PX as i32 / 2);
        for (j, s) in self.series.iter().enumerate() {
            row.draw(&Rectangle::new([(x, y - 6), (x + 14, y + 6)], color(j).filled()))?;
            row.draw_text(&s.name, &font, (x + 20, y))?;
            x += 20 + width(&s.name) + 24;
        }
        if let Some((_, label)) = &self.reference {
            row.draw(&PathElement::new(
                [(x, y), (x + 14, y)],
                REFERENCE.stroke_width(1),
            ))?;
            row.draw_text(label, &font, (x + 20, y))?;
        }
        Ok(())
    }
}

impl Chart for HBars {
    fn size(&self, layout: Layout) -> (u32, u32) {
        let group = self.series.len() as u32 * BAR_PX + GROUP_GAP_PX;
        let titles = if layout.titled { TITLE_PX + NOTE_PX } else { 0 };
        (
            layout.width,
            82 + LEGEND_PX + titles + self.categories.len() as u32 * group,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, layout: Layout) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let mut plot = root.clone();
        if layout.titled {
            let (above, footer) = root.split_vertically(self.size(layout).1 - NOTE_PX);
            footer.draw_text(
                &self.note,
                &(FONT, 13).into_font().color(&RGBColor(90, 90, 90)),
                (self.label_width() as i32, 6),
            )?;
            plot = above.titled(&self.title, (FONT, 20))?;
        }
        let (plot, legend) = plot.split_vertically(plot.dim_in_pixel().1 - LEGEND_PX);
        self.draw_legend(&legend)?;
        let n = self.categories.len() as f64;
        let k = self.series.len().max(1) as f64;
        let x_max = self.x_max();
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(self.label_width())
            .build_cartesian_2d(0.0..x_max, 0.0..n)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels((layout.width.saturating_sub(self.label_width()) / X_LABEL_PX).max(2) as usize)
            .x_desc(&self.x_label)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;

        // Category i fills [n−1−i, n−i]; its bars share 80 % of that band, top down.
        let band = 0.8 / k;
        let bar = |i: usize, j: usize| {
            let top = n - i as f64 - 0.1 - j as f64 * band;
            (top - band * 0.88, top)
        };
        let value_font = TextStyle::from((FONT, 13).into_font());
        for (j, s) in self.series.iter().enumerate() {
            let c = color(j);
            chart.draw_series(s.values.iter().enumerate().filter_map(|(i, v)| {
                let (lo, hi) = bar(i, j);
                v.map(|v| Rectangle::new([(0.0, lo), (v.mean, hi)], c.filled()))
            }))?;
            for (i, v) in s.values.iter().enumerate() {
                let (lo, hi) = bar(i, j);
                let mid = (lo + hi) / 2.0;
                let Some(v) = v else {
                    chart.draw_series(std::iter::once(Text::new(
                        "no finished run",
                        (x_max * 0.01, mid),
                        value_font
                            .color(&RGBColor(120, 120, 120))
                            .pos(Pos::new(HPos::Left, VPos::Center)),
                    )))?;
                    continue;
                };
                let sd = v.std.unwrap_or(0.0);
                if sd > 0.0 {
                    let cap = (hi - lo) * 0.3;
                    let whisker = [
                        vec![(v.mean - sd, mid), (v.mean + sd, mid)],
                        vec![(v.mean - sd, mid - cap), (v.mean - sd, mid + cap)],
                        vec![(v.mean + sd, mid - cap), (v.mean + sd, mid + cap)],
                    ];
                    chart.draw_series(
                        whisker
                            .into_iter()
                            .map(|p| PathElement::new(p, BLACK.stroke_width(1))),
                    )?;
                }
                chart.draw_series(std::iter::once(Text::new(
                    format!("{:.2}", v.mean),
                    (v.mean + sd + x_max * 0.008, mid),
                    value_font.pos(Pos::new(HPos::Left, VPos::Center)),
                )))?;
            }
        }
        if let Some((x, _)) = &self.reference {
            chart.draw_series(DashedLineSeries::new(
                [(*x, 0.0), (*x, n)],
                6,
                4,
                REFERENCE.stroke_width(1),
            ))?;
        }
        // Variant names, right-aligned against the axis at each group's centre.
        let label_font = anchored(15, HPos::Right, VPos::Center);
        for (i, name) in self.categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(0.0, n - i as f64 - 0.5));
            root.draw_text(name, &label_font, (px - 10, py))?;
        }
        Ok(())
    }
}
