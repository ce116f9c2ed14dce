#!/bin/sh
# Installs Grove from a build into a fresh prefix and builds examples/hello
# against it the ways a user would: pkg-config with the shared library,
# pkg-config --static with the static one, and CMake's find_package(grove).
# Each program must run and do what hello does.
#   tests/check_install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib64/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
hello=$src/examples/hello/hello.c
ok() { "$@" 2>"$work/log" | grep -c ' heard: "welcome, ' | grep -qx 3 || { cat "$work/log"; return 1; }; }
# hello uses msgpack-c itself, as a user's program would.
msgpack=$(pkg-config --libs msgpack-c 2>/dev/null || pkg-config --libs msgpack)

cc -o "$work/hello_shared" "$hello" $(pkg-config --cflags --libs grove) \
  $msgpack
LD_LIBRARY_PATH=$(pkg-config --variable=libdir grove) ok "$work/hello_shared"
echo "pkg-config, shared: ok"

cc -o "$work/hello_static" "$hello" -Wl,-Bstatic -lgrove -Wl,-Bdynamic \
  $(pkg-config --cflags grove) -L"$(pkg-config --variable=libdir grove)" \
  $(pkg-config --static --libs grove | sed 's/-lgrove //') $msgpack
ok "$work/hello_static"
echo "pkg-config --static: ok"

mkdir "$work/consumer"
cat >"$work/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(grove REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_search_module(MSGPACK REQUIRED IMPORTED_TARGET msgpack-c msgpack)
add_executable(hello $hello)
target_link_libraries(hello PRIVATE grove::grove PkgConfig::MSGPACK)
CMAKE
cmake -S "$work/consumer" -B "$work/consumer/build" \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer/build" >/dev/null
ok "$work/consumer/build/hello"
echo "CMake find_package(grove): ok"
