# Installation: the library (static and shared, as libuv and nng install
# theirs), public headers, CMake package (grove::grove) and a pkg-config
# file (grove.pc) that links either way: `pkg-config --libs grove` for the
# shared library, `pkg-config --static --libs grove` for the static one.
include(CMakePackageConfigHelpers)

set(_grove_installed grove)
if(NOT BUILD_SHARED_LIBS)
  # grove is the static library; the shared one is built from the same
  # objects (PIC) and installed beside it.
  add_library(grove_shared SHARED $<TARGET_OBJECTS:grove_objects>)
  target_link_libraries(grove_shared
    PRIVATE ${GROVE_LIBEV_LIBRARIES} ${GROVE_MSGPACK_LIBRARIES}
            ${GROVE_EI_LIBRARIES}
    PUBLIC Threads::Threads)
  target_include_directories(grove_shared
    PUBLIC
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  set_target_properties(grove_shared PROPERTIES
    OUTPUT_NAME grove
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
  list(APPEND _grove_installed grove_shared)
endif()

install(TARGETS ${_grove_installed} EXPORT groveTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/grove DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/grove)
install(EXPORT groveTargets NAMESPACE grove:: DESTINATION ${_cmake_dir})
configure_package_config_file(cmake/groveConfig.cmake.in
  ${PROJECT_BINARY_DIR}/groveConfig.cmake INSTALL_DESTINATION ${_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/groveConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/groveConfig.cmake
              ${PROJECT_BINARY_DIR}/groveConfigVersion.cmake
        DESTINATION ${_cmake_dir})

# What a static libgrove.a needs at link time besides: msgpack-c by its own
# pkg-config module, libev (which ships none) and pthreads by name.
set(GROVE_PC_REQUIRES_PRIVATE "${GROVE_MSGPACK_PC_MODULE_NAME}")
set(GROVE_PC_LIBS_PRIVATE "-lev -lpthread")
if(GROVE_EI_FOUND) # libei.a has no pkg-config module: by its folder.
  get_filename_component(_grove_ei_libdir ${GROVE_EI_LIBRARY} DIRECTORY)
  set(GROVE_PC_LIBS_PRIVATE
      "${GROVE_PC_LIBS_PRIVATE} -L${_grove_ei_libdir} -lei")
endif()
# From <prefix>/<libdir>/pkgconfig back up to <prefix>.
file(RELATIVE_PATH GROVE_PC_UP
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(cmake/grove.pc.in ${PROJECT_BINARY_DIR}/grove.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/grove.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
