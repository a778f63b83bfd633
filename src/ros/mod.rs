//! The r2r ROS 2 node: parameters, subscriptions, publishers and message conversions.
