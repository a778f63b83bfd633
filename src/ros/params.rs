//! ROS 2 parameters ⇄ [`ImdConfig`].
//!
//! Every leaf of the config is declared as a parameter under its dotted name
//! ([`ImdConfig::to_flat`]) with its default value and type. Overrides that `rcl` loaded from
//! `--params-file` / `-p name:=value` (r2r puts them in `Node::params` at creation) are type
//! checked against the declaration (an integer is accepted for a double), unknown names are
//! rejected (a typo must not silently fall back to a default), and the result is rebuilt with
//! [`ImdConfig::from_flat`], which also runs the config's cross-field checks.
//!
//! [`ImdParams`] implements r2r's [`RosParams`], so `Node::make_derived_parameter_handler`
//! serves `get/set/list/describe_parameters` and `get_parameter_types` from it; a `set` is
//! accepted only if the whole config still validates with the new value.

use std::collections::HashMap;

use r2r::indexmap::IndexMap;
use r2r::{Parameter, ParameterValue, RosParams};
use serde_json::Value;

use crate::config::{ConfigError, ImdConfig};

/// ROS-level parameters that are not part of [`ImdConfig`] and pass through untouched.
const ROS_PASSTHROUGH: &[&str] = &["use_sim_time"];
/// Name prefixes handled by rcl itself (QoS overrides), also passed through.
const ROS_PASSTHROUGH_PREFIXES: &[&str] = &["qos_overrides."];

/// Errors turning ROS parameters into a config.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    /// Overrides name parameters imd does not declare.
    #[error("unknown parameter(s) {names:?}; imd declares: {declared}")]
    Unknown {
        names: Vec<String>,
        declared: String,
    },
    /// An override has the wrong type.
    #[error("parameter {name}: got a {got}, expected a {expected}")]
    WrongType {
        name: String,
        expected: &'static str,
        got: &'static str,
    },
    /// A default value has no ROS parameter type (a bug in a config struct).
    #[error("parameter {name}: default {value} has no ROS parameter type")]
    Undeclarable { name: String, value: String },
    /// The values do not form a valid config.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// ROS parameter types we declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `bool`.
    Bool,
    /// `integer`.
    Integer,
    /// `double`.
    Double,
    /// `string`.
    String,
    /// `bool[]`.
    BoolArray,
    /// `integer[]`.
    IntegerArray,
    /// `double[]`.
    DoubleArray,
    /// `string[]`.
    StringArray,
}

impl ParamKind {
    /// ROS name of the type.
    pub fn name(self) -> &'static str {
        match self {
            ParamKind::Bool => "boolean",
            ParamKind::Integer => "integer",
            ParamKind::Double => "double",
            ParamKind::String => "string",
            ParamKind::BoolArray => "boolean array",
            ParamKind::IntegerArray => "integer array",
            ParamKind::DoubleArray => "double array",
            ParamKind::StringArray => "string array",
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Dotted name, e.g. `node.sync_tolerance_s`.
    pub name: String,
    /// Its type.
    pub kind: ParamKind,
    /// Its default.
    pub default: ParameterValue,
}

/// Declarations for every leaf of `defaults`, in config order.
pub fn declare(defaults: &ImdConfig) -> Result<Vec<ParamSpec>, ParamError> {
    let flat = defaults.to_flat();
    flat.iter()
        .map(|(name, value)| {
            let kind = match kind_of(value) {
                Some(k) => k,
                None if value.as_array().is_some_and(|a| a.is_empty()) => {
                    probe_empty_array(&flat, name).ok_or_else(|| ParamError::Undeclarable {
                        name: name.clone(),
                        value: value.to_string(),
                    })?
                }
                None => {
                    return Err(ParamError::Undeclarable {
                        name: name.clone(),
                        value: value.to_string(),
                    })
                }
            };
            let default = to_param(value, kind).ok_or_else(|| ParamError::Undeclarable {
                name: name.clone(),
                value: value.to_string(),
            })?;
            Ok(ParamSpec {
                name: name.clone(),
                kind,
                default,
            })
        })
        .collect()
}

fn kind_of(v: &Value) -> Option<ParamKind> {
    Some(match v {
        Value::Bool(_) => ParamKind::Bool,
        Value::Number(n) if n.is_f64() => ParamKind::Double,
        Value::Number(_) => ParamKind::Integer,
        Value::String(_) => ParamKind::String,
        Value::Array(a) if !a.is_empty() => match kind_of(&a[0])? {
            ParamKind::Bool => ParamKind::BoolArray,
            ParamKind::Integer if a.iter().all(|x| x.is_i64() || x.is_u64()) => {
                ParamKind::IntegerArray
            }
            ParamKind::Integer | ParamKind::Double => ParamKind::DoubleArray,
            ParamKind::String => ParamKind::StringArray,
            _ => return None,
        },
        _ => return None,
    })
}

/// An empty default list carries no element type: find the one the config accepts by trying
/// a one-element list of each type (string, bool, non-integer double, integer — in that order,
/// since a double list would also accept integers).
fn probe_empty_array(flat: &[(String, Value)], name: &str) -> Option<ParamKind> {
    let candidates = [
        (serde_json::json!(["x"]), ParamKind::StringArray),
        (serde_json::json!([true]), ParamKind::BoolArray),
        (serde_json::json!([0.5]), ParamKind::DoubleArray),
        (serde_json::json!([1]), ParamKind::IntegerArray),
    ];
    candidates.into_iter().find_map(|(probe, kind)| {
        let mut root = serde_json::Map::new();
        for (n, v) in flat {
            let v = if n == name { probe.clone() } else { v.clone() };
            insert_dotted(&mut root, n, v);
        }
        // Only the type matters here, so deserialize without the cross-field validation.
        serde_json::from_value::<ImdConfig>(Value::Object(root))
            .ok()
            .map(|_| kind)
    })
}

fn insert_dotted(root: &mut serde_json::Map<String, Value>, name: &str, value: Value) {
    let mut map = root;
    let mut parts = name.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        let entry = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
        match entry.as_object_mut() {
            Some(m) => map = m,
            None => return,
        }
    }
}

/// A JSON value as a ROS parameter of `kind` (`None` if it does not fit).
pub fn to_param(v: &Value, kind: ParamKind) -> Option<ParameterValue> {
    let arr = || v.as_array();
    Some(match kind {
        ParamKind::Bool => ParameterValue::Bool(v.as_bool()?),
        ParamKind::Integer => ParameterValue::Integer(v.as_i64()?),
        ParamKind::Double => ParameterValue::Double(v.as_f64()?),
        ParamKind::String => ParameterValue::String(v.as_str()?.to_string()),
        ParamKind::BoolArray => {
            ParameterValue::BoolArray(arr()?.iter().map(Value::as_bool).collect::<Option<_>>()?)
        }
        ParamKind::IntegerArray => {
            ParameterValue::IntegerArray(arr()?.iter().map(Value::as_i64).collect::<Option<_>>()?)
        }
        ParamKind::DoubleArray => {
            ParameterValue::DoubleArray(arr()?.iter().map(Value::as_f64).collect::<Option<_>>()?)
        }
        ParamKind::StringArray => ParameterValue::StringArray(
            arr()?
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<_>>()?,
        ),
    })
}

/// A ROS parameter value as JSON for a parameter of `kind`, accepting integers where doubles
/// are declared (YAML `5` for `5.0`). `None` on a type mismatch.
pub fn to_json(v: &ParameterValue, kind: ParamKind) -> Option<Value> {
    use ParameterValue as P;
    Some(match (kind, v) {
        (ParamKind::Bool, P::Bool(b)) => Value::from(*b),
        (ParamKind::Integer, P::Integer(i)) => Value::from(*i),
        (ParamKind::Double, P::Double(d)) => Value::from(*d),
        (ParamKind::Double, P::Integer(i)) => Value::from(*i as f64),
        (ParamKind::String, P::String(s)) => Value::from(s.clone()),
        (ParamKind::BoolArray, P::BoolArray(a)) => Value::from(a.clone()),
        (ParamKind::IntegerArray, P::IntegerArray(a)) => Value::from(a.clone()),
        (ParamKind::DoubleArray, P::DoubleArray(a)) => Value::from(a.clone()),
        (ParamKind::DoubleArray, P::IntegerArray(a)) => {
            Value::from(a.iter().map(|&i| i as f64).collect::<Vec<f64>>())
        }
        (ParamKind::StringArray, P::StringArray(a)) => Value::from(a.clone()),
        // An empty YAML list (`depth_topics: []`) reaches the node untyped: rcl's parameter
        // file parser cannot tell the element type of `[]`, so it arrives as "not set".
        (
            ParamKind::BoolArray
            | ParamKind::IntegerArray
            | ParamKind::DoubleArray
            | ParamKind::StringArray,
            P::NotSet,
        ) => Value::Array(Vec::new()),
        _ => return None,
    })
}

/// The declared parameters with their current values, and the config they form.
#[derive(Debug, Clone)]
pub struct ImdParams {
    specs: Vec<ParamSpec>,
    index: HashMap<String, usize>,
    values: Vec<ParameterValue>,
    config: ImdConfig,
}

impl ImdParams {
    /// Declare every config leaf with `defaults` and apply `overrides` (name → value, as
    /// r2r loaded them). Fails on unknown names, wrong types or an invalid config.
    pub fn new<'a, I>(defaults: &ImdConfig, overrides: I) -> Result<Self, ParamError>
    where
        I: IntoIterator<Item = (&'a str, &'a ParameterValue)>,
    {
        let specs = declare(defaults)?;
        let index: HashMap<String, usize> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        let mut values: Vec<ParameterValue> = specs.iter().map(|s| s.default.clone()).collect();
        let mut unknown = Vec::new();
        for (name, value) in overrides {
            match index.get(name) {
                Some(&i) => {
                    let kind = specs[i].kind;
                    let json = to_json(value, kind).ok_or_else(|| ParamError::WrongType {
                        name: name.to_string(),
                        expected: kind.name(),
                        got: value.type_name(),
                    })?;
                    // Store in the declared type (e.g. an integer given for a double).
                    values[i] = to_param(&json, kind).unwrap_or_else(|| value.clone());
                }
                None if is_passthrough(name) => {}
                None => unknown.push(name.to_string()),
            }
        }
        if !unknown.is_empty() {
            unknown.sort();
            return Err(ParamError::Unknown {
                names: unknown,
                declared: specs
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let config = build_config(&specs, &values).map_err(|e| {
            // serde's message lacks the parameter name: find an override that fails alone.
            let defaults: Vec<ParameterValue> = specs.iter().map(|s| s.default.clone()).collect();
            let culprit = (0..specs.len())
                .filter(|&i| values[i] != defaults[i])
                .find(|&i| {
                    let mut one = defaults.clone();
                    one[i] = values[i].clone();
                    build_config(&specs, &one).is_err()
                });
            match culprit {
                Some(i) => ParamError::Config(ConfigError::Invalid {
                    field: specs[i].name.clone(),
                    reason: format!("{:?}: {e}", values[i]),
                }),
                None => ParamError::Config(e),
            }
        })?;
        Ok(ImdParams {
            specs,
            index,
            values,
            config,
        })
    }

    /// The config the current values form.
    pub fn config(&self) -> &ImdConfig {
        &self.config
    }

    /// The declarations.
    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    /// Current value of a declared parameter.
    pub fn value(&self, name: &str) -> Option<&ParameterValue> {
        self.index.get(name).map(|&i| &self.values[i])
    }

    /// The config with `name` set to `value`, or why not.
    fn with(
        &self,
        name: &str,
        value: &ParameterValue,
    ) -> Result<(usize, ParameterValue, ImdConfig), String> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| format!("{name} is not an imd parameter"))?;
        let kind = self.specs[i].kind;
        let json = to_json(value, kind)
            .ok_or_else(|| format!("got a {}, expected a {}", value.type_name(), kind.name()))?;
        let stored = to_param(&json, kind).unwrap_or_else(|| value.clone());
        let mut values = self.values.clone();
        values[i] = stored.clone();
        let config = build_config(&self.specs, &values).map_err(|e| format!("{value:?}: {e}"))?;
        Ok((i, stored, config))
    }

    /// Set one parameter, keeping the old value if the config would become invalid.
    pub fn set(&mut self, name: &str, value: &ParameterValue) -> Result<(), String> {
        let (i, stored, config) = self.with(name, value)?;
        self.values[i] = stored;
        self.config = config;
        Ok(())
    }
}

fn is_passthrough(name: &str) -> bool {
    ROS_PASSTHROUGH.contains(&name) || ROS_PASSTHROUGH_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn build_config(specs: &[ParamSpec], values: &[ParameterValue]) -> Result<ImdConfig, ConfigError> {
    let flat = specs.iter().zip(values).map(|(s, v)| {
        // Values were type checked on the way in, so conversion succeeds.
        (s.name.clone(), to_json(v, s.kind).unwrap_or(Value::Null))
    });
    ImdConfig::from_flat(flat)
}

/// Parameter descriptions must be `&'static str` in r2r; each is leaked once per name for the
/// life of the process (a few dozen short strings).
fn description(spec: &ParamSpec) -> &'static str {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<HashMap<String, &'static str>>> =
        std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache.entry(spec.name.clone()).or_insert_with(|| {
        let text = format!(
            "imd config `{}` ({}); default {:?}. See config/matcher.yaml and docs/ros.md.",
            spec.name,
            spec.kind.name(),
            spec.default
        );
        Box::leak(text.into_boxed_str())
    })
}

fn conv_err(name: &str, msg: String) -> r2r::Error {
    r2r::Error::ParameterValueConv {
        name: name.to_string(),
        msg,
    }
}

impl RosParams for ImdParams {
    fn register_parameters(
        &mut self,
        prefix: &str,
        _param: Option<Parameter>,
        params: &mut IndexMap<String, Parameter>,
    ) -> r2r::Result<()> {
        for (spec, value) in self.specs.iter().zip(&self.values) {
            let name = if prefix.is_empty() {
                spec.name.clone()
            } else {
                format!("{prefix}.{}", spec.name)
            };
            // Overrides were applied in `new`; re-insert in declaration order with our value.
            params.shift_remove(&name);
            params.insert(
                name,
                Parameter {
                    value: value.clone(),
                    description: description(spec),
                },
            );
        }
        Ok(())
    }

    fn get_parameter(&mut self, param_name: &str) -> r2r::Result<ParameterValue> {
        self.value(param_name)
            .cloned()
            .ok_or_else(|| r2r::Error::InvalidParameterName {
                name: param_name.to_string(),
            })
    }

    fn set_parameter(&mut self, param_name: &str, param_val: &ParameterValue) -> r2r::Result<()> {
        if is_passthrough(param_name) {
            return Ok(());
        }
        self.set(param_name, param_val)
            .map_err(|msg| conv_err(param_name, msg))
    }

    fn check_parameter(&self, param_name: &str, param_val: &ParameterValue) -> r2r::Result<()> {
        if is_passthrough(param_name) {
            return Ok(());
        }
        self.with(param_name, param_val)
            .map(|_| ())
            .map_err(|msg| conv_err(param_name, msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(overrides: &[(&str, ParameterValue)]) -> Result<ImdParams, ParamError> {
        ImdParams::new(
            &ImdConfig::default(),
            overrides.iter().map(|(n, v)| (*n, v)),
        )
    }

    #[test]
    fn live_parameters_that_set_the_time_per_frame_are_bounded() {
        let mut p = params(&[]).unwrap();
        for (name, value) in [
            ("tracker.relocalization_top_k", 1_000_000i64),
            ("tracker.coverage_grid", 100_000),
        ] {
            let e = p.set(name, &ParameterValue::Integer(value)).unwrap_err();
            assert!(e.contains(name), "{e}");
        }
        assert_eq!(p.config().tracker.relocalization_top_k, 3);
        p.set("tracker.relocalization_top_k", &ParameterValue::Integer(8))
            .unwrap();
        assert_eq!(p.config().tracker.relocalization_top_k, 8);
    }

    #[test]
    fn a_live_model_parameter_is_accepted_only_if_it_will_work() {
        let mut p = params(&[]).unwrap();
        let e = p
            .set("model.coarse_threshold", &ParameterValue::Double(5.0))
            .unwrap_err();
        assert!(
            e.contains("model.coarse_threshold") && e.contains("[0, 1)"),
            "{e}"
        );
        assert_eq!(p.config().model.coarse_threshold, 0.2);
        p.set("model.coarse_threshold", &ParameterValue::Double(0.3))
            .unwrap();
        assert_eq!(p.config().model.coarse_threshold, 0.3);
    }

    #[test]
    fn declares_every_config_leaf_with_its_type_and_default() {
        let specs = declare(&ImdConfig::default()).unwrap();
        let flat = ImdConfig::default().to_flat();
        assert_eq!(specs.len(), flat.len());
        let get = |n: &str| specs.iter().find(|s| s.name == n).unwrap().clone();
        let tol = get("node.sync_tolerance_s");
        assert_eq!(tol.kind, ParamKind::Double);
        assert_eq!(tol.default, ParameterValue::Double(0.02));
        assert_eq!(
            get("node.qos").default,
            ParameterValue::String("sensor_data".into())
        );
        assert_eq!(get("node.publish_tf").kind, ParamKind::Bool);
        // Empty default lists get their element type from the config schema.
        assert_eq!(get("cameras.image_topics").kind, ParamKind::StringArray);
        assert_eq!(
            get("cameras.names").default,
            ParameterValue::StringArray(vec![])
        );
        // Every declared default round-trips into the default config.
        let p = params(&[]).unwrap();
        assert_eq!(p.config(), &ImdConfig::default());
    }

    #[test]
    fn overrides_build_the_config_with_type_checks() {
        let topics =
            ParameterValue::StringArray(vec!["/a/image".into(), "/b/image/compressed".into()]);
        let infos = ParameterValue::StringArray(vec!["/a/info".into(), "/b/info".into()]);
        let p = params(&[
            ("cameras.image_topics", topics),
            ("cameras.camera_info_topics", infos),
            // An integer for a double parameter (YAML `5`) is accepted.
            ("node.max_rate_hz", ParameterValue::Integer(5)),
            ("node.qos", ParameterValue::String("reliable".into())),
            ("use_sim_time", ParameterValue::Bool(true)),
            (
                "qos_overrides./tf.publisher.depth",
                ParameterValue::Integer(3),
            ),
            // `[]` in a parameter file arrives untyped.
            ("cameras.depth_topics", ParameterValue::NotSet),
            ("cameras.right_from_left", ParameterValue::NotSet),
        ])
        .unwrap();
        let c = p.config();
        assert!(c.cameras.depth_topics.is_empty() && c.cameras.right_from_left.is_empty());
        assert_eq!(c.cameras.image_topics[1], "/b/image/compressed");
        assert_eq!(c.node.max_rate_hz, 5.0);
        assert_eq!(c.node.qos, crate::config::QosPreset::Reliable);
        assert_eq!(
            p.value("node.max_rate_hz"),
            Some(&ParameterValue::Double(5.0))
        );

        let e = params(&[("node.publish_tf", ParameterValue::String("yes".into()))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node.publish_tf") && e.contains("expected a boolean"),
            "{e}"
        );
        let e = params(&[("node.sync_tolerance", ParameterValue::Double(0.1))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node.sync_tolerance") && e.contains("node.sync_tolerance_s"),
            "{e}"
        );
        // Cross-field validation runs: camera_info topics must match image topics.
        let e = params(&[(
            "cameras.image_topics",
            ParameterValue::StringArray(vec!["/a".into()]),
        )])
        .unwrap_err()
        .to_string();
        assert!(e.contains("cameras.camera_info_topics"), "{e}");
        // Errors serde reports without a path still name the parameter.
        let e = params(&[("node.qos", ParameterValue::String("fast".into()))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("node.qos") && e.contains("fast"), "{e}");
    }

    #[test]
    fn serves_r2r_parameter_requests() {
        let mut p = params(&[]).unwrap();
        let mut table: IndexMap<String, Parameter> = IndexMap::new();
        // rcl put a file override here; registration replaces it with our (validated) value.
        table.insert(
            "node.max_rate_hz".into(),
            Parameter::new(ParameterValue::Integer(2)),
        );
        p.register_parameters("", None, &mut table).unwrap();
        assert_eq!(table.len(), p.specs().len());
        assert_eq!(table.get_index(0).unwrap().0, &p.specs()[0].name);
        let d = table["node.sync_tolerance_s"].description;
        assert!(d.contains("double") && d.contains("0.02"), "{d}");

        assert_eq!(
            p.get_parameter("node.sync_tolerance_s").unwrap(),
            ParameterValue::Double(0.02)
        );
        assert!(p.get_parameter("nope").is_err());
        // A valid set changes the config; an invalid one is refused with a reason and
        // changes nothing.
        p.set_parameter("node.sync_tolerance_s", &ParameterValue::Double(0.05))
            .unwrap();
        assert_eq!(p.config().node.sync_tolerance_s, 0.05);
        let e = p
            .check_parameter("node.sync_tolerance_s", &ParameterValue::Double(-1.0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("node.sync_tolerance_s"), "{e}");
        assert!(p
            .set_parameter("node.sync_tolerance_s", &ParameterValue::Bool(true))
            .is_err());
        assert_eq!(p.config().node.sync_tolerance_s, 0.05);
        assert!(p
            .check_parameter("use_sim_time", &ParameterValue::Bool(true))
            .is_ok());
    }
}
