//! What `train` writes of the loss curve: train_loss.csv and the panels of train_loss.png.

use anyhow::Result;
use std::path::Path;

use super::EpochRecord;
use crate::plot::{line_grid_shared_x, Panel, Series};

/// train_loss.csv: one row per step (its batch loss before the update); the last step of an
/// evaluated epoch also carries the validation loss and accuracy after it (empty fields
/// otherwise). Written row by row into `w`, nothing allocated per row; the numbers are the
/// shortest decimals that read back as the same f64 (`ryu`), the counts written by `itoa`.
pub(super) fn write_curve_csv(
    w: &mut impl std::io::Write,
    losses: &[f64],
    epochs: &[EpochRecord],
    per_epoch: usize,
) -> std::io::Result<()> {
    let (mut num, mut int) = (ryu::Buffer::new(), itoa::Buffer::new());
    w.write_all(b"step,epoch,loss,val_loss,val_accuracy\n")?;
    let mut ends = epochs.iter().peekable();
    for (t, &l) in losses.iter().enumerate() {
        let end = ends.next_if(|e| e.step == t);
        w.write_all(int.format(t).as_bytes())?;
        w.write_all(b",")?;
        w.write_all(int.format(t / per_epoch.max(1) + 1).as_bytes())?;
        w.write_all(b",")?;
        w.write_all(num.format(l).as_bytes())?;
        w.write_all(b",")?;
        if let Some(v) = end.and_then(|e| e.val_loss) {
            w.write_all(num.format(v).as_bytes())?;
        }
        w.write_all(b",")?;
        if let Some(v) = end.and_then(|e| e.val_accuracy) {
            w.write_all(num.format(v).as_bytes())?;
        }
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// train_loss.png: the loss per step and per epoch (training and validation), and the accuracy
/// after the evaluated epochs (every `eval_every`) when the targets classify.
/// A panel title `base`, then the last training value and the last validation value, each
/// formatted by `fmt`, with the step they were taken at (`(step, value)` points).
fn final_values(
    base: String,
    train: Option<&(f64, f64)>,
    val: Option<&(f64, f64)>,
    fmt: impl Fn(f64) -> String,
) -> String {
    match (train, val) {
        (Some(t), Some(v)) if t.0 == v.0 => {
            format!("{base}: training {}, validation {} at step {}", fmt(t.1), fmt(v.1), t.0)
        }
        (Some(t), Some(v)) => {
            format!("{base}: training {} at step {}, validation {} at step {}", fmt(t.1), t.0, fmt(v.1), v.0)
        }
        (Some(t), None) => format!("{base}: training {} at step {}", fmt(t.1), t.0),
        _ => base,
    }
}

pub(super) fn draw_curves(
    path: &Path,
    title: &str,
    losses: &[f64],
    epochs: &[EpochRecord],
    loss: &str,
    eval_every: usize,
) -> Result<()> {
    let after = match eval_every {
        1 => "after each epoch".to_string(),
        k => format!("every {k} epochs"),
    };
    let per_step: Vec<(f64, f64)> = losses.iter().enumerate().map(|(t, &l)| (t as f64, l)).collect();
    let pts = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        epochs.iter().filter_map(|e| f(e).map(|v| (e.step as f64, v))).collect()
    };
    let train_epoch = pts(&|e| Some(e.train_loss));
    let val_loss = pts(&|e| e.val_loss);
    let train_acc = pts(&|e| e.train_accuracy.map(|a| 100.0 * a));
    let val_acc = pts(&|e| e.val_accuracy.map(|a| 100.0 * a));
    // One meaning per colour across the panels: training blue (with markers, drawn over the
    // batch-loss band), validation orange and dashed (drawn over every solid line), the batch
    // loss of each step green underneath.
    let mut loss_series =
        vec![Series::new("training loss, epoch mean (markers)", &train_epoch).with_markers()];
    if !val_loss.is_empty() {
        loss_series.push(Series::dashed(format!("validation loss, {after}"), &val_loss));
    }
    loss_series.push(Series::new("batch loss, each step (band)", &per_step));
    let mut panels = vec![Panel {
        title: final_values(format!("Loss ({loss})"), train_epoch.last(), val_loss.last(), |v| {
            format!("{v:.2e}")
        }),
        x_label: "step t".into(),
        y_label: format!("E ({loss})"),
        series: loss_series,
        log_y: true,
        hlines: vec![],
    }];
    if !train_acc.is_empty() {
        let mut acc = vec![Series::new("training accuracy (markers)", &train_acc).with_markers()];
        if !val_acc.is_empty() {
            acc.push(Series::dashed("validation accuracy", &val_acc));
        }
        panels.push(Panel {
            title: final_values(format!("Accuracy, {after}"), train_acc.last(), val_acc.last(), |v| {
                format!("{v:.1}%")
            }),
            x_label: "step t".into(),
            y_label: "% correct".into(),
            series: acc,
            log_y: false,
            hlines: vec![],
        });
    }
    line_grid_shared_x(path, title, &panels)?;
    Ok(())
}
