#!/usr/bin/env python3
"""Check `launch/matcher.launch.py` without `launch` / `launch_ros` (not on PyPI).

Loads the launch file against minimal stand-ins of the few launch APIs it uses, evaluates its
`OpaqueFunction` with the given launch arguments, and turns the resulting `Node` action into a
command line the way launch_ros does (executable found under `<prefix>/lib/<package>/`, the
node's own `arguments`, then `--ros-args -r __node:=<name>`, `-r __ns:=<ns>` when given,
`--params-file` for each parameter file, a generated parameter file for a dict of parameters,
`-r from:=to` per remapping). Prints that command line as JSON, with the environment additions.
What it cannot check: launch's own process handling and substitution engine, `output=`,
signals on Ctrl-C — those need a real `ros2 launch`.

    check_launch.py --install INSTALL_SPACE [name:=value ...]
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context.launch_configurations[self.name]


def perform(value, context):
    if isinstance(value, LaunchConfiguration):
        return value.perform(context)
    if isinstance(value, (list, tuple)):
        return "".join(perform(v, context) for v in value)
    return value


class DeclareLaunchArgument:
    def __init__(self, name, default_value=None, description=""):
        self.name, self.default_value, self.description = name, default_value, description


class OpaqueFunction:
    def __init__(self, function):
        self.function = function


class LaunchDescription:
    def __init__(self, entities):
        self.entities = entities


class Node:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class Context:
    def __init__(self, configurations):
        self.launch_configurations = configurations


def install_stubs(install):
    launch = types.ModuleType("launch")
    launch.LaunchDescription = LaunchDescription
    actions = types.ModuleType("launch.actions")
    actions.DeclareLaunchArgument = DeclareLaunchArgument
    actions.OpaqueFunction = OpaqueFunction
    subs = types.ModuleType("launch.substitutions")
    subs.LaunchConfiguration = LaunchConfiguration
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = Node
    sys.modules.update(
        {
            "launch": launch,
            "launch.actions": actions,
            "launch.substitutions": subs,
            "launch_ros": launch_ros,
            "launch_ros.actions": ros_actions,
        }
    )
    # ament_index_python is the real one (on PyPI); point it at the install space.
    os.environ["AMENT_PREFIX_PATH"] = install + os.pathsep + os.environ.get("AMENT_PREFIX_PATH", "")


def nest(flat):
    """{'a.b': 1} -> {'a': {'b': 1}} (ROS parameter files nest dotted names)."""
    out = {}
    for k, v in flat.items():
        d = out
        parts = k.split(".")
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = v
    return out


def command_line(node, context, tmpdir):
    from ament_index_python.packages import get_package_prefix

    kw = node.kwargs
    package, executable = kw["package"], kw["executable"]
    exe = os.path.join(get_package_prefix(package), "lib", package, executable)
    if not os.access(exe, os.X_OK):
        raise SystemExit(f"{exe}: not an executable")
    cmd = [exe] + [perform(a, context) for a in kw.get("arguments", [])]
    cmd += ["--ros-args"]
    name = perform(kw.get("name"), context)
    if name:
        cmd += ["-r", f"__node:={name}"]
    ns = perform(kw.get("namespace"), context)
    if ns:
        cmd += ["-r", f"__ns:={ns if ns.startswith('/') else '/' + ns}"]
    for i, p in enumerate(kw.get("parameters", [])):
        if isinstance(p, dict):
            if not p:
                continue
            import yaml

            path = os.path.join(tmpdir, f"params_{i}.yaml")
            with open(path, "w") as f:
                yaml.safe_dump({"/**": {"ros__parameters": nest(p)}}, f)
            cmd += ["--params-file", path]
        else:
            cmd += ["--params-file", perform(p, context)]
    for src, dst in kw.get("remappings", []):
        cmd += ["-r", f"{perform(src, context)}:={perform(dst, context)}"]
    env = {k: perform(v, context) for k, v in kw.get("additional_env", {}).items()}
    return cmd, env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--install", required=True, help="colcon install space with imd")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("args", nargs="*", help="launch arguments name:=value")
    a = ap.parse_args()
    install_stubs(os.path.abspath(a.install))
    spec = importlib.util.spec_from_file_location(
        "matcher_launch", os.path.join(ROOT, "launch", "matcher.launch.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ld = module.generate_launch_description()
    configs = {}
    for e in ld.entities:
        if isinstance(e, DeclareLaunchArgument):
            configs[e.name] = e.default_value
    for arg in a.args:
        k, _, v = arg.partition(":=")
        if k not in configs:
            raise SystemExit(f"unknown launch argument {k}; declared: {sorted(configs)}")
        configs[k] = v
    context = Context(configs)
    nodes = []
    for e in ld.entities:
        if isinstance(e, OpaqueFunction):
            nodes += [n for n in e.function(context) if isinstance(n, Node)]
    tmpdir = a.tmpdir or tempfile.mkdtemp()
    out = []
    for n in nodes:
        cmd, env = command_line(n, context, tmpdir)
        out.append({"cmd": cmd, "env": env})
    print(json.dumps({"arguments": configs, "nodes": out}))


if __name__ == "__main__":
    main()
