//! The layer-spec language of convolutional models: parsing, printing, shape inference and
//! the mirror of an encoder.
//!
//! A layer is written as a short string so that configs and command lines stay readable:
//!
//! | spec | layer |
//! | --- | --- |
//! | `conv:16:3` | 3x3 convolution to 16 channels, stride 1, `same` padding |
//! | `conv:32:3:s2:valid:tanh` | options: `sN` stride, `same` / `valid` / `pN` padding, an activation |
//! | `convt:32:3:s2` | transposed convolution; `same` (default: output = input × stride) or `pN`, `opN` / `opHxW` |
//! | `maxpool:2`, `avgpool:2:valid` | pooling; `same` (default) rounds odd sizes up (7 → 4), `valid` down |
//! | `up:2`, `up:2:bilinear`, `up:7x7` | upsampling by a factor or to a size; `nearest` by default |
//! | `dense:32` | flatten, then a fully connected layer |
//! | `reshape:8x4x4` | a flat vector back to channels × height × width |
//!
//! `same` follows TensorFlow: the output is ⌈input / stride⌉ and odd padding goes after.
//! Layers without an activation use the model's hidden activation; the last decoder layer
//! uses the output activation. A missing decoder mirrors the encoder exactly (pooling becomes
//! upsampling to the pooled size, strided or `valid` convolutions become transposed ones), so
//! the output always has the input's shape.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Activation;

/// How a convolution or a pooling window treats the border.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pad {
    /// Output size ⌈input / stride⌉ (TensorFlow's `same`).
    Same,
    /// No padding.
    Valid,
    /// This many zeros on every side (PyTorch's `padding=`).
    Explicit(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpMode {
    Nearest,
    Bilinear,
}

/// One layer of a convolutional encoder or decoder.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerSpec {
    Conv {
        channels: usize,
        kernel: usize,
        stride: usize,
        pad: Pad,
        act: Option<Activation>,
    },
    ConvTranspose {
        channels: usize,
        kernel: usize,
        stride: usize,
        pad: Pad,
        /// Extra rows and columns at the end (height, width), as PyTorch's `output_padding`.
        output_padding: [usize; 2],
        act: Option<Activation>,
    },
    MaxPool {
        size: usize,
        pad: Pad,
    },
    AvgPool {
        size: usize,
        pad: Pad,
    },
    Upsample {
        scale: usize,
        to: Option<[usize; 2]>,
        mode: UpMode,
    },
    Dense {
        units: usize,
        act: Option<Activation>,
    },
    Reshape {
        shape: [usize; 3],
    },
}

fn parse_usize(tok: &str, what: &str, spec: &str) -> Result<usize> {
    tok.parse()
        .map_err(|_| Error::invalid(format!("layer '{spec}': {what} '{tok}' is not a number")))
}

fn parse_dims<const N: usize>(tok: &str, spec: &str) -> Result<[usize; N]> {
    let parts: Vec<usize> = tok
        .split('x')
        .map(|t| parse_usize(t, "size", spec))
        .collect::<Result<_>>()?;
    parts.try_into().map_err(|_| {
        Error::invalid(format!(
            "layer '{spec}': expected {N} sizes joined by 'x', got '{tok}'"
        ))
    })
}

impl FromStr for LayerSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let toks: Vec<&str> = spec.trim().split(':').collect();
        let bad = |msg: &str| Error::invalid(format!("layer '{spec}': {msg}"));
        let positional = |i: usize, what: &str| -> Result<usize> {
            let t = toks.get(i).ok_or_else(|| bad(&format!("missing {what}")))?;
            parse_usize(t, what, spec)
        };
        // Options after the positional fields: sN, pN, opN, same, valid, nearest, bilinear, act.
        let mut stride = 1;
        let mut pad = None;
        let mut output_padding = [0, 0];
        let mut act = None;
        let mut mode = UpMode::Nearest;
        let kind = toks[0].to_ascii_lowercase();
        let n_positional = match kind.as_str() {
            "conv" | "convt" => 3,
            "maxpool" | "avgpool" | "up" | "dense" | "reshape" => 2,
            _ => {
                return Err(bad(
                    "unknown layer; use conv, convt, maxpool, avgpool, up, dense or reshape",
                ));
            }
        };
        for opt in toks.iter().skip(n_positional) {
            let o = opt.to_ascii_lowercase();
            let num = |prefix: &str| {
                o.strip_prefix(prefix)
                    .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))
                    .and_then(|r| r.parse::<usize>().ok())
            };
            if o == "same" {
                pad = Some(Pad::Same);
            } else if o == "valid" {
                pad = Some(Pad::Valid);
            } else if o == "nearest" {
                mode = UpMode::Nearest;
            } else if o == "bilinear" {
                mode = UpMode::Bilinear;
            } else if let Some(v) = num("op") {
                output_padding = [v, v];
            } else if let Some(t) = o.strip_prefix("op").filter(|t| t.contains('x')) {
                output_padding = parse_dims::<2>(t, spec)?;
            } else if let Some(v) = num("s") {
                stride = v;
            } else if let Some(v) = num("p") {
                pad = Some(Pad::Explicit(v));
            } else if let Ok(a) = Activation::from_str(&o, true) {
                act = Some(a);
            } else {
                return Err(bad(&format!("unknown option '{opt}'")));
            }
        }
        let layer = match kind.as_str() {
            "conv" => LayerSpec::Conv {
                channels: positional(1, "channels")?,
                kernel: positional(2, "kernel size")?,
                stride,
                pad: pad.unwrap_or(Pad::Same),
                act,
            },
            "convt" => LayerSpec::ConvTranspose {
                channels: positional(1, "channels")?,
                kernel: positional(2, "kernel size")?,
                stride,
                pad: pad.unwrap_or(Pad::Same),
                output_padding,
                act,
            },
            "maxpool" | "avgpool" => {
                let size = positional(1, "pool size")?;
                let pad = pad.unwrap_or(Pad::Same);
                if matches!(pad, Pad::Explicit(_)) {
                    return Err(bad("pooling takes 'same' or 'valid' padding"));
                }
                if kind == "maxpool" {
                    LayerSpec::MaxPool { size, pad }
                } else {
                    LayerSpec::AvgPool { size, pad }
                }
            }
            "up" => {
                let t = toks.get(1).ok_or_else(|| bad("missing factor or size"))?;
                if t.contains('x') {
                    LayerSpec::Upsample {
                        scale: 0,
                        to: Some(parse_dims::<2>(t, spec)?),
                        mode,
                    }
                } else {
                    LayerSpec::Upsample {
                        scale: positional(1, "factor")?,
                        to: None,
                        mode,
                    }
                }
            }
            "dense" => LayerSpec::Dense {
                units: positional(1, "units")?,
                act,
            },
            _ => LayerSpec::Reshape {
                shape: parse_dims::<3>(toks.get(1).ok_or_else(|| bad("missing shape"))?, spec)?,
            },
        };
        if toks.len() < n_positional {
            return Err(bad("too few fields"));
        }
        let zero = match &layer {
            LayerSpec::Conv {
                channels,
                kernel,
                stride,
                ..
            }
            | LayerSpec::ConvTranspose {
                channels,
                kernel,
                stride,
                ..
            } => *channels == 0 || *kernel == 0 || *stride == 0,
            LayerSpec::MaxPool { size, .. } | LayerSpec::AvgPool { size, .. } => *size == 0,
            LayerSpec::Upsample { scale, to, .. } => to.map_or(*scale == 0, |t| t.contains(&0)),
            LayerSpec::Dense { units, .. } => *units == 0,
            LayerSpec::Reshape { shape } => shape.contains(&0),
        };
        if zero {
            return Err(bad("sizes must be at least 1"));
        }
        Ok(layer)
    }
}

impl fmt::Display for Pad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pad::Same => write!(f, "same"),
            Pad::Valid => write!(f, "valid"),
            Pad::Explicit(p) => write!(f, "p{p}"),
        }
    }
}

/// `kind:channels:kernel` with the stride and padding when not the defaults.
fn conv_head(
    f: &mut fmt::Formatter<'_>,
    kind: &str,
    channels: usize,
    kernel: usize,
    stride: usize,
    pad: Pad,
) -> fmt::Result {
    write!(f, "{kind}:{channels}:{kernel}")?;
    if stride != 1 {
        write!(f, ":s{stride}")?;
    }
    if pad != Pad::Same {
        write!(f, ":{pad}")?;
    }
    Ok(())
}

impl fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let act_suffix =
            |a: &Option<Activation>| a.map_or(String::new(), |a| format!(":{}", a.name()));
        match self {
            LayerSpec::Conv {
                channels,
                kernel,
                stride,
                pad,
                act,
            } => {
                conv_head(f, "conv", *channels, *kernel, *stride, *pad)?;
                write!(f, "{}", act_suffix(act))
            }
            LayerSpec::ConvTranspose {
                channels,
                kernel,
                stride,
                pad,
                output_padding,
                act,
            } => {
                conv_head(f, "convt", *channels, *kernel, *stride, *pad)?;
                match output_padding {
                    [0, 0] => {}
                    [h, w] if h == w => write!(f, ":op{h}")?,
                    [h, w] => write!(f, ":op{h}x{w}")?,
                }
                write!(f, "{}", act_suffix(act))
            }
            LayerSpec::MaxPool { size, pad } | LayerSpec::AvgPool { size, pad } => {
                let kind = if matches!(self, LayerSpec::MaxPool { .. }) {
                    "maxpool"
                } else {
                    "avgpool"
                };
                write!(f, "{kind}:{size}")?;
                if *pad != Pad::Same {
                    write!(f, ":{pad}")?;
                }
                Ok(())
            }
            LayerSpec::Upsample { scale, to, mode } => {
                match to {
                    Some([h, w]) => write!(f, "up:{h}x{w}")?,
                    None => write!(f, "up:{scale}")?,
                }
                if *mode == UpMode::Bilinear {
                    write!(f, ":bilinear")?;
                }
                Ok(())
            }
            LayerSpec::Dense { units, act } => write!(f, "dense:{units}{}", act_suffix(act)),
            LayerSpec::Reshape { shape: [c, h, w] } => write!(f, "reshape:{c}x{h}x{w}"),
        }
    }
}

impl Serialize for LayerSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LayerSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Padding `(before, after)` and output size of a window of `k` moved by `s` over `n`.
pub(crate) fn window(n: usize, k: usize, s: usize, pad: Pad) -> Option<((usize, usize), usize)> {
    match pad {
        Pad::Same => {
            let out = n.div_ceil(s);
            let total = ((out - 1) * s + k).saturating_sub(n);
            Some(((total / 2, total - total / 2), out))
        }
        Pad::Valid => (n >= k).then(|| ((0, 0), (n - k) / s + 1)),
        Pad::Explicit(p) => (n + 2 * p >= k).then(|| ((p, p), (n + 2 * p - k) / s + 1)),
    }
}

/// Padding and output padding of a transposed convolution, and its output size.
pub(crate) fn transposed(
    n: usize,
    k: usize,
    s: usize,
    pad: Pad,
    op: usize,
) -> Option<((usize, usize), usize)> {
    match pad {
        Pad::Same => {
            // Output n·s: (n-1)s - 2p + k + op = n s  ⇔  2p - op = k - s.
            let d = k.checked_sub(s)?;
            let p = d.div_ceil(2);
            Some(((p, 2 * p - d), n * s))
        }
        Pad::Valid => Some(((0, op), (n - 1) * s + k + op)),
        Pad::Explicit(p) => {
            let out = ((n - 1) * s + k + op).checked_sub(2 * p)?;
            (out > 0).then_some(((p, op), out))
        }
    }
}

pub fn shape_str(s: &[usize]) -> String {
    s.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// The shape after each layer of `layers` applied to `input` (`[C, H, W]` or `[N]`),
/// starting with `input` itself.
pub fn infer_shapes(input: &[usize], layers: &[LayerSpec]) -> Result<Vec<Vec<usize>>> {
    let mut shapes = vec![input.to_vec()];
    for layer in layers {
        let cur = shapes.last().expect("input").clone();
        let spatial = || -> Result<[usize; 3]> {
            cur.as_slice().try_into().map_err(|_| {
                Error::invalid(format!(
                    "layer '{layer}' needs channels x height x width, but its input is a flat vector of {}; add reshape:CxHxW",
                    shape_str(&cur)
                ))
            })
        };
        let too_small = |[c, h, w]: [usize; 3]| {
            Error::invalid(format!(
                "layer '{layer}' does not fit its input of {c}x{h}x{w}"
            ))
        };
        let next = match layer {
            LayerSpec::Conv {
                channels,
                kernel,
                stride,
                pad,
                ..
            } => {
                let s = spatial()?;
                let (_, h) = window(s[1], *kernel, *stride, *pad).ok_or_else(|| too_small(s))?;
                let (_, w) = window(s[2], *kernel, *stride, *pad).ok_or_else(|| too_small(s))?;
                vec![*channels, h, w]
            }
            LayerSpec::ConvTranspose {
                channels,
                kernel,
                stride,
                pad,
                output_padding,
                ..
            } => {
                let s = spatial()?;
                if output_padding.iter().any(|op| op >= stride) {
                    return Err(Error::invalid(format!(
                        "layer '{layer}': output padding must be smaller than the stride"
                    )));
                }
                let f = |n, op| transposed(n, *kernel, *stride, *pad, op);
                let (_, h) = f(s[1], output_padding[0]).ok_or_else(|| too_small(s))?;
                let (_, w) = f(s[2], output_padding[1]).ok_or_else(|| too_small(s))?;
                vec![*channels, h, w]
            }
            LayerSpec::MaxPool { size, pad } | LayerSpec::AvgPool { size, pad } => {
                let s = spatial()?;
                let (_, h) = window(s[1], *size, *size, *pad).ok_or_else(|| too_small(s))?;
                let (_, w) = window(s[2], *size, *size, *pad).ok_or_else(|| too_small(s))?;
                vec![s[0], h, w]
            }
            LayerSpec::Upsample { scale, to, .. } => {
                let s = spatial()?;
                let [h, w] = to.unwrap_or([s[1] * scale, s[2] * scale]);
                vec![s[0], h, w]
            }
            LayerSpec::Dense { units, .. } => vec![*units],
            LayerSpec::Reshape { shape } => {
                let have: usize = cur.iter().product();
                if have != shape.iter().product::<usize>() {
                    return Err(Error::invalid(format!(
                        "layer '{layer}': cannot reshape {} values ({}) to {}",
                        have,
                        shape_str(&cur),
                        shape_str(shape)
                    )));
                }
                shape.to_vec()
            }
        };
        if next.contains(&0) {
            return Err(Error::invalid(format!(
                "layer '{layer}' leaves nothing of its input {}",
                shape_str(&cur)
            )));
        }
        shapes.push(next);
    }
    Ok(shapes)
}

/// Padding and per-axis output padding of the transposed convolution that maps `from` back to
/// exactly `to`, if one padding serves both axes.
fn inverse_conv(
    kernel: usize,
    stride: usize,
    from: &[usize],
    to: &[usize],
) -> Option<(usize, [usize; 2])> {
    let solve = |n: usize, t: usize| -> Option<(usize, usize)> {
        // (n-1)s - 2p + k + op = t with 0 <= op < s.
        let base = ((n - 1) * stride + kernel) as i64 - t as i64;
        let (p, op) = if base <= 0 {
            (0, (-base) as usize)
        } else {
            let p = (base as usize).div_ceil(2);
            (p, 2 * p - base as usize)
        };
        (op < stride).then_some((p, op))
    };
    let (ph, oph) = solve(from[1], to[1])?;
    let (pw, opw) = solve(from[2], to[2])?;
    (ph == pw).then_some((ph, [oph, opw]))
}

/// The decoder that undoes `encoder` on inputs of shape `input`, layer by layer.
pub fn mirror(input: &[usize], encoder: &[LayerSpec]) -> Result<Vec<LayerSpec>> {
    let shapes = infer_shapes(input, encoder)?;
    let mut decoder = Vec::new();
    for (i, layer) in encoder.iter().enumerate().rev() {
        let (to, from) = (&shapes[i], &shapes[i + 1]);
        let cannot = || {
            Error::invalid(format!(
                "cannot mirror layer '{layer}' ({} -> {}); give the decoder explicitly",
                shape_str(to),
                shape_str(from)
            ))
        };
        match layer {
            LayerSpec::Conv {
                kernel,
                stride,
                pad,
                ..
            } => {
                if *stride == 1 && *pad == Pad::Same {
                    decoder.push(LayerSpec::Conv {
                        channels: to[0],
                        kernel: *kernel,
                        stride: 1,
                        pad: Pad::Same,
                        act: None,
                    });
                } else {
                    let (p, op) = inverse_conv(*kernel, *stride, from, to).ok_or_else(cannot)?;
                    decoder.push(LayerSpec::ConvTranspose {
                        channels: to[0],
                        kernel: *kernel,
                        stride: *stride,
                        pad: Pad::Explicit(p),
                        output_padding: op,
                        act: None,
                    });
                }
            }
            LayerSpec::MaxPool { size, .. } | LayerSpec::AvgPool { size, .. } => {
                let exact = from[1] * size == to[1] && from[2] * size == to[2];
                decoder.push(LayerSpec::Upsample {
                    scale: if exact { *size } else { 0 },
                    to: (!exact).then_some([to[1], to[2]]),
                    mode: UpMode::Nearest,
                });
            }
            LayerSpec::Dense { .. } => {
                decoder.push(LayerSpec::Dense {
                    units: to.iter().product(),
                    act: None,
                });
                if let [c, h, w] = to.as_slice() {
                    decoder.push(LayerSpec::Reshape {
                        shape: [*c, *h, *w],
                    });
                }
            }
            LayerSpec::Reshape { .. } => match to.as_slice() {
                [c, h, w] => decoder.push(LayerSpec::Reshape {
                    shape: [*c, *h, *w],
                }),
                _ => decoder.push(LayerSpec::Dense {
                    units: to[0],
                    act: None,
                }),
            },
            LayerSpec::ConvTranspose { .. } | LayerSpec::Upsample { .. } => return Err(cannot()),
        }
    }
    if !decoder.iter().any(LayerSpec::has_weights) {
        return Err(Error::invalid(
            "the mirrored decoder has no layer with weights: give the decoder explicitly",
        ));
    }
    Ok(decoder)
}

impl LayerSpec {
    pub fn has_weights(&self) -> bool {
        matches!(
            self,
            LayerSpec::Conv { .. } | LayerSpec::ConvTranspose { .. } | LayerSpec::Dense { .. }
        )
    }

    pub fn act(&self) -> Option<Activation> {
        match self {
            LayerSpec::Conv { act, .. }
            | LayerSpec::ConvTranspose { act, .. }
            | LayerSpec::Dense { act, .. } => *act,
            _ => None,
        }
    }
}

/// Parses a comma-separated list of layers.
pub fn parse_layers(s: &str) -> Result<Vec<LayerSpec>> {
    s.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(str::parse)
        .collect()
}
