//! Tables of results as CSV files, written atomically: the per-image
//! scores of `adgan score --images` and `adgan eval --images`, and the
//! patch table of `adgan score --patches`.

use crate::error::Result;
use crate::images::ImageScore;
use crate::score::PatchScore;
use std::path::Path;

/// Write image scores as CSV: `image,width,height,windows,score,
/// mean_window_score,mean_intensity[,label],note` (intensities of several
/// channels joined by `;`). `labels`, when given, adds a 0/1 column.
pub fn write_scores_csv(path: &Path, rows: &[ImageScore], labels: Option<&[bool]>) -> Result<()> {
    let mut s = String::from("image,width,height,windows,score,mean_window_score,mean_intensity");
    if labels.is_some() {
        s.push_str(",label");
    }
    s.push_str(",note\n");
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
    for (i, r) in rows.iter().enumerate() {
        let name = r.path.display().to_string();
        let name = if name.contains([',', '"']) {
            format!("\"{}\"", name.replace('"', "\"\""))
        } else {
            name
        };
        let intensity: Vec<String> = r.mean_intensity.iter().map(|v| format!("{v:.4}")).collect();
        s.push_str(&format!(
            "{name},{},{},{},{},{},{}",
            r.width,
            r.height,
            r.windows,
            opt(r.score),
            opt(r.mean_window_score),
            intensity.join(";")
        ));
        if let Some(l) = labels {
            s.push_str(if l[i] { ",1" } else { ",0" });
        }
        s.push(',');
        s.push_str(r.note.as_deref().unwrap_or(""));
        s.push('\n');
    }
    crate::io::atomic::write_atomically(path, |f| std::io::Write::write_all(f, s.as_bytes()))
}

/// Write a score's patch table as CSV: `slice_axis,slice,row,col,x,y,z,
/// brain_fraction,raw,score`, one row a window.
pub fn write_patch_csv(path: &Path, patches: &[PatchScore]) -> Result<()> {
    let mut s = String::from("slice_axis,slice,row,col,x,y,z,brain_fraction,raw,score\n");
    for p in patches {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{:.4},{:.6},{:.6}\n",
            p.slice_axis,
            p.slice,
            p.row,
            p.col,
            p.origin[0],
            p.origin[1],
            p.origin[2],
            p.brain_fraction,
            p.raw,
            p.score
        ));
    }
    crate::io::atomic::write_atomically(path, |f| std::io::Write::write_all(f, s.as_bytes()))
}
