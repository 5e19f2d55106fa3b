//! Every example of every `--help` is run as it is printed, from a fresh folder, and ends as its
//! label says: exit 1 where the label says a mistake is caught, 3 where it says both sides blow up,
//! 0 otherwise.
#![cfg(feature = "torch")]

mod common;

use std::path::Path;
use std::process::Command;

/// The examples of a binary's `--help`: (the command line's arguments, its label).
fn examples(bin: &str, exe: &str) -> Vec<(Vec<String>, String)> {
    let out = Command::new(exe).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let Some(block) = help.split("Examples:\n").nth(1) else { return Vec::new() };
    let mut lines: Vec<String> = Vec::new();
    for line in block.lines().take_while(|l| !l.trim().is_empty()) {
        match lines.last_mut() {
            Some(prev) if prev.ends_with('\\') => {
                prev.pop();
                let joined = format!("{} {}", prev.trim_end(), line.trim_start());
                *prev = joined;
            }
            _ => lines.push(line.trim_start().to_string()),
        }
    }
    lines
        .into_iter()
        .filter(|l| l.starts_with(&format!("{bin} ")) || l == bin)
        .map(|l| {
            // The label follows the command after a run of two or more spaces.
            let (cmd, label) = match l.find("  ") {
                Some(i) => (l[..i].to_string(), l[i..].trim().to_string()),
                None => (l.clone(), String::new()),
            };
            let args = cmd.split_whitespace().skip(1).map(String::from).collect();
            (args, label)
        })
        .collect()
}

/// The exit status a label promises.
fn promised(label: &str, args: &[String]) -> i32 {
    if label.contains("exit 3") {
        3
    } else if label.contains("exit 1") || label.contains("caught") {
        1
    } else {
        0
    }
    .max(if args.iter().any(|a| a == "--inject-fault") { 1 } else { 0 })
}

fn run(exe: &str, dir: &Path, args: &[String]) -> (i32, String) {
    let out = Command::new(exe).current_dir(dir).args(args).arg("--quiet").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn every_help_example_ends_as_its_label_says() {
    let dir = common::temp_dir("help-examples");
    // The files the examples name: a CSV of 3 inputs and 1 target.
    let csv: String = (0..40)
        .map(|i| {
            let x = i as f64 / 40.0;
            format!("{x},{},{},{}\n", x * x, 1.0 - x, (3.0 * x).sin())
        })
        .collect();
    std::fs::write(dir.join("data.csv"), csv).unwrap();
    let mut ran = 0;
    for (bin, exe) in [
        ("compare", env!("CARGO_BIN_EXE_compare")),
        ("check", env!("CARGO_BIN_EXE_check")),
        ("train", env!("CARGO_BIN_EXE_train")),
    ] {
        let list = examples(bin, exe);
        assert!(!list.is_empty(), "{bin} --help shows no examples");
        for (args, label) in list {
            if bin == "check" && args.first().is_some_and(|a| a == "my_trace.safetensors") {
                // The user's own trace: the one compare --trace wrote stands in for it.
                std::fs::copy(dir.join("out/trace.safetensors"), dir.join("my_trace.safetensors")).unwrap();
            }
            let (code, text) = run(exe, &dir, &args);
            let want = if args.iter().any(|a| a == "list") { 0 } else { promised(&label, &args) };
            assert_eq!(code, want, "{bin} {} ({label}):\n{text}", args.join(" "));
            ran += 1;
        }
    }
    eprintln!("{ran} examples ran as their labels say");
}
