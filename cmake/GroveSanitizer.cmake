# GROVE_SANITIZER: build everything with sanitizers, e.g.
#   -DGROVE_SANITIZER=address,undefined   or   -DGROVE_SANITIZER=thread
set(GROVE_SANITIZER "" CACHE STRING
    "Sanitizers to build with: address,undefined | thread | empty for none")

if(GROVE_SANITIZER)
  if(GROVE_SANITIZER MATCHES "thread" AND GROVE_SANITIZER MATCHES "address")
    message(FATAL_ERROR "GROVE_SANITIZER: thread cannot be combined with address")
  endif()
  set(_san_flags -fsanitize=${GROVE_SANITIZER} -fno-omit-frame-pointer -g)
  if(GROVE_SANITIZER MATCHES "undefined")
    list(APPEND _san_flags -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${_san_flags})
  add_link_options(-fsanitize=${GROVE_SANITIZER})
  message(STATUS "Grove: building with -fsanitize=${GROVE_SANITIZER}")
endif()

# GROVE_COVERAGE: build with gcov instrumentation (scripts/coverage.sh).
option(GROVE_COVERAGE "Build with gcov coverage instrumentation" OFF)
if(GROVE_COVERAGE)
  add_compile_options(--coverage -O0 -g)
  add_link_options(--coverage)
endif()
