//! The person, drawn back to front from simple shapes in person units (see
//! [`super::canvas`]). Proportions are loosely those of a pedestrian crop: head about a
//! seventh of the height, hips at one half, knees near three quarters.

use super::canvas::{Canvas, Paint, Point, Shape};
use crate::attributes::{BagKind, Gender, HairLength, Identity, LowerKind, UpperKind};
use crate::palette::Rgb;

/// Limb positions of one view.
#[derive(Debug, Clone, Copy)]
pub struct Pose {
    /// How far each hand swings out from the hanging position (left, right).
    pub arm_spread: [f32; 2],
    /// How far each ankle is from its hip, beyond the standing width.
    pub stride: f32,
    /// Sideways tilt of the head.
    pub head_shift: f32,
}

const EYE: Rgb = [0.1, 0.08, 0.08];
const SHOULDER_Y: f32 = 0.19;
const WAIST_Y: f32 = 0.36;
const HIP_Y: f32 = 0.5;
const KNEE_Y: f32 = 0.72;
const ANKLE_Y: f32 = 0.935;

/// Where the body's joints are for one identity in one pose.
struct Skeleton {
    head: Point,
    head_radii: [f32; 2],
    shoulder_half: f32,
    waist_half: f32,
    hip_half: f32,
    /// Shoulder, elbow and hand of the left (index 0, x < 0) and right arm.
    arms: [[Point; 3]; 2],
    /// Hip, knee and ankle of each leg.
    legs: [[Point; 3]; 2],
    arm_radius: f32,
    leg_radius: f32,
}

impl Skeleton {
    fn new(identity: &Identity, pose: &Pose) -> Self {
        let (traits, man) = (&identity.traits, identity.look.gender == Gender::Man);
        let b = traits.build;
        let shoulder_half = if man { 0.09 } else { 0.078 } * b;
        let sides = [-1.0f32, 1.0];
        let arms = [0, 1].map(|i| {
            let (s, spread) = (sides[i], pose.arm_spread[i]);
            [
                [s * (shoulder_half - 0.014), SHOULDER_Y + 0.022],
                [s * (shoulder_half - 0.004 + spread * 0.5), 0.345],
                [s * (shoulder_half + spread), 0.49],
            ]
        });
        let legs = [0, 1].map(|i| {
            let s = sides[i];
            [
                [s * 0.036 * b, HIP_Y - 0.01],
                [s * (0.038 * b + pose.stride * 0.5), KNEE_Y],
                [s * (0.04 * b + pose.stride), ANKLE_Y],
            ]
        });
        Self {
            head: [pose.head_shift, 0.075],
            head_radii: [0.05 * traits.head, 0.066 * traits.head],
            shoulder_half,
            waist_half: if man { 0.072 } else { 0.062 } * b,
            hip_half: if man { 0.07 } else { 0.08 } * b,
            arms,
            legs,
            arm_radius: 0.02 * b,
            leg_radius: 0.028 * b,
        }
    }
}

/// Draws `identity` in `pose` over whatever background `canvas` holds.
pub fn draw(canvas: &mut Canvas, identity: &Identity, pose: &Pose) {
    let look = &identity.look;
    let skin = identity.traits.skin;
    let k = Skeleton::new(identity, pose);

    if let Some(bag) = look.bag.filter(|b| b.kind == BagKind::Backpack) {
        backpack_body(canvas, &k, bag.colour.rgb());
    }
    hair_back(canvas, identity, &k);
    legs(canvas, identity, &k);
    canvas.fill(
        Shape::Capsule {
            a: [k.head[0] * 0.5, 0.12],
            b: [0.0, 0.2],
            radius: 0.02,
        },
        Paint::Solid(skin),
    );
    torso(canvas, identity, &k);
    if let Some(bag) = look.bag {
        match bag.kind {
            BagKind::Backpack => backpack_straps(canvas, &k, bag.colour.rgb()),
            BagKind::ShoulderBag => shoulder_strap(canvas, &k, identity.traits.side, bag.colour.rgb()),
            BagKind::Handbag => {}
        }
    }
    arms(canvas, identity, &k);
    if let Some(bag) = look.bag {
        match bag.kind {
            BagKind::Handbag => handbag(canvas, &k, identity.traits.side, bag.colour.rgb()),
            BagKind::ShoulderBag => shoulder_bag(canvas, &k, identity.traits.side, bag.colour.rgb()),
            BagKind::Backpack => {}
        }
    }
    head(canvas, identity, &k);
}

fn backpack_body(canvas: &mut Canvas, k: &Skeleton, colour: Rgb) {
    // Seen from the front a backpack shows above and beside the shoulders.
    let (w, top) = (k.shoulder_half + 0.014, SHOULDER_Y - 0.03);
    canvas.fill(
        Shape::Quad([[-w, top], [w, top], [w, 0.4], [-w, 0.4]]),
        Paint::Solid(darker(colour, 0.85)),
    );
}

fn backpack_straps(canvas: &mut Canvas, k: &Skeleton, colour: Rgb) {
    for s in [-1.0, 1.0] {
        let x = s * k.shoulder_half * 0.55;
        canvas.fill(
            Shape::Capsule {
                a: [x, SHOULDER_Y - 0.004],
                b: [x * 1.1, 0.41],
                radius: 0.012,
            },
            Paint::Solid(colour),
        );
    }
}

fn shoulder_strap(canvas: &mut Canvas, k: &Skeleton, side: f32, colour: Rgb) {
    let a = [-side * k.shoulder_half * 0.6, SHOULDER_Y];
    let b = [side * k.hip_half, HIP_Y - 0.03];
    canvas.fill(
        Shape::Capsule { a, b, radius: 0.009 },
        Paint::Solid(darker(colour, 0.85)),
    );
}

fn shoulder_bag(canvas: &mut Canvas, k: &Skeleton, side: f32, colour: Rgb) {
    let x = side * (k.hip_half + 0.012);
    let (top, bottom) = (HIP_Y - 0.045, HIP_Y + 0.04);
    canvas.fill(
        Shape::Quad([
            [x - 0.036, top],
            [x + 0.036, top],
            [x + 0.036, bottom],
            [x - 0.036, bottom],
        ]),
        Paint::Solid(colour),
    );
    canvas.fill(
        Shape::Quad([
            [x - 0.036, top],
            [x + 0.036, top],
            [x + 0.036, top + 0.022],
            [x - 0.036, top + 0.022],
        ]),
        Paint::Solid(darker(colour, 0.75)),
    );
}

fn handbag(canvas: &mut Canvas, k: &Skeleton, side: f32, colour: Rgb) {
    let hand = k.arms[usize::from(side > 0.0)][2];
    let (top, bottom) = (hand[1] + 0.035, hand[1] + 0.095);
    for dx in [-0.018, 0.018] {
        let handle = Shape::Capsule {
            a: [hand[0], hand[1] + 0.008],
            b: [hand[0] + dx, top],
            radius: 0.005,
        };
        canvas.fill(handle, Paint::Solid(darker(colour, 0.7)));
    }
    let x = hand[0];
    canvas.fill(
        Shape::Quad([
            [x - 0.03, top],
            [x + 0.03, top],
            [x + 0.036, bottom],
            [x - 0.036, bottom],
        ]),
        Paint::Solid(colour),
    );
}

/// Hair behind the head and, for longer hair, down the back.
fn hair_back(canvas: &mut Canvas, identity: &Identity, k: &Skeleton) {
    let hair = identity.look.hair;
    let colour = Paint::Solid(hair.colour.rgb());
    let [rx, ry] = k.head_radii;
    let c = k.head;
    canvas.fill(
        Shape::Ellipse {
            centre: [c[0], c[1] - 0.006],
            radii: [rx + 0.008, ry + 0.006],
        },
        colour,
    );
    if let Some(bottom) = hair_end(hair.length) {
        let w = rx + 0.01;
        let quad = [
            [c[0] - w, c[1]],
            [c[0] + w, c[1]],
            [w + 0.008, bottom],
            [-w - 0.008, bottom],
        ];
        canvas.fill(Shape::Quad(quad), colour);
    }
}

/// How far down the hair falls, if past the jaw.
fn hair_end(length: HairLength) -> Option<f32> {
    match length {
        HairLength::Short => None,
        HairLength::Medium => Some(0.2),
        HairLength::Long => Some(0.31),
    }
}

fn legs(canvas: &mut Canvas, identity: &Identity, k: &Skeleton) {
    let (lower, skin) = (identity.look.lower, identity.traits.skin);
    let cloth = Paint::Solid(lower.colour.rgb());
    let leg_paint = if lower.kind == LowerKind::Trousers {
        cloth
    } else {
        Paint::Solid(skin)
    };
    for [hip, knee, ankle] in k.legs {
        canvas.fill(
            Shape::Capsule {
                a: hip,
                b: knee,
                radius: k.leg_radius,
            },
            leg_paint,
        );
        canvas.fill(
            Shape::Capsule {
                a: knee,
                b: ankle,
                radius: k.leg_radius * 0.82,
            },
            leg_paint,
        );
        let s = ankle[0].signum();
        let shoe = Shape::Ellipse {
            centre: [ankle[0] + s * 0.008, 0.962],
            radii: [0.034, 0.023],
        };
        canvas.fill(shoe, Paint::Solid(identity.look.shoes.rgb()));
        if lower.kind == LowerKind::Shorts {
            let hem = lerp(hip, knee, 0.5);
            canvas.fill(
                Shape::Capsule {
                    a: hip,
                    b: hem,
                    radius: k.leg_radius + 0.007,
                },
                cloth,
            );
        }
    }
    let h = k.hip_half;
    match lower.kind {
        LowerKind::Trousers | LowerKind::Shorts => {
            let seat = [
                [-h, HIP_Y - 0.04],
                [h, HIP_Y - 0.04],
                [h * 0.85, HIP_Y + 0.08],
                [-h * 0.85, HIP_Y + 0.08],
            ];
            canvas.fill(Shape::Quad(seat), cloth);
        }
        LowerKind::Skirt => {
            let (top, hem) = (HIP_Y - 0.04, 0.7);
            let quad = [[-h, top], [h, top], [h + 0.05, hem], [-h - 0.05, hem]];
            canvas.fill(Shape::Quad(quad), cloth);
        }
    }
}

fn torso(canvas: &mut Canvas, identity: &Identity, k: &Skeleton) {
    let upper = identity.look.upper;
    let paint = upper_paint(identity);
    let (s, w, h) = (k.shoulder_half, k.waist_half, k.hip_half);
    let hem = match upper.kind {
        UpperKind::Coat => 0.78,
        UpperKind::Jacket => HIP_Y + 0.025,
        _ => HIP_Y,
    };
    let flare = if upper.kind == UpperKind::Coat { 0.03 } else { 0.0 };
    canvas.fill(
        Shape::Quad([
            [-s, SHOULDER_Y],
            [s, SHOULDER_Y],
            [w, WAIST_Y + 0.01],
            [-w, WAIST_Y + 0.01],
        ]),
        paint,
    );
    canvas.fill(
        Shape::Quad([[-w, WAIST_Y], [w, WAIST_Y], [h + flare, hem], [-h - flare, hem]]),
        paint,
    );
    let shoulders = Shape::Capsule {
        a: [-s + 0.02, SHOULDER_Y + 0.016],
        b: [s - 0.02, SHOULDER_Y + 0.016],
        radius: 0.02,
    };
    canvas.fill(shoulders, paint);
    let trim = Paint::Solid(darker(upper.colour.rgb(), 0.72));
    match upper.kind {
        UpperKind::Jacket => {
            let inner = [
                [-0.016, SHOULDER_Y - 0.004],
                [0.016, SHOULDER_Y - 0.004],
                [0.026, hem],
                [-0.026, hem],
            ];
            canvas.fill(Shape::Quad(inner), Paint::Solid(identity.traits.inner.rgb()));
        }
        UpperKind::Coat => {
            canvas.fill(
                Shape::Capsule {
                    a: [0.0, SHOULDER_Y + 0.02],
                    b: [0.0, hem],
                    radius: 0.004,
                },
                trim,
            );
            let belt = [
                [-w - 0.004, WAIST_Y + 0.02],
                [w + 0.004, WAIST_Y + 0.02],
                [w + 0.006, WAIST_Y + 0.04],
                [-w - 0.006, WAIST_Y + 0.04],
            ];
            canvas.fill(Shape::Quad(belt), trim);
        }
        UpperKind::Sweater => {
            let band = [[-h, HIP_Y - 0.03], [h, HIP_Y - 0.03], [h, HIP_Y], [-h, HIP_Y]];
            canvas.fill(Shape::Quad(band), trim);
        }
        UpperKind::TShirt | UpperKind::StripedShirt => {}
    }
    // Neckline: a little skin below the throat for open collars.
    if matches!(upper.kind, UpperKind::TShirt | UpperKind::StripedShirt) {
        let neckline = Shape::Dome {
            centre: [0.0, SHOULDER_Y - 0.01],
            radii: [0.024, 0.03],
            cut: SHOULDER_Y + 0.02,
        };
        canvas.fill(neckline, Paint::Solid(identity.traits.skin));
    }
}

fn upper_paint(identity: &Identity) -> Paint {
    let colour = identity.look.upper.colour;
    match identity.look.upper.kind {
        UpperKind::StripedShirt => Paint::Stripes {
            colours: [colour.rgb(), colour.stripes().rgb()],
            period: 0.036,
        },
        _ => Paint::Solid(colour.rgb()),
    }
}

fn arms(canvas: &mut Canvas, identity: &Identity, k: &Skeleton) {
    let upper = identity.look.upper;
    let (skin, sleeve) = (Paint::Solid(identity.traits.skin), upper_paint(identity));
    let long_sleeves = upper.kind != UpperKind::TShirt;
    for [shoulder, elbow, hand] in k.arms {
        let (upper_arm, forearm) = if long_sleeves {
            (sleeve, sleeve)
        } else {
            (skin, skin)
        };
        canvas.fill(
            Shape::Capsule {
                a: shoulder,
                b: elbow,
                radius: k.arm_radius,
            },
            upper_arm,
        );
        canvas.fill(
            Shape::Capsule {
                a: elbow,
                b: hand,
                radius: k.arm_radius * 0.88,
            },
            forearm,
        );
        if !long_sleeves {
            let cuff = lerp(shoulder, elbow, 0.55);
            canvas.fill(
                Shape::Capsule {
                    a: shoulder,
                    b: cuff,
                    radius: k.arm_radius + 0.006,
                },
                sleeve,
            );
        }
        let hand_centre = [hand[0], hand[1] + 0.014];
        canvas.fill(
            Shape::Ellipse {
                centre: hand_centre,
                radii: [0.017, 0.022],
            },
            skin,
        );
    }
}

fn head(canvas: &mut Canvas, identity: &Identity, k: &Skeleton) {
    let look = &identity.look;
    let (c, [rx, ry]) = (k.head, k.head_radii);
    let hair = Paint::Solid(look.hair.colour.rgb());
    canvas.fill(
        Shape::Ellipse {
            centre: c,
            radii: [rx, ry],
        },
        Paint::Solid(identity.traits.skin),
    );
    for s in [-1.0, 1.0] {
        let eye = Shape::Ellipse {
            centre: [c[0] + s * 0.38 * rx, c[1] + 0.006],
            radii: [0.0065, 0.0075],
        };
        canvas.fill(eye, Paint::Solid(EYE));
    }
    let fringe_cut = c[1] - if look.gender == Gender::Man { 0.03 } else { 0.022 };
    let fringe = Shape::Dome {
        centre: [c[0], c[1] - 0.004],
        radii: [rx + 0.003, ry + 0.002],
        cut: fringe_cut,
    };
    canvas.fill(fringe, hair);
    if let Some(bottom) = hair_end(look.hair.length) {
        for s in [-1.0, 1.0] {
            let a = [c[0] + s * (rx - 0.002), c[1] - 0.02];
            let b = [s * (rx + 0.012), bottom - 0.015];
            canvas.fill(Shape::Capsule { a, b, radius: 0.014 }, hair);
        }
    }
    if let Some(hat) = look.hat {
        let crown = Shape::Dome {
            centre: [c[0], c[1] - 0.012],
            radii: [rx + 0.01, ry + 0.008],
            cut: c[1] - 0.024,
        };
        canvas.fill(crown, Paint::Solid(hat.rgb()));
        let brim = Shape::Capsule {
            a: [c[0] - rx - 0.012, c[1] - 0.026],
            b: [c[0] + rx + 0.012, c[1] - 0.026],
            radius: 0.008,
        };
        canvas.fill(brim, Paint::Solid(darker(hat.rgb(), 0.75)));
    }
}

fn darker(c: Rgb, f: f32) -> Rgb {
    c.map(|v| v * f)
}

fn lerp(a: Point, b: Point, t: f32) -> Point {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}
