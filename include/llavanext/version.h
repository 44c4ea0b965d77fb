/*
 * libllavanext — compile-time version numbers.
 *
 * This header holds macros only, so that the build system can read the version from it.
 * The library version follows semantic versioning; the ABI version (the soname number) changes
 * only on an incompatible change, see docs/ABI.md.
 */
#ifndef LLAVANEXT_VERSION_H
#define LLAVANEXT_VERSION_H

/** Major version of the headers. @since 0.1 */
#define LLAVANEXT_VERSION_MAJOR 0
/** Minor version of the headers: grows with every release that adds API. @since 0.1 */
#define LLAVANEXT_VERSION_MINOR 1
/** Patch version of the headers. @since 0.1 */
#define LLAVANEXT_VERSION_PATCH 0
/** The ABI version, i.e. the number in the soname `libllavanext.so.N`. @since 0.1 */
#define LLAVANEXT_ABI_VERSION 0

/** The header version as one integer, `major * 10000 + minor * 100 + patch`. @since 0.1 */
#define LLAVANEXT_VERSION_NUMBER \
    (LLAVANEXT_VERSION_MAJOR * 10000 + LLAVANEXT_VERSION_MINOR * 100 + LLAVANEXT_VERSION_PATCH)

#endif
