//! PNG figures. [`plot`](super::plot) draws the ROC curves, score histograms
//! and validation curves with the `plotters` crate (axes, ticks, legends);
//! [`montage`](super::montage) maps voxels to pixels for slice montages and
//! labels the tiles with `plotters` text. This module re-exports both (the
//! CLI calls `report::render::*`) and holds what they share.
//!
//! Shared: the font, DejaVu Sans 2.37 (`fonts/DejaVuSans.ttf`, under the
//! Bitstream Vera and Arev licences of `fonts/LICENSE-DejaVu.txt`), compiled
//! in with `include_bytes!` so that no figure depends on the machine's fonts;
//! [`FigureBackend`], plotters' bitmap backend on an RGB buffer with text
//! drawn by `ab_glyph` from that font (plotters' own `ab_glyph` text, used
//! for layout, drops each glyph's side bearing); and the writer of the
//! buffer as a PNG through [`write_atomically`], so a figure is either
//! complete or absent.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, ScaleFont};
use plotters::backend::BitMapBackend;
use plotters::style::FontStyle;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use crate::error::{Error, Result};
use crate::io::atomic::write_atomically;

pub use super::montage::{display_flips, write_montage, MontageOptions};
pub use super::plot::{write_histogram_png, write_roc_png, write_validation_png};

/// The font family name every figure's text uses; [`ensure_font`] registers
/// the bundled font under it.
pub(super) const FONT: &str = "sans-serif";

/// DejaVu Sans, compiled in.
static DEJAVU_SANS: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

/// Register the bundled font with plotters (once per process), which lays
/// text out with it, and return it parsed for [`FigureBackend`], which draws
/// it.
///
/// # Errors
///
/// [`Error::Io`] naming `path` (the figure being drawn) when the font cannot
/// be parsed, which would be a build defect.
pub(super) fn ensure_font(path: &Path) -> Result<&'static FontRef<'static>> {
    static PARSED: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        let registered =
            plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok();
        FontRef::try_from_slice(DEJAVU_SANS)
            .ok()
            .filter(|_| registered)
    });
    parsed
        .as_ref()
        .ok_or_else(|| Error::io(path, "the bundled font (DejaVu Sans) cannot be read"))
}

/// Plotters' bitmap backend on an RGB buffer, drawing text itself.
///
/// Plotters lays text out (anchors, label areas, legend boxes) from the
/// width and height of [`BackendTextStyle::layout_box`], which the bundled
/// font's advances and kerning give; this backend draws the glyphs in that
/// box, each at its pen position plus its side bearing, with the capitals
/// centred vertically, anti-aliased by `ab_glyph`'s coverage. Everything
/// else is the bitmap backend's.
pub(super) struct FigureBackend<'a> {
    bitmap: BitMapBackend<'a>,
    font: &'static FontRef<'static>,
}

impl<'a> FigureBackend<'a> {
    /// A backend drawing on `pixels` (RGB8, `width` × `height`, which must
    /// hold `width * height * 3` bytes).
    pub(super) fn new(
        path: &Path,
        pixels: &'a mut [u8],
        (width, height): (u32, u32),
    ) -> Result<Self> {
        let font = ensure_font(path)?;
        Ok(Self {
            bitmap: BitMapBackend::with_buffer(pixels, (width, height)),
            font,
        })
    }
}

type Drawn<E> = std::result::Result<(), DrawingErrorKind<E>>;

impl DrawingBackend for FigureBackend<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.bitmap.get_size()
    }

    fn ensure_prepared(&mut self) -> Drawn<Self::ErrorType> {
        self.bitmap.ensure_prepared()
    }

    fn present(&mut self) -> Drawn<Self::ErrorType> {
        self.bitmap.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Drawn<Self::ErrorType> {
        self.bitmap.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Drawn<Self::ErrorType> {
        self.bitmap.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Drawn<Self::ErrorType> {
        self.bitmap.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Drawn<Self::ErrorType> {
        self.bitmap.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Drawn<Self::ErrorType> {
        let colour = style.color();
        if colour.alpha == 0.0 {
            return Ok(());
        }
        // The box plotters laid out, placed by the anchor (as plotters does).
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let font = self.font.as_scaled(style.size() as f32);
        let cap_height = font
            .outline_glyph(font.scaled_glyph('H'))
            .map_or(0.0, |h| h.px_bounds().height());
        let baseline = ((height as f32 + cap_height) / 2.0).round() as i32;
        let transform = style.transform();
        let (w, h) = self.get_size();
        let (mut pen, mut previous) = (0.0f32, None);
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                pen += font.kern(p, id);
            }
            previous = Some(id);
            let glyph = id.with_scale_and_position(font.scale(), ab_glyph::point(pen, 0.0));
            pen += font.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            // Whole pixels: the glyph was rasterised at its fractional pen.
            let bounds = outline.px_bounds();
            let (gx, gy) = (bounds.min.x as i32, bounds.min.y as i32);
            let mut drawn = Ok(());
            outline.draw(|x, y, coverage| {
                if drawn.is_err() || coverage <= 0.0 {
                    return;
                }
                let (tx, ty) =
                    transform.transform(dx + gx + x as i32, dy + baseline + gy + y as i32);
                let (px, py) = (pos.0 + tx, pos.1 + ty);
                if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                    let alpha = colour.alpha * f64::from(coverage.min(1.0));
                    drawn = self.bitmap.draw_pixel(
                        (px, py),
                        BackendColor {
                            alpha,
                            rgb: colour.rgb,
                        },
                    );
                }
            });
            drawn?;
        }
        Ok(())
    }
}

/// An error of plotters while drawing the figure at `path`.
pub(super) fn drawing_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, format!("drawing the figure: {e}"))
}

/// Encode `pixels` (RGB8, row-major, `width` × `height`) as a PNG and write
/// it atomically.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be written.
pub(super) fn write_rgb_png(path: &Path, width: u32, height: u32, pixels: &[u8]) -> Result<()> {
    write_atomically(path, |file| {
        let mut buffered = BufWriter::new(file);
        let mut encoder = png::Encoder::new(&mut buffered, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(io::Error::other)?;
        writer.write_image_data(pixels).map_err(io::Error::other)?;
        writer.finish().map_err(io::Error::other)?;
        buffered.flush()
    })
}

/// A PNG the figures wrote, decoded: width, height and its RGB bytes
/// (tests of every figure read them back through this).
#[cfg(test)]
pub(super) fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_font_registers() {
        ensure_font(Path::new("figure.png")).unwrap();
        // Twice is fine.
        ensure_font(Path::new("figure.png")).unwrap();
    }

    #[test]
    fn rgb_png_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rgb.png");
        let pixels: Vec<u8> = (0..2 * 3 * 3).map(|i| i as u8 * 10).collect();
        write_rgb_png(&path, 2, 3, &pixels).unwrap();
        assert_eq!(decode_png(&path), (2, 3, pixels));
    }
}
