# Installation: library, public headers, CMake package (grove::grove) and
# a pkg-config file (grove.pc).
include(CMakePackageConfigHelpers)

install(TARGETS grove EXPORT groveTargets
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

# Private libraries a static libgrove.a needs at link time.
set(GROVE_PC_LIBS_PRIVATE "-lev -lpthread")
# From <prefix>/<libdir>/pkgconfig back up to <prefix>.
file(RELATIVE_PATH GROVE_PC_UP
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(cmake/grove.pc.in ${PROJECT_BINARY_DIR}/grove.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/grove.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
