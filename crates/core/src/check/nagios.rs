//! The Nagios plugin convention: exit codes, status text and performance
//! data, as the Monitoring Plugins Development Guidelines define them.
//!
//! A plugin prints a first line `TEXT|PERFDATA`, optionally more lines of
//! long text, the last of which may carry `|` and more performance data,
//! which then runs to the end of the output:
//!
//! ```text
//! DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968
//! / 15272 MB (77%);
//! /boot 68 MB (69%); | /boot=68MB;88;93;0;98
//! /home=69357MB;253404;253409;0;253414
//! ```
//!
//! Each performance datum is `'label'=value[UOM];[warn];[crit];[min];[max]`;
//! trailing fields may be left out, and a label with spaces is quoted with
//! single quotes (a quote inside doubled). A datum that does not parse is
//! skipped, not fatal: a plugin's status must never depend on how well we
//! read its numbers.

use std::fmt;

use super::Health;

/// The health a plugin's exit code means: 0 OK, 1 WARNING, 2 CRITICAL,
/// 3 UNKNOWN; any other code is UNKNOWN too (the guidelines define none).
pub fn health_of_exit_code(code: i32) -> Health {
    match code {
        0 => Health::Healthy,
        1 => Health::Warning,
        2 => Health::Unhealthy,
        _ => Health::Unknown,
    }
}

/// The plugin exit code of a health, the inverse of [`health_of_exit_code`].
pub fn exit_code_of(health: Health) -> i32 {
    match health {
        Health::Healthy => 0,
        Health::Warning => 1,
        Health::Unhealthy => 2,
        Health::Unknown => 3,
    }
}

/// The word Nagios prints for a health: `OK`, `WARNING`, `CRITICAL`,
/// `UNKNOWN`.
pub fn word_of(health: Health) -> &'static str {
    match health {
        Health::Healthy => "OK",
        Health::Warning => "WARNING",
        Health::Unhealthy => "CRITICAL",
        Health::Unknown => "UNKNOWN",
    }
}

/// One performance datum.
#[derive(Clone, Debug, PartialEq)]
pub struct PerfData {
    /// The label, unquoted.
    pub label: String,
    /// The value; `None` when the plugin wrote `U` (it could not measure).
    pub value: Option<f64>,
    /// The unit of measure as written: empty, `s`, `ms`, `us`, `%`, `B`,
    /// `KB`, `MB`, `GB`, `TB`, `c`, or whatever else the plugin wrote.
    pub uom: String,
    /// The warning range, as written (`10`, `10:`, `~:10`, `@10:20`).
    pub warn: Option<String>,
    /// The critical range, as written.
    pub crit: Option<String>,
    /// The smallest possible value.
    pub min: Option<f64>,
    /// The largest possible value.
    pub max: Option<f64>,
}

impl PerfData {
    /// Parses one datum: `'label'=value[UOM];[warn];[crit];[min];[max]`.
    pub fn parse(item: &str) -> Option<PerfData> {
        let (label, rest) = split_label(item)?;
        let mut fields = rest.split(';');
        let (value, uom) = split_value(fields.next()?)?;
        let mut text = || {
            fields
                .next()
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
        };
        let warn = text();
        let crit = text();
        let number = |f: Option<String>| f.and_then(|f| f.parse::<f64>().ok());
        let min = number(text());
        let max = number(text());
        Some(PerfData {
            label,
            value,
            uom: uom.to_owned(),
            warn,
            crit,
            min,
            max,
        })
    }
}

impl fmt::Display for PerfData {
    /// Writes the datum back in plugin syntax, trailing empty fields left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = !self.label.is_empty()
            && !self
                .label
                .contains(|c: char| c.is_whitespace() || c == '\'' || c == '=');
        if plain {
            f.write_str(&self.label)?;
        } else {
            write!(f, "'{}'", self.label.replace('\'', "''"))?;
        }
        match self.value {
            Some(v) => write!(f, "={v}{}", self.uom)?,
            None => f.write_str("=U")?,
        }
        let number = |n: Option<f64>| n.map(|n| n.to_string());
        let fields = [
            self.warn.clone(),
            self.crit.clone(),
            number(self.min),
            number(self.max),
        ];
        let used = fields
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        for field in &fields[..used] {
            write!(f, ";{}", field.as_deref().unwrap_or(""))?;
        }
        Ok(())
    }
}

/// A plugin's output, read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PluginOutput {
    /// The status text: the first line, before any `|`, trimmed.
    pub text: String,
    /// Every performance datum, from the first line and the long text,
    /// each label once.
    pub perfdata: Vec<PerfData>,
    /// Labels written more than once, whose later data were dropped: two
    /// data of one label would be two identical Prometheus series (which
    /// Prometheus silently collapses) and two JSON keys alike.
    pub repeated: Vec<String>,
}

impl PluginOutput {
    /// Reads `output` (the plugin's stdout and stderr, as captured).
    pub fn parse(output: &[u8]) -> PluginOutput {
        let output = String::from_utf8_lossy(output);
        let mut lines = output.lines();
        let first = lines.next().unwrap_or("");
        let (text, first_perf) = first.split_once('|').unwrap_or((first, ""));
        let mut perf = vec![first_perf.to_owned()];
        // In the long text, the first `|` starts performance data that runs
        // to the end of the output.
        let mut in_perf = false;
        for line in lines {
            if in_perf {
                perf.push(line.to_owned());
            } else if let Some((_, p)) = line.split_once('|') {
                in_perf = true;
                perf.push(p.to_owned());
            }
        }
        let mut perfdata: Vec<PerfData> = Vec::new();
        let mut repeated: Vec<String> = Vec::new();
        for datum in perf
            .iter()
            .flat_map(|p| split_items(p))
            .filter_map(|i| PerfData::parse(&i))
        {
            if perfdata.iter().any(|p| p.label == datum.label) {
                if !repeated.contains(&datum.label) {
                    repeated.push(datum.label);
                }
            } else {
                perfdata.push(datum);
            }
        }
        PluginOutput {
            text: text.trim().to_owned(),
            perfdata,
            repeated,
        }
    }
}

/// Splits performance data on spaces outside single quotes.
fn split_items(perf: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut item = String::new();
    let mut quoted = false;
    for c in perf.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                item.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !item.is_empty() {
                    items.push(std::mem::take(&mut item));
                }
            }
            c => item.push(c),
        }
    }
    if !item.is_empty() {
        items.push(item);
    }
    items
}

/// `'a b'=rest` or `label=rest` → (label, rest); a doubled quote inside a
/// quoted label is one quote.
fn split_label(item: &str) -> Option<(String, &str)> {
    if let Some(quoted) = item.strip_prefix('\'') {
        let mut label = String::new();
        let mut chars = quoted.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                label.push(c);
                continue;
            }
            if let Some(&(_, '\'')) = chars.peek() {
                chars.next();
                label.push('\'');
                continue;
            }
            let rest = quoted[i + 1..].strip_prefix('=')?;
            return (!label.is_empty()).then_some((label, rest));
        }
        None
    } else {
        let (label, rest) = item.split_once('=')?;
        (!label.is_empty()).then(|| (label.to_owned(), rest))
    }
}

/// `12.5MB` → (Some(12.5), "MB"); `U` → (None, "").
fn split_value(field: &str) -> Option<(Option<f64>, &str)> {
    let field = field.trim();
    if field == "U" {
        return Some((None, ""));
    }
    let end = field
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(field.len());
    // `e` may be a unit's first letter rather than an exponent; back off
    // until what precedes the unit is a number.
    let mut end = end;
    loop {
        if let Ok(v) = field[..end].parse::<f64>() {
            if !v.is_finite() {
                return None;
            }
            let uom = &field[end..];
            let unit_ok = uom.chars().all(|c| c.is_ascii_alphabetic() || c == '%');
            return unit_ok.then_some((Some(v), uom));
        }
        end = field[..end].char_indices().last()?.0;
        if end == 0 {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datum(label: &str, value: f64, uom: &str) -> PerfData {
        PerfData {
            label: label.into(),
            value: Some(value),
            uom: uom.into(),
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }

    #[test]
    fn exit_codes_both_ways() {
        for (code, health, word) in [
            (0, Health::Healthy, "OK"),
            (1, Health::Warning, "WARNING"),
            (2, Health::Unhealthy, "CRITICAL"),
            (3, Health::Unknown, "UNKNOWN"),
        ] {
            assert_eq!(health_of_exit_code(code), health);
            assert_eq!(exit_code_of(health), code);
            assert_eq!(word_of(health), word);
        }
        for other in [4, 127, 255, -1] {
            assert_eq!(health_of_exit_code(other), Health::Unknown, "{other}");
        }
    }

    #[test]
    fn the_guidelines_examples() {
        // The guidelines' own multi-line example.
        let out = PluginOutput::parse(
            b"DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n\
              / 15272 MB (77%);\n\
              /boot 68 MB (69%);\n\
              /home 69357 MB (27%);\n\
              /var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n\
              /home=69357MB;253404;253409;0;253414\n\
              /var/log=818MB;970;975;0;980\n",
        );
        assert_eq!(out.text, "DISK OK - free space: / 3326 MB (56%);");
        let labels: Vec<_> = out.perfdata.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["/", "/boot", "/home", "/var/log"]);
        assert_eq!(
            out.perfdata[0],
            PerfData {
                warn: Some("5948".into()),
                crit: Some("5958".into()),
                min: Some(0.0),
                max: Some(5968.0),
                ..datum("/", 2643.0, "MB")
            }
        );
        assert_eq!(out.perfdata[3].value, Some(818.0));
    }

    #[test]
    fn quoted_labels_units_empty_fields_and_several_values() {
        let out = PluginOutput::parse(
            b"LOAD OK - total load average: 1.76, 0.93, 0.36|load1=1.760;5.000;10.000;0; load5=0.930;;;0; 'free space'=12%;;;; 'it''s'=3c time=0.012s U=U x=-1.5e3 bad =3 \n",
        );
        assert_eq!(out.text, "LOAD OK - total load average: 1.76, 0.93, 0.36");
        assert_eq!(
            out.perfdata,
            [
                PerfData {
                    warn: Some("5.000".into()),
                    crit: Some("10.000".into()),
                    min: Some(0.0),
                    ..datum("load1", 1.76, "")
                },
                PerfData {
                    min: Some(0.0),
                    ..datum("load5", 0.93, "")
                },
                datum("free space", 12.0, "%"),
                datum("it's", 3.0, "c"),
                datum("time", 0.012, "s"),
                PerfData {
                    value: None,
                    ..datum("U", 0.0, "")
                },
                datum("x", -1500.0, ""),
            ]
        );
    }

    #[test]
    fn ranges_are_kept_as_written() {
        let p = PerfData::parse("'rta'=1ms;@10:20;~:30").unwrap();
        assert_eq!(p.warn.as_deref(), Some("@10:20"));
        assert_eq!(p.crit.as_deref(), Some("~:30"));
    }

    #[test]
    fn text_only_and_empty_output() {
        assert_eq!(
            PluginOutput::parse(b"CRITICAL: forced\n"),
            PluginOutput {
                text: "CRITICAL: forced".into(),
                perfdata: vec![],
                repeated: vec![],
            }
        );
        assert_eq!(PluginOutput::parse(b""), PluginOutput::default());
        // Long text without any `|` carries no data.
        let out = PluginOutput::parse(b"OK\nline=2 is text\n");
        assert!(out.perfdata.is_empty(), "{out:?}");
    }

    #[test]
    fn a_label_written_twice_keeps_its_first_value() {
        let out = PluginOutput::parse(b"OK | a=1 b=2 a=3\nlong text | 'b'=4 c=5\n");
        let data: Vec<(&str, Option<f64>)> = out
            .perfdata
            .iter()
            .map(|p| (p.label.as_str(), p.value))
            .collect();
        assert_eq!(data, [("a", Some(1.0)), ("b", Some(2.0)), ("c", Some(5.0))]);
        assert_eq!(out.repeated, ["a", "b"]);
    }

    #[test]
    fn garbage_is_skipped_not_fatal() {
        for item in [
            "=1", "a=", "a=b", "a=1x1", "'a=1", "a=1;;;x", "a=inf", "a=NaN",
        ] {
            let parsed = PerfData::parse(item);
            assert!(parsed.is_none() || item == "a=1;;;x", "{item}: {parsed:?}");
        }
        // A bad min is dropped, the datum kept.
        assert_eq!(PerfData::parse("a=1;;;x"), Some(datum("a", 1.0, "")));
    }

    #[test]
    fn written_back_as_plugins_write_it() {
        for text in [
            "load1=1.76;5;10;0",
            "'free space'=12%",
            "'it''s'=3c",
            "a=U",
            "b=2;;;0",
        ] {
            assert_eq!(PerfData::parse(text).unwrap().to_string(), text);
        }
    }
}
