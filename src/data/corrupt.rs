//! Input corruption for denoising autoencoders: fresh noise for every batch, drawn from a
//! seeded stream so that a resumed run corrupts its batches exactly as before.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A corruption process `x -> x~`. Values stay within the data range `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Corruption {
    /// Additive Gaussian noise of standard deviation `sigma`, clipped to the data range.
    Gaussian { sigma: f32 },
    /// Each value set to the range's lower end with probability `p` (dropout of inputs).
    Masking { p: f32 },
    /// Each value set to the lower or the upper end (equally likely) with probability `p`.
    SaltPepper { p: f32 },
}

impl FromStr for Corruption {
    type Err = Error;

    /// `gaussian:0.4`, `masking:0.3`, `salt-pepper:0.1`.
    fn from_str(s: &str) -> Result<Self> {
        let (kind, level) = s.split_once(':').ok_or_else(|| {
            Error::invalid(format!(
                "noise '{s}' needs a level, e.g. gaussian:0.4, masking:0.3 or salt-pepper:0.1"
            ))
        })?;
        let level: f32 = level
            .trim()
            .parse()
            .map_err(|_| Error::invalid(format!("noise level '{level}' is not a number")))?;
        let check_p = |p: f32| {
            if (0.0..=1.0).contains(&p) {
                Ok(p)
            } else {
                Err(Error::invalid(format!(
                    "noise probability must be in [0, 1], got {p}"
                )))
            }
        };
        match kind.trim() {
            "gaussian" if level >= 0.0 && level.is_finite() => {
                Ok(Corruption::Gaussian { sigma: level })
            }
            "gaussian" => Err(Error::invalid(format!(
                "gaussian sigma must be a non-negative number, got {level}"
            ))),
            "masking" => Ok(Corruption::Masking { p: check_p(level)? }),
            "salt-pepper" => Ok(Corruption::SaltPepper { p: check_p(level)? }),
            other => Err(Error::invalid(format!(
                "unknown noise '{other}': use gaussian, masking or salt-pepper"
            ))),
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Gaussian { sigma } => write!(f, "gaussian:{sigma}"),
            Corruption::Masking { p } => write!(f, "masking:{p}"),
            Corruption::SaltPepper { p } => write!(f, "salt-pepper:{p}"),
        }
    }
}

impl TryFrom<String> for Corruption {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Corruption> for String {
    fn from(c: Corruption) -> String {
        c.to_string()
    }
}

impl Corruption {
    /// Corrupts `x` in place; `range` is the data's `(lo, hi)`.
    pub fn apply(&self, x: &mut [f32], range: (f32, f32), rng: &mut impl Rng) {
        let (lo, hi) = range;
        match *self {
            Corruption::Gaussian { sigma } => {
                for v in x.iter_mut() {
                    let n: f32 = StandardNormal.sample(rng);
                    *v = (*v + sigma * n).clamp(lo, hi);
                }
            }
            Corruption::Masking { p } => {
                for v in x.iter_mut() {
                    if rng.random::<f32>() < p {
                        *v = lo;
                    }
                }
            }
            Corruption::SaltPepper { p } => {
                for v in x.iter_mut() {
                    if rng.random::<f32>() < p {
                        *v = if rng.random::<bool>() { hi } else { lo };
                    }
                }
            }
        }
    }
}
