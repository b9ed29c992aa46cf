//! The report's charts, each drawn once per backend — SVG and PDF for papers, PNG for
//! READMEs — with DejaVu Sans compiled in: the PNG looks the same on every machine, the SVG
//! has its text outlined and the PDF embeds the font, so neither depends on the reader's
//! fonts. The quantitative charts also come in a paper style (`charts/paper/`): without
//! their titles and notes (a paper's caption says those), one and two columns wide.

mod bars;
mod curves;
mod stats;
mod strength;
mod tokens;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use self::bars::{BarSeries, HBars};
use self::curves::{Curves, Line, Panel};
pub use self::stats::{Stat, Stats};
use self::tokens::TokenFigure;
use super::store::StoredExperiment;
use super::tables::{IMAGE_COSINE, NOISE_AUROC, NOISE_AUROC_CONTENT, TEXT_COSINE, TRAIN};
use super::ReportError;

type DrawResult = Result<(), Box<dyn Error>>;

/// How a chart is laid out: its width in SVG pixels (1/96 in in the PDF), and whether it
/// carries its title and notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub width: u32,
    pub titled: bool,
}

impl Layout {
    /// The report's own charts.
    pub const SCREEN: Self = Self {
        width: 1200,
        titled: true,
    };
    /// A paper's figures: one column of a two-column paper (3.5 in) and the text width
    /// (7 in), so that the charts' 13–15 px text prints at 10–11 pt.
    pub const PAPER: [(&'static str, Self); 2] = [
        (
            "1col",
            Self {
                width: 336,
                titled: false,
            },
        ),
        (
            "2col",
            Self {
                width: 672,
                titled: false,
            },
        ),
    ];
}

/// A chart that knows its size and draws itself on any plotters backend.
trait Chart {
    fn size(&self, layout: Layout) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, layout: Layout) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// A chart as written: what it shows and its files (relative stem `charts/<name>`).
#[derive(Debug, Clone)]
pub struct Drawn {
    pub title: String,
    /// `charts/<name>`, without extension.
    pub stem: String,
    pub files: Vec<PathBuf>,
}

/// Tableau's ten colours, then their light tints: an ablation such as the paper's Table 4
/// with its baselines has more than ten variants, and a colour used twice in one chart makes
/// two of them indistinguishable. The first ten keep charts of fewer variants legible in
/// print; beyond twenty variants the colours repeat.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const FONT: &str = "sans-serif";

/// The bundled font at `size`, anchored at the drawing position by `h` and `v`.
fn anchored(size: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).pos(Pos::new(h, v))
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is valid TrueType; a failure here would be a packaging bug.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Writes `<dir>/<name>.{svg,pdf,png}`, and with `paper` the paper styles
/// `<dir>/paper/<name>-{1col,2col}.{svg,pdf}`.
fn save(chart: &impl Chart, dir: &Path, name: &str, paper: bool) -> Result<Vec<PathBuf>, ReportError> {
    register_fonts();
    let mut files = vector(chart, Layout::SCREEN, &dir.join(name))?;
    let png = dir.join(format!("{name}.png"));
    let size = chart.size(Layout::SCREEN);
    let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        chart
            .draw(&root, Layout::SCREEN)
            .and_then(|()| Ok(root.present()?))
            .map_err(failed(&png))?;
    }
    image::RgbImage::from_raw(size.0, size.1, pixels)
        .expect("the buffer has the image's size")
        .save(&png)
        .map_err(|e| failed(&png)(Box::new(e)))?;
    files.push(png);
    if paper {
        let paper_dir = dir.join("paper");
        std::fs::create_dir_all(&paper_dir).map_err(|source| ReportError::Io {
            path: paper_dir.clone(),
            source,
        })?;
        for (suffix, layout) in Layout::PAPER {
            files.extend(vector(
                chart,
                layout,
                &paper_dir.join(format!("{name}-{suffix}")),
            )?);
        }
    }
    Ok(files)
}

fn failed(path: &Path) -> impl FnOnce(Box<dyn Error>) -> ReportError {
    let path = path.to_path_buf();
    move |e| ReportError::Chart {
        path,
        message: e.to_string(),
    }
}

/// `<stem>.svg` with its text outlined and `<stem>.pdf` with the font embedded, drawn in
/// `layout`.
fn vector(chart: &impl Chart, layout: Layout, stem: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let (svg, pdf) = (stem.with_extension("svg"), stem.with_extension("pdf"));
    let mut drawn = String::new();
    {
        let root = SVGBackend::with_string(&mut drawn, chart.size(layout)).into_drawing_area();
        chart
            .draw(&root, layout)
            .and_then(|()| Ok(root.present()?))
            .map_err(failed(&svg))?;
    }
    let tree = svg_tree(&drawn).map_err(failed(&svg))?;
    let outlined = tree.to_string(&svg2pdf::usvg::WriteOptions::default());
    let pages = svg2pdf::PageOptions { dpi: 96.0 };
    let document = svg2pdf::to_pdf(&tree, svg2pdf::ConversionOptions::default(), pages)
        .map_err(|e| failed(&pdf)(format!("{e:?}").into()))?;
    for (path, bytes) in [(&svg, outlined.as_bytes()), (&pdf, &document[..])] {
        std::fs::write(path, bytes).map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(vec![svg, pdf])
}

/// The SVG plotters drew, parsed with the bundled DejaVu Sans as its `sans-serif`.
fn svg_tree(svg: &str) -> Result<svg2pdf::usvg::Tree, Box<dyn Error>> {
    let mut options = svg2pdf::usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_font_data(dejavu::sans::regular().to_vec());
    fonts.load_font_data(dejavu::sans::bold().to_vec());
    fonts.set_sans_serif_family("DejaVu Sans");
    Ok(svg2pdf::usvg::Tree::from_str(svg, &options)?)
}

/// A file-name form of a variant or dataset name.
fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
}

/// Draws every chart the experiment's results allow into `dir`.
pub fn draw_all(experiment: &StoredExperiment, stats: &Stats, dir: &Path) -> Result<Vec<Drawn>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut drawn = Vec::new();
    let mut add = |files: Vec<PathBuf>, name: String, title: String| {
        drawn.push(Drawn {
            title,
            stem: format!("charts/{name}"),
            files,
        })
    };
    let datasets = stats.datasets();
    for dataset in &datasets {
        let chart = retrieval_bars(experiment, stats, dataset);
        let name = format!("retrieval-{}", slug(dataset));
        add(
            save(&chart, dir, &name, true)?,
            name,
            format!("R@1 and mAP on {dataset}"),
        );
    }
    if let Some(chart) = training_curves(experiment, stats, datasets.first().map(String::as_str)) {
        add(
            save(&chart, dir, "curves", true)?,
            "curves".into(),
            "Training curves".into(),
        );
    }
    if let Some(chart) = datasets
        .first()
        .and_then(|d| collapse_curves(experiment, stats, d))
    {
        add(
            save(&chart, dir, "collapse", false)?,
            "collapse".into(),
            "Collapse diagnostic: how alike the evaluation's features are".into(),
        );
    }
    if let Some(chart) = noise_auroc(experiment, stats) {
        add(
            save(&chart, dir, "noise-auroc", true)?,
            "noise-auroc".into(),
            "How well each scorer finds the injected noise tokens".into(),
        );
    }
    if let Some(chart) = strength::noise_auroc_vs_strength(experiment, stats) {
        add(
            save(&chart, dir, "noise-auroc-strength", false)?,
            "noise-auroc-strength".into(),
            "Noise-token AUROC (content words) against the model's strength".into(),
        );
    }
    for variant in &experiment.variants {
        // The lowest finished seed's samples; strategies without scores (every token at
        // the initial score) have nothing to show.
        let Some(samples) = experiment
            .done()
            .filter(|r| &r.variant == variant)
            .find_map(|r| r.token_scores.as_ref())
            .filter(|t| t.captions.iter().any(|c| spread(&c.scores) > 1e-6))
        else {
            continue;
        };
        let chart = TokenFigure::new(
            format!("Token scores of “{variant}” after epoch {}", samples.epoch),
            samples,
        );
        let name = format!("token-scores-{}", slug(variant));
        add(
            save(&chart, dir, &name, false)?,
            name,
            format!("Token scores and masks: {variant}"),
        );
    }
    Ok(drawn)
}

fn spread(v: &[f32]) -> f32 {
    let (lo, hi) = v
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    hi - lo
}

fn seeds_note(stats: impl Iterator<Item = Stat>) -> String {
    let ns: Vec<u32> = stats.map(|s| s.n).collect();
    let (lo, hi) = (
        ns.iter().min().copied().unwrap_or(0),
        ns.iter().max().copied().unwrap_or(0),
    );
    let n = if lo == hi {
        format!("n = {lo}")
    } else {
        format!("n = {lo}–{hi}")
    };
    format!("bars: mean over seeds; error bars: ±1 sample std ({n} seeds per variant)")
}

fn retrieval_bars(experiment: &StoredExperiment, stats: &Stats, dataset: &str) -> HBars {
    let series = [("R1", "R@1"), ("mAP", "mAP")]
        .into_iter()
        .map(|(m, shown)| BarSeries {
            name: shown.to_string(),
            values: experiment
                .variants
                .iter()
                .map(|v| stats.last(v, dataset, m))
                .collect(),
        })
        .collect::<Vec<_>>();
    let note = seeds_note(series.iter().flat_map(|s| s.values.iter().flatten().copied()));
    HBars {
        title: format!("{}: text-to-image retrieval on {dataset}", experiment.name),
        x_label: "score after the last epoch (%)".into(),
        categories: categories(experiment),
        series,
        x_max: None,
        reference: None,
        note,
    }
}

/// Variant names, the baseline and the oracle marked.
fn categories(experiment: &StoredExperiment) -> Vec<String> {
    experiment
        .variants
        .iter()
        .map(|v| {
            if experiment.baseline.as_deref() == Some(v) {
                format!("{v} (baseline)")
            } else if experiment.oracle.as_deref() == Some(v) {
                format!("{v} (oracle)")
            } else {
                v.clone()
            }
        })
        .collect()
}

/// The scorers only: variants whose runs logged no AUROC have no scores to judge. Two bars
/// each: over all maskable tokens, and over content words only.
fn noise_auroc(experiment: &StoredExperiment, stats: &Stats) -> Option<HBars> {
    let last = |v: &str, metric: &str| stats.curve(v, TRAIN, metric).last().map(|(_, s)| *s);
    let (categories, scored): (Vec<String>, Vec<&String>) = categories(experiment)
        .into_iter()
        .zip(&experiment.variants)
        .filter(|(_, v)| last(v, NOISE_AUROC).is_some())
        .unzip();
    if scored.is_empty() {
        return None;
    }
    let series: Vec<BarSeries> = [
        (NOISE_AUROC, "all tokens"),
        (NOISE_AUROC_CONTENT, "content words"),
    ]
    .into_iter()
    .map(|(metric, name)| BarSeries {
        name: name.into(),
        values: scored.iter().map(|v| last(v, metric)).collect(),
    })
    .filter(|s| s.values.iter().any(Option::is_some))
    .collect();
    let note = seeds_note(series.iter().flat_map(|s| s.values.iter().flatten().copied()));
    Some(HBars {
        title: format!("{}: noise-token AUROC of the token scores", experiment.name),
        x_label: "AUROC of 1 − score against the injected-noise mask, last epoch".into(),
        categories,
        series,
        x_max: Some(1.0),
        reference: Some((0.5, "chance (0.5)".into())),
        note: format!("{note}; variants whose masking does not score tokens are left out"),
    })
}

/// What one panel of a curves chart shows: its title, y label, dataset and metric.
struct PanelSpec {
    title: String,
    y_label: &'static str,
    dataset: String,
    metric: &'static str,
}

/// The training loss and R@1 on the first evaluation set.
fn training_curves(experiment: &StoredExperiment, stats: &Stats, dataset: Option<&str>) -> Option<Curves> {
    let mut specs = vec![PanelSpec {
        title: "Training loss".into(),
        y_label: "loss (mean per epoch)",
        dataset: TRAIN.into(),
        metric: "loss",
    }];
    specs.extend(dataset.map(|d| PanelSpec {
        title: format!("R@1 on {d}"),
        y_label: "R@1 (%)",
        dataset: d.into(),
        metric: "R1",
    }));
    curves(experiment, stats, specs)
}

/// The collapse diagnostic on the first evaluation set: the mean pairwise cosine of the
/// image features and of the text features per evaluation.
fn collapse_curves(experiment: &StoredExperiment, stats: &Stats, dataset: &str) -> Option<Curves> {
    let specs = [(IMAGE_COSINE, "image"), (TEXT_COSINE, "text")]
        .into_iter()
        .map(|(metric, what)| PanelSpec {
            title: format!("{what} features on {dataset}"),
            y_label: "mean pairwise cosine",
            dataset: dataset.into(),
            metric,
        })
        .collect();
    curves(experiment, stats, specs)
}

/// One line per variant in each panel that has any; `None` when no panel has one.
fn curves(experiment: &StoredExperiment, stats: &Stats, specs: Vec<PanelSpec>) -> Option<Curves> {
    let panel = |spec: PanelSpec| Panel {
        title: spec.title,
        y_label: spec.y_label.to_string(),
        lines: experiment
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| Line {
                color: i,
                points: stats
                    .curve(v, &spec.dataset, spec.metric)
                    .into_iter()
                    .map(|(e, s)| (e as f64, s.mean, s.std))
                    .collect(),
            })
            .filter(|l| !l.points.is_empty())
            .collect(),
    };
    let mut panels: Vec<Panel> = specs.into_iter().map(panel).collect();
    panels.retain(|p| !p.lines.is_empty());
    let names = categories(experiment);
    let legend = (0..names.len())
        .filter(|&i| panels.iter().any(|p| p.lines.iter().any(|l| l.color == i)))
        .map(|i| (i, names[i].clone()))
        .collect();
    (!panels.is_empty()).then(|| Curves {
        title: format!(
            "{}: mean over seeds per epoch, band ±1 sample std",
            experiment.name
        ),
        panels,
        legend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn up_to_twenty_variants_each_get_their_own_colour() {
        let colours: HashSet<(u8, u8, u8)> = (0..20)
            .map(|i| {
                let c = color(i);
                (c.0, c.1, c.2)
            })
            .collect();
        assert_eq!(colours.len(), 20);
    }
}
