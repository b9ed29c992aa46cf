//! The paper's qualitative figure: captions as rows of token boxes shaded by their score
//! (scaled within each caption, whose score range is printed beside it: raw scores of a
//! small model can all sit near zero, and the ranking within a caption is what masks),
//! with the tokens each view masks marked — red border: masked out of the alignment text as
//! noise; blue bar: selected for masked-token prediction; orange dot: a token the dataset
//! injected as noise (synthetic data only), so a reader sees whether the scores find it.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{anchored, Chart, DrawResult, Layout, FONT};
use crate::eval::token_scores::{CaptionScores, TokenScores};

const WIDTH: u32 = 1200;
const MARGIN: i32 = 24;
const GUTTER: i32 = 64;
const BOX_H: i32 = 26;
const PAD: i32 = 6;
const GAP: i32 = 5;
const LINE_H: i32 = 42;
const CAPTION_GAP: i32 = 14;
const TOP: i32 = 104;

const NOISE_MASK: RGBColor = RGBColor(214, 39, 40);
const MTP_MASK: RGBColor = RGBColor(31, 90, 200);
const TRUE_NOISE: RGBColor = RGBColor(255, 140, 0);

pub struct TokenFigure<'a> {
    title: String,
    samples: &'a TokenScores,
    /// Token boxes `(caption, token, x, y, width)` and the caption labels' `(x, y)`.
    boxes: Vec<(usize, usize, i32, i32, i32)>,
    labels: Vec<(i32, i32)>,
    height: u32,
}

fn token_font() -> FontDesc<'static> {
    (FONT, 15).into_font()
}

/// The lowest and highest score of a caption.
fn range(caption: &CaptionScores) -> (f32, f32) {
    let lo = caption.scores.iter().copied().fold(f32::MAX, f32::min);
    let hi = caption.scores.iter().copied().fold(f32::MIN, f32::max);
    (lo, hi)
}

/// Light to dark blue for a score scaled to [0, 1] within its caption: darker is more
/// informative for the scorer.
fn shade(score: f32) -> RGBColor {
    let t = f64::from(score.clamp(0.0, 1.0));
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    RGBColor(lerp(240, 8), lerp(246, 69), lerp(252, 148))
}

impl<'a> TokenFigure<'a> {
    pub fn new(title: String, samples: &'a TokenScores) -> Self {
        let font = token_font();
        let (mut boxes, mut labels) = (Vec::new(), Vec::new());
        let mut y = TOP;
        for (c, caption) in samples.captions.iter().enumerate() {
            labels.push((MARGIN, y + BOX_H / 2));
            let mut x = MARGIN + GUTTER;
            for (t, token) in caption.tokens.iter().enumerate() {
                let w = font
                    .box_size(token)
                    .map_or(9 * token.len() as i32, |b| b.0 as i32)
                    + 2 * PAD;
                if x + w > WIDTH as i32 - MARGIN {
                    x = MARGIN + GUTTER;
                    y += LINE_H;
                }
                boxes.push((c, t, x, y, w));
                x += w + GAP;
            }
            y += LINE_H + CAPTION_GAP;
        }
        Self {
            title,
            samples,
            boxes,
            labels,
            height: (y + MARGIN) as u32,
        }
    }

    fn noise_known(&self) -> bool {
        self.samples.captions.iter().any(|c| c.true_noise.is_some())
    }

    fn draw_legend<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let small = anchored(14, HPos::Left, VPos::Center);
        let y = 62;
        // The colour bar.
        let (x0, bar_w) = (MARGIN + 60, 180);
        root.draw_text("score", &small, (MARGIN, y))?;
        for i in 0..bar_w {
            let c = shade(i as f32 / (bar_w - 1) as f32);
            root.draw(&Rectangle::new(
                [(x0 + i, y - 9), (x0 + i + 1, y + 9)],
                c.filled(),
            ))?;
        }
        root.draw(&Rectangle::new(
            [(x0, y - 9), (x0 + bar_w, y + 9)],
            RGBColor(150, 150, 150),
        ))?;
        root.draw_text(
            "caption's lowest",
            &anchored(12, HPos::Left, VPos::Top),
            (x0, y + 12),
        )?;
        root.draw_text(
            "highest",
            &anchored(12, HPos::Right, VPos::Top),
            (x0 + bar_w, y + 12),
        )?;
        let mut x = x0 + bar_w + 36;
        root.draw(&Rectangle::new(
            [(x, y - 9), (x + 22, y + 9)],
            NOISE_MASK.stroke_width(3),
        ))?;
        root.draw_text("masked as noise (alignment text)", &small, (x + 30, y))?;
        x += 300;
        root.draw(&Rectangle::new([(x, y + 5), (x + 22, y + 9)], MTP_MASK.filled()))?;
        root.draw_text("masked for MTP", &small, (x + 30, y))?;
        x += 170;
        if self.noise_known() {
            root.draw(&Circle::new((x + 11, y), 5, TRUE_NOISE.filled()))?;
            root.draw_text("injected noise (ground truth)", &small, (x + 24, y))?;
        }
        Ok(())
    }
}

/// The figure wraps its captions when it is built, so it keeps its own width whatever the
/// layout; the layout only says whether it carries its title.
impl Chart for TokenFigure<'_> {
    fn size(&self, _: Layout) -> (u32, u32) {
        (WIDTH, self.height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, layout: Layout) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        if layout.titled {
            root.draw_text(&self.title, &anchored(20, HPos::Left, VPos::Top), (MARGIN, 16))?;
        }
        self.draw_legend(root)?;
        let label_font = (FONT, 13)
            .into_font()
            .color(&RGBColor(110, 110, 110))
            .pos(Pos::new(HPos::Left, VPos::Center));
        let small = anchored(11, HPos::Left, VPos::Top);
        for (caption, &(x, y)) in self.samples.captions.iter().zip(&self.labels) {
            root.draw_text(&format!("#{}", caption.sample), &label_font, (x, y))?;
            let (lo, hi) = range(caption);
            root.draw_text(&format!("{lo:.3}–"), &small, (x, y + 10))?;
            root.draw_text(&format!("{hi:.3}"), &small, (x, y + 22))?;
        }
        for &(c, t, x, y, w) in &self.boxes {
            let caption = &self.samples.captions[c];
            let (lo, hi) = range(caption);
            let score = if hi > lo {
                (caption.scores[t] - lo) / (hi - lo)
            } else {
                0.5
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + w, y + BOX_H)],
                shade(score).filled(),
            ))?;
            let border = if caption.noise_masked[t] {
                NOISE_MASK.stroke_width(3)
            } else {
                RGBColor(200, 200, 200).stroke_width(1)
            };
            root.draw(&Rectangle::new([(x, y), (x + w, y + BOX_H)], border))?;
            if caption.mtp_masked[t] {
                root.draw(&Rectangle::new(
                    [(x, y + BOX_H + 3), (x + w, y + BOX_H + 7)],
                    MTP_MASK.filled(),
                ))?;
            }
            if caption.true_noise.as_ref().is_some_and(|n| n[t]) {
                root.draw(&Circle::new((x + w / 2, y - 7), 4, TRUE_NOISE.filled()))?;
            }
            let ink = if score > 0.55 { WHITE } else { BLACK };
            let font = token_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
            root.draw_text(&caption.tokens[t], &font, (x + w / 2, y + BOX_H / 2))?;
        }
        Ok(())
    }
}
