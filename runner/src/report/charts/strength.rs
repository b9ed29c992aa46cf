//! Noise-token AUROC against the model's strength (`experiment.strength`): does a scorer
//! find the noise once the model it scores with is strong enough? One line per variant with
//! the strength left out of its name, the strengths in spec order along the x axis, each
//! point the AUROC over content words of the first epoch's scores (which the starting model
//! computes), the mean over seeds.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::stats::Stats;
use super::{anchored, color, Chart, DrawResult, Layout, FONT};
use crate::report::store::StoredExperiment;
use crate::report::tables::{NOISE_AUROC_CONTENT, TRAIN};

/// One line: a name and its AUROC at each strength (by index into the strengths).
pub struct StrengthLine {
    pub name: String,
    pub points: Vec<(usize, f64)>,
}

pub struct StrengthChart {
    pub title: String,
    /// What the strength is (the config key path), for the x axis.
    pub x_label: String,
    /// The strengths' values as the runs' configs write them, in spec order.
    pub strengths: Vec<String>,
    pub lines: Vec<StrengthLine>,
}

/// Horizontal dashed lines: chance, and the AUROC the question asks a scorer to reach.
const REFERENCES: [(f64, &str); 2] = [(0.5, "chance (0.5)"), (0.7, "0.7")];

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 640;

/// The chart, when the experiment names a strength key and some run logged an AUROC.
pub fn noise_auroc_vs_strength(experiment: &StoredExperiment, stats: &Stats) -> Option<StrengthChart> {
    let path = experiment.strength.as_deref()?;
    let mut strengths: Vec<String> = Vec::new();
    let mut lines: Vec<StrengthLine> = Vec::new();
    for variant in &experiment.variants {
        let Some(strength) = strength_of(experiment, variant, path) else {
            continue;
        };
        let Some((_, first)) = stats.curve(variant, TRAIN, NOISE_AUROC_CONTENT).first().copied() else {
            continue;
        };
        let x = match strengths.iter().position(|s| *s == strength) {
            Some(x) => x,
            None => {
                strengths.push(strength);
                strengths.len() - 1
            }
        };
        let name = crate::spec::name_without(variant, path);
        match lines.iter_mut().find(|l| l.name == name) {
            Some(line) => line.points.push((x, first.mean)),
            None => lines.push(StrengthLine {
                name,
                points: vec![(x, first.mean)],
            }),
        }
    }
    (!lines.is_empty()).then(|| StrengthChart {
        title: format!(
            "{}: noise-token AUROC (content words) vs model strength",
            experiment.name
        ),
        x_label: format!("model strength (`{path}`)"),
        strengths,
        lines,
    })
}

/// The strength value of `variant`'s runs, from the first run with a config.
fn strength_of(experiment: &StoredExperiment, variant: &str, path: &str) -> Option<String> {
    let value = experiment
        .runs
        .iter()
        .filter(|r| r.variant == variant)
        .find_map(|r| crate::spec::value_at(r.config.as_ref()?, path))?;
    Some(match value.as_str() {
        Some(text) => text.to_string(),
        None => value.to_string(),
    })
}

impl StrengthChart {
    fn y_range(&self) -> (f64, f64) {
        let values = self.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
        let (lo, hi) = values.fold((0.45f64, 0.75f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        (lo - 0.03, hi + 0.03)
    }
}

impl Chart for StrengthChart {
    /// Drawn for the report's page only (no paper style), so at its own size.
    fn size(&self, _: Layout) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, _: Layout) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let n = self.strengths.len() as f64;
        let (y_lo, y_hi) = self.y_range();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 20))
            .margin(16)
            .x_label_area_size(60)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..n - 0.5, y_lo..y_hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc(&self.x_label)
            .y_desc("AUROC of the first epoch's scores, content words (mean over seeds)")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        let grey = RGBColor(90, 90, 90);
        for (y, label) in REFERENCES {
            chart.draw_series(DashedLineSeries::new(
                [(-0.5, y), (n - 0.5, y)],
                6,
                4,
                grey.stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                label,
                (n - 0.5, y),
                anchored(13, HPos::Right, VPos::Bottom).color(&grey),
            )))?;
        }
        for (i, line) in self.lines.iter().enumerate() {
            let c = color(i);
            let points: Vec<(f64, f64)> = line.points.iter().map(|&(x, y)| (x as f64, y)).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
                .label(&line.name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(3)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(160, 160, 160))
            .label_font((FONT, 14))
            .draw()?;
        // The strengths under the axis, at their positions.
        let label_font = anchored(14, HPos::Center, VPos::Top);
        for (x, strength) in self.strengths.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(x as f64, y_lo));
            root.draw_text(strength, &label_font, (px, py + 8))?;
        }
        Ok(())
    }
}
