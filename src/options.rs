//! Every option is defined once, as a field of a config struct: serde makes it a key of the
//! TOML run config (and reports keys it does not know), clap's derive on the same struct makes
//! it a flag, and the field's doc comment is the help of both and the comment of `aekit init`'s
//! template. These helpers read such flags back from a command line and write the template.

use std::collections::HashSet;

use clap::parser::ValueSource;

/// `--flag-name` of a clap argument id.
pub fn flag_name(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

/// `--long` of the flag `id` of `cmd` (where the flag is named apart from its key, as
/// `--data` for `source`).
pub fn long_flag(cmd: &clap::Command, id: &str) -> String {
    cmd.get_arguments()
        .find(|a| a.get_id() == id)
        .and_then(|a| a.get_long())
        .map_or_else(|| flag_name(id), |l| format!("--{l}"))
}

/// The ids of the flags a `cmd` built by `augment` defines.
pub fn flag_ids(augment: fn(clap::Command) -> clap::Command) -> HashSet<String> {
    augment(clap::Command::new("flags"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

/// Whether flag `id` was given on the command line (not defined, or absent, is `false`).
pub fn was_given(flags: &clap::ArgMatches, id: &str) -> bool {
    flags.try_get_raw(id).is_ok_and(|v| v.is_some())
        && flags.value_source(id) == Some(ValueSource::CommandLine)
}

/// The flags among those `augment` defines that were given on the command line, sorted.
pub fn given(flags: &clap::ArgMatches, augment: fn(clap::Command) -> clap::Command) -> Vec<String> {
    let mut ids: Vec<String> = flag_ids(augment)
        .into_iter()
        .filter(|id| was_given(flags, id))
        .collect();
    ids.sort();
    ids
}

/// One commented section of a TOML template: for each flag of `cmd`, its help as a comment,
/// then `key = value` from `values` or, for a key without a value, `# key =`.
pub fn template_section(name: &str, cmd: &clap::Command, values: &toml::Table, out: &mut String) {
    out.push_str(&format!("[{name}]\n"));
    for key in ["kind"] {
        if let Some(v) = values.get(key) {
            out.push_str(&format!("{key} = {v}\n"));
        }
    }
    for arg in cmd.get_arguments() {
        let key = arg.get_id().as_str();
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let flag = arg
            .get_long()
            .map_or(String::new(), |l| format!(" (--{l})"));
        for line in wrap(&format!("{help}{flag}"), 96) {
            out.push_str(&format!("# {line}\n"));
        }
        match values.get(key) {
            Some(v) => out.push_str(&format!("{key} = {v}\n")),
            None => out.push_str(&format!("# {key} =\n")),
        }
    }
    out.push('\n');
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// A float flag's value, refused unless it is a finite number: NaN or an infinity in a rate,
/// a weight or a threshold trains or answers nonsense without a word.
fn finite<T: std::str::FromStr + Into<f64> + Copy + Send + Sync + Clone + 'static>(
    text: &str,
) -> std::result::Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let value: T = text.trim().parse().map_err(|e| format!("{e}"))?;
    if value.into().is_finite() {
        Ok(value)
    } else {
        Err(format!("{text} is not a finite number"))
    }
}

/// `cmd` with every float flag, in it and in all its subcommands, parsed by [`finite`]: the
/// one parser of every numeric option, whichever struct declares it.
pub fn finite_floats(cmd: clap::Command) -> clap::Command {
    use std::any::TypeId;
    let cmd = cmd.mut_args(|arg| {
        let parser = arg.get_value_parser().type_id();
        if parser == TypeId::of::<f64>() {
            arg.value_parser(finite::<f64>)
        } else if parser == TypeId::of::<f32>() {
            arg.value_parser(finite::<f32>)
        } else {
            arg
        }
    });
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    names
        .iter()
        .fold(cmd, |cmd, name| cmd.mut_subcommand(name, finite_floats))
}

/// Every float flag of `cmd` and its subcommands, as `(subcommand path, --flag)`.
pub fn float_flags(cmd: &clap::Command) -> Vec<(Vec<String>, String)> {
    use std::any::TypeId;
    let mut out = Vec::new();
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
        for arg in cmd.get_arguments() {
            let parser = arg.get_value_parser().type_id();
            if (parser == TypeId::of::<f64>() || parser == TypeId::of::<f32>())
                && let Some(long) = arg.get_long()
            {
                out.push((path.clone(), format!("--{long}")));
            }
        }
        for sub in cmd.get_subcommands() {
            path.push(sub.get_name().to_string());
            walk(sub, path, out);
            path.pop();
        }
    }
    walk(cmd, &mut Vec::new(), &mut out);
    out
}

/// The first float of a TOML table (a config file) that is not finite, as `(key path, value)`.
pub fn non_finite_value(table: &toml::Table) -> Option<(String, f64)> {
    fn walk(value: &toml::Value, path: &str) -> Option<(String, f64)> {
        match value {
            toml::Value::Float(f) if !f.is_finite() => Some((path.to_string(), *f)),
            toml::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, &format!("{path}[{i}]"))),
            toml::Value::Table(t) => t.iter().find_map(|(k, v)| walk(v, &format!("{path}.{k}"))),
            _ => None,
        }
    }
    table.iter().find_map(|(k, v)| walk(v, k))
}
