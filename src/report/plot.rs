//! The figures with axes: ROC curves, score histograms and phase 2's
//! validation curve, drawn with the `plotters` crate (its bitmap backend on
//! an RGB buffer, text in the bundled font of [`super::render`]) and written
//! as PNG through [`super::render`]'s atomic writer, so a figure is either
//! complete or absent.

use std::ops::Range;
use std::path::Path;

use plotters::chart::{ChartBuilder, ChartContext, SeriesLabelPosition};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::drawing::{DrawingArea, IntoDrawingArea};
use plotters::element::{Circle, PathElement, Rectangle};
use plotters::prelude::Cartesian2d;
use plotters::series::{DashedLineSeries, LineSeries};
use plotters::style::{Color, IntoFont, RGBColor, ShapeStyle, BLACK, WHITE};

use super::render::{drawing_error, write_rgb_png, FigureBackend, FONT};
use crate::error::{Error, Result};

/// Largest number of histogram bins.
const MAX_BINS: usize = 100_000;
/// Curve colours (matplotlib's "tab10").
const PALETTE: [RGBColor; 10] = [
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
];
/// Grid lines at the ticks.
const GRID: RGBColor = RGBColor(225, 225, 225);
/// The chance diagonal, the chosen snapshot's line, the legend's frame.
const DIAGONAL: RGBColor = RGBColor(150, 150, 150);
/// Pixel sizes of the title, axis titles, tick labels and legend text.
const TITLE_SIZE: f64 = 20.0;
const AXIS_TITLE_SIZE: f64 = 15.0;
const TICK_SIZE: f64 = 13.0;
const LEGEND_SIZE: f64 = 13.0;
/// Legend names longer than this are cut.
const MAX_LEGEND_CHARS: usize = 48;

/// A chart on 2-D float axes on the RGB buffer.
type Chart<'a, 'b> =
    ChartContext<'a, FigureBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
/// What drawing with plotters returns.
type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;

/// Write ROC curves as a PNG: axes 0..1 with a grid, tick labels and axis
/// titles, the dashed chance diagonal, one coloured line per named curve and
/// a legend of the names in the lower right. Points are `(false positive
/// rate, true positive rate)`; they are clamped to 0..1 and a non-finite
/// point breaks the line. The PNG is written atomically.
///
/// # Errors
///
/// [`Error::Io`] when the figure cannot be drawn or the file cannot be
/// written.
pub fn write_roc_png(path: &Path, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    draw_figure(path, (548, 560), |root| {
        let mut chart = chart(root, "ROC", 0.0..1.0, 0.0..1.0)?;
        let tick = |v: &f64| tick_label(*v, &(0.0..1.0));
        mesh(
            &mut chart,
            ("False positive rate", &tick),
            ("True positive rate", &tick),
            6,
        )?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            6,
            5,
            DIAGONAL.stroke_width(1),
        ))?;
        for (k, (name, points)) in curves.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            let clamped = points.iter().map(|&(fpr, tpr)| {
                (fpr.is_finite() && tpr.is_finite())
                    .then(|| (fpr.clamp(0.0, 1.0), tpr.clamp(0.0, 1.0)))
            });
            let runs = finite_runs(clamped);
            let mut series = Vec::with_capacity(runs.len().max(1));
            for run in runs {
                series.push(LineSeries::new(run, colour.stroke_width(2)));
            }
            let anno = chart.draw_series(series.into_iter().flatten())?;
            legend_entry(anno, name, colour.stroke_width(2));
        }
        if !curves.is_empty() {
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        Ok(())
    })
}

/// Write phase 2's validation curve as a PNG: validation AUROC (y, on the
/// range the points span, padded) against the phase-2 iteration (x), one
/// dot per point, with the chosen snapshot marked by a dashed vertical line
/// and a ring around its point, and a legend. A non-finite value breaks the
/// line. Written atomically.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when there is no point; [`Error::Io`] when the
/// figure cannot be drawn or the file cannot be written.
pub fn write_validation_png(path: &Path, curve: &[(u64, f64)], chosen: u64) -> Result<()> {
    if curve.is_empty() {
        return Err(Error::invalid("the validation curve has no point"));
    }
    let x_max = curve
        .iter()
        .map(|p| p.0)
        .max()
        .unwrap_or(1)
        .max(chosen)
        .max(1) as f64;
    let finite = curve.iter().map(|p| p.1).filter(|v| v.is_finite());
    let lo = finite.clone().fold(f64::INFINITY, f64::min);
    let hi = finite.fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.1;
        ((lo - pad).max(0.0), (hi + pad).min(1.0))
    } else if lo.is_finite() {
        ((lo - 0.05).max(0.0), (lo + 0.05).min(1.0))
    } else {
        (0.0, 1.0)
    };
    // Room for the last dot on the right.
    let x_range = 0.0..x_max * 1.03;
    let points: Vec<Option<(f64, f64)>> = curve
        .iter()
        .map(|&(it, v)| v.is_finite().then(|| (it as f64, v.clamp(lo, hi))))
        .collect();
    // The legend goes in the quarter of the plot with the fewest points (the
    // chosen snapshot's line counting for half of one), lower right first.
    let (x_mid, y_mid) = (x_range.end / 2.0, (lo + hi) / 2.0);
    let corner = [
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerLeft, false, false),
        (SeriesLabelPosition::UpperLeft, false, true),
    ]
    .into_iter()
    .min_by_key(|&(_, right, upper)| {
        let inside = |x: f64, y: f64| (x > x_mid) == right && (y > y_mid) == upper;
        let crowd = points
            .iter()
            .flatten()
            .filter(|&&(x, y)| inside(x, y))
            .count();
        2 * crowd + usize::from((chosen as f64 > x_mid) == right)
    })
    .map_or(SeriesLabelPosition::LowerRight, |(corner, ..)| corner);
    draw_figure(path, (608, 400), |root| {
        let x_tick = |v: &f64| tick_label(*v, &x_range);
        let y_tick = |v: &f64| tick_label(*v, &(lo..hi));
        let mut chart = chart(
            root,
            "Validation AUROC (held-out slices)",
            x_range.clone(),
            lo..hi,
        )?;
        mesh(
            &mut chart,
            ("Phase-2 iteration", &x_tick),
            ("Validation AUROC", &y_tick),
            6,
        )?;
        let colour = PALETTE[0];
        let runs = finite_runs(points.iter().copied());
        let line = runs
            .into_iter()
            .flat_map(|run| LineSeries::new(run, colour.stroke_width(2)));
        let anno = chart.draw_series(line)?;
        legend_entry(anno, "validation AUROC", colour.stroke_width(2));
        chart.draw_series(
            points
                .iter()
                .flatten()
                .map(|&p| Circle::new(p, 3, colour.filled())),
        )?;
        let chosen_x = chosen as f64;
        let anno = chart.draw_series(DashedLineSeries::new(
            [(chosen_x, lo), (chosen_x, hi)],
            6,
            5,
            DIAGONAL.stroke_width(2),
        ))?;
        legend_entry(
            anno,
            &format!("chosen: iteration {chosen}"),
            DIAGONAL.stroke_width(2),
        );
        let chosen_points = curve
            .iter()
            .zip(&points)
            .filter(|((it, _), _)| *it == chosen)
            .filter_map(|(_, p)| *p);
        chart.draw_series(chosen_points.map(|p| Circle::new(p, 7, BLACK.stroke_width(2))))?;
        legend(&mut chart, corner)
    })
}

/// Write the histograms of the scores of normal and of lesion samples, on a
/// shared range split into `bins` bins, as a PNG. Each histogram is
/// normalised to fractions of its own sample count so that classes of
/// different sizes compare; normal is blue, lesion red, both as translucent
/// bars with a step outline, with axes, tick labels and a legend of the
/// class sizes. Non-finite scores are ignored. The PNG is written
/// atomically.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when `bins` is 0 or above 100 000;
/// [`Error::Io`] when the figure cannot be drawn or the file cannot be
/// written.
pub fn write_histogram_png(
    path: &Path,
    normal: &[f64],
    abnormal: &[f64],
    bins: usize,
) -> Result<()> {
    if bins == 0 || bins > MAX_BINS {
        return Err(Error::InvalidArgument(format!(
            "{}: histogram bins must be between 1 and {MAX_BINS}, not {bins}",
            path.display()
        )));
    }
    let finite =
        |values: &[f64]| -> Vec<f64> { values.iter().copied().filter(|v| v.is_finite()).collect() };
    let (normal, abnormal) = (finite(normal), finite(abnormal));
    let (mut lo, mut hi) = normal
        .iter()
        .chain(&abnormal)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    } else if lo == hi {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let histogram = |values: &[f64]| -> Vec<f64> {
        let mut counts = vec![0.0; bins];
        for &v in values {
            let b = ((v - lo) / (hi - lo) * bins as f64) as usize;
            counts[b.min(bins - 1)] += 1.0;
        }
        let total = values.len().max(1) as f64;
        counts.iter_mut().for_each(|c| *c /= total);
        counts
    };
    let classes = [
        (histogram(&normal), PALETTE[0], "normal", normal.len()),
        (histogram(&abnormal), PALETTE[3], "lesion", abnormal.len()),
    ];
    let peak = classes
        .iter()
        .flat_map(|(h, ..)| h.iter().copied())
        .fold(0.0, f64::max);
    let y_max = if peak > 0.0 { peak * 1.1 } else { 1.0 };
    // The legend goes on the side whose outer quarter has the lower bars.
    let quarter = bins.div_ceil(4);
    let side_peak = |range: std::ops::Range<usize>| {
        classes
            .iter()
            .flat_map(|(h, ..)| h[range.clone()].iter().copied())
            .fold(0.0, f64::max)
    };
    let corner = if side_peak(bins - quarter..bins) <= side_peak(0..quarter) {
        SeriesLabelPosition::UpperRight
    } else {
        SeriesLabelPosition::UpperLeft
    };
    let bin_x = |b: usize| lo + (hi - lo) * b as f64 / bins as f64;

    draw_figure(path, (648, 420), |root| {
        let mut chart = chart(root, "Score histogram", lo..hi, 0.0..y_max)?;
        let x_tick = |v: &f64| tick_label(*v, &(lo..hi));
        let y_tick = |v: &f64| tick_label(*v, &(0.0..y_max));
        mesh(
            &mut chart,
            ("Score", &x_tick),
            ("Fraction of the class", &y_tick),
            6,
        )?;
        for (counts, colour, ..) in &classes {
            let bars = counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0.0)
                .map(|(b, &c)| {
                    Rectangle::new(
                        [(bin_x(b), 0.0), (bin_x(b + 1), c)],
                        colour.mix(0.3).filled(),
                    )
                });
            chart.draw_series(bars)?;
        }
        for (counts, colour, name, n) in &classes {
            // Step outline from the baseline up at the first filled bin to
            // the baseline after the last one.
            let first = counts.iter().position(|&c| c > 0.0).unwrap_or(0);
            let last = counts.iter().rposition(|&c| c > 0.0).map_or(0, |b| b + 1);
            let mut steps = Vec::with_capacity(2 * (last - first) + 2);
            steps.push((bin_x(first), 0.0));
            for (b, &c) in counts.iter().enumerate().take(last).skip(first) {
                steps.push((bin_x(b), c));
                steps.push((bin_x(b + 1), c));
            }
            steps.push((bin_x(last), 0.0));
            let anno = chart.draw_series(LineSeries::new(steps, colour.stroke_width(2)))?;
            let swatch = *colour;
            anno.label(format!("{name} (n = {n})"))
                .legend(move |(x, y)| {
                    Rectangle::new(
                        [(x, y - 5), (x + 18, y + 5)],
                        ShapeStyle {
                            color: swatch.mix(0.3),
                            filled: true,
                            stroke_width: 0,
                        },
                    )
                });
        }
        legend(&mut chart, corner)
    })
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Draw a figure of `width` × `height` pixels on a white RGB buffer with
/// `draw`, then write it as a PNG atomically.
fn draw_figure(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<FigureBackend<'_>, Shift>) -> Drawn,
) -> Result<()> {
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = FigureBackend::new(path, &mut pixels, (width, height))?.into_drawing_area();
        draw(&root).map_err(|e| drawing_error(path, e))?;
        root.present().map_err(|e| drawing_error(path, e))?;
    }
    write_rgb_png(path, width, height, &pixels)
}

/// A chart with a title, room for tick labels and axis titles, on the given
/// data ranges.
fn chart<'a, 'b>(
    root: &'a DrawingArea<FigureBackend<'b>, Shift>,
    title: &str,
    x: Range<f64>,
    y: Range<f64>,
) -> std::result::Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    Ok(ChartBuilder::on(root)
        .caption(title, (FONT, TITLE_SIZE).into_font())
        .margin_top(8)
        .margin_left(10)
        .margin_right(24)
        .margin_bottom(10)
        .x_label_area_size(46)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)?)
}

/// Grid lines at the ticks, `ticks` tick labels on each axis, the axis
/// titles, and a frame around the plot.
fn mesh(
    chart: &mut Chart<'_, '_>,
    (x_desc, x_tick): (&str, &dyn Fn(&f64) -> String),
    (y_desc, y_tick): (&str, &dyn Fn(&f64) -> String),
    ticks: usize,
) -> Drawn {
    chart
        .configure_mesh()
        .x_labels(ticks)
        .y_labels(ticks)
        .x_label_formatter(x_tick)
        .y_label_formatter(y_tick)
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(WHITE.stroke_width(0))
        .axis_style(BLACK.stroke_width(1))
        .label_style((FONT, TICK_SIZE).into_font())
        .axis_desc_style((FONT, AXIS_TITLE_SIZE).into_font())
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()?;
    // Plotters draws the left and bottom axes; close the frame.
    let (x, y) = (chart.x_range(), chart.y_range());
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(x.start, y.end), (x.end, y.end), (x.end, y.start)],
        BLACK.stroke_width(1),
    )))?;
    Ok(())
}

/// Name a drawn series in the legend, with a short line of `style`.
fn legend_entry(
    anno: &mut plotters::chart::SeriesAnno<'_, FigureBackend<'_>>,
    name: &str,
    style: ShapeStyle,
) {
    let mut label: String = name.chars().take(MAX_LEGEND_CHARS).collect();
    if name.chars().count() > MAX_LEGEND_CHARS {
        label.push('…');
    }
    anno.label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
}

/// The legend of the named series, boxed, in a corner of the plot.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, corner: SeriesLabelPosition) -> Drawn {
    chart
        .configure_series_labels()
        .position(corner)
        .margin(10)
        .legend_area_size(26)
        .label_font((FONT, LEGEND_SIZE).into_font())
        .background_style(WHITE.mix(0.9))
        .border_style(DIAGONAL)
        .draw()?;
    Ok(())
}

/// The runs of consecutive `Some` points, each as one polyline.
fn finite_runs(points: impl IntoIterator<Item = Option<(f64, f64)>>) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for p in points {
        match p {
            Some(p) => runs.last_mut().expect("never empty").push(p),
            None if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
            None => {}
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// Tick label of `v` on an axis over `axis`: as many decimals as a tick
/// spacing of about a sixth of the axis needs, in scientific notation when
/// the axis's values reach 1e5 or stay below 1e-3.
fn tick_label(v: f64, axis: &Range<f64>) -> String {
    let span = (axis.end - axis.start).abs();
    let magnitude = axis.start.abs().max(axis.end.abs());
    if !(span > 0.0 && span.is_finite()) {
        return format!("{v}");
    }
    let step_exponent = (span / 6.0).log10().floor() as i32;
    let label = if !(1e-3..1e5).contains(&magnitude) {
        let digits = (magnitude.log10().floor() as i32 - step_exponent).clamp(0, 6) as usize;
        format!("{v:.digits$e}")
    } else {
        let decimals = (-step_exponent).clamp(0, 6) as usize;
        format!("{v:.decimals$}")
    };
    // No "-0.0" for a zero that rounding left negative.
    match label.strip_prefix('-') {
        Some(rest) if !rest.contains(|c: char| ('1'..='9').contains(&c)) => rest.to_string(),
        _ => label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::render::decode_png as decode;

    /// A decoded figure.
    struct Figure {
        width: usize,
        height: usize,
        buf: Vec<u8>,
    }

    impl Figure {
        fn read(path: &Path) -> Self {
            let (w, h, buf) = decode(path);
            Self {
                width: w as usize,
                height: h as usize,
                buf,
            }
        }

        fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
            let o = (y * self.width + x) * 3;
            [self.buf[o], self.buf[o + 1], self.buf[o + 2]]
        }

        /// Pixels of `rect` (x0..x1, y0..y1) for which `keep` holds.
        fn count(
            &self,
            (x0, x1, y0, y1): (usize, usize, usize, usize),
            keep: impl Fn([u8; 3]) -> bool,
        ) -> usize {
            (y0..y1)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .filter(|&(x, y)| keep(self.pixel(x, y)))
                .count()
        }

        /// The plot's frame: (left, right, top, bottom) pixels, the column
        /// or row holding the most black pixels in each half of the figure
        /// (curves and bars may cover parts of its edges).
        fn frame(&self) -> (usize, usize, usize, usize) {
            let black = |p: [u8; 3]| p == [0, 0, 0];
            let (w, h) = (self.width, self.height);
            let column = |x: &usize| self.count((*x, x + 1, 0, h), black);
            let row = |y: &usize| self.count((0, w, *y, y + 1), black);
            (
                (0..w / 2).max_by_key(column).unwrap(),
                (w / 2..w).max_by_key(column).unwrap(),
                (0..h / 2).max_by_key(row).unwrap(),
                (h / 2..h).max_by_key(row).unwrap(),
            )
        }

        /// Whether a pixel of `colour` lies within `radius` pixels of the
        /// data point `(fx, fy)`, given as fractions of the axes.
        fn has_near(&self, colour: RGBColor, (fx, fy): (f64, f64), radius: usize) -> bool {
            let (left, right, top, bottom) = self.frame();
            let x = left as f64 + fx * (right - left) as f64;
            let y = bottom as f64 - fy * (bottom - top) as f64;
            let (x, y) = (x.round() as usize, y.round() as usize);
            let rgb = [colour.0, colour.1, colour.2];
            self.count(
                (x - radius, x + radius + 1, y - radius, y + radius + 1),
                |p| p == rgb,
            ) > 0
        }
    }

    /// Text pixels: dark grey to black.
    fn dark(p: [u8; 3]) -> bool {
        p.iter().all(|&c| c < 110)
    }

    fn roc_curves(names: [&str; 2]) -> Vec<(String, Vec<(f64, f64)>)> {
        vec![
            (
                names[0].to_string(),
                vec![(0.0, 0.0), (0.1, 0.6), (0.3, 0.9), (1.0, 1.0)],
            ),
            (
                names[1].to_string(),
                vec![(0.0, 0.0), (f64::NAN, 0.5), (0.5, 0.6), (1.0, 1.0)],
            ),
        ]
    }

    #[test]
    fn roc_png_draws_the_curves_where_they_belong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roc.png");
        write_roc_png(&path, &roc_curves(["adGAN", "FLAIR intensity"])).unwrap();
        let fig = Figure::read(&path);
        assert_eq!((fig.width, fig.height), (548, 560));
        let (left, right, top, bottom) = fig.frame();
        assert!(
            right - left > 400 && bottom - top > 400,
            "{:?}",
            fig.frame()
        );
        // On the first curve's segments, on the second's after its break,
        // and on the chance diagonal.
        assert!(fig.has_near(PALETTE[0], (0.2, 0.75), 2));
        assert!(fig.has_near(PALETTE[0], (0.65, 0.95), 2));
        assert!(fig.has_near(PALETTE[1], (0.75, 0.8), 2));
        assert!(
            !fig.has_near(PALETTE[1], (0.25, 0.3), 4),
            "no line across the NaN"
        );
        assert!((0..8).any(|k| fig.has_near(
            DIAGONAL,
            (0.3 + k as f64 * 0.01, 0.3 + k as f64 * 0.01),
            1
        )));
        // No curve: axes only, still a figure.
        write_roc_png(&path, &[]).unwrap();
        let empty = Figure::read(&path);
        assert_eq!((empty.width, empty.height), (548, 560));
        assert!(!empty
            .buf
            .chunks(3)
            .any(|p| p == [PALETTE[0].0, PALETTE[0].1, PALETTE[0].2]));
    }

    #[test]
    fn figures_carry_rendered_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roc.png");
        let dark_in_legend = |names: [&str; 2]| {
            write_roc_png(&path, &roc_curves(names)).unwrap();
            let fig = Figure::read(&path);
            let (left, right, top, bottom) = fig.frame();
            // The legend sits in the lower right quarter of the plot.
            let quarter = (
                (left + right) / 2,
                right - 2,
                (top + bottom) / 2,
                bottom - 2,
            );
            let title = fig.count((0, fig.width, 0, top), dark);
            let y_ticks = fig.count((0, left - 2, top, bottom), dark);
            let x_ticks = fig.count((left, right, bottom + 2, fig.height), dark);
            (fig.count(quarter, dark), title, y_ticks, x_ticks)
        };
        let (named, title, y_ticks, x_ticks) =
            dark_in_legend(["adGAN (AUROC 0.91)", "FLAIR intensity"]);
        let (unnamed, ..) = dark_in_legend(["", ""]);
        assert!(
            named > unnamed + 100,
            "legend text: {named} dark pixels, {unnamed} without names"
        );
        assert!(title > 20, "title: {title}");
        assert!(y_ticks > 100, "y tick labels and title: {y_ticks}");
        assert!(x_ticks > 100, "x tick labels and title: {x_ticks}");
    }

    #[test]
    fn validation_png_draws_the_curve_and_marks_the_chosen_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.png");
        let curve = [(50, 0.9), (100, 0.95), (150, 0.93)];
        write_validation_png(&path, &curve, 100).unwrap();
        let fig = Figure::read(&path);
        assert_eq!((fig.width, fig.height), (608, 400));
        let blue = [PALETTE[0].0, PALETTE[0].1, PALETTE[0].2];
        let coloured = fig.count((0, fig.width, 0, fig.height), |p| p == blue);
        assert!(coloured > 100, "{coloured}");
        // The dashed line of the chosen snapshot: the column holding the most
        // grey pixels is at iteration 100 of the 0..154.5 axis.
        let (left, right, top, bottom) = fig.frame();
        let grey = [DIAGONAL.0, DIAGONAL.1, DIAGONAL.2];
        let column = (left..right)
            .max_by_key(|&x| fig.count((x, x + 1, top, bottom), |p| p == grey))
            .unwrap();
        let expected = left as f64 + 100.0 / 154.5 * (right - left) as f64;
        assert!(
            (column as f64 - expected).abs() <= 2.0,
            "{column} vs {expected}"
        );
        assert!(write_validation_png(&path, &[], 0).is_err());
        // All values NaN, or one point: still a figure.
        write_validation_png(&path, &[(10, f64::NAN), (20, f64::NAN)], 20).unwrap();
        write_validation_png(&path, &[(1000, 0.83)], 1000).unwrap();
        decode(&path);
    }

    #[test]
    fn histogram_png_puts_each_class_where_its_scores_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hist.png");
        // Bell-shaped (sums of three equidistributed sequences), so that the
        // bars at the edges stay low.
        let bell = |i: usize, scale: f64| {
            let part = |a: f64| (i as f64 * a).fract();
            (part(0.618_034) + part(0.414_214) + part(0.732_051) - 1.5) * scale
        };
        let normal: Vec<f64> = (0..500).map(|i| bell(i, 0.2)).collect();
        let lesion: Vec<f64> = (0..50).map(|i| 0.5 + bell(i, 0.2)).collect();
        write_histogram_png(&path, &normal, &lesion, 30).unwrap();
        let fig = Figure::read(&path);
        assert_eq!((fig.width, fig.height), (648, 420));
        let mean_x = |colour: RGBColor| {
            let rgb = [colour.0, colour.1, colour.2];
            let xs: Vec<usize> = (0..fig.height)
                .flat_map(|y| (0..fig.width).map(move |x| (x, y)))
                .filter(|&(x, y)| fig.pixel(x, y) == rgb)
                .map(|(x, _)| x)
                .collect();
            assert!(xs.len() > 50, "{colour:?}: {} pixels", xs.len());
            xs.iter().sum::<usize>() as f64 / xs.len() as f64
        };
        assert!(mean_x(PALETTE[0]) + 100.0 < mean_x(PALETTE[3]));
        // The legend's text, in the top of the plot.
        let (left, right, top, _) = fig.frame();
        assert!(fig.count((left + 2, right - 2, top + 2, top + 60), dark) > 100);
        // Degenerate inputs still make a figure.
        write_histogram_png(&path, &[], &[f64::NAN], 10).unwrap();
        write_histogram_png(&path, &[1.0; 4], &[1.0], 1).unwrap();
        decode(&path);
        for bins in [0, MAX_BINS + 1] {
            assert!(matches!(
                write_histogram_png(&path, &normal, &lesion, bins),
                Err(Error::InvalidArgument(_))
            ));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn finite_runs_break_at_gaps() {
        let runs = finite_runs([
            None,
            Some((0.0, 0.0)),
            Some((1.0, 1.0)),
            None,
            None,
            Some((2.0, 2.0)),
        ]);
        assert_eq!(runs, vec![vec![(0.0, 0.0), (1.0, 1.0)], vec![(2.0, 2.0)]]);
        assert!(finite_runs([None, None]).is_empty());
    }

    #[test]
    fn tick_labels_follow_the_axis() {
        assert_eq!(tick_label(0.4, &(0.0..1.0)), "0.4");
        assert_eq!(tick_label(0.85, &(0.72..0.93)), "0.85");
        assert_eq!(tick_label(0.05, &(0.0..0.165)), "0.05");
        assert_eq!(tick_label(2000.0, &(0.0..5150.0)), "2000");
        assert_eq!(tick_label(0.0012, &(0.001..0.0021)), "0.0012");
        assert_eq!(tick_label(1.5e-6, &(1e-6..3e-6)), "1.5e-6");
        assert_eq!(tick_label(250000.0, &(0.0..1e6)), "2.5e5");
        assert_eq!(tick_label(-1e-9, &(-1.0..1.0)), "0.0");
        assert_eq!(tick_label(3.0, &(3.0..3.0)), "3");
    }
}
