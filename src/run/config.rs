//! The run config: everything needed to rebuild a model and repeat its training, as one TOML
//! file (`config.toml` in every run directory, `--config` on the command line).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::DataConfig;
use crate::error::{Error, Result};
use crate::model::{DenseConfig, ModelConfig};
use crate::train::TrainConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
}

impl Default for RunConfig {
    /// The main job: a small dense autoencoder on the built-in shapes.
    fn default() -> Self {
        Self {
            data: DataConfig::default(),
            model: ModelConfig::new(DenseConfig::new(vec![256, 64], 8)),
            train: TrainConfig {
                epochs: 15,
                ..TrainConfig::default()
            },
        }
    }
}

impl RunConfig {
    /// Parses TOML text, rejecting keys the config does not have (typos would otherwise be
    /// silently ignored). `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            // toml's own message spans several lines with a snippet: one line here.
            let at = e.span().map_or(String::new(), |span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" at line {line}, column {column}")
            });
            Error::bad_file(origin, format!("invalid TOML{at}: {}", e.message().trim()))
        })?;
        if let Some((key, value)) = crate::options::non_finite_value(&table) {
            return Err(Error::bad_file(
                origin,
                format!("{key} = {value}: not a finite number"),
            ));
        }
        // Keys the structs do not know are reported by serde itself, from the same field
        // definitions that parse the known ones (the model's variant keys by its parser).
        let mut unknown = Vec::new();
        let cfg: RunConfig = serde_ignored::deserialize(toml::Value::Table(table), |path| {
            unknown.push(path.to_string())
        })
        .map_err(|e: toml::de::Error| Error::bad_file(origin, e.message().to_string()))?;
        if !unknown.is_empty() {
            return Err(Error::bad_file(
                origin,
                format!("unknown key(s): {}", unknown.join(", ")),
            ));
        }
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, path)
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Serialize(e.to_string()))
    }

    /// Writes `config.toml` and `config.json` (the same content, for Python users, and the
    /// network's `graph` when given: what loaders outside aekit rebuild it from) into `dir`.
    pub fn save(&self, dir: &Path, graph: Option<&crate::model::graph::Graph>) -> Result<()> {
        crate::io::write_atomic(&dir.join("config.toml"), self.to_toml()?.as_bytes())?;
        let mut json = serde_json::to_value(self).map_err(|e| Error::Serialize(e.to_string()))?;
        if let (Some(graph), Some(fields)) = (graph, json.as_object_mut()) {
            let graph = serde_json::to_value(graph).map_err(|e| Error::Serialize(e.to_string()))?;
            fields.insert("graph".into(), graph);
        }
        crate::io::write_json(&dir.join("config.json"), &json)
    }

    /// Adds the flags of every key of a run config to a command: data, model (with `--model`
    /// and every registered variant's flags) and training.
    pub fn flags(cmd: clap::Command) -> clap::Command {
        use clap::Args;
        let cmd = crate::data::DataConfig::augment_args(cmd.next_help_heading("Data"));
        let cmd = crate::model::model_flags(cmd.next_help_heading("Model"));
        TrainConfig::augment_args(cmd.next_help_heading("Training")).next_help_heading(None)
    }

    /// Applies the flags given on a command line built with [`Self::flags`].
    pub fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        self.data.apply_flags(flags)?;
        self.model.apply_flags(flags)?;
        self.train.apply_flags(flags)
    }

    /// This config with command-line flags applied as `aekit train` applies them, `args`
    /// being flags and values without the program's name: for front ends that take settings
    /// by the command line's names (Python's `options`), so that both reach the same config.
    pub fn with_flags(&self, args: &[String]) -> Result<Self> {
        let cmd = crate::options::finite_floats(Self::flags(clap::Command::new("aekit")))
            .no_binary_name(true);
        let flags = cmd.try_get_matches_from(args).map_err(|e| {
            // One line: clap's first, with the values it would take where it lists them.
            let text = e.render().to_string();
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("invalid settings");
            let mut line = first.trim_start_matches("error: ").to_string();
            if let Some(values) = lines.find(|l| l.contains("[possible values")) {
                line = format!("{line} {}", values.trim());
            }
            Error::invalid(line)
        })?;
        let mut cfg = self.clone();
        cfg.apply_flags(&flags)?;
        Ok(cfg)
    }

    /// The config a resumed run continues with: this (saved) one, where only the flags that
    /// cannot change what was already trained may change it: `--epochs`, `--max-minutes` and
    /// `--checkpoint-seconds`.
    /// Any other flag of the config is refused, so no setting is silently ignored.
    pub fn resume_with(mut self, flags: &clap::ArgMatches) -> Result<Self> {
        use clap::Args;
        const MAY_CHANGE: [&str; 3] = ["epochs", "max_minutes", "checkpoint_seconds"];
        let mut given = crate::options::given(flags, crate::data::DataConfig::augment_args);
        given.extend(crate::model::given_model_flags(flags));
        given.extend(crate::options::given(flags, TrainConfig::augment_args));
        if let Some(id) = given.iter().find(|id| !MAY_CHANGE.contains(&id.as_str())) {
            return Err(Error::invalid(format!(
                "--resume continues a run as configured: {} cannot change it (only --epochs, --max-minutes and --checkpoint-seconds can)",
                crate::options::long_flag(&Self::flags(clap::Command::new("train")), id)
            )));
        }
        for id in MAY_CHANGE {
            if crate::options::was_given(flags, id) {
                self.apply_flags(flags)?;
                break;
            }
        }
        Ok(self)
    }

    /// `runs/<data>-<kind>-<n>` with the first `n` not taken.
    pub fn default_run_dir(&self) -> std::path::PathBuf {
        let source: String = self
            .data
            .source
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("data")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let stem = format!("{}-{}", source.trim_matches('-'), self.model.kind());
        (1..)
            .map(|n| Path::new("runs").join(format!("{stem}-{n}")))
            .find(|p| !p.exists())
            .unwrap_or_else(|| Path::new("runs").join(stem))
    }

    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        self.model.validate()?;
        self.train.validate()
    }
}

/// The commented template written by `aekit init`: every key of the default run config with
/// its help, generated from the same field definitions that parse configs and flags.
pub fn template() -> Result<String> {
    use clap::Args;
    fn table<T: serde::Serialize>(v: &T) -> Result<toml::Table> {
        toml::Table::try_from(v).map_err(|e| Error::Serialize(e.to_string()))
    }
    let cfg = RunConfig::default();
    let mut out = String::from(
        "# aekit run configuration. Every key is optional except data.source and the model's\n\
         # required keys (kind and latent for a dense model); command-line flags, named after the\n\
         # keys, override what is set here.\n\n",
    );
    let data = crate::data::DataConfig::augment_args(clap::Command::new("data"));
    crate::options::template_section("data", &data, &table(&cfg.data)?, &mut out);
    let variant = crate::model::variant::lookup(cfg.model.kind())?;
    let model =
        crate::model::SharedConfig::augment_args((variant.flags)(clap::Command::new("model")));
    crate::options::template_section("model", &model, &table(&cfg.model)?, &mut out);
    let train = TrainConfig::augment_args(clap::Command::new("train"));
    crate::options::template_section("train", &train, &table(&cfg.train)?, &mut out);
    out.truncate(out.trim_end().len());
    out.push('\n');
    Ok(out)
}
