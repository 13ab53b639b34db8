# Every file that tests/CMakeLists.txt names in the source tree (a ${CMAKE_CURRENT_SOURCE_DIR}/ or
# ${PROJECT_SOURCE_DIR}/ path, or a tests/, models/, src/, scripts/ path, from the project root or
# from tests/, as in a comment or a source list) exists: a
# test that points at a missing script or data file would otherwise fail obscurely or not at all.
#   -DSRC=<project root>
file(READ ${SRC}/tests/CMakeLists.txt text)
set(pattern "(\\$\\{CMAKE_CURRENT_SOURCE_DIR\\}|\\$\\{PROJECT_SOURCE_DIR\\}|tests|models|src|scripts)/[A-Za-z0-9_./-]*[A-Za-z0-9_]")
string(REGEX MATCHALL "${pattern}" paths "${text}")
set(missing "")
set(checked 0)
foreach(p IN LISTS paths)
  string(REPLACE "\${CMAKE_CURRENT_SOURCE_DIR}" "tests" p "${p}")
  string(REPLACE "\${PROJECT_SOURCE_DIR}/" "" p "${p}")
  if(p STREQUAL "tests" OR p MATCHES "^\\$")
    continue()
  endif()
  math(EXPR checked "${checked} + 1")
  if(NOT EXISTS ${SRC}/${p} AND NOT EXISTS ${SRC}/tests/${p})
    list(APPEND missing ${p})
  endif()
endforeach()
if(checked LESS 10)
  message(FATAL_ERROR "only ${checked} paths found in tests/CMakeLists.txt: the pattern is broken")
endif()
if(missing)
  list(REMOVE_DUPLICATES missing)
  message(FATAL_ERROR "tests/CMakeLists.txt names files that do not exist: ${missing}")
endif()
message("all ${checked} paths that tests/CMakeLists.txt names exist")
