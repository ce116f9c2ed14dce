# Grove's dependencies: libev (event loop) and msgpack-c (wire format and
# payload helpers), from Debian's libev-dev and libmsgpack-dev, looked up
# with pkg-config. Debian's libev-dev ships no libev.pc, so libev falls back
# to a plain header and library search.
#
# Sets GROVE_LIBEV_INCLUDE_DIRS / GROVE_LIBEV_LIBRARIES and
# GROVE_MSGPACK_INCLUDE_DIRS / GROVE_MSGPACK_LIBRARIES (full paths).
find_package(Threads REQUIRED)
find_package(PkgConfig)

set(_grove_hint
    "Install it with: sudo apt-get install libev-dev libmsgpack-dev pkg-config\n(scripts/setup.sh does this for you)")

if(PKG_CONFIG_FOUND)
  pkg_check_modules(GROVE_LIBEV_PC QUIET libev)
  pkg_search_module(GROVE_MSGPACK_PC QUIET msgpack-c msgpack)
endif()

if(GROVE_LIBEV_PC_FOUND)
  set(GROVE_LIBEV_INCLUDE_DIRS ${GROVE_LIBEV_PC_INCLUDE_DIRS})
  set(GROVE_LIBEV_LIBRARIES ${GROVE_LIBEV_PC_LINK_LIBRARIES})
else()
  find_path(GROVE_LIBEV_INCLUDE_DIR ev.h)
  find_library(GROVE_LIBEV_LIBRARY ev)
  if(NOT GROVE_LIBEV_INCLUDE_DIR OR NOT GROVE_LIBEV_LIBRARY)
    message(FATAL_ERROR "Grove needs libev (Debian package libev-dev).\n${_grove_hint}")
  endif()
  set(GROVE_LIBEV_INCLUDE_DIRS ${GROVE_LIBEV_INCLUDE_DIR})
  set(GROVE_LIBEV_LIBRARIES ${GROVE_LIBEV_LIBRARY})
endif()

if(NOT GROVE_MSGPACK_PC_FOUND)
  message(FATAL_ERROR "Grove needs msgpack-c (Debian package libmsgpack-dev) and pkg-config.\n${_grove_hint}")
endif()
set(GROVE_MSGPACK_INCLUDE_DIRS ${GROVE_MSGPACK_PC_INCLUDE_DIRS})
set(GROVE_MSGPACK_LIBRARIES ${GROVE_MSGPACK_PC_LINK_LIBRARIES})
message(STATUS "Grove: libev ${GROVE_LIBEV_LIBRARIES}, msgpack-c ${GROVE_MSGPACK_LIBRARIES}")

# erl_interface (libei, from Debian's erlang-dev) for Erlang distribution
# (dist/). Optional: without it Grove builds, and gr_config.dist fails
# with GR_ENOTSUP. Erlang installs it under lib/erlang/lib/erl_interface-*.
# Sets GROVE_EI_FOUND, GROVE_EI_INCLUDE_DIRS and GROVE_EI_LIBRARIES.
# -DGROVE_DIST=OFF builds without it even where it is installed.
option(GROVE_DIST "Erlang distribution through erl_interface, where found" ON)
if(GROVE_DIST)
  file(GLOB _grove_ei_dirs /usr/lib/erlang/lib/erl_interface-*
       /usr/local/lib/erlang/lib/erl_interface-*)
  find_path(GROVE_EI_INCLUDE_DIR ei.h HINTS ${_grove_ei_dirs}
            PATH_SUFFIXES include)
  find_library(GROVE_EI_LIBRARY ei HINTS ${_grove_ei_dirs} PATH_SUFFIXES lib)
endif()
if(GROVE_DIST AND GROVE_EI_INCLUDE_DIR AND GROVE_EI_LIBRARY)
  set(GROVE_EI_FOUND TRUE)
  set(GROVE_EI_INCLUDE_DIRS ${GROVE_EI_INCLUDE_DIR})
  set(GROVE_EI_LIBRARIES ${GROVE_EI_LIBRARY})
  message(STATUS "Grove: erl_interface ${GROVE_EI_LIBRARY}")
else()
  set(GROVE_EI_FOUND FALSE)
  set(GROVE_EI_INCLUDE_DIRS "")
  set(GROVE_EI_LIBRARIES "")
  message(STATUS "Grove: no erl_interface (Debian package erlang-dev): "
                 "built without Erlang distribution")
endif()
