//! The node's published topics, declared once: name, message type, QoS and the setting that
//! enables each. The ROS node creates its publishers from [`OUTPUT_TOPICS`], `imd replay`
//! names the topics of its output bag from it, and a test holds the README's topic table
//! against [`OutputTopic::readme_row`].

use super::messages::NODE_NAME;
use crate::config::NodeConfig;

/// One of the node's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Matches with inlier flags.
    Correspondences,
    /// Relative pose with covariance.
    Odometry,
    /// Keyframe → current camera transform.
    Tf,
    /// Image with the matches drawn.
    DebugImage,
    /// Status reports.
    Diagnostics,
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
    /// `node.publish_tf`.
    PublishTf,
    /// `node.publish_debug_image`.
    PublishDebugImage,
}

/// A published topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputTopic {
    /// Which output.
    pub output: Output,
    /// Name as the node declares it: `~/…` is relative to the node, `/…` absolute.
    pub name: &'static str,
    /// ROS 2 message type.
    pub message_type: &'static str,
    /// Publisher QoS.
    pub qos: OutputQos,
    /// The setting that enables it.
    pub enabled_by: EnabledBy,
    /// When a message goes out (the README's "When" column, before the enabling setting).
    pub when: &'static str,
}

/// Every published topic, in [`Output`] order.
pub const OUTPUT_TOPICS: [OutputTopic; 5] = [
    OutputTopic {
        output: Output::Correspondences,
        name: "~/correspondences",
        message_type: "sensor_msgs/msg/PointCloud2",
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::Always,
        when: "every processed frame that had a keyframe to match (not a camera's first frame)",
    },
    OutputTopic {
        output: Output::Odometry,
        name: "~/odometry",
        message_type: "nav_msgs/msg/Odometry",
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::Always,
        when: "every processed frame",
    },
    OutputTopic {
        output: Output::Tf,
        name: "/tf",
        message_type: "tf2_msgs/msg/TFMessage",
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::PublishTf,
        when: "every processed frame",
    },
    OutputTopic {
        output: Output::DebugImage,
        name: "~/debug_image",
        message_type: "sensor_msgs/msg/Image",
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::PublishDebugImage,
        when: "as `~/correspondences`",
    },
    OutputTopic {
        output: Output::Diagnostics,
        name: "/diagnostics",
        message_type: "diagnostic_msgs/msg/DiagnosticArray",
        qos: DEFAULT_QOS,
        enabled_by: EnabledBy::Always,
        when: "node: 1 Hz, all statuses; replay: one array per processed or failed frame",
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
            EnabledBy::PublishTf => Some("node.publish_tf"),
            EnabledBy::PublishDebugImage => Some("node.publish_debug_image"),
        }
    }

    /// Whether `node` switches the output on.
    pub fn enabled(self, node: &NodeConfig) -> bool {
        match self {
            EnabledBy::Always => true,
            EnabledBy::PublishTf => node.publish_tf,
            EnabledBy::PublishDebugImage => node.publish_debug_image,
        }
    }
}

impl OutputTopic {
    /// The name with `~/` resolved for a node in the root namespace (`/imd_matcher/…`), as in
    /// a replay's output bag.
    pub fn resolved(&self) -> String {
        match self.name.strip_prefix("~/") {
            Some(rest) => format!("/{NODE_NAME}/{rest}"),
            None => self.name.to_string(),
        }
    }

    /// The README's row for this topic: `| name | type | when[, when `setting`] |`.
    pub fn readme_row(&self) -> String {
        let when = match self.enabled_by.setting() {
            Some(s) => format!("{}, when `{s}`", self.when),
            None => self.when.to_string(),
        };
        format!("| `{}` | `{}` | {when} |", self.name, self.message_type)
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
        let node = NodeConfig {
            publish_tf: false,
            publish_debug_image: true,
            ..Default::default()
        };
        assert!(
            !EnabledBy::PublishTf.enabled(&node) && EnabledBy::PublishDebugImage.enabled(&node)
        );
    }
}
