"""Launch the imd matcher node.

    ros2 launch imd matcher.launch.py [config:=PATH] [model_dir:=DIR] [device:=cuda:0]
                                      [dtype:=f16] [namespace:=NS] [log_level:=info]

`config` is a ROS 2 parameter file (default: the package's config/matcher.yaml); `model_dir`,
`device` and `dtype` override `model.model_dir`, `model.device` and `model.dtype` from it when
given (empty means "keep the file's value").
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _node(context):
    overrides = {}
    for arg, param in (
        ("model_dir", "model.model_dir"),
        ("device", "model.device"),
        ("dtype", "model.dtype"),
    ):
        value = LaunchConfiguration(arg).perform(context)
        if value:
            overrides[param] = value
    return [
        Node(
            package="imd",
            executable="imd_matcher",
            name="imd_matcher",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=[LaunchConfiguration("config").perform(context), overrides],
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
            additional_env={"RUST_LOG": LaunchConfiguration("log_level").perform(context)},
        )
    ]


def generate_launch_description():
    default_config = os.path.join(
        get_package_share_directory("imd"), "config", "matcher.yaml"
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "config", default_value=default_config, description="ROS 2 parameter file"
            ),
            DeclareLaunchArgument(
                "model_dir", default_value="", description="IMD weights folder (see models/README.md)"
            ),
            DeclareLaunchArgument(
                "device", default_value="", description="cpu, cuda or cuda:N"
            ),
            DeclareLaunchArgument("dtype", default_value="", description="f32, f16 or bf16"),
            DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
            DeclareLaunchArgument("log_level", default_value="info", description="log level"),
            OpaqueFunction(function=_node),
        ]
    )
