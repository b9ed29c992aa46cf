//! Rendering one view of an identity into RGB8 pixels.
//!
//! A view varies what changes between two photos of one pedestrian — position and size in
//! the crop, facing (mirror), limb pose, background and lighting — so that retrieval has to
//! rely on the person, not on the picture.

mod canvas;
mod figure;

use gadms_plugin::rng::Rng;

use self::canvas::{Canvas, Paint, Placement, Shape};
use self::figure::Pose;
use crate::attributes::Identity;
use crate::draw::Draw;
use crate::palette::Rgb;

/// Cells of the smooth background texture (columns, rows).
const TEXTURE_GRID: [usize; 2] = [5, 9];

/// The random choices of one image.
#[derive(Debug, Clone)]
pub struct View {
    /// Horizontal offset of the body axis, as a fraction of the width.
    shift: f32,
    /// Figure height as a fraction of the image height (before the identity's stature).
    zoom: f32,
    /// Gap between the soles and the bottom edge, as a fraction of the height.
    margin: f32,
    mirror: bool,
    pose: Pose,
    wall: Rgb,
    floor: Rgb,
    /// Where the floor begins, as a fraction of the height.
    horizon: f32,
    /// Up to two vertical background objects (left edge, width as fractions; colour).
    objects: Vec<(f32, f32, Rgb)>,
    /// Smooth brightness variation, one value per texture grid node.
    texture: Vec<f32>,
    /// Global brightness, per-channel colour cast and top-to-bottom light falloff.
    gain: f32,
    cast: Rgb,
    falloff: f32,
}

impl View {
    pub fn sample(rng: &mut Rng) -> Self {
        let pose = Pose {
            arm_spread: [rng.range(0.0, 0.035), rng.range(0.0, 0.035)],
            stride: rng.range(-0.01, 0.03),
            head_shift: rng.range(-0.006, 0.006),
        };
        let wall = muted(rng, 0.35, 0.85);
        let floor = muted(rng, 0.25, 0.6);
        let objects = (0..rng.below(3))
            .map(|_| (rng.range(-0.2, 0.9), rng.range(0.1, 0.4), muted(rng, 0.2, 0.9)))
            .collect();
        let nodes = (TEXTURE_GRID[0] + 1) * (TEXTURE_GRID[1] + 1);
        Self {
            shift: rng.range(-0.06, 0.06),
            zoom: rng.range(0.85, 0.94),
            margin: rng.range(0.015, 0.05),
            mirror: rng.chance(0.5),
            pose,
            wall,
            floor,
            horizon: rng.range(0.6, 0.82),
            objects,
            texture: (0..nodes).map(|_| rng.range(-0.07, 0.07)).collect(),
            gain: rng.range(0.8, 1.15),
            cast: [0; 3].map(|_| rng.range(-0.06, 0.06)),
            falloff: rng.range(-0.05, 0.15),
        }
    }
}

/// A desaturated colour of random hue: backgrounds should not compete with clothes.
fn muted(rng: &mut Rng, lo: f32, hi: f32) -> Rgb {
    let (hue, saturation, value) = (rng.range(0.0, 6.0), rng.range(0.0, 0.28), rng.range(lo, hi));
    let channel = |offset: f32| {
        let k = (hue + offset) % 6.0;
        value * (1.0 - saturation * (k.min(4.0 - k).clamp(0.0, 1.0)))
    };
    [channel(5.0), channel(3.0), channel(1.0)]
}

/// Renders `identity` as seen in `view`; `rng` supplies the per-pixel sensor noise.
pub fn render(identity: &Identity, view: &View, width: u32, height: u32, rng: &mut Rng) -> Vec<u8> {
    let (w, h) = (width as f32, height as f32);
    let scale = h * view.zoom * identity.traits.stature;
    let feet = h * (1.0 - view.margin);
    let placement = Placement {
        origin: [w * (0.5 + view.shift), feet - scale],
        scale,
        mirror: view.mirror,
    };
    let mut canvas = Canvas::new(width as usize, height as usize, placement);
    background(&mut canvas, view);
    canvas.fill(
        Shape::Ellipse {
            centre: [0.0, 0.985],
            radii: [0.13, 0.022],
        },
        Paint::Solid(view.floor.map(|c| c * 0.6)),
    );
    figure::draw(&mut canvas, identity, &view.pose);
    finish(&canvas, view, rng)
}

fn background(canvas: &mut Canvas, view: &View) {
    let (w, h) = (canvas.width, canvas.height);
    let horizon = (view.horizon * h as f32) as usize;
    for y in 0..h {
        for x in 0..w {
            let u = x as f32 / w as f32;
            let colour = if y >= horizon {
                view.floor
            } else {
                view.objects
                    .iter()
                    .rev()
                    .find(|(left, width, _)| (*left..left + width).contains(&u))
                    .map_or(view.wall, |o| o.2)
            };
            let shade = 1.0 + texture(view, u, y as f32 / h as f32);
            canvas.pixels[y * w + x] = colour.map(|c| c * shade);
        }
    }
}

/// Bilinear interpolation of the texture grid at (u, v) in `[0, 1)²`.
fn texture(view: &View, u: f32, v: f32) -> f32 {
    let [cols, rows] = TEXTURE_GRID;
    let (gx, gy) = (u * cols as f32, v * rows as f32);
    let (x0, y0) = (gx as usize, gy as usize);
    let (fx, fy) = (gx - x0 as f32, gy - y0 as f32);
    let node = |x: usize, y: usize| view.texture[y.min(rows) * (cols + 1) + x.min(cols)];
    let top = node(x0, y0) * (1.0 - fx) + node(x0 + 1, y0) * fx;
    let bottom = node(x0, y0 + 1) * (1.0 - fx) + node(x0 + 1, y0 + 1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Applies the lighting and sensor noise and quantises to RGB8.
fn finish(canvas: &Canvas, view: &View, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(canvas.pixels.len() * 3);
    for (i, pixel) in canvas.pixels.iter().enumerate() {
        let v = (i / canvas.width) as f32 / canvas.height as f32;
        let light = view.gain * (1.0 + view.falloff * (0.5 - v));
        let noise = rng.range(-0.03, 0.03);
        for (c, cast) in pixel.iter().zip(view.cast) {
            out.push(
                ((c * light * (1.0 + cast) + noise) * 255.0)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
        }
    }
    out
}
