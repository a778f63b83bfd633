//! The node's published topics, declared once: name, message type, QoS and the setting that
//! enables each. The ROS node creates its publishers from [`OUTPUT_TOPICS`], `imd replay`
//! names the topics of its output bag from it, and a test holds docs/ros.md's topic table
//! against [`OutputTopic::readme_row`].
//!
//! A frame's messages travel as [`Published`] values (an [`Output`] and its [`OutputMessage`]);
//! the node and the replay writer iterate them, so adding a topic is a row here plus the code
//! that builds its message (`super::messages`).

use super::messages::NODE_NAME;
use crate::config::{MapConfig, MapMode, NodeConfig};
use crate::io::bag::{BagError, BagOutput, CdrMessage};

/// One of the node's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Matches with inlier flags.
    Correspondences,
    /// Keyframe-relative pose with covariance.
    Odometry,
    /// `odom → base_link`, `map → odom` (localized in a saved map), and (debug) keyframe →
    /// current camera transforms.
    Tf,
    /// Image with the matches drawn.
    DebugImage,
    /// Status reports.
    Diagnostics,
    /// The robot's chained pose in `odom` (metric cameras).
    Odom,
    /// Every metric camera's chained optical-frame pose in `odom`.
    CameraOdom,
    /// The robot's recent poses in `odom`.
    Path,
    /// The robot's pose in a saved map (localization).
    MapPose,
    /// The robot's chained pose in `odom` as a pose with covariance (`~/odom`'s pose).
    OdomPose,
}

/// Publisher QoS of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputQos {
    /// Reliable, keep last `depth` (ROS 2's default profile with depth 10).
    Reliable {
        /// History depth.
        depth: usize,
    },
}

/// The setting that switches an output on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnabledBy {
    /// Always published.
    Always,
    /// `node.publish_odom_tf` (the robot's transform), `map.publish_tf` (`map → odom`) or
    /// `node.publish_tf` (keyframes).
    PublishTf,
    /// `node.path_length` > 0.
    PathLength,
    /// `node.publish_debug_image`.
    PublishDebugImage,
    /// `map.mode: localization` (the node with a `map.path`, `imd replay --map`).
    MapLocalization,
}

/// A published topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputTopic {
    /// Which output.
    pub output: Output,
    /// Name as the node declares it: `~/…` is relative to the node, `/…` absolute.
    pub name: &'static str,
    /// Its message type.
    pub kind: MessageKind,
    /// Publisher QoS.
    pub qos: OutputQos,
    /// The setting that enables it.
    pub enabled_by: EnabledBy,
    /// When a message goes out (docs/ros.md's "When" column, before the enabling setting).
    pub when: &'static str,
}

/// Every published topic, in [`Output`] order.
pub const OUTPUT_TOPICS: [OutputTopic; 10] = [
    OutputTopic {
        output: Output::Correspondences,
        name: "~/correspondences",
        kind: MessageKind::PointCloud2,
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::Always,
        when: "every processed frame that had a keyframe to match (not a camera's first frame)",
    },
    OutputTopic {
        output: Output::Odometry,
        name: "~/odometry",
        kind: MessageKind::Odometry,
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::Always,
        when: "every processed frame",
    },
    OutputTopic {
        output: Output::Tf,
        name: "/tf",
        kind: MessageKind::TFMessage,
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::PublishTf,
        when: "`odom → base_link` with every `~/odom`; `map → odom` with every `~/odom` once \
               the odometry camera localized in the map (the identity from the first `~/odom` \
               while mapping); keyframe → `<camera>/current` (debug) \
               with every verified pose or new keyframe",
    },
    OutputTopic {
        output: Output::DebugImage,
        name: "~/debug_image",
        kind: MessageKind::Image,
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::PublishDebugImage,
        when: "as `~/correspondences`",
    },
    OutputTopic {
        output: Output::Diagnostics,
        name: "/diagnostics",
        kind: MessageKind::DiagnosticArray,
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::Always,
        when: "node: 1 Hz, all statuses; replay: one array per processed or failed frame",
    },
    OutputTopic {
        output: Output::Odom,
        name: "~/odom",
        kind: MessageKind::Odometry,
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::Always,
        when: "every frame of the odometry camera (`node.odom_camera`, metric)",
    },
    OutputTopic {
        output: Output::CameraOdom,
        name: "~/camera_odom",
        kind: MessageKind::Odometry,
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::Always,
        when: "every frame of every metric camera",
    },
    OutputTopic {
        output: Output::Path,
        name: "~/path",
        kind: MessageKind::Path,
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::PathLength,
        when: "as `~/odom`",
    },
    OutputTopic {
        output: Output::MapPose,
        name: "~/map_pose",
        kind: MessageKind::PoseWithCovarianceStamped,
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::MapLocalization,
        when: "every frame of a metric camera localized in the saved map: the robot's base in \
               `map.frame_id`",
    },
    OutputTopic {
        output: Output::OdomPose,
        name: "~/odom_pose",
        kind: MessageKind::PoseWithCovarianceStamped,
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::Always,
        when: "as `~/odom`, with its pose and covariance: for consumers that take a pose \
               (robot_localization's `pose0`, RViz's covariance display)",
    },
];

const DEFAULT_QOS: OutputQos = OutputQos::Reliable { depth: 10 };

impl Output {
    /// This output's topic.
    pub fn topic(self) -> &'static OutputTopic {
        &OUTPUT_TOPICS[self as usize]
    }
}

impl EnabledBy {
    /// The configuration key, `None` for [`EnabledBy::Always`].
    pub fn setting(self) -> Option<&'static str> {
        match self {
            EnabledBy::Always => None,
            EnabledBy::PublishTf => {
                Some("node.publish_odom_tf`, `map.publish_tf` or `node.publish_tf")
            }
            EnabledBy::PathLength => Some("node.path_length` > `0"),
            EnabledBy::PublishDebugImage => Some("node.publish_debug_image"),
            EnabledBy::MapLocalization => Some("map.mode: localization"),
        }
    }

    /// Whether the node's and the map's settings switch the output on.
    pub fn enabled(self, node: &NodeConfig, map: &MapConfig) -> bool {
        match self {
            EnabledBy::Always => true,
            EnabledBy::PublishTf => node.publish_odom_tf || node.publish_tf || map.publish_tf,
            EnabledBy::PathLength => node.path_length > 0,
            EnabledBy::PublishDebugImage => node.publish_debug_image,
            EnabledBy::MapLocalization => map.mode == MapMode::Localization,
        }
    }
}

impl OutputTopic {
    /// The ROS 2 message type, e.g. `nav_msgs/msg/Odometry`.
    pub fn message_type(&self) -> &'static str {
        self.kind.type_name()
    }

    /// The name with `~/` resolved for a node in the root namespace (`/imd_matcher/…`), as in
    /// a replay's output bag.
    pub fn resolved(&self) -> String {
        match self.name.strip_prefix("~/") {
            Some(rest) => format!("/{NODE_NAME}/{rest}"),
            None => self.name.to_string(),
        }
    }

    /// docs/ros.md's row for this topic: `| name | type | when[, when `setting`] |`.
    pub fn readme_row(&self) -> String {
        let when = match self.enabled_by.setting() {
            Some(s) => format!("{}, when `{s}`", self.when),
            None => self.when.to_string(),
        };
        format!("| `{}` | `{}` | {when} |", self.name, self.message_type())
    }
}

/// The message types outputs carry: one variant per type, in [`MessageKind`] and
/// [`OutputMessage`] alike (the ROS node keeps its publishers by the same list).
macro_rules! output_messages {
    ($($variant:ident($ty:ty)),+ $(,)?) => {
        /// The ROS 2 message type of an output.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum MessageKind {
            $(
                #[doc = concat!("`", stringify!($ty), "`.")]
                $variant,
            )+
        }

        /// One output's message.
        // One value per topic and frame, moved once: a box per message would cost more than
        // the size difference between an odometry and a point cloud header.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        pub enum OutputMessage {
            $(
                #[doc = concat!("`", stringify!($ty), "`.")]
                $variant($ty),
            )+
        }

        impl MessageKind {
            /// The ROS 2 type name, e.g. `nav_msgs/msg/Odometry`.
            pub fn type_name(self) -> &'static str {
                match self {
                    $(MessageKind::$variant => <$ty as CdrMessage>::TYPE_NAME,)+
                }
            }
        }

        impl OutputMessage {
            /// Its type.
            pub fn kind(&self) -> MessageKind {
                match self {
                    $(OutputMessage::$variant(_) => MessageKind::$variant,)+
                }
            }

            /// Append it to `bag` on `topic` at `log_time_ns`.
            pub fn write_to(
                &self,
                bag: &mut BagOutput,
                topic: &str,
                log_time_ns: u64,
            ) -> Result<(), BagError> {
                match self {
                    $(OutputMessage::$variant(m) => bag.write(topic, log_time_ns, m),)+
                }
            }
        }

        $(
            impl From<$ty> for OutputMessage {
                fn from(m: $ty) -> Self {
                    OutputMessage::$variant(m)
                }
            }
        )+
    };
}

/// Calls `$generator!` with the message types outputs carry, `Variant(path::to::Type)`: the
/// one list behind [`MessageKind`], [`OutputMessage`] and the ROS node's typed publishers.
macro_rules! for_each_output_message {
    ($generator:ident) => {
        $generator! {
            PointCloud2($crate::io::msgs::sensor_msgs::PointCloud2),
            Odometry($crate::io::msgs::nav_msgs::Odometry),
            TFMessage($crate::io::msgs::tf2_msgs::TFMessage),
            Image($crate::io::msgs::sensor_msgs::Image),
            DiagnosticArray($crate::io::msgs::diagnostic_msgs::DiagnosticArray),
            Path($crate::io::msgs::nav_msgs::Path),
            PoseWithCovarianceStamped($crate::io::msgs::geometry_msgs::PoseWithCovarianceStamped),
        }
    };
}
#[allow(unused_imports)] // the ROS node's publishers (feature `ros`)
pub(crate) use for_each_output_message;

for_each_output_message!(output_messages);

/// A message for one output topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The topic (its row of [`OUTPUT_TOPICS`]).
    pub output: Output,
    /// The message, of the row's type.
    pub message: OutputMessage,
}

impl Published {
    /// `message` for `output`. The type must be the row's: a mismatch is a bug in the code
    /// that builds the message (the messages' tests check every builder).
    pub fn new(output: Output, message: impl Into<OutputMessage>) -> Self {
        let message = message.into();
        debug_assert_eq!(
            message.kind(),
            output.topic().kind,
            "{} carries {}",
            output.topic().name,
            output.topic().message_type()
        );
        Published { output, message }
    }

    /// The topic's row.
    pub fn topic(&self) -> &'static OutputTopic {
        self.output.topic()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_output_order_and_resolves_names() {
        for (k, t) in OUTPUT_TOPICS.iter().enumerate() {
            assert_eq!(t.output as usize, k, "{}", t.name);
            assert_eq!(t.output.topic(), t);
        }
        assert_eq!(Output::Odometry.topic().resolved(), "/imd_matcher/odometry");
        assert_eq!(Output::Tf.topic().resolved(), "/tf");
        assert_eq!(Output::MapPose.topic().resolved(), "/imd_matcher/map_pose");
        let node = NodeConfig {
            publish_tf: false,
            publish_odom_tf: false,
            publish_debug_image: true,
            path_length: 0,
            ..Default::default()
        };
        let no_map_tf = MapConfig {
            publish_tf: false,
            ..Default::default()
        };
        assert!(
            !EnabledBy::PublishTf.enabled(&node, &no_map_tf)
                && EnabledBy::PublishDebugImage.enabled(&node, &no_map_tf)
        );
        assert!(!EnabledBy::PathLength.enabled(&node, &no_map_tf));
        // Any of the three transforms switches `/tf` on.
        for (odom, keyframes, map) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            let node = NodeConfig {
                publish_tf: keyframes,
                publish_odom_tf: odom,
                ..node.clone()
            };
            let map = MapConfig {
                publish_tf: map,
                ..Default::default()
            };
            assert!(EnabledBy::PublishTf.enabled(&node, &map));
        }
        // `~/map_pose`: localizing in a map only.
        let localizing = MapConfig {
            path: "/maps/lab".into(),
            mode: MapMode::Localization,
            ..Default::default()
        };
        assert!(EnabledBy::MapLocalization.enabled(&node, &localizing));
        let mapping = MapConfig {
            mode: MapMode::Mapping,
            ..localizing.clone()
        };
        assert!(!EnabledBy::MapLocalization.enabled(&node, &mapping));
    }
}
