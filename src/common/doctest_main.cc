// The unit tests hold the code to its asserted preconditions too: a build
// that compiles assert() away (NDEBUG: buildtype=release, see meson.build's
// b_ndebug=if-release) must not pass for a tested one. Release builds set
// -Dtests=false.
#ifdef NDEBUG
#error "the unit tests need assert(): build them without NDEBUG"
#endif

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
