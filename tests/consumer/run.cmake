# The ctest `install_consumer`: installs kiln from the build tree into a fresh prefix, builds
# tests/consumer against it with find_package(kiln CONFIG), runs it on the demo model, and checks
# the pkg-config file.
#   cmake -DBUILD=<kiln build dir> -DSRC=<kiln source dir> -DWORK=<scratch dir> -P run.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD} --prefix ${WORK}/prefix)
foreach(f include/kiln/kiln.h lib/libkiln.a bin/kiln lib/cmake/kiln/kilnConfig.cmake
          lib/pkgconfig/kiln.pc)
  if(NOT EXISTS ${WORK}/prefix/${f})
    message(FATAL_ERROR "the install lacks ${f}")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S ${SRC}/tests/consumer -B ${WORK}/build -DCMAKE_PREFIX_PATH=${WORK}/prefix
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK}/build)
run(${WORK}/build/consumer ${SRC}/models/fashion_cnn.onnx)
message("${last_out}")
file(READ ${WORK}/prefix/lib/pkgconfig/kiln.pc pc)
if(NOT pc MATCHES "Libs: -L[^\n]*-lkiln")
  message(FATAL_ERROR "kiln.pc has no -lkiln: ${pc}")
endif()
message("install_consumer: passed")
