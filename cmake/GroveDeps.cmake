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
