# Runs CMD (a ;-list) and checks that its standard output equals FILE byte for byte: for
# generated documents that must be regenerated when what they describe changes.
#   cmake -DCMD="a;b" -DFILE=path -DREGENERATE="how" [-DSKIP=1] -P same_output.cmake
if(SKIP)
  message("SKIPPED: ${SKIP}")
  return()
endif()
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${CMD} failed (${rc}): ${err}")
endif()
file(READ ${FILE} want)
if(NOT out STREQUAL want)
  message(FATAL_ERROR "${FILE} is not what the code generates now; regenerate it: ${REGENERATE}")
endif()
message("${FILE} is current")
