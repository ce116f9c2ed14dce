/* Grove version. CMake reads the three numbers below; keep their format. */
#ifndef GROVE_VERSION_H
#define GROVE_VERSION_H

/* The major version changes when the API or ABI breaks. */
#define GR_VERSION_MAJOR 0
/* The minor version changes when features are added compatibly. */
#define GR_VERSION_MINOR 1
/* The patch version changes for fixes only. */
#define GR_VERSION_PATCH 0

/* The version as one comparable integer, e.g. 0x000100 for 0.1.0. */
#define GR_VERSION_HEX                                                         \
    ((GR_VERSION_MAJOR << 16) | (GR_VERSION_MINOR << 8) | GR_VERSION_PATCH)

#endif
