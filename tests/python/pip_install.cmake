# The ctest python_pip_install: a fresh venv (--system-site-packages, as the README says), then
# `pip install --no-index .` from the repository root (the in-tree backend reuses this build
# directory, so only the module is linked), then the README's first ```python block, run as
# written from the repository root with the venv's interpreter.
#   cmake -DPYTHON=... -DSRC=... -DBUILD=... -DWORK=... -P pip_install.cmake
file(REMOVE_RECURSE ${WORK})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  WORKING_DIRECTORY ${SRC})
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
endfunction()
run(${PYTHON} -m venv --system-site-packages ${WORK}/venv)
run(${CMAKE_COMMAND} -E env KILN_BUILD_DIR=${BUILD} ${WORK}/venv/bin/pip install --no-index ${SRC})
file(READ ${SRC}/README.md readme)
string(FIND "${readme}" "```python\n" start)
if(start LESS 0)
  message(FATAL_ERROR "README.md has no ```python block")
endif()
math(EXPR start "${start} + 10")
string(SUBSTRING "${readme}" ${start} -1 rest)
string(FIND "${rest}" "```" stop)
string(SUBSTRING "${rest}" 0 ${stop} example)
file(WRITE ${WORK}/readme_example.py "${example}")
run(${WORK}/venv/bin/python ${WORK}/readme_example.py)
message("${last_out}")
run(${WORK}/venv/bin/python -c "import kiln, os\nprint('kiln from', os.path.dirname(kiln.__file__))")
if(NOT last_out MATCHES "venv")
  message(FATAL_ERROR "the venv imported kiln from elsewhere: ${last_out}")
endif()
message("pip_install: passed")
