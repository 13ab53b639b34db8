file(MAKE_DIRECTORY ${OUT})
# Runs the shipped sample images through `kiln run` and compares the logits with PyTorch's.
execute_process(COMMAND ${KILN} run ${MODEL} --device cpu --input image=${INPUT} --output-dir ${OUT} --quiet
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kiln run failed (${rc}):\n${out}\n${err}")
endif()
execute_process(COMMAND ${COMPARE} ${OUT}/logits.npy ${EXPECTED} 1e-4 1e-4
                RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kiln's logits differ from PyTorch's")
endif()
