# Runs one command line and checks both its exit code and its output (ctest's
# PASS_REGULAR_EXPRESSION alone ignores the exit code, so an error message printed by a command
# that then exits 0 would pass).
#   -DCMD=<program and arguments joined by "@@"> -DRC=<expected exit code> -DREGEX=<regex that
#   stdout followed by stderr must match>
string(REPLACE "@@" ";" argv "${CMD}")
execute_process(COMMAND ${argv} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
if(NOT "${rc}" STREQUAL "${RC}")
  message(FATAL_ERROR "exit code ${rc}, expected ${RC}:\n${all}")
endif()
if(NOT all MATCHES "${REGEX}")
  message(FATAL_ERROR "output does not match '${REGEX}':\n${all}")
endif()
message("exit code ${rc} as expected; output matches")
